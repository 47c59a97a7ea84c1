"""The memory benchmark (``aisre benchmark memory``): does remembering make the next
investigation faster and more accurate?

A seeded sequence of simulator incidents is investigated in order. :data:`PATTERNS` recur
(the same service and fault kind on the same topology, with other seeds, intensities and start
times); one-off incidents on other services or faults are mixed in. For each incident:

1. the ``aisre`` ranker ranks it (the ranking *without* memory);
2. the memory is searched for similar past incidents and :func:`aisre.memory.with_memory` re-ranks
   (the ranking *with* memory);
3. time to mitigation is modelled for both (below);
4. the engineer confirms the true cause and the actions tried are remembered with their outcome.

An incident is *recurring* when an earlier one had the same system, service and fault kind, else
*novel* (so each pattern's first occurrence is novel). AC@1: the first suspect (mapped to its
service) is the true service.

Time to mitigation (seconds), a stated model: detection delay (alert time minus fault start) +
the ranker's own seconds + :data:`STEP_SECONDS` for every plan step tried, in order, up to and
including the first that mitigates; a plan with no mitigating step adds :data:`MANUAL_SECONDS`
after all its steps. The plan is the planner's playbook (:data:`aisre.remediate.PLAYBOOK`: for each
of the top three suspects, its fault's direct remedies then alternatives, at most three each,
preconditions and policy left out); with memory, the suspects are in the order of the ranking
with memory, and each suspect's actions that worked for similar incidents
(:func:`aisre.memory.successful_actions`) come first among its steps. A step mitigates when it acts on the true
service with an action in :data:`MITIGATES` for the true fault.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aisre.case import Ranking
from aisre.memory import Memory, fingerprint, successful_actions, with_memory
from aisre.memory_fingerprint import Fingerprint
from aisre.remediate.planner import PLAYBOOK

__all__ = ["MANUAL_SECONDS", "MITIGATES", "PATTERNS", "STEP_SECONDS", "incident_sequence", "run_memory_benchmark"]

STEP_SECONDS = 300.0
"""Time to carry out one remediation step and watch whether the symptoms clear."""

MANUAL_SECONDS = 3600.0
"""Time an engineer needs to find and apply a fix the plan does not contain."""

MITIGATES: dict[str, tuple[str, ...]] = {
    "cpu": ("scale", "rate_limit"),
    "mem": ("restart",),
    "disk": ("scale",),
    "delay": ("shift_traffic",),
    "loss": ("shift_traffic",),
    "socket": ("restart",),
    "pool": ("scale",),
    "crash": ("rollback",),
    "error": ("rollback", "toggle_flag"),
    "deploy": ("rollback",),
    "config": ("rollback",),
    "neighbour": ("shift_traffic",),
}
"""What stops each fault kind in the benchmark's world (from docs/faults.md): a leak is cleared by
a restart, not by more replicas; a crash loop by rolling back, not by restarting; saturation by
capacity. The first action listed is what an engineer applies by hand."""

PATTERNS: tuple[tuple[str, str, float], ...] = (
    ("online-boutique", "cpu:cartservice", 0.9),
    ("online-boutique", "mem:adservice", 0.8),
    ("online-boutique", "error:paymentservice/Charge", 0.6),
    ("online-boutique", "delay:productcatalogservice", 0.3),
    ("online-boutique", "crash:currencyservice", 1.0),
    ("sock-shop", "delay:catalogue", 0.3),
    ("sock-shop", "pool:orders-db", 0.9),
    ("sock-shop", "cpu:carts", 0.9),
)
"""Recurring incidents: (topology, KIND:TARGET, typical intensity)."""

_NOVEL_POOL: dict[str, tuple[str, ...]] = {
    "online-boutique": ("frontend", "checkoutservice", "cartservice", "productcatalogservice", "currencyservice",
                        "paymentservice", "shippingservice", "emailservice", "recommendationservice", "adservice",
                        "redis-cart"),
    "sock-shop": ("front-end", "catalogue", "carts", "orders", "payment", "user", "shipping", "queue-master",
                  "catalogue-db", "carts-db", "orders-db", "user-db"),
}  # fmt: skip
_NOVEL_KINDS = ("cpu", "mem", "delay", "socket", "crash", "disk", "loss", "pool")
_RATE = {"online-boutique": 5.0, "sock-shop": 6.0}
DURATION = 300.0
"""Simulated seconds per incident (short runs: the fault starts between 100 and 160 s)."""


@dataclass(frozen=True)
class _Spec:
    index: int
    topology: str
    fault: str
    seed: int


def incident_sequence(*, quick: bool = False, seed: int = 0) -> list[_Spec]:
    """Return the seeded incident sequence: each of :data:`PATTERNS` 22 times (4 with *quick*)
    and 30 one-off faults (8), shuffled; every run has its own seed, start and intensity."""
    rng = np.random.default_rng(seed)
    repeats, novel = (4, 8) if quick else (22, 30)
    items: list[tuple[str, str, float]] = [p for p in PATTERNS for _ in range(repeats)]
    used = {(t, f.split(":", 1)[1].split("/")[0], f.split(":", 1)[0]) for t, f, _ in PATTERNS}
    pool = [(t, k, s) for t, svcs in _NOVEL_POOL.items() for s in svcs for k in _NOVEL_KINDS if (t, s, k) not in used]
    for j in rng.permutation(len(pool))[:novel]:
        t, k, s = pool[int(j)]
        items.append((t, f"{k}:{s}", float("nan")))
    order = rng.permutation(len(items))
    out = []
    for i, j in enumerate(order):
        topo, fault, typical = items[int(j)]
        kind = fault.split(":", 1)[0]
        base = {"delay": 0.3, "crash": 1.0}.get(kind, 0.8) if math.isnan(typical) else typical
        intensity = base if kind == "crash" else round(float(base * rng.uniform(0.75, 1.1)), 3)
        if kind != "delay":
            intensity = min(intensity, 1.0)
        start = int(rng.integers(100, 161))
        length = int(rng.integers(120, 181))
        out.append(_Spec(i, topo, f"{fault}@{start}+{length}*{intensity}", int(rng.integers(0, 2**31 - 1))))
    return out


def _investigate(spec: _Spec) -> dict[str, Any]:
    """Simulate and rank one incident; return what the memory phase needs (small and picklable)."""
    from aisre.bench.rca import service_map
    from aisre.rank import get_ranker
    from aisre.simulator import simulate

    t0 = time.perf_counter()
    case = simulate(spec.topology, [spec.fault], duration=DURATION, rate=_RATE[spec.topology], seed=spec.seed,
                    case_id=f"mem-{spec.index:04d}")
    ranking = get_ranker("aisre").rank(case)
    fp = fingerprint(case, ranking)
    truth = case.truth
    assert truth is not None
    return {
        "spec": spec, "case_id": case.id, "system": case.system, "truth": (truth.service, truth.fault),
        "delay": max(0.0, float(case.detected_at or truth.inject_time or 0.0) - float(truth.inject_time or 0.0)),
        "services": service_map(case), "ranking": ranking, "fingerprint": fp, "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def _services(ranking: Ranking, mapping: dict[str, str]) -> list[tuple[str, str | None]]:
    seen: dict[str, str | None] = {}
    if not ranking.abstained:
        for h in ranking.hypotheses:
            seen.setdefault(mapping.get(h.entity, h.entity), h.fault)
    return list(seen.items())


def _plan(suspects: list[tuple[str, str | None]], first: Iterable[tuple[str, str, int]] = ()) -> list[tuple[str, str]]:
    """The model plan: for each of the top three suspects in order, the actions that worked on it
    for similar incidents (most successes first), then its fault's playbook (three at most)."""
    remembered = list(first)
    steps: list[tuple[str, str]] = []
    for svc, fault in suspects[:3]:
        direct, alternatives = PLAYBOOK.get(fault if fault in PLAYBOOK else None, PLAYBOOK[None])
        worked = [n for n, t, _ in remembered if t == svc]
        for name in [*worked, *[n for n in [*direct, *alternatives] if n not in worked][:3]]:
            if (name, svc) not in steps:
                steps.append((name, svc))
    return steps


def _mitigation(steps: list[tuple[str, str]], truth: tuple[str, str | None]) -> tuple[float, list[tuple[str, str, bool]]]:
    """(seconds, actions tried with whether each worked) for carrying out *steps* in order."""
    fixes = MITIGATES.get(truth[1] or "", ())
    tried: list[tuple[str, str, bool]] = []
    for name, target in steps:
        ok = target == truth[0] and name in fixes
        tried.append((name, target, ok))
        if ok:
            return STEP_SECONDS * len(tried), tried
    manual = (fixes[0] if fixes else "rollback", truth[0], True)
    return STEP_SECONDS * len(tried) + MANUAL_SECONDS, [*tried, manual]


def run_memory_benchmark(*, quick: bool = False, seed: int = 0, workers: int = 1, url: str | None = None,
                         progress: bool = False) -> dict[str, Any]:
    """Run the benchmark (module docstring) and return ``{"recurring": {"n", "ac1_with",
    "ac1_without", "mttm_with", "mttm_without"}, "novel": {same keys}, "config": {...},
    "seconds": wall time, "retrieval_ms": {"median", "p95"}, "failures": [...], "rows": [...]}``
    (each group also has ``ac1_bounded_only``: with memory but without learned corrections); AC@1 is a
    share, time to mitigation the mean in seconds. *workers* > 1 simulates in processes; *url*
    is the memory's store (default: a fresh SQLite file in a temporary folder).

    Raises:
        StoreError: when the memory store cannot be opened.
    """
    t0 = time.perf_counter()
    specs = incident_sequence(quick=quick, seed=seed)
    failures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aisre-membench-") as tmp:
        memory = Memory(url or f"sqlite:///{Path(tmp) / 'memory.db'}")
        rows: list[dict[str, Any]] = []
        seen_patterns: set[tuple[str, str, str | None]] = set()
        latencies: list[float] = []
        for item in _investigations(specs, workers, failures, progress):
            fp: Fingerprint = item["fingerprint"]
            base: Ranking = item["ranking"]
            truth = item["truth"]
            key = (item["system"], truth[0], truth[1])
            recurring = key in seen_patterns
            t = time.perf_counter()
            matches = memory.similar(fp, k=5)
            latencies.append(time.perf_counter() - t)
            boosted = with_memory(base, matches)
            mapping = item["services"]
            without, withm = _services(base, mapping), _services(boosted, mapping)
            bounded = _services(with_memory(base, matches, learn_corrections=False), mapping)
            m_without, _ = _mitigation(_plan(without), truth)
            m_with, tried = _mitigation(_plan(withm, successful_actions(matches)), truth)
            fixed = item["delay"] + base.seconds
            rows.append({
                "case_id": item["case_id"], "recurring": recurring, "truth": truth,
                "hit_without": bool(without) and without[0][0] == truth[0],
                "hit_with": bool(withm) and withm[0][0] == truth[0],
                "hit_bounded": bool(bounded) and bounded[0][0] == truth[0],
                "mttm_without": fixed + m_without, "mttm_with": fixed + m_with,
                "best_similarity": matches[0].similarity if matches else 0.0,
            })  # fmt: skip
            memory.remember(fp, confirmed=truth, actions=tried, outcome="mitigated", case_id=item["case_id"])
            seen_patterns.add(key)
        memory.engine.dispose()
    out: dict[str, Any] = {}
    for name, flag in (("recurring", True), ("novel", False)):
        sel = [r for r in rows if r["recurring"] is flag]
        n = len(sel)
        out[name] = {
            "n": n,
            "ac1_with": round(sum(r["hit_with"] for r in sel) / n, 4) if n else 0.0,
            "ac1_without": round(sum(r["hit_without"] for r in sel) / n, 4) if n else 0.0,
            "mttm_with": round(float(np.mean([r["mttm_with"] for r in sel])), 1) if n else 0.0,
            "mttm_without": round(float(np.mean([r["mttm_without"] for r in sel])), 1) if n else 0.0,
            "ac1_bounded_only": round(sum(r["hit_bounded"] for r in sel) / n, 4) if n else 0.0,
        }
    lat = np.array(latencies) * 1000.0
    out["retrieval_ms"] = {"median": round(float(np.median(lat)), 2), "p95": round(float(np.percentile(lat, 95)), 2)} if len(lat) else {}
    out["config"] = {"quick": quick, "seed": seed, "incidents": len(specs), "duration": DURATION, "rates": _RATE,
                     "patterns": [f"{t} {f}" for t, f, _ in PATTERNS], "step_seconds": STEP_SECONDS,
                     "manual_seconds": MANUAL_SECONDS}
    out["failures"] = failures
    out["rows"] = rows
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _investigations(specs: list[_Spec], workers: int, failures: list[dict[str, Any]], progress: bool) -> Iterable[dict[str, Any]]:
    """Yield each incident's investigation in sequence order; a failing one is recorded and skipped."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), desc="memory benchmark", unit="incident")
    try:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_investigate, s) for s in specs]
                for s, fut in zip(specs, futures, strict=True):
                    try:
                        yield fut.result()
                    except Exception as exc:  # a batch records a failing item and goes on
                        failures.append({"index": s.index, "fault": s.fault, "error": f"{type(exc).__name__}: {exc}"})
                    if bar is not None:
                        bar.update(1)
        else:
            for s in specs:
                try:
                    item = _investigate(s)
                except Exception as exc:  # a batch records a failing item and goes on
                    failures.append({"index": s.index, "fault": s.fault, "error": f"{type(exc).__name__}: {exc}"})
                    item = None
                if bar is not None:
                    bar.update(1)
                if item is not None:
                    yield item
    finally:
        if bar is not None:
            bar.close()
