"""Root-cause rankers behind one registry.

Built in: ``aisre`` (the causal engine), ``nsigma`` and ``random`` (simple baselines); with the
``baselines`` extra, the published RCAEval methods (``baro``, ``rcaeval-nsigma``, ``circa``).
Third-party rankers register through the ``aisre.rankers`` entry-point group.
"""

from __future__ import annotations

from aisre.rank.base import Ranker
from aisre.rank.registry import available, get_ranker, register_ranker

__all__ = ["Ranker", "available", "get_ranker", "register_ranker"]
