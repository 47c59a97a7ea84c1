"""Name -> ranker factory, filled by the built-ins and the ``aisre.rankers`` entry points."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from aisre.errors import UsageError
from aisre.rank.base import Ranker

__all__ = ["available", "get_ranker", "register_ranker"]

_BUILTIN = {
    "aisre": "aisre.rank.causal:CausalRanker",
    "nsigma": "aisre.rank.baselines:NSigmaRanker",
    "random": "aisre.rank.baselines:RandomRanker",
    "baro": "aisre.rank.rcaeval:BaroRanker",
    "rcaeval-nsigma": "aisre.rank.rcaeval:RcaevalNSigmaRanker",
    "circa": "aisre.rank.rcaeval:CircaRanker",
}
_FACTORIES: dict[str, Callable[..., Ranker] | str] = dict(_BUILTIN)


def register_ranker(name: str, factory: Callable[..., Ranker] | str) -> None:
    """Register *factory* (a callable or a ``module:attr`` string) under *name*."""
    _FACTORIES[name] = factory


def _entry_points() -> None:
    for ep in entry_points(group="aisre.rankers"):
        _FACTORIES.setdefault(ep.name, ep.value)


def available() -> list[str]:
    """Return the names of every registered ranker, sorted (optional ones included)."""
    _entry_points()
    return sorted(_FACTORIES)


def get_ranker(name: str, **options: Any) -> Ranker:
    """Return a new ranker *name* built with *options*.

    Raises:
        UsageError: for an unknown name, or an optional ranker whose extra is not installed.
    """
    _entry_points()
    factory = _FACTORIES.get(name)
    if factory is None:
        raise UsageError(f"unknown method {name!r}; known: {', '.join(available())}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(import_module(module), attr)
        except ImportError as exc:
            raise UsageError(
                f"method {name!r} needs an optional extra that is not installed "
                f"(pip install 'aisre[baselines]'): {exc}"
            ) from exc
    return factory(**options)
