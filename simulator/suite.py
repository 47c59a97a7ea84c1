"""A seeded fault suite: every fault kind at several targets of one topology, for benchmarks.

``aisre benchmark rca simulator:online-boutique`` ranks these cases; their ground truth comes
from the simulator, so every fault kind's AC@1 is measured on the same footing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aisre.case import Case
from aisre.errors import SpecError

from .faults import FAULT_KINDS
from .runner import simulate
from .topology import SimTopology, load_topology

__all__ = ["fault_suite", "parse_suite"]

_STORES = ("database", "cache", "queue")


def _targets(topo: SimTopology, kind: str) -> list[str]:
    """Services a fault of *kind* can sensibly hit: not an entry point (its symptoms would have no
    callers to spread to), stores only for pool faults, services for the rest."""
    entries = {svc for svc, _, _ in topo.entry_endpoints()}
    stores = [s.name for s in topo.services if s.kind in _STORES]
    services = [s.name for s in topo.services if s.kind == "service" and s.name not in entries and s.endpoints]
    if kind == "pool" and stores:
        return stores
    return services or [s.name for s in topo.services]


def fault_suite(topology: str | SimTopology = "online-boutique", *, per_kind: int = 2, seed: int = 0,
                duration: float = 600.0, rate: float = 20.0, kinds: Sequence[str] = FAULT_KINDS) -> Iterator[Case]:
    """Yield *per_kind* simulated cases for each fault kind in *kinds*, each at another target,
    the fault starting at half the run and lasting 40 % of it.

    Raises:
        SpecError: for an unknown topology or fault kind, or a non-positive *per_kind*.
    """
    if per_kind < 1:
        raise SpecError("per_kind must be at least 1", field="per_kind")
    topo = load_topology(topology)
    start, length = duration / 2, duration * 0.4  # the run ends with a tenth of it after the fault
    for k, kind in enumerate(kinds):
        if kind not in FAULT_KINDS:
            raise SpecError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}", field="kind")
        targets = _targets(topo, kind)
        for j in range(per_kind):
            target = targets[(k * per_kind + j) % len(targets)]
            yield simulate(topo, [f"{kind}:{target}@{start:g}+{length:g}"], duration=duration, rate=rate,
                           seed=seed * 1000 + k * 10 + j)


def parse_suite(spec: str) -> dict:
    """Parse ``simulator:TOPOLOGY[:PER_KIND]`` into :func:`fault_suite` keyword arguments.

    Raises:
        SpecError: for a spec of another form.
    """
    parts = spec.split(":")
    if parts[0] != "simulator" or len(parts) not in (2, 3) or not parts[1]:
        raise SpecError(f"{spec!r} is not simulator:TOPOLOGY[:PER_KIND]", field="source")
    out: dict = {"topology": parts[1]}
    if len(parts) == 3:
        try:
            out["per_kind"] = int(parts[2])
        except ValueError:
            raise SpecError(f"{spec!r}: PER_KIND must be a whole number", field="per_kind") from None
    return out
