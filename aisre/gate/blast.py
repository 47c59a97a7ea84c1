"""Blast radius: who is hurt when a changed service misbehaves.

The changed services plus every service that depends on one of them, directly or transitively
(reversed reachability in :meth:`aisre.case.Topology.call_graph`: callers, readers, writers,
publishers), each weighted by its tier: critical 3, standard 1, best-effort 0.3
(:data:`TIER_WEIGHTS`). A changed service missing from the topology counts as standard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from aisre.case import Topology

__all__ = ["BlastRadius", "TIER_WEIGHTS", "blast_radius"]

TIER_WEIGHTS = {"critical": 3.0, "standard": 1.0, "best-effort": 0.3}
"""Weight of one affected service by its tier in the blast-radius sum."""


@dataclass
class BlastRadius:
    """The affected services of a change and their tier-weighted sum.

    ``services``: the changed services; ``dependents``: the services that depend on them,
    transitively (the changed ones excluded); ``weighted``: the sum of the tier weights of both;
    ``critical``: the affected services of tier critical; ``tiers``: each affected service's tier.
    """

    services: list[str] = field(default_factory=list)
    dependents: list[str] = field(default_factory=list)
    weighted: float = 0.0
    critical: list[str] = field(default_factory=list)
    tiers: dict[str, str] = field(default_factory=dict)

    @property
    def affected(self) -> list[str]:
        """The changed services and their dependents, sorted."""
        return sorted({*self.services, *self.dependents})

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: weighted, services, dependents, affected, critical."""
        return {
            "weighted": round(self.weighted, 3),
            "services": list(self.services),
            "dependents": list(self.dependents),
            "affected": self.affected,
            "critical": list(self.critical),
        }


def blast_radius(topology: Topology | None, services: Iterable[str]) -> BlastRadius:
    """Return the :class:`BlastRadius` of changing *services* in *topology*.

    Without a topology every changed service counts as standard and nothing depends on it.
    """
    changed = sorted(dict.fromkeys(s for s in services if s))
    if topology is None:
        return BlastRadius(changed, [], float(len(changed)) * TIER_WEIGHTS["standard"], [], dict.fromkeys(changed, "standard"))
    graph = topology.call_graph()
    service_like = set(topology.services())
    dependents: set[str] = set()
    for s in changed:
        if s in graph:
            dependents |= nx.ancestors(graph, s)
    dependents = {d for d in dependents if d in service_like} - set(changed)
    tiers: dict[str, str] = {}
    for name in [*changed, *sorted(dependents)]:
        tiers[name] = str(topology.node(name).get("tier", "standard")) if name in topology else "standard"
    weighted = sum(TIER_WEIGHTS.get(t, 1.0) for t in tiers.values())
    critical = sorted(n for n, t in tiers.items() if t == "critical")
    return BlastRadius(changed, sorted(dependents), float(weighted), critical, tiers)
