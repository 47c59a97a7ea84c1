"""What triage reads from a topology: dependency pairs within a hop limit, entry services,
each service's depth, and alert service names mapped onto its nodes."""

from __future__ import annotations

import networkx as nx
import pandas as pd

from aisre.case import Topology


def _dependency_pairs(topology: Topology, max_hops: int) -> pd.DataFrame:
    """``(service, dep, hops)`` for every dependency reachable by a pure path of <= max_hops."""
    g = nx.DiGraph()
    g.add_nodes_from(topology.graph.nodes)
    g.add_edges_from((u, v) for u, v in topology.graph.edges())
    rows = [
        (src, dst, d)
        for src in g.nodes
        for dst, d in nx.single_source_shortest_path_length(g, src, cutoff=max_hops).items()
        if d > 0
    ]
    return pd.DataFrame(rows, columns=["service", "dep", "hops"])


def _entry_services(topology: Topology | None) -> set[str]:
    if topology is None:
        return set()
    g = topology.call_graph()
    marked = {n for n, d in g.nodes(data=True) if d.get("entry")}
    if marked:
        return marked
    services = [n for n, d in g.nodes(data=True) if d.get("kind", "service") == "service"]
    return {n for n in services if g.in_degree(n) == 0 and g.out_degree(n) > 0}


def _resolve_names(services: pd.Series, topology: Topology | None) -> pd.Series:
    """Map alert service names onto topology node names (exact, then case-insensitive)."""
    if topology is None:
        return services
    nodes = set(topology.graph.nodes)
    lower = {str(n).lower(): n for n in nodes}
    uniq = services.unique()
    mapping = {s: (s if s in nodes else lower.get(str(s).lower(), s)) for s in uniq}
    return services.map(mapping)


def _service_levels(pairs: pd.DataFrame) -> dict[str, int]:
    """Depth of each service in the dependency graph: 0 for services that depend on nothing,
    else one more than their deepest dependency (a dependency cycle shares one level)."""
    direct = pairs[pairs["hops"] == 1]
    g = nx.DiGraph()
    g.add_edges_from(zip(direct["service"], direct["dep"], strict=True))
    cond = nx.condensation(g)
    level: dict[int, int] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        level[c] = 1 + max((level[d] for d in cond.successors(c)), default=-1)
    return {n: level[c] for n, c in cond.graph["mapping"].items()}
