"""The ranker seam: anything with ``name`` and ``rank(case) -> Ranking`` is a ranker."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aisre.case import Case, Ranking

__all__ = ["Ranker"]


@runtime_checkable
class Ranker(Protocol):
    """Ranks the root-cause hypotheses of one case.

    ``rank`` returns a :class:`Ranking` (best first, or abstained with a reason) and raises only
    :class:`aisre.errors.AisreError` subclasses on bad input.
    """

    name: str

    def rank(self, case: Case) -> Ranking:
        """Return the ranking of root-cause hypotheses for *case*."""
        ...
