"""The causal root-cause engine, registered as ``aisre``.

From every signal's anomaly score and onset (:mod:`aisre.detect`) it builds, per service, how
anomalous the service is in each kind of signal (resource, latency, error, inbound call latency,
load). With a call graph (the case's topology, one supplied to the ranker, or one recovered from
spans) it discounts what a service inherits from an anomalous callee whose anomaly started no
later, so the deepest unexplained anomaly ranks first; without a graph it falls back to the scores,
the order of onsets and the fault-kind signature. Each hypothesis names a fault kind from that
signature and carries its evidence chain; a case where nothing moved is abstained on.
"""

from __future__ import annotations

import re
import time
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from aisre.case import (
    Case,
    Evidence,
    Hypothesis,
    Ranking,
    Topology,
    topology_from_spans,
)
from aisre.detect import ONSET_Z, detect
from aisre.rank.causal_signature import fault_kind
from aisre.rank.multimodal import trace_log_scores

__all__ = ["ABSTAIN_Z", "TEMPERATURE", "CausalRanker", "service_of"]

ABSTAIN_Z = 4.0
"""A case whose strongest sustained signal stays below this robust z is abstained on."""

TEMPERATURE = 0.75
"""Softmax temperature turning root scores into confidences (see :func:`_confidence`).

Fitted on simulator cases only (48 runs: online-boutique and sock-shop, every fault kind, two
targets each, as ``benchmarks/bench_rank_dev.py simulator`` makes them): over T in 0.1..2 the
negative log-likelihood of the true service is lowest at 0.5-0.75 (0.51-0.52), and at 0.75 the
mean top confidence (0.88) matches the top-1 accuracy of the non-abstained runs (0.89)."""

KIND_WEIGHT = {"resource": 1.0, "error": 1.0, "latency": 0.9, "inbound": 0.95, "load": 0.35, "other": 0.5,
               "client_latency": 0.3, "event": 1.0, "host": 0.3}
"""How much each kind of signal counts towards a service being the root (errors and saturation
are a service's own; load moves with its callers)."""

EXPLAIN = 0.9
"""Share of an anomalous callee's score that is subtracted from its caller's inheritable kinds."""

WALK_FLOOR = 0.3
"""Share of a root score kept by a service the symptom walk never reaches (graphs miss edges)."""

WALK_RESTART = 0.15
"""Restart probability of the symptom walk (the usual PageRank damping)."""

WALK_BACK = 0.1
"""Weight of a step back from a callee to its caller, relative to the caller's anomaly."""

FUSE_BELOW = 0.5
"""When the metric engine's own confidence in its first hypothesis is below this (it is unsure),
the trace-and-log channel (:mod:`aisre.rank.multimodal`) weighs as much as the metric scores,
each scaled to its top. Above it the metric ranking stands and the channel only adds evidence.
Chosen as "less likely than not" on the calibrated confidence, not fitted: on the 94 Nezha and
simulator development cases values from 0.4 to 0.7 score alike. Fusing there gives AC@1 0.69
(Nezha OB 0.77, TT 0.52, simulator 0.75) against 0.65 for metrics alone (0.81, 0.26, 0.79) and
0.66 for always fusing."""

CRASH_REPEAT_CAP = 5
"""Crash events of one entity (killed, back-off, error exit) that add up to its event score."""

DETAILED = 10
"""Hypotheses that get a fault kind and an evidence chain (the rest are ranked only)."""

EXPLAIN_MIN = float(np.log1p(2.0))
"""Compressed score (robust z 2) below which a callee explains nothing."""

EXPLAIN_REF = float(np.log1p(10.0))
"""Compressed score (robust z 10) at which a callee explains its callers' inherited anomaly fully."""

ONSET_SLACK = 90.0
"""Seconds by which a callee's onset may follow its caller's and still explain it (metrics lag)."""

_POD = re.compile(r"^(?P<svc>.+?)-(?:[0-9a-f]{8,10}|[a-z0-9]{9,10})-[a-z0-9]{5}$")


def service_of(entity: str, known: set[str] | None = None) -> str:
    """Return the service an entity belongs to: itself when *known* names it, else a Kubernetes
    pod name without its ReplicaSet and pod suffixes, else the entity unchanged."""
    if known and entity in known:
        return entity
    m = _POD.match(entity)
    if m and (not known or m.group("svc") in known or True):
        return m.group("svc")
    return entity


def _f(z: np.ndarray | float) -> np.ndarray | float:
    """Compress a robust z so that one exploding column cannot drown every other signal."""
    return np.log1p(np.clip(z, 0.0, None))


class CausalRanker:
    """The causal ranker (``aisre``): ``CausalRanker(topology=None, use_graph=True, top=None)``.

    *topology* is used when the case has none; *use_graph* False ignores every graph (the
    no-graph fall-back); *top* keeps only the first hypotheses.
    """

    name = "aisre"

    def __init__(self, *, topology: Topology | None = None, use_graph: bool = True, top: int | None = None,
                 abstain_z: float = ABSTAIN_Z) -> None:
        self.topology = topology
        self.use_graph = bool(use_graph)
        self.top = top
        self.abstain_z = float(abstain_z)

    # ------------------------------------------------------------------ public

    def rank(self, case: Case) -> Ranking:
        """Return the ranked hypotheses for *case*, or an abstention when nothing is anomalous."""
        t0 = time.perf_counter()
        signals, periods = detect(case)
        if signals.empty:
            return Ranking(self.name, abstained=True, reason="no signals to analyse", seconds=time.perf_counter() - t0)
        graph = self._graph(case)
        known = set(graph.nodes) if graph is not None else None
        owner = _instance_owner(case.topology or self.topology)
        signals = signals.assign(service=[owner.get(str(e)) or service_of(str(e), known) for e in signals["entity"]])
        inbound = _inbound(signals, known)
        signals = signals[~signals["kind"].eq("client_latency") | signals["caller"].isna()]
        events = _event_signals(case, periods.split, owner, known)
        signals = pd.concat([x for x in (signals, inbound, events) if not x.empty], ignore_index=True)
        feats = _features(signals)
        feats = feats.drop(index=_not_candidates(case, feats.index), errors="ignore") if len(feats) > 1 else feats
        if feats.empty or float(signals["score"].max()) < self.abstain_z:
            best = float(signals["score"].max()) if len(signals) else 0.0
            return Ranking(self.name, abstained=True,
                           reason=f"no signal is anomalous (strongest robust z {best:.1f} < {self.abstain_z:g})",
                           seconds=time.perf_counter() - t0)
        root, explained_by = _root_scores(feats, graph, _symptoms(case, graph))
        channel = trace_log_scores(case)
        root, channel_share = _fuse(root, channel)
        own = feats["own"].reindex(root.index).fillna(0.0)
        order = sorted(root.index, key=lambda s: (-root[s], -own[s], s))
        if self.top:
            order = order[: self.top]
        conf = _confidence(np.array([root[s] for s in order]))
        by_service = dict(tuple(signals.groupby("service", sort=False)))
        by_channel = channel.set_index("entity") if not channel.empty else None
        hyps = []
        for i, (s, c) in enumerate(zip(order, conf, strict=True)):
            mine = by_service.get(s, signals.iloc[:0])
            detail = i < DETAILED
            fault, evidence = None, []
            if detail:
                fault = fault_kind(mine, feats.loc[s]) if s in feats.index else None
                evidence = _evidence(s, mine, explained_by.get(s))
                if by_channel is not None and s in by_channel.index and by_channel.at[s, "score"] > 0:
                    row = by_channel.loc[s]
                    evidence.append(Evidence(signal="traces/logs", entity=s, magnitude=float(row["score"]),
                                             onset=None if pd.isna(row["onset"]) else float(row["onset"]),
                                             text=str(row["evidence"])))
                    if channel_share.get(s, 0.0) > 0.5 and row["fault"]:
                        fault = str(row["fault"])
            hyps.append(Hypothesis(entity=s, fault=fault, score=float(root[s]), confidence=float(c), evidence=evidence))
        return Ranking(self.name, hyps, seconds=time.perf_counter() - t0)

    # ------------------------------------------------------------------ parts

    def _graph(self, case: Case) -> nx.DiGraph | None:
        """Return the service call graph: the case's, the ranker's, or one recovered from spans."""
        if not self.use_graph:
            return None
        topo = case.topology or self.topology or topology_from_spans(case.spans)
        if topo is None:
            return None
        g = topo.call_graph()
        return g if g.number_of_edges() else None


def _not_candidates(case: Case, names: pd.Index) -> list[str]:
    """Return the entities that are symptoms or measuring points, never root causes: the
    system-level SLI entity (``meta["front_entity"]``) and topology nodes of kind endpoint,
    host or instance (instances are folded into their services)."""
    out: list[str] = []
    front = case.meta.get("front_entity") if case.meta else None
    if isinstance(front, str):
        out.append(front)
    if case.topology is not None:
        g = case.topology.graph
        out.extend(n for n in names if n in g and g.nodes[n].get("kind") in ("endpoint", "host", "instance"))
    return [n for n in out if n in names]


def _symptoms(case: Case, graph: nx.DiGraph | None) -> list[str]:
    """Return the graph nodes where the incident was observed: the alert's or target's service
    (``meta["target"]["node"]``, ``meta["front_entity"]``, alert services) when the graph has it."""
    if graph is None:
        return []
    names: list[str] = []
    meta = case.meta or {}
    target = meta.get("target")
    if isinstance(target, dict) and isinstance(target.get("node"), str):
        names.append(target["node"])
    if isinstance(meta.get("front_entity"), str):
        names.append(meta["front_entity"])
    names.extend(a.service for a in case.alerts if a.service)
    return [n for n in dict.fromkeys(names) if n in graph]


_KILLED = re.compile(r"kill|backoff|crash|oom|evict|exit|fail", re.IGNORECASE)


def _event_signals(case: Case, split: float, owner: dict[str, str], known: set[str] | None) -> pd.DataFrame:
    """Deploy and config events, containers killed or crash-looping (k8s events) and changes on a
    service shortly before or during the onset, as signals of kind ``event``."""
    rows: list[dict[str, Any]] = []
    ev = case.events
    if not ev.empty:
        near = ev[(ev["time"] >= split - 900) & (ev["time"] <= split + 300)]
        for r in near.itertuples(index=False):
            kind = str(r.kind)
            if kind == "k8s":
                if not _KILLED.search(f"{r.reason} {r.message}"):
                    continue  # scheduling, pulling, starting: routine
                kind = "crash"
            if kind in ("deploy", "config", "crash") and r.entity:
                svc = owner.get(str(r.entity)) or service_of(str(r.entity), known)
                rows.append({"signal": f"event:{kind}", "entity": str(r.entity), "kind": "event", "score": 20.0,
                                 "onset": float(r.time), "baseline": 0.0, "peak": 1.0, "caller": None, "callee": None,
                                 "service": svc})
    for ch in case.changes:
        if ch.service and split - 900 <= ch.time <= split + 300:
            rows.append({"signal": "event:deploy", "entity": ch.service, "kind": "event", "score": 20.0, "onset": float(ch.time),
                             "baseline": 0.0, "peak": 1.0, "caller": None, "callee": None, "service": ch.service})
    out = pd.DataFrame(rows)
    if len(out):
        # a crash loop (killed, back-off, killed again) is stronger evidence than one restart
        crash = out["signal"].eq("event:crash")
        n = out[crash].groupby("entity")["signal"].transform("size").clip(upper=CRASH_REPEAT_CAP)
        out.loc[crash, "score"] = 20.0 * n
    return out


def _instance_owner(topo: Topology | None) -> dict[str, str]:
    """Return instance -> service for topology instance nodes that name their service."""
    if topo is None:
        return {}
    return {n: str(d["service"]) for n, d in topo.graph.nodes(data=True)
            if d.get("kind") == "instance" and d.get("service")}


def _inbound(signals: pd.DataFrame, known: set[str] | None) -> pd.DataFrame:
    """Return caller-side call-latency signals re-attributed to the callee.

    What a caller sees on *all* its calls (its own CPU starved, its own network) is the caller's;
    only the part of an edge's score above the median of the caller's other edges is the
    callee's. The common part is returned as a ``latency`` signal of the caller.
    """
    e = signals[signals["kind"].eq("client_latency") & signals["caller"].notna() & signals["callee"].notna()]
    if e.empty:
        return e.assign(service=[])
    e = e.copy()
    e["caller_svc"] = [service_of(str(x), known) for x in e["caller"]]
    e["callee_svc"] = [service_of(str(x), known) for x in e["callee"]]
    f = _f(e["score"].to_numpy(dtype="float64"))
    e["f"] = f
    e["wire"] = e["signal"].astype(str).str.startswith("span:")  # client self time: the wire only
    per_edge = e.groupby(["caller_svc", "callee_svc"], sort=False).agg(f=("f", "max"), wire=("wire", "all")).reset_index()
    # the same call measured at the callee too (its serving time): the caller-side excess over it
    # is the wire; what both sides see is the callee's own slowness, counted as its latency
    d = signals[signals["kind"].eq("latency") & signals["caller"].notna() & signals["callee"].notna()]
    if len(d):
        dk = pd.DataFrame({"caller_svc": [service_of(str(x), known) for x in d["caller"]],
                           "callee_svc": [service_of(str(x), known) for x in d["callee"]],
                           "fd": _f(d["score"].to_numpy(dtype="float64"))})
        dk = dk.groupby(["caller_svc", "callee_svc"], as_index=False)["fd"].max()
        per_edge = per_edge.merge(dk, on=["caller_svc", "callee_svc"], how="left")
        per_edge["f"] = np.where(per_edge["wire"], per_edge["f"],
                                 np.clip(per_edge["f"] - per_edge["fd"].fillna(0.0), 0.0, None))
        per_edge = per_edge.drop(columns="fd")
    n_edges = per_edge.groupby("caller_svc")["f"].transform("size")
    common = per_edge.groupby("caller_svc")["f"].transform("median").where(n_edges >= 3, 0.0)
    # a caller starved of CPU or memory is slow on every call it makes, whatever the callee
    sat = signals[signals["kind"].eq("resource")]
    if len(sat):
        caller_sat = _f(sat.groupby("service")["score"].max())
        caller_sat = (caller_sat - caller_sat.median()).clip(lower=0.0)  # above this case's noise
        common = np.maximum(common, per_edge["caller_svc"].map(caller_sat).fillna(0.0))
    per_edge["own"] = np.clip(per_edge["f"] - common, 0.0, None)
    # a slow callee slows the calls of every caller: the median over its callers is its share
    first = per_edge.groupby("callee_svc")["own"].median()
    # a caller whose own network is jammed (its inbound calls are slow) is slow on its outgoing
    # calls too: that part of an outgoing edge is the caller's
    # (only for wire times: a caller-side latency metric includes the callee's whole work, so a
    # slow call into the caller is explained by its slow callees, not the other way round)
    jam = per_edge["caller_svc"].map(first).fillna(0.0).where(per_edge["wire"], 0.0)
    per_edge["own"] = np.clip(per_edge["own"] - jam, 0.0, None)
    per_edge["own"] = per_edge.groupby("callee_svc")["own"].transform("median")
    rows = e.drop_duplicates(["caller_svc", "callee_svc"]).set_index(["caller_svc", "callee_svc"])
    out = []
    for r in per_edge.itertuples(index=False):
        base = rows.loc[(r.caller_svc, r.callee_svc)]
        out.append({"signal": str(base["signal"]), "entity": str(base["entity"]), "kind": "inbound",
                        "score": float(np.expm1(r.own)), "onset": base["onset"], "baseline": base["baseline"],
                        "peak": base["peak"], "caller": r.caller_svc, "callee": r.callee_svc, "service": r.callee_svc})
    commons = per_edge.assign(common=common).groupby("caller_svc")["common"].max()
    for caller, c in commons.items():
        if c > 0:
            out.append({"signal": "edges:common", "entity": caller, "kind": "latency", "score": float(np.expm1(c)),
                            "onset": np.nan, "baseline": np.nan, "peak": np.nan, "caller": None, "callee": None, "service": caller})
    return pd.DataFrame(out)


def _features(signals: pd.DataFrame) -> pd.DataFrame:
    """Return per service: compressed score per kind, ``own`` (weighted best kind) and ``onset``
    (earliest sustained onset of a strong signal)."""
    s = signals
    source = s["signal"].astype(str).str.split(":", n=1).str[0]
    s = s.assign(f=_f(s["score"].to_numpy(dtype="float64")), channel=source + "|" + s["kind"].astype(str))
    per_channel = s.pivot_table(index="service", columns="channel", values="f", aggfunc="max").fillna(0.0)
    # what most services show in a channel is that channel's noise floor in this case (tiny
    # baselines, sampled traces): only the excess over it singles a service out
    per_channel = (per_channel - per_channel.median(axis=0)).clip(lower=0.0)
    kinds = [c.split("|", 1)[1] for c in per_channel.columns]
    table = per_channel.T.groupby(kinds).max().T
    for k in KIND_WEIGHT:
        if k not in table:
            table[k] = 0.0
    weighted = table[list(KIND_WEIGHT)] * pd.Series(KIND_WEIGHT)
    table["own"] = weighted.max(axis=1) + 0.05 * weighted.sum(axis=1)
    strong = s[(s["score"] >= ONSET_Z) & s["onset"].notna()]
    table["onset"] = strong.groupby("service")["onset"].min().reindex(table.index)
    table["error_onset"] = strong[strong["kind"].eq("error")].groupby("service")["onset"].min().reindex(table.index)
    return table


_INHERITABLE = ("latency", "error", "load", "other", "client_latency")


def _root_scores(feats: pd.DataFrame, graph: nx.DiGraph | None,
                 symptoms: list[str] | None = None) -> tuple[pd.Series, dict[str, str]]:
    """Return each service's root score and, for the explained ones, the callee that explains it.

    A service keeps its own kinds (saturation, inbound call latency, events) in full; its
    inheritable kinds (latency, errors, load) lose what its most anomalous callee whose onset
    is no later already accounts for, except that only a failing callee explains errors
    (:func:`_errors_left`).
    """
    w = pd.Series(KIND_WEIGHT)
    own_kinds = [k for k in KIND_WEIGHT if k not in _INHERITABLE]
    inh_kinds = [k for k in KIND_WEIGHT if k in _INHERITABLE]
    own_part = (feats[own_kinds] * w[own_kinds]).max(axis=1)
    inh_part = (feats[inh_kinds] * w[inh_kinds]).max(axis=1)
    explained_by: dict[str, str] = {}
    if graph is None:
        return feats["own"], explained_by
    total = feats["own"]
    onset = feats["onset"]
    inh_new = inh_part.copy()
    # only clearly anomalous callees explain anything, and only services with something
    # inheritable need explaining: keeps this near-linear on a thousand-service graph
    anomalous = set(total.index[total >= EXPLAIN_MIN])
    for svc in feats.index:
        if svc not in graph or inh_part[svc] <= 0.0:
            continue
        below = nx.descendants(graph, svc)
        best, who = 0.0, None
        for c in anomalous & below:
            if c == svc:
                continue
            oc, os_ = onset.get(c), onset.get(svc)
            if pd.notna(oc) and pd.notna(os_) and oc > os_ + ONSET_SLACK:
                continue
            if total[c] > best:
                best, who = float(total[c]), c
        if who is not None:
            # an anomalous callee that started no later explains what its callers inherit,
            # whatever the units: the share explained grows with how clearly it is anomalous
            inh_new[svc] = inh_part[svc] * (1.0 - EXPLAIN * min(1.0, best / EXPLAIN_REF))
            if inh_new[svc] < inh_part[svc]:
                explained_by[svc] = who
        if feats.at[svc, "error"] > 0.0:
            inh_new[svc] = max(float(inh_new[svc]), _errors_left(svc, below, feats, graph, w))
    score = pd.concat([own_part, inh_new], axis=1).max(axis=1)
    # a service whose callers are anomalous too is the likelier origin of what they show
    bonus = pd.Series(0.0, index=feats.index)
    inheriting = set(inh_part.index[inh_part > 0.0])
    for svc in anomalous:
        if svc in graph:
            ups = inheriting & nx.ancestors(graph, svc)
            if ups:
                bonus[svc] = 0.1 * min(float(score[svc]), float(np.max([inh_part[p] for p in ups])))
    score = score + bonus + 0.05 * total
    reach = _walk(graph, total, symptoms)
    if reach is not None:
        score = score * (WALK_FLOOR + (1.0 - WALK_FLOOR) * np.sqrt(reach))
    return score, explained_by


def _errors_left(svc: str, below: set[str], feats: pd.DataFrame, graph: nx.DiGraph, w: pd.Series) -> float:
    """Return the weighted part of *svc*'s error anomaly that none of *below* (its descendants
    in *graph*) explains.

    Errors are inherited from a callee that fails too (its own errors, or a crash or deploy
    event, however deep), or from a direct callee whose anomaly began strictly before the
    errors did (a saturated callee makes its callers time out, one hop at a time). A callee that
    merely got slower or busier at the same time does not explain them: otherwise it would
    explain away the errors of the service that actually fails.
    """
    onset, error_onset = feats["onset"], feats["error_onset"].get(svc)
    callees = set(graph.successors(svc))
    best = 0.0
    for c in below:
        if c == svc or c not in feats.index:
            continue
        earlier = c in callees and pd.notna(onset[c]) and pd.notna(error_onset) and onset[c] < error_onset
        failing = max(float(feats.at[c, "error"]), float(feats.at[c, "event"]))
        best = max(best, float(feats.at[c, "own"]) if earlier else failing)
    return float(feats.at[svc, "error"] * w["error"] * (1.0 - EXPLAIN * min(1.0, best / EXPLAIN_REF)))


def _walk(graph: nx.DiGraph, anomaly: pd.Series, symptoms: list[str]) -> pd.Series | None:
    """Return, per service, how much a random walk from the symptoms towards anomalous callees
    visits it (personalised PageRank, scaled to a maximum of 1), or None without a usable graph.

    From a service the walker moves to each callee in proportion to the callee's anomaly, stays
    in proportion to how much more anomalous the service is than its worst callee, and steps back
    to a caller with a small weight (so a dead end is not a trap); it restarts at the symptoms.
    """
    nodes = [n for n in graph.nodes if n in anomaly.index]
    if len(nodes) < 2:
        return None
    pos = {n: i for i, n in enumerate(nodes)}
    a = anomaly.reindex(nodes).fillna(0.0).to_numpy(dtype="float64")
    a = a * a  # sharpen: a clear anomaly should pull much harder than noise
    n = len(nodes)
    src, dst = [], []
    for u, v in graph.edges:
        if u in pos and v in pos:
            src.append(pos[u])
            dst.append(pos[v])
    if not src:
        return None
    src_a, dst_a = np.array(src), np.array(dst)
    w = np.zeros((n, n))
    np.add.at(w, (src_a, dst_a), a[dst_a])
    np.add.at(w, (dst_a, src_a), WALK_BACK * a[src_a])
    worst_callee = np.zeros(n)
    np.maximum.at(worst_callee, src_a, a[dst_a])
    w[np.arange(n), np.arange(n)] += np.clip(a - worst_callee, 0.0, None) + 1e-9
    w = w / w.sum(axis=1, keepdims=True)
    start = np.array([a[pos[s]] + 1e-6 for s in symptoms if s in pos]) if symptoms else np.array([])
    p0 = np.zeros(n)
    if len(start):
        for s_, x in zip([s for s in symptoms if s in pos], start, strict=True):
            p0[pos[s_]] = x
    else:
        entries = np.array([graph.in_degree(nd) == 0 for nd in nodes])
        p0 = np.where(entries, a + 1e-6, 0.0) if entries.any() else a + 1e-6
    p0 = p0 / p0.sum()
    p = p0.copy()
    for _ in range(60):
        p = WALK_RESTART * p0 + (1.0 - WALK_RESTART) * (p @ w)
    p = p / p.max() if p.max() > 0 else p
    return pd.Series(p, index=nodes).reindex(anomaly.index).fillna(0.0)


def _fuse(root: pd.Series, channel: pd.DataFrame) -> tuple[pd.Series, dict[str, float]]:
    """Return *root* fused with the trace-and-log channel (in the root scores' units) when the
    metric engine is unsure (:data:`FUSE_BELOW`), and each service's share of its fused score
    that came from the channel; otherwise *root* as it is and no shares."""
    if channel.empty or float(channel["score"].max()) <= 0 or root.empty or float(root.max()) <= 0:
        return root, {}
    if float(_confidence(np.sort(root.to_numpy(dtype=float))[::-1])[0]) >= FUSE_BELOW:
        return root, {}
    x = channel.groupby("entity")["score"].max()
    index = root.index.union(x.index)
    a = root.reindex(index).fillna(0.0) / float(root.max())
    b = x.reindex(index).fillna(0.0) / float(x.max())
    share = (b / (a + b).where((a + b) > 0)).fillna(0.0)
    return (a + b) * float(root.max()), share.to_dict()


def _confidence(scores: np.ndarray) -> np.ndarray:
    """Softmax of root scores at :data:`TEMPERATURE` (how the constant was set: see its docstring)."""
    if not len(scores):
        return scores
    x = (scores - scores.max()) / TEMPERATURE
    p = np.exp(x)
    return p / p.sum()


def _evidence(service: str, signals: pd.DataFrame, explained_by: str | None) -> list[Evidence]:
    """The strongest signals of *service* (and incoming edges), in words."""
    mine = signals.nlargest(5, "score")
    mine = mine[mine["score"] >= ONSET_Z]
    out = []
    for r in mine.itertuples(index=False):
        edge = (str(r.caller), str(r.callee)) if isinstance(r.caller, str) and isinstance(r.callee, str) else None
        when = f" from {pd.Timestamp(r.onset, unit='s'):%H:%M:%S}" if pd.notna(r.onset) else ""
        where = f" on {edge[0]} -> {edge[1]}" if edge else ""
        if pd.isna(r.peak) or pd.isna(r.baseline):  # a derived signal (e.g. the slow-down common to all calls)
            text = f"all calls out of {r.entity} slowed together (z {r.score:.1f}): the slow-down is its own"
        else:
            text = (f"{str(r.signal).split(':', 1)[-1]} of {r.entity}{where} moved to {r.peak:.4g} "
                    f"(normal {r.baseline:.4g}, z {r.score:.1f}){when}")
        out.append(Evidence(signal=str(r.signal), entity=str(r.entity), onset=None if pd.isna(r.onset) else float(r.onset),
                            magnitude=float(r.score), edge=edge, text=text))
    if explained_by:
        out.append(Evidence(signal="graph", entity=service, edge=(service, explained_by),
                            text=f"its inherited anomaly is partly explained by {explained_by}"))
    return out
