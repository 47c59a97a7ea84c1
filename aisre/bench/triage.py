"""The triage benchmark: alert storms with a known answer, and how well triage groups them.

A *storm* is several simultaneous faults on unrelated services (no dependency path between any
two roots) plus noise, generated from a :class:`aisre.case.Topology` with one seeded
``numpy.random.Generator``. Unrelated roots still share callers: every fault reaches the hub
services (the frontend, the gateways) within a few minutes of the others, and telling which
fault raised which alert there is the hard part of the benchmark:

* each fault makes its root raise cause alerts (CPU, memory, crash... per pod) and spreads to
  the callers, hop by hop with a random delay, as latency and error alerts; an entry service
  reached by the fault burns its SLO. Every alert repeats every ``repeat_interval`` seconds
  while it fires (the same ``starts_at``, as Alertmanager does) and sends one resolved copy;
* a later fault on one of the roots' neighbours, after the first faults resolved, must open a
  new incident;
* noise: flapping alerts (fire and resolve every few minutes), ``severity=info`` alerts, and a
  few lone warnings on random services, each a true incident of its own.

When two faults raise the same alert (a shared caller), Alertmanager sees one alert: the episode
belongs to the fault that reached it first.

**Grouping precision and recall are pairwise, over deduplicated alert episodes**
(fingerprint, starts_at): of the pairs of episodes triage put in one incident, the share that
truly belong to one fault (precision); of the pairs that truly belong to one fault, the share
triage put in one incident (recall). A noise episode (flapping, info) truly belongs with
nothing, and a suppressed episode was put with nothing, so suppressing noise costs no pairs and
grouping it costs precision; a symptom suppressed in favour of its cause still counts as grouped
into the incident named in its reason. **Reduction** is alerts received (notifications) per
incident: ``alerts / incidents``.

When :mod:`aisre.simulator` offers ``simulate`` and its topologies, storms from simulator runs
are added (their truth from ``case.meta["faults"]``).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from aisre.case import Alert, Topology
from aisre.errors import UsageError
from aisre.triage import TriageResult, triage

__all__ = [
    "Storm",
    "builtin_topology",
    "make_storm",
    "pairwise_scores",
    "run_triage_benchmark",
    "score_storm",
]

_OB_EDGES = [
    ("frontend", "adservice"), ("frontend", "recommendationservice"), ("frontend", "productcatalogservice"),
    ("frontend", "cartservice"), ("frontend", "shippingservice"), ("frontend", "currencyservice"),
    ("frontend", "checkoutservice"), ("checkoutservice", "productcatalogservice"),
    ("checkoutservice", "shippingservice"), ("checkoutservice", "paymentservice"),
    ("checkoutservice", "emailservice"), ("checkoutservice", "currencyservice"),
    ("checkoutservice", "cartservice"), ("recommendationservice", "productcatalogservice"),
    ("cartservice", "redis-cart"),
]  # fmt: skip
_SOCK_EDGES = [
    ("front-end", "catalogue"), ("front-end", "carts"), ("front-end", "orders"), ("front-end", "user"),
    ("catalogue", "catalogue-db"), ("carts", "carts-db"), ("user", "user-db"),
    ("orders", "orders-db"), ("orders", "payment"), ("orders", "shipping"), ("orders", "carts"),
    ("orders", "user"), ("shipping", "rabbitmq"), ("queue-master", "rabbitmq"),
]  # fmt: skip

_CAUSE_ALERTS = {
    "cpu": ["HighCPUUsage", "CPUThrottlingHigh"],
    "mem": ["MemoryPressure", "PodOOMKilled"],
    "disk": ["DiskSpaceLow", "DiskIOSaturation"],
    "crash": ["KubePodCrashLooping", "ServiceDown"],
    "pool": ["ConnectionPoolExhausted"],
    "error": ["HighErrorRate"],
    "delay": ["HighLatency"],
}
"""What the root of each fault kind raises; its callers raise latency and error alerts."""

ATTENUATION = 0.75
"""How much likelier a caller one hop further from the fault is to alert (per hop)."""

HOP_DELAY = (20.0, 90.0)
"""Seconds a fault takes to reach a caller one hop further, drawn uniformly."""

_NOISE_NAMES = ["DiskUsageFlapping", "TargetScrapeSlow", "NodeClockSkew", "QueueLengthWobble"]
_INFO_NAMES = ["DeploymentRolledOut", "ConfigReloaded", "CertificateRenewed", "HPAScaled"]
_LONE_NAMES = ["CertificateExpiringSoon", "BackupJobLate", "TLSHandshakeErrors"]


def builtin_topology(name: str, *, seed: int = 0) -> Topology:
    """Return a benchmark topology: ``online-boutique``, ``sock-shop`` (their published call
    graphs) or ``large`` (a seeded random 4-layer graph of 60 services).

    Raises:
        UsageError: for an unknown name.
    """
    topo = Topology(source="given")
    if name == "online-boutique":
        edges, entry = _OB_EDGES, "frontend"
    elif name == "sock-shop":
        edges, entry = _SOCK_EDGES, "front-end"
    elif name == "large":
        rng = np.random.default_rng(seed)
        layers = [[f"gw-{i}" for i in range(3)], [f"api-{i}" for i in range(12)],
                  [f"svc-{i}" for i in range(25)], [f"db-{i}" for i in range(20)]]  # fmt: skip
        edges = []
        for upper, lower in itertools.pairwise(layers):
            for u in upper:
                for v in rng.choice(lower, size=min(3, len(lower)), replace=False):
                    edges.append((u, str(v)))
        for v in layers[2] + layers[3]:  # nothing orphaned
            if not any(e[1] == v for e in edges):
                edges.append((str(rng.choice(layers[1] if v in layers[2] else layers[2])), v))
        entry = None
        for i, u in enumerate(layers[0]):
            topo.add_node(u, tier="critical", replicas=3)
        for v in layers[3]:
            topo.add_node(v, kind="database", replicas=1)
    else:
        raise UsageError(f"unknown benchmark topology {name!r}; known: online-boutique, sock-shop, large")
    for u, v in edges:
        topo.add_edge(u, v, "calls")
    for n in topo.nodes():
        if topo.node(n).get("replicas", 1) == 1 and topo.node(n).get("kind") == "service":
            topo.add_node(n, tier="critical" if n == entry else "standard", replicas=3)
    return topo


@dataclass
class Storm:
    """Generated alerts and their truth: ``truth`` has one row per episode (fingerprint,
    start, label); a label starting with ``noise`` belongs with nothing."""

    name: str
    topology: Topology
    alerts: list[Alert]
    truth: pd.DataFrame


def _fingerprint(labels: dict[str, str]) -> str:
    text = "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _unrelated_roots(graph: nx.DiGraph, candidates: list[str], k: int, rng: np.random.Generator) -> list[str]:
    """Pick up to *k* roots with no dependency path between any two of them."""
    roots: list[str] = []
    for c in rng.permutation(candidates):
        c = str(c)
        if all(not nx.has_path(graph, c, r) and not nx.has_path(graph, r, c) for r in roots):
            roots.append(c)
        if len(roots) == k:
            break
    return roots


def _fault_episodes(
    graph: nx.DiGraph,
    topology: Topology,
    root: str,
    kind: str,
    t0: float,
    duration: float,
    label: str,
    rng: np.random.Generator,
    reached: dict[str, set[str]] | None = None,
) -> list[tuple[dict[str, str], float, float, str, str]]:
    """Alert episodes ``(labels, start, end, severity, label)`` one fault raises; the services
    it reaches are recorded in *reached* under *label*."""
    out = []
    entry = {n for n in graph.nodes if graph.in_degree(n) == 0}

    def pods(svc: str) -> list[str]:
        return [f"{svc}-{i}" for i in range(int(topology.node(svc).get("replicas", 1) or 1))]

    names = _CAUSE_ALERTS[kind]
    errors = kind in ("crash", "error", "pool", "loss")
    for pod in pods(root):
        own = [(n, 0.9) for n in names] + [("HighLatency", 0.7)] + ([("HighErrorRate", 0.7)] if errors else [])
        for name, p in dict(own).items():
            if rng.random() < p:
                start = t0 + rng.uniform(10, 60)
                out.append(({"alertname": name, "service": root, "pod": pod}, start, t0 + duration + rng.uniform(0, 60), "critical", label))
    onset = {root: t0}
    hops = {root: 0}
    # spread to callers hop by hop (reverse BFS), each hop a random delay
    frontier = [root]
    depth = 0
    while frontier and depth < 3:
        depth += 1
        nxt = []
        for svc in frontier:
            for caller in graph.predecessors(svc):
                if caller in onset:
                    continue
                onset[caller] = onset[svc] + rng.uniform(*HOP_DELAY)
                hops[caller] = depth
                nxt.append(caller)
        frontier = nxt
    if reached is not None:
        reached[label] = set(onset)
    for svc, start in onset.items():
        if svc == root:
            continue
        end = t0 + duration + rng.uniform(30, 120)
        # the effect thins out upstream: fewer of a caller's requests touch the fault
        fade = ATTENUATION ** (hops[svc] - 1)
        for pod in pods(svc):
            if rng.random() < 0.85 * fade:
                out.append(({"alertname": "HighLatency", "service": svc, "pod": pod}, start + rng.uniform(0, 30), end, "warning", label))
            if errors and rng.random() < 0.6 * fade:
                out.append(({"alertname": "HighErrorRate", "service": svc, "pod": pod}, start + rng.uniform(0, 30), end, "warning", label))
        if svc in entry and rng.random() < 0.9 * fade:
            out.append(({"alertname": "SLOBurnRateHigh", "service": svc}, start + rng.uniform(30, 90), end, "critical", label))
    return out


def make_storm(
    topology: Topology,
    *,
    faults: int = 4,
    seed: int = 0,
    start: float = 1_700_000_000.0,
    repeat_interval: float = 60.0,
    flapping: int = 5,
    info: int = 30,
    lone: int = 3,
    later_fault: bool = True,
    name: str = "storm",
) -> Storm:
    """Return one alert storm on *topology* with its truth (see the module docstring).

    Raises:
        UsageError: when the topology has no service to fault.
    """
    rng = np.random.default_rng(seed)
    graph = topology.call_graph()
    services = topology.services()
    if not services:
        raise UsageError("the storm topology has no services")
    roots = _unrelated_roots(graph, services, faults, rng)
    kinds = list(_CAUSE_ALERTS)
    episodes: list[tuple[dict[str, str], float, float, str, str]] = []
    reached: dict[str, set[str]] = {}
    horizon = start
    for i, root in enumerate(roots):
        t0 = start + rng.uniform(0, 240)
        duration = rng.uniform(600, 1800)
        episodes += _fault_episodes(graph, topology, root, str(rng.choice(kinds)), t0, duration, f"fault-{i}", rng, reached)
        horizon = max(horizon, t0 + duration + 300)
    if later_fault and roots:
        neighbours = sorted(set(graph.predecessors(roots[0])) | set(graph.successors(roots[0]))) or [roots[0]]
        t0 = horizon + 1200
        duration = rng.uniform(600, 1200)
        episodes += _fault_episodes(graph, topology, str(rng.choice(neighbours)), str(rng.choice(kinds)), t0, duration, "fault-later", rng)
        horizon = t0 + duration + 300
    # the same alert raised by two faults is one alert: the first fault owns it
    merged = _merge_same_alert(episodes)
    alerts: list[Alert] = []
    truth_rows: list[tuple[str, float, str, str | None]] = []
    for labels, s, e, sev, label in merged:
        _emit(alerts, truth_rows, labels, s, e, sev, label, repeat_interval)
    span = horizon - start
    all_nodes = topology.nodes()
    for k in range(flapping):
        svc = str(rng.choice(all_nodes))
        labels = {"alertname": str(rng.choice(_NOISE_NAMES)), "service": svc, "instance": f"{svc}:{k}"}
        t = start + rng.uniform(-300, 300)
        while t < start + span:
            on = rng.uniform(60, 240)
            _emit(alerts, truth_rows, labels, t, t + on, "warning", f"noise-flap-{k}", repeat_interval)
            t += on + rng.uniform(60, 360)
    for k in range(info):
        svc = str(rng.choice(all_nodes))
        labels = {"alertname": str(rng.choice(_INFO_NAMES)), "service": svc, "n": str(k)}
        s = start + rng.uniform(0, span)
        _emit(alerts, truth_rows, labels, s, s + rng.uniform(60, 600), "info", f"noise-info-{k}", repeat_interval)
    for k in range(lone):
        svc = str(rng.choice(all_nodes))
        labels = {"alertname": str(rng.choice(_LONE_NAMES)), "service": svc, "n": str(k)}
        s = start + rng.uniform(0, span)
        _emit(alerts, truth_rows, labels, s, s + rng.uniform(300, 900), "warning", f"lone-{k}", repeat_interval)
    order = np.argsort([a.starts_at if a.status == "firing" else (a.ends_at or a.starts_at) for a in alerts], kind="stable")
    alerts = [alerts[i] for i in order]
    truth = pd.DataFrame(truth_rows, columns=["fingerprint", "start", "label", "service"])
    # an alert on a service two simultaneous faults reached has no single true incident
    hits = pd.Series([s for r in reached.values() for s in r]).value_counts()
    shared = set(hits[hits > 1].index)
    truth["shared"] = truth["label"].isin(list(reached)) & truth["service"].isin(shared)
    return Storm(name, topology, alerts, truth.drop(columns="service"))


def _merge_same_alert(episodes: list[tuple[dict[str, str], float, float, str, str]]) -> list[tuple[dict[str, str], float, float, str, str]]:
    by_fp: dict[str, list[tuple[dict[str, str], float, float, str, str]]] = {}
    for ep in episodes:
        by_fp.setdefault(_fingerprint({**ep[0], "severity": ep[3]}), []).append(ep)
    out = []
    for eps in by_fp.values():
        eps.sort(key=lambda e: e[1])
        cur = list(eps[0])
        for e in eps[1:]:
            if e[1] <= cur[2]:
                cur[2] = max(cur[2], e[2])
            else:
                out.append(tuple(cur))
                cur = list(e)
        out.append(tuple(cur))
    return out  # type: ignore[return-value]


def _emit(
    alerts: list[Alert],
    truth: list[tuple[str, float, str, str | None]],
    labels: dict[str, str],
    start: float,
    end: float,
    severity: str,
    label: str,
    repeat: float,
) -> None:
    labels = {**labels, "severity": severity}
    fp = _fingerprint(labels)
    svc = labels.get("service")
    n_repeats = int(max(0.0, end - start) // repeat) + 1
    for k in range(n_repeats):
        alerts.append(Alert(fp, labels, {}, "firing", start, None, svc, severity))
    alerts.append(Alert(fp, labels, {}, "resolved", start, end, svc, severity))
    truth.append((fp, start, label, svc))


# --------------------------------------------------------------------------- scoring


def pairwise_scores(true: Sequence[str | None], pred: Sequence[str | None]) -> dict[str, int]:
    """Return pair counts ``{"tp", "pred_pairs", "true_pairs"}`` for two labelings of the same
    items; ``None`` (and, in *true*, labels starting with ``noise``) are singletons."""
    t = pd.Series(list(true), dtype=object)
    p = pd.Series(list(pred), dtype=object)
    n = len(t)
    single_t = t.isna() | t.astype(str).str.startswith("noise")
    single_p = p.isna()
    t = t.where(~single_t, pd.Series([f"\x00t{i}" for i in range(n)]))
    p = p.where(~single_p, pd.Series([f"\x00p{i}" for i in range(n)]))

    def pairs(counts: pd.Series) -> int:
        c = counts.to_numpy(dtype=np.int64)
        return int((c * (c - 1) // 2).sum())

    frame = pd.DataFrame({"t": t, "p": p})
    return {
        "tp": pairs(frame.groupby(["t", "p"]).size()),
        "pred_pairs": pairs(frame.groupby("p").size()),
        "true_pairs": pairs(frame.groupby("t").size()),
    }


def score_storm(storm: Storm, result: TriageResult) -> dict[str, Any]:
    """Return the figures of one triaged storm: alerts, episodes, incidents, pair counts,
    precision, recall and the share of noise suppressed."""
    ep = result.episodes[["fingerprint", "start", "incident"]]
    joined = storm.truth.merge(ep, on=["fingerprint", "start"], how="left")
    pc = pairwise_scores(joined["label"].tolist(), joined["incident"].tolist())
    clear = joined[~joined["shared"]]
    pu = pairwise_scores(clear["label"].tolist(), clear["incident"].tolist())
    noise = joined["label"].str.startswith("noise")
    return {
        "name": storm.name,
        "alerts": len(storm.alerts),
        "episodes": len(storm.truth),
        "incidents": len(result.incidents),
        "true_incidents": int(joined.loc[~noise, "label"].nunique()),
        **pc,
        **{f"{k}_unshared": v for k, v in pu.items()},
        "precision": pc["tp"] / pc["pred_pairs"] if pc["pred_pairs"] else 1.0,
        "recall": pc["tp"] / pc["true_pairs"] if pc["true_pairs"] else 1.0,
        "precision_unshared": pu["tp"] / pu["pred_pairs"] if pu["pred_pairs"] else 1.0,
        "recall_unshared": pu["tp"] / pu["true_pairs"] if pu["true_pairs"] else 1.0,
        "shared": float(joined["shared"].mean()),
        "noise_suppressed": float(joined.loc[noise, "incident"].isna().mean()) if noise.any() else 1.0,
    }


def _large_storm(n_alerts: int, seed: int) -> Storm:
    """Storms on the large topology, laid end to end, cut at exactly *n_alerts* alerts."""
    topo = builtin_topology("large", seed=seed)
    alerts: list[Alert] = []
    truths = []
    k = 0
    while len(alerts) < n_alerts:
        s = make_storm(topo, faults=6, seed=seed * 1000 + k, start=1_700_000_000.0 + k * 3 * 3600, flapping=8, info=40, lone=5, name=f"large-{k}")
        alerts += s.alerts
        truths.append(s.truth.assign(label=s.truth["label"].radd(f"{k}:")))
        k += 1
    truth = pd.concat(truths, ignore_index=True)
    # relabel noise so it still reads as noise after the prefix
    truth["label"] = truth["label"].where(~truth["label"].str.contains(":noise"), "noise")
    return Storm("large", topo, alerts[:n_alerts], truth)


def run_triage_benchmark(*, quick: bool = False, seed: int = 0, timing: bool = True) -> dict[str, Any]:
    """Run triage on generated alert storms and return the figures.

    Returns ``{"alerts", "incidents", "reduction", "precision", "recall", "seconds_per_100k"}``
    (pooled over the storms: pair counts summed) plus ``episodes``, ``storms`` (one dict per
    storm) and ``timing`` (the 100,000-alert run). *quick* runs fewer storms; the timing run
    always triages exactly 100,000 alerts, and is skipped when *timing* is false (then
    ``seconds_per_100k`` is NaN and ``timing`` is empty), for sweeps over seeds.
    """
    storms: list[Storm] = []
    n = 3 if quick else 8
    for i in range(n):
        for topo_name in ("online-boutique", "sock-shop"):
            topo = builtin_topology(topo_name)
            storms.append(make_storm(topo, faults=3, seed=seed * 100 + i, name=f"{topo_name}-{i}"))
        storms.append(make_storm(builtin_topology("large", seed=seed), faults=5, seed=seed * 100 + i, name=f"large-{i}"))
    rows = []
    for storm in storms:
        result = triage(storm.alerts, storm.topology)
        rows.append(score_storm(storm, result))
    seconds, n_big, timed = float("nan"), 100_000, {}
    if timing:
        big = _large_storm(100_000, seed)
        t = time.perf_counter()
        big_result = triage(big.alerts, big.topology)
        seconds, n_big = time.perf_counter() - t, len(big.alerts)
        timed = {**score_storm(big, big_result), "seconds": seconds}
    tot = {k: sum(r[k] for r in rows) for k in ("alerts", "episodes", "incidents", "tp", "pred_pairs", "true_pairs")}
    unshared = {k: sum(r[f"{k}_unshared"] for r in rows) for k in ("tp", "pred_pairs", "true_pairs")}
    return {
        "alerts": tot["alerts"],
        "incidents": tot["incidents"],
        "reduction": tot["alerts"] / max(tot["incidents"], 1),
        "precision": tot["tp"] / tot["pred_pairs"] if tot["pred_pairs"] else 1.0,
        "recall": tot["tp"] / tot["true_pairs"] if tot["true_pairs"] else 1.0,
        "seconds_per_100k": seconds * 100_000 / n_big,
        "episodes": tot["episodes"],
        "precision_unshared": unshared["tp"] / unshared["pred_pairs"] if unshared["pred_pairs"] else 1.0,
        "recall_unshared": unshared["tp"] / unshared["true_pairs"] if unshared["true_pairs"] else 1.0,
        "storms": rows,
        "timing": timed,
        "config": {"quick": quick, "seed": seed, "window": 300.0, "max_hops": 3},
    }
