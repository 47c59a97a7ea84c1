"""The open AI SRE scorecard (``aisre benchmark scorecard``): prevention, resolution, memory and
governance in one seeded suite anybody can run and reproduce.

:func:`run_scorecard` composes the existing harnesses and runs every seed's work in parallel on
dask.distributed (a local cluster by default, ``scheduler=ADDR`` for a real one):

- **prevention**: the gate benchmark's shadow-mode change stream (:func:`aisre.bench.gate.
  simulate_stream`), gating the riskiest 10 % of changes; plus ApacheJIT's temporal-split AUC
  when the shared data is present;
- **resolution**: one simulated incident per (seed, fault kind, target slot) on Online Boutique,
  ranked by the ``aisre`` ranker through :func:`aisre.bench.rca.run_benchmark` (AC@1, AC@3 per
  fault kind; time to diagnosis), then remediated on the simulator's digital twin by the real
  planner, the packaged default policy and an audit log (time to mitigation);
- **memory**: :func:`aisre.bench.memory.run_memory_benchmark` per seed;
- **governance**: policy and audit coverage of every remediation the suite ran, policy-violating
  proposals injected into the real runner, and tampered copies of a real audit log.

Every figure's exact method is in the result's ``how`` strings and in docs/scorecard.md.
:func:`compare_scorecard` lists the figures that dropped beyond noise against a baseline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import FAULT_KINDS, Action, Case, Outcome, Plan, Step
from aisre.errors import AisreError, DataError, UsageError

__all__ = [
    "APPROVAL_SECONDS",
    "DEFAULT_SEEDS",
    "QUICK_SEEDS",
    "SCHEMA",
    "SuiteConfig",
    "compare_scorecard",
    "load_scorecard",
    "run_scorecard",
    "save_scorecard",
    "scorecard_figures",
    "scorecard_tables",
    "scorecard_text",
    "suite_config",
    "write_scorecard_html",
]

SCHEMA = "aisre.scorecard/1"
"""The ``schema`` field of a scorecard document."""

TOPOLOGY = "online-boutique"
"""The built-in topology every simulated incident runs on."""

QUICK_SEEDS = (0,)
"""Seeds of the quick suite (CI): one seed; its incidents still run in parallel."""

DEFAULT_SEEDS = (0, 1, 2)
"""Seeds of the default suite."""

APPROVAL_SECONDS = 300.0
"""Seconds from a step needing approval to a paged person approving it (acknowledge, read the
plan, click): the twin keeps running meanwhile."""

ROUNDS = 2
"""Remediation rounds per incident: act, observe the twin for its ``observe`` seconds, act again."""

TTM_HOLD = 30.0
"""Seconds the entry SLO must stay met for an incident to count as mitigated."""

_FREEZE_NOW = 1_798_459_200.0  # 2026-12-28T12:00:00Z: inside the packaged policy's year-end freeze


@dataclass(frozen=True)
class SuiteConfig:
    """The settings of one suite; :func:`suite_config` gives the quick and the default one."""

    quick: bool
    seeds: tuple[int, ...]
    targets_per_kind: int
    duration: float
    fault_start: float
    fault_length: float
    rate: float
    changes: int
    memory_seeds: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**dataclasses.asdict(self), "seeds": list(self.seeds), "memory_seeds": list(self.memory_seeds)}


def suite_config(quick: bool = False, seeds: Sequence[int] | None = None) -> SuiteConfig:
    """Return the suite's settings: the quick suite (CI, < 2 min) or the default one (< 15 min).

    Raises:
        UsageError: for an empty or non-integer seed list.
    """
    chosen = tuple(QUICK_SEEDS if quick else DEFAULT_SEEDS) if seeds is None else tuple(seeds)
    if not chosen or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in chosen):
        raise UsageError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"a seed is listed twice: {list(chosen)}")
    if quick:
        # a third of the simulation work per incident: shorter runs at half the load
        return SuiteConfig(quick=True, seeds=tuple(int(s) for s in chosen), targets_per_kind=1, duration=600.0,
                           fault_start=60.0, fault_length=480.0, rate=10.0, changes=200,
                           memory_seeds=tuple(int(s) for s in chosen))  # fmt: skip
    return SuiteConfig(quick=False, seeds=tuple(int(s) for s in chosen), targets_per_kind=2, duration=900.0,
                       fault_start=120.0, fault_length=600.0, rate=20.0, changes=1000,
                       memory_seeds=tuple(int(s) for s in chosen[:2]))  # fmt: skip  (206 incidents a seed)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _private_home() -> Iterator[Path]:
    """Point ``AISRE_HOME`` at a fresh temporary folder (and drop ``AISRE_DB``) for the block."""
    saved = {k: os.environ.get(k) for k in ("AISRE_HOME", "AISRE_DB")}
    tmp = tempfile.mkdtemp(prefix="aisre-scorecard-")
    os.environ["AISRE_HOME"] = tmp
    os.environ.pop("AISRE_DB", None)
    try:
        yield Path(tmp)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def _default_policy() -> Any:
    """The packaged default policy, whatever ``$AISRE_HOME/policy.cedar`` says."""
    from aisre.remediate import Policy, default_policy_text

    return Policy(default_policy_text(), source="default.cedar")


def _audit(home: Path, name: str) -> Any:
    from aisre.remediate import AuditLog

    return AuditLog(f"sqlite:///{home / name}.db")


def _targets(kind: str, seed: int, count: int) -> list[str]:
    """The fault targets of *kind* for *seed*: *count* drawn without replacement from the eligible
    ones (a service that is not the entry; a cache or database for ``pool``; ``service/endpoint``
    for ``error``), seeded by (seed, kind) so every kind draws independently; when there are fewer
    eligible targets than *count*, they repeat in the drawn order (each slot has its own run seed)."""
    from aisre.simulator import load_topology

    topo = load_topology(TOPOLOGY)
    entry = {s for s, _, _ in topo.entry_endpoints()}
    if kind == "pool":
        pool = [s.name for s in topo.services if s.kind in ("database", "cache")]
    elif kind == "error":
        pool = [f"{s.name}/{e.name}" for s in topo.services if s.kind == "service" and s.name not in entry for e in s.endpoints]
    else:
        pool = [s.name for s in topo.services if s.kind == "service" and s.name not in entry]
    rng = np.random.default_rng([seed, FAULT_KINDS.index(kind), 11])
    picked = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[int(picked[k % len(picked)])] for k in range(count)]


def _until(case: Case, t: float) -> Case:
    """The Case as it stood at unix time *t* (no truth): the twin's run before any action is the
    same run, so the data up to *t* is what an engineer would have seen."""

    def cut(df: pd.DataFrame, col: str = "time") -> pd.DataFrame:
        return df[df[col] <= t] if len(df) else df

    return dataclasses.replace(
        case, metrics=cut(case.metrics), logs=cut(case.logs), spans=cut(case.spans, "start"), events=cut(case.events),
        alerts=[a for a in case.alerts if a.starts_at is not None and a.starts_at <= t],
        window=(case.window[0], t), truth=None,
    )  # fmt: skip


class _Recorder:
    """An executor proxy that records every call: the ground truth of what was dry-run or changed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "executor")
        self.calls: list[dict[str, Any]] = []

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        self.calls.append({"step": step.id, "action": step.action.name, "target": step.action.target, "dry_run": bool(dry_run)})
        return self.inner.execute(step, dry_run=dry_run)


@dataclass
class _Coverage:
    """Governance counters over the remediation runs of one task."""

    proposed: int = 0
    decided: int = 0
    acted: int = 0
    audited: int = 0
    changes: int = 0
    changes_allowed: int = 0
    logs: int = 0
    logs_intact: int = 0

    def plan(self, plan: Plan) -> None:
        from aisre.case import DECISIONS

        self.proposed += len(plan.steps)
        self.decided += sum(s.decision is not None and s.decision.decision in DECISIONS for s in plan.steps)

    def calls(self, case_id: str, recorder: _Recorder, log: Any, start: int) -> None:
        """Check every executor call since index *start* against the audit log."""
        recs = log.records(case_id=case_id)

        def has(kind: str, c: Mapping[str, Any], **extra: Any) -> bool:
            return any(r.kind == kind and r.step_id == c["step"] and r.action == c["action"] and r.target == c["target"]
                       and all(getattr(r, k) == v for k, v in extra.items()) for r in recs)  # fmt: skip

        for c in recorder.calls[start:]:
            self.acted += 1
            if c["dry_run"]:
                self.audited += has("dry_run", c)
            else:
                self.changes += 1
                self.audited += has("start", c) and has("finish", c)
                self.changes_allowed += has("decision", c, decision="allow", dry_run=False)

    def verify(self, log: Any) -> None:
        self.logs += 1
        self.logs_intact += not log.verify()

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _guard(part: str, key: Any, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """Run one task; a failure is returned (and later recorded), never raised."""
    t0 = time.perf_counter()
    try:
        value = fn(*args)
        return {"part": part, "key": key, "value": value, "error": None, "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - a batch records a failing item and goes on
        msg = str(exc) if isinstance(exc, AisreError) else f"{type(exc).__name__}: {exc}"
        return {"part": part, "key": key, "value": None, "error": " ".join(msg.split()), "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- prevention


def _prevention_seed(seed: int, changes: int) -> dict[str, Any]:
    """One seed's change stream scored exactly as :func:`aisre.bench.gate.run_gate_benchmark` does."""
    from aisre.bench.gate import gate_outcome, simulate_stream
    from aisre.gate.model import ranking_metrics

    stream, info = simulate_stream(n=changes, seed=seed)
    inc = stream["incident"].to_numpy(bool)
    return {
        "seed": seed, "changes": len(stream), "incidents": int(inc.sum()), "source": info["source"],
        "gate": gate_outcome(stream, "score"), "jit_only": gate_outcome(stream, "p_jit"),
        "random": gate_outcome(stream, None, np.random.default_rng(seed)),
        "auc_incident": round(ranking_metrics(inc.astype(int), stream["score"].to_numpy())["auc"], 4),
    }  # fmt: skip


def _apachejit() -> dict[str, Any] | None:
    """ApacheJIT temporal-split evaluation, or ``None`` without the shared data."""
    from aisre.gate.model import default_data_path, evaluate

    try:
        return evaluate(default_data_path())
    except UsageError:
        return None


def _prevention(runs: list[dict[str, Any]], apachejit: dict[str, Any] | None) -> dict[str, Any]:
    from aisre.bench.gate import GATE_SHARE, pool_outcomes

    n = runs[0]["changes"] if runs else 0
    pooled = {name: pool_outcomes([r[name] for r in runs], [r["incidents"] for r in runs], n) for name in ("gate", "jit_only", "random")}
    incidents = sum(r["incidents"] for r in runs)
    gated = sum(r["gate"]["gated"] for r in runs)
    return {
        "prevented_share": pooled["gate"]["prevented_share"],
        "false_block_rate": pooled["gate"]["false_block_rate"],
        "harmless_blocked_share": pooled["gate"]["harmless_blocked_share"],
        "jit_only_prevented_share": pooled["jit_only"]["prevented_share"],
        "random_prevented_share": pooled["random"]["prevented_share"],
        "gate_share": GATE_SHARE,
        "changes": n * len(runs), "incidents": incidents, "gated": gated,
        "apachejit_auc": apachejit["auc"] if apachejit else None,
        "apachejit_recall_at_10": apachejit["recall_at_10"] if apachejit else None,
        "apachejit_n": apachejit["n"] if apachejit else None,
        "data_source": runs[0]["source"] if runs else None,
        "seeds": runs,
        "how": (
            f"Per seed, {n} changes to Online Boutique's services in shadow mode (aisre.bench.gate.simulate_stream): "
            "each change's JIT features and defect label are an ApacheJIT commit from the later 30 % (the model is "
            "fitted on the earliest 70 %), a hidden per-service frailty, blast radius and fragile files decide whether "
            "a defect causes an incident; the gate scores every change from the JIT model, blast radius and the "
            f"history its store accumulates. Gating the riskiest {GATE_SHARE:.0%} by score: prevented_share = "
            "incidents among gated changes / all change-caused incidents; false_block_rate = gated changes that "
            "would have been harmless / gated changes; harmless_blocked_share = the same over all harmless changes. "
            "Pooled over seeds weighted by incidents (prevented) and gated changes (false blocks). Baselines: the JIT "
            "score alone and a random 10 % (expect 0.10). apachejit_auc: fit on the earliest 70 % of ApacheJIT "
            "commits by author_date, ROC AUC on the latest 30 % (null without the shared data)."
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- resolution (+ governance coverage)


def _incident(seed: int, kind: str, slot: int, cfg: SuiteConfig) -> dict[str, Any]:
    """One simulated incident: rank it (scored), then remediate it on the digital twin."""
    from aisre.bench.rca import run_benchmark
    from aisre.rank import get_ranker
    from aisre.remediate import plan, remediate
    from aisre.simulator import SimulatorTwin
    from aisre.simulator.twin import DECISION_LATENCY

    target = _targets(kind, seed, cfg.targets_per_kind)[slot]
    run_seed = int(np.random.default_rng([seed, FAULT_KINDS.index(kind), slot, 13]).integers(0, 2**31 - 1))
    spec = f"{kind}:{target}@{cfg.fault_start:g}+{cfg.fault_length:g}"
    case_id = f"sc-{seed}-{kind}-{slot}"
    with _private_home() as home:
        base = SimulatorTwin(TOPOLOGY, [spec], duration=cfg.duration, rate=cfg.rate, seed=run_seed)
        base.finish()
        case = base.case(case_id=case_id)
        t0 = min(f.start for f in base.faults)
        t_rec, breached = base.recovery(t0, hold=TTM_HOLD)
        ttm_without = (t_rec if t_rec is not None else base.duration) - t0
        assert case.truth is not None
        bench = run_benchmark([case], ["aisre"], progress=False)
        rec = bench.cases[0]
        detection = float(case.detected_at - case.truth.inject_time) if case.detected_at is not None else None

        cov = _Coverage()
        log = _audit(home, "audit")
        policy = _default_policy()
        actions: list[str] = []
        approvals = 0
        ttm_with = ttm_without
        if case.detected_at is not None:
            twin = SimulatorTwin.from_case(case)
            recorder = _Recorder(twin)
            seen = _until(case, float(case.detected_at))
            ranking = get_ranker("aisre").rank(seen)
            tried: set[tuple[str, str]] = set()
            for _ in range(ROUNDS):
                twin.run_until(twin.now + DECISION_LATENCY)
                if twin.now >= twin.duration:
                    break
                now = twin.start_time + twin.now
                p = plan(seen, ranking, policy=policy, now=now, audit=log)
                p.steps = [s for s in p.steps if (s.action.name, s.action.target) not in tried]
                cov.plan(p)
                mark = len(recorder.calls)
                outs = remediate(seen, p, executor=recorder, execute=True, policy=policy, now=now, audit=log)
                done = [o for o in outs if o.status in ("executed", "failed")]
                waiting = [o for o in outs if o.status == "waiting"]
                if not done and waiting and twin.now + APPROVAL_SECONDS < twin.duration:
                    # nothing could run on its own: the person paged approves the first waiting step
                    twin.run_until(twin.now + APPROVAL_SECONDS)
                    now = twin.start_time + twin.now
                    outs = remediate(seen, p, executor=recorder, execute=True, policy=policy, now=now, audit=log,
                                     approvals={waiting[0].step_id: "on-call"})  # fmt: skip
                    approvals += 1
                    done = [o for o in outs if o.status in ("executed", "failed")]
                cov.calls(case_id, recorder, log, mark)
                if not done:
                    break
                tried |= {(o.action, o.target) for o in done}
                actions += [f"{o.action}:{o.target}" for o in done]
                if done[0].ok:
                    break
            twin.finish()
            t_rec2, _ = twin.recovery(t0, hold=TTM_HOLD)
            ttm_with = (t_rec2 if t_rec2 is not None else twin.duration) - t0
        cov.verify(log)
        log.engine.dispose()
    return {
        "seed": seed, "kind": kind, "slot": slot, "fault": spec, "run_seed": run_seed, "truth": case.truth.service,
        "predicted": rec["predicted"], "rank": rec["rank"], "abstained": rec["abstained"],
        "ac1": bool(rec["rank"] == 1), "ac3": bool(rec["rank"] is not None and rec["rank"] <= 3),
        "rank_seconds": rec["seconds"], "detection_seconds": detection,
        "ttd_seconds": None if detection is None or rec["seconds"] is None else detection + rec["seconds"],
        "breached": bool(breached), "ttm_without": float(ttm_without), "ttm_with": float(ttm_with),
        "actions": actions, "approvals": approvals, "coverage": cov.to_dict(),
    }  # fmt: skip


def _median(values: Sequence[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return round(float(np.median(v)), 3) if v else None


def _p95(values: Sequence[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return round(float(np.percentile(v, 95)), 3) if v else None


def _share(hits: Sequence[bool]) -> float:
    return round(sum(bool(h) for h in hits) / len(hits), 4) if hits else 0.0


def _resolution(rows: list[dict[str, Any]], cfg: SuiteConfig) -> dict[str, Any]:
    by_fault = {}
    for kind in FAULT_KINDS:
        sel = [r for r in rows if r["kind"] == kind]
        br = [r for r in sel if r["breached"]]
        by_fault[kind] = {
            "n": len(sel), "ac1": _share([r["ac1"] for r in sel]), "ac3": _share([r["ac3"] for r in sel]),
            "breached": len(br), "ttm_without_median": _median([r["ttm_without"] for r in br]),
            "ttm_with_median": _median([r["ttm_with"] for r in br]),
        }  # fmt: skip
    breached = [r for r in rows if r["breached"]]
    mitigated = [r for r in breached if r["ttm_with"] < r["ttm_without"] - 1e-9]
    return {
        "n": len(rows), "ac1": _share([r["ac1"] for r in rows]), "ac3": _share([r["ac3"] for r in rows]),
        "by_fault": by_fault,
        "ttd_median_seconds": _median([r["ttd_seconds"] for r in rows]),
        "ttd_p95_seconds": _p95([r["ttd_seconds"] for r in rows]),
        "detection_median_seconds": _median([r["detection_seconds"] for r in rows]),
        "rank_median_seconds": _median([r["rank_seconds"] for r in rows]),
        "breached": len(breached), "mitigated": len(mitigated),
        "mitigated_share": _share([r in mitigated for r in breached]),
        "ttm_without_median_seconds": _median([r["ttm_without"] for r in breached]),
        "ttm_with_median_seconds": _median([r["ttm_with"] for r in breached]),
        "approvals": sum(r["approvals"] for r in rows),
        "incidents": [{k: v for k, v in r.items() if k != "coverage"} for r in rows],
        "how": (
            f"Per seed, each of the 12 fault kinds is injected on {cfg.targets_per_kind} target(s) of {TOPOLOGY} drawn "
            "by a generator seeded with (seed, kind) from the eligible ones (a service other than the entry; a cache or "
            "database for pool; a service/endpoint for error), at second "
            f"{cfg.fault_start:g} for {cfg.fault_length:g} s of a {cfg.duration:g}-s run at {cfg.rate:g} requests/s "
            "with intensities at the simulator's defaults (aisre.simulator.SimulatorTwin run to the end, the same run "
            "aisre.simulator.simulate makes). AC@k: aisre.bench.rca.run_benchmark with the 'aisre' ranker on the whole "
            "run; a hit when the true service is among the first k distinct services (abstention = miss); per fault "
            "kind and overall. Time to diagnosis = detection delay (first alert minus fault start, simulated) + the "
            "ranker's wall-clock seconds. Time to mitigation, on the simulator's digital twin, counted only for runs "
            f"whose entry SLO (99 % good requests over 30 s) broke: from the fault's start until the SLO holds again for "
            f"{TTM_HOLD:g} s (the run's end when it never does). 'without': nothing acts. 'with': at detection the "
            "ranker ranks the data seen so far; 30 s later (aisre.simulator.twin.DECISION_LATENCY) the planner plans "
            "under the packaged default policy (env production) and aisre.remediate.remediate carries out the first "
            "allowed step on the twin (dry run first, audited); when no step may run on its own but one needs "
            f"approval, a person approves the first such step {APPROVAL_SECONDS:g} s later; after the twin's 120-s "
            f"observation a step that left the SLO broken is followed by the next plan (at most {ROUNDS} rounds). "
            "Medians over breached runs; mitigated_share = breached runs whose time with remediation is shorter."
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- memory


def _memory_seed(seed: int, quick: bool) -> dict[str, Any]:
    from aisre.bench.memory import run_memory_benchmark

    doc = run_memory_benchmark(quick=quick, seed=seed)
    return {"seed": seed, **{k: doc[k] for k in ("recurring", "novel", "retrieval_ms", "failures", "seconds")}}


def _memory(runs: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    def pooled(group: str) -> dict[str, Any]:
        n = sum(r[group]["n"] for r in runs)
        out: dict[str, Any] = {"n": n}
        for key in ("ac1_with", "ac1_without", "mttm_with", "mttm_without"):
            total = sum(r[group][key] * r[group]["n"] for r in runs)
            out[key] = round(total / n, 4 if key.startswith("ac1") else 1) if n else 0.0
        return out

    rec, nov = pooled("recurring"), pooled("novel")
    return {
        "recurring": rec, "novel": nov,
        "recurring_ac1_gain": round(rec["ac1_with"] - rec["ac1_without"], 4),
        "recurring_mttm_saved_seconds": round(rec["mttm_without"] - rec["mttm_with"], 1),
        "novel_ac1_loss": round(nov["ac1_without"] - nov["ac1_with"], 4),
        "no_loss_on_novel": bool(nov["ac1_with"] >= nov["ac1_without"]),
        "gain_on_recurring": bool(rec["ac1_with"] > rec["ac1_without"] or rec["mttm_with"] < rec["mttm_without"]),
        "seeds": runs,
        "how": (
            "aisre.bench.memory.run_memory_benchmark per seed (the first two seeds of the default suite)" + (" (quick: each of 8 recurring patterns 4 times and "
            "8 one-off faults)" if quick else " (each of 8 recurring patterns 22 times and 30 one-off faults)")
            + ": simulated incidents on Online Boutique and Sock Shop investigated in a seeded order; each is ranked "
            "without memory and re-ranked with the most similar remembered incidents; the engineer then confirms the "
            "true cause and the actions tried are remembered. Recurring = an earlier incident had the same system, "
            "service and fault kind; else novel. AC@1 = the first suspect's service is the true one. Time to "
            "mitigation (model): detection delay + ranker seconds + 300 s per plan step tried up to the first that "
            "mitigates (+3600 s when none does). Pooled over seeds weighted by incident counts; recurring_ac1_gain = "
            "AC@1 with minus without on recurring; novel_ac1_loss = without minus with on novel (no loss: <= 0)."
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- governance


def _violations(case: Case, twin: Any, home: Path, cov: _Coverage) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Inject proposals that break the default policy into the real runner; return one row each
    and the control (an allowed proposal, which must run)."""
    from aisre.remediate import get_action, remediate, resolve_target

    policy = _default_policy()
    topo = case.topology
    assert topo is not None
    critical = next(s for s in topo.services() if topo.node(s).get("tier") == "critical" and topo.node(s).get("kind") == "service"
                    and topo.callers(s))  # fmt: skip
    standard = [s for s in topo.services() if topo.node(s).get("tier") == "standard"]
    base = float(case.detected_at or case.window[0]) + 60.0

    def build(name: str, service: str, **params: Any) -> Action:
        return get_action(name).build(case, resolve_target(case, service), **params)

    logs: list[Any] = []

    def fresh(tag: str) -> Any:
        logs.append(_audit(home, f"violation-{tag}"))
        return logs[-1]

    def run(tag: str, action: Action, *, now: float, log: Any, env: str = "production") -> dict[str, Any]:
        from aisre.remediate import PlanStep, RemediationPlan

        recorder = _Recorder(twin)
        # a confident suspect, so that the broken rule is the only reason to stop the step
        step = PlanStep(id="s1", action=action, rationale=f"injected: {tag}", hypothesis=action.target, rank=1,
                        fault="cpu", confidence=0.9)
        p = RemediationPlan(case_id=case.id, steps=[step], dry_run=False, env=env, policy=policy.source)
        [out] = remediate(case, p, executor=recorder, execute=True, policy=policy, env=env, now=now, audit=log, max_actions=None)
        cov.proposed += 1
        cov.decided += out.decision is not None
        cov.calls(case.id, recorder, log, 0)
        changed = any(not c["dry_run"] for c in recorder.calls)
        return {"status": out.status, "decision": out.decision.decision if out.decision else None,
                "policies": list(out.decision.policies) if out.decision else [], "changed": changed}  # fmt: skip

    def history(log: Any, service: str, n: int, now: float) -> None:
        """Real, allowed changes on *service* in the hour before *now* until the log counts *n*
        (the rate limits count them; a failed change may be undone, which counts too)."""
        kinds = [("scale", {"replicas": 2}), ("rate_limit", {}), ("scale", {"replicas": 1})]
        for k in range(2 * n):
            if log.executed_count(service, since=now - 3600.0, until=now) >= n:
                return
            name, params = kinds[k % len(kinds)]
            run(f"history {k}", build(name, service, **params), now=now - 600.0 + 60.0 * k, log=log)
        if log.executed_count(service, since=now - 3600.0, until=now) < n:
            raise DataError(f"could not record {n} earlier changes on {service} for the rate-limit injection")

    rows = []
    cases: list[tuple[str, str, Callable[[], dict[str, Any]]]] = []
    svc = standard[0]
    cases.append(("rate-limit a critical service in production", "critical tier",
                  lambda: run("rl-critical", build("rate_limit", critical), now=base, log=fresh("rl"))))
    cases.append(("scale beyond the maximum factor (x10)", "max-scale-factor",
                  lambda: run("scale-x10", build("scale", svc, replicas=10), now=base, log=fresh("x10"))))
    cases.append(("scale to zero replicas", "max-scale-factor",
                  lambda: run("scale-0", build("scale", svc, replicas=0), now=base, log=fresh("zero"))))
    cases.append(("act in production during the year-end change freeze", "freeze",
                  lambda: run("freeze", build("scale", svc, replicas=2), now=_FREEZE_NOW, log=fresh("freeze"))))

    def fourth() -> dict[str, Any]:
        log = fresh("fourth")
        history(log, svc, 3, base)
        return run("fourth", build("scale", svc, replicas=2), now=base, log=log)

    def second_critical() -> dict[str, Any]:
        log = fresh("second")
        history(log, critical, 1, base)
        return run("second", build("scale", critical, replicas=2), now=base, log=log)

    cases.append(("a fourth action on one service within the hour", "rate-limit-per-service", fourth))
    cases.append(("a second action on a critical service within the hour", "rate-limit-critical", second_critical))
    cases.append(("an action outside the catalogue", "schema",
                  lambda: run("unknown", Action("delete_namespace", svc, {"service": svc}), now=base, log=fresh("unknown"))))
    cases.append(("a change whose dry run fails (drain a whole service: no failover)", "dry-run-first",
                  lambda: run("dryfail", Action("shift_traffic", svc, {"away_from": svc}, inverse="undo", reversible=True,
                                                blast_radius=1), now=base, log=fresh("dryfail"))))  # fmt: skip
    cases.append(("an irreversible restart without approval", "approval-irreversible",
                  lambda: run("restart", build("restart", svc), now=base, log=fresh("restart"))))
    cases.append(("a service that is not in the topology", "approval-unknown-topology",
                  lambda: run("ghost", build("scale", "ghost-service", replicas=2), now=base, log=fresh("ghost"))))
    for what, rule, fn in cases:
        r = fn()
        rows.append({"proposal": what, "rule": rule, **r, "blocked": r["status"] in ("denied", "waiting") and not r["changed"]})
    control = run("control", build("scale", standard[-1], replicas=2), now=base, log=fresh("control"))
    for log in logs:
        cov.verify(log)
        log.engine.dispose()
    return rows, control


_TAMPERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("edit a record's content", ("UPDATE audit_records SET body = replace(body, '\"kind\":', '\"kind\" :') WHERE seq = :mid",)),
    ("edit an indexed column only", ("UPDATE audit_records SET target = 'someone-else' WHERE seq = :mid",)),
    ("delete a record in the middle", ("DELETE FROM audit_records WHERE seq = :mid",)),
    ("delete the last record", ("DELETE FROM audit_records WHERE seq = :last",)),
    ("swap two records' order", ("UPDATE audit_records SET seq = -1 WHERE seq = :mid",
                                 "UPDATE audit_records SET seq = :mid WHERE seq = :next",
                                 "UPDATE audit_records SET seq = :next WHERE seq = -1")),
    ("rewrite the chain head", ("UPDATE audit_head SET hash = '" + "f" * 64 + "'",)),
)  # fmt: skip
"""Tampering done with SQL on a copy of a real audit log: (what, statement)."""


def _tampering(db: Path, work: Path) -> tuple[list[dict[str, Any]], bool]:
    """Tamper with copies of the audit log at *db*; return one row per tampering (detected by
    :meth:`AuditLog.verify`?) and whether the untouched copy verifies clean."""
    import hashlib

    from aisre.remediate import AuditLog

    def copy(name: str) -> Path:
        dst = work / f"{name}.db"
        with contextlib.closing(sqlite3.connect(db)) as src, contextlib.closing(sqlite3.connect(dst)) as out:
            src.backup(out)  # the backup API includes what is still in the WAL
        return dst

    def verify(path: Path) -> list[str]:
        log = AuditLog(f"sqlite:///{path}")
        try:
            return log.verify()
        finally:
            log.engine.dispose()

    clean = not verify(copy("clean"))
    with contextlib.closing(sqlite3.connect(db)) as con:
        seqs = [int(r[0]) for r in con.execute("SELECT seq FROM audit_records ORDER BY seq")]
        last_hash = con.execute("SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()[0]
    if len(seqs) < 4:
        raise DataError(f"the audit log has {len(seqs)} records; tampering needs at least 4", path=db)
    names = {"mid": seqs[len(seqs) // 2], "next": seqs[len(seqs) // 2 + 1], "last": seqs[-1]}
    rows = []
    for k, (what, statements) in enumerate(_TAMPERS):
        path = copy(f"tamper-{k}")
        with contextlib.closing(sqlite3.connect(path)) as con:
            for sql in statements:
                con.execute(sql, {key: v for key, v in names.items() if f":{key}" in sql})
            con.commit()
        problems = verify(path)
        rows.append({"tampering": what, "detected": bool(problems), "first_problem": problems[0] if problems else None})
    # a forged record appended with a correct hash chain, the head left alone
    path = copy("tamper-forged")
    body = json.dumps({"kind": "finish", "time": 0.0, "result": "ok", "actor": "intruder"}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{last_hash}\n{body}".encode()).hexdigest()
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("INSERT INTO audit_records (seq, time, kind, case_id, step_id, target, body, prev_hash, hash) "
                    "VALUES (?, 0.0, 'finish', NULL, NULL, NULL, ?, ?, ?)", (seqs[-1] + 1, body, last_hash, digest))  # fmt: skip
        con.commit()
    problems = verify(path)
    rows.append({"tampering": "append a forged record with a valid hash", "detected": bool(problems),
                 "first_problem": problems[0] if problems else None})  # fmt: skip
    return rows, clean


def _governance_seed(seed: int, cfg: SuiteConfig) -> dict[str, Any]:
    """One seeded incident planned and dry-run end to end, then the injections and the tampering."""
    from aisre.rank import get_ranker
    from aisre.remediate import DryRunExecutor, plan, remediate
    from aisre.simulator import SimulatorTwin

    rng = np.random.default_rng([seed, 17])
    kind = str(rng.choice(["cpu", "mem", "crash", "error", "deploy", "config", "socket"]))
    target = _targets(kind, seed, 1)[0]
    spec = f"{kind}:{target}@{cfg.fault_start:g}+{cfg.fault_length:g}"
    cov = _Coverage()
    with _private_home() as home:
        base = SimulatorTwin(TOPOLOGY, [spec], duration=cfg.duration / 2, rate=cfg.rate / 2, seed=seed)
        base.finish()
        case = base.case(case_id=f"gov-{seed}")
        seen = dataclasses.replace(case, truth=None)
        log = _audit(home, "audit")
        policy = _default_policy()
        ranking = get_ranker("aisre").rank(seen)
        now = float(case.detected_at or case.window[1])
        recorder = _Recorder(DryRunExecutor())
        for env in ("production", "staging"):
            p = plan(seen, ranking, policy=policy, env=env, now=now, audit=log)
            cov.plan(p)
            mark = len(recorder.calls)
            remediate(seen, p, executor=recorder, execute=False, policy=policy, env=env, now=now, audit=log)
            remediate(seen, p, executor=recorder, execute=True, policy=policy, env=env, now=now + 1.0, audit=log)
            cov.calls(seen.id, recorder, log, mark)
        # a longer run and a short observation: the injections act one after another on one twin
        twin = SimulatorTwin.from_case(case, at=case.window[0] + cfg.fault_start + 60.0, duration=4 * cfg.duration, observe=30.0)
        violations, control = _violations(seen, twin, home, cov)
        cov.verify(log)
        log.engine.dispose()
        work = home / "tamper"
        work.mkdir()
        tampering, clean = _tampering(home / "audit.db", work)
    return {"seed": seed, "fault": spec, "coverage": cov.to_dict(), "violations": violations, "control": control,
            "tampering": tampering, "clean_copy_verifies": clean}  # fmt: skip


def _governance(gov: list[dict[str, Any]], incident_cov: list[dict[str, int]]) -> dict[str, Any]:
    cov: dict[str, int] = {}
    for c in [g["coverage"] for g in gov] + incident_cov:
        for k, v in c.items():
            cov[k] = cov.get(k, 0) + int(v)
    viol = [v for g in gov for v in g["violations"]]
    tam = [t for g in gov for t in g["tampering"]]

    def frac(a: str, b: str) -> float:
        return round(cov.get(a, 0) / cov[b], 4) if cov.get(b) else 0.0

    return {
        "policy_coverage": frac("decided", "proposed"),
        "audit_coverage": frac("audited", "acted"),
        "changes_with_allow_decision": frac("changes_allowed", "changes"),
        "proposed": cov.get("proposed", 0), "acted": cov.get("acted", 0), "changes": cov.get("changes", 0),
        "audit_logs": cov.get("logs", 0), "audit_logs_intact": cov.get("logs_intact", 0),
        "violations_injected": len(viol), "violations_blocked": sum(v["blocked"] for v in viol),
        "violations_blocked_share": _share([v["blocked"] for v in viol]),
        "violations_denied": sum(v["status"] == "denied" for v in viol),
        "violations_waiting_for_approval": sum(v["status"] == "waiting" for v in viol),
        "allowed_control_executed": all(g["control"]["changed"] for g in gov) if gov else False,
        "tampering_injected": len(tam), "tampering_detected": sum(t["detected"] for t in tam),
        "tampering_detected_share": _share([t["detected"] for t in tam]),
        "clean_copies_verify": all(g["clean_copy_verifies"] for g in gov) if gov else False,
        "violations": viol, "tampering": tam,
        "how": (
            "Real planner (aisre.remediate.plan), the packaged default policy (default.cedar, whatever "
            "$AISRE_HOME says) and a hash-chained audit log (aisre.remediate.AuditLog on SQLite) in a temporary "
            "AISRE_HOME. Every executor call is recorded by a proxy as ground truth. policy_coverage = plan steps "
            "proposed (by the planner for every resolution incident and per seed one more incident planned in "
            "production and staging, plus the injected proposals) that carry an allow / deny / needs_approval "
            "decision / steps proposed. audit_coverage = executor calls (dry runs and real changes) with their audit "
            "records (a dry_run record; a start and a finish record for a change, same case, step, action and target) "
            "/ executor calls. changes_with_allow_decision = real changes preceded by an 'allow' decision record. "
            "audit_logs_intact = logs whose verify() is empty. Violations: per seed, proposals that break the "
            "default policy are injected as plan steps into aisre.remediate.remediate(execute=True) on the digital "
            "twin: rate-limit a critical service, scale x10, scale to 0, act during the year-end freeze, a fourth "
            "action on a service within the hour and a second on a critical one (after real earlier changes), an "
            "action outside the catalogue, a change whose dry run fails, an irreversible restart without approval, "
            "a service outside the topology; blocked = denied or left waiting for approval and never changed "
            "anything; a control proposal the policy allows must run. Tampering: copies of a real audit log "
            "(SQLite backup API) are edited with SQL (edit content, edit an indexed column, delete a middle record, "
            "delete the last, swap two, rewrite the head, append a forged record with a valid hash); detected = "
            "AuditLog.verify() reports a problem; the untouched copy must verify clean."
        ),
    }  # fmt: skip


# --------------------------------------------------------------------------- running


def _tasks(cfg: SuiteConfig) -> list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]]:
    """Every unit of work, longest first (the scheduler starts them in this order)."""
    out: list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]] = []
    for seed in cfg.memory_seeds:
        out.append(("memory", seed, _memory_seed, (seed, cfg.quick)))
    for seed in cfg.seeds:
        out.append(("prevention", seed, _prevention_seed, (seed, cfg.changes)))
    for seed in cfg.seeds:
        for kind in FAULT_KINDS:
            for slot in range(cfg.targets_per_kind):
                out.append(("resolution", (seed, kind, slot), _incident, (seed, kind, slot, cfg)))
    for seed in cfg.seeds:
        out.append(("governance", seed, _governance_seed, (seed, cfg)))
    out.append(("apachejit", None, _apachejit, ()))
    return out


def _execute(tasks: list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]], workers: int, scheduler: str | None,
             progress: bool) -> list[dict[str, Any]]:  # fmt: skip
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), disable=not progress, desc="scorecard", unit="task", leave=False)
    results = []
    try:
        if workers <= 1 and not scheduler:
            for part, key, fn, args in tasks:
                results.append(_guard(part, key, fn, *args))
                bar.update(1)
            return results
        import logging

        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        try:
            if scheduler:
                client = Client(scheduler)
            else:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)  # fmt: skip
                client = Client(cluster)
        except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot start or reach the dask scheduler {scheduler or ''}: {exc}") from exc
        try:
            futures = {client.submit(_guard, part, key, fn, *args, pure=False, priority=-i): (part, key)
                       for i, (part, key, fn, args) in enumerate(tasks)}  # fmt: skip
            for fut in as_completed(futures):
                try:
                    results.append(fut.result())
                except Exception as exc:  # noqa: BLE001 - a lost worker: that task is a recorded failure
                    part, key = futures[fut]
                    results.append({"part": part, "key": key, "value": None, "error": f"worker failed: {type(exc).__name__}: {exc}",
                                    "seconds": float("nan")})  # fmt: skip
                bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()
    return results


def run_scorecard(
    *,
    quick: bool = False,
    seeds: Sequence[int] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the scorecard suite and return its JSON-ready document.

    The document has ``schema``, ``config``, ``seconds``, ``failures`` and the four sections
    ``prevention``, ``resolution``, ``memory`` and ``governance``, each with its figures and a
    ``how`` string (module docstring; docs/scorecard.md). *quick* is the CI suite (< 2 min),
    else the default one (< 15 min); *seeds* replaces the suite's seeds. Seeds run in parallel
    on dask.distributed: a local cluster of *workers* processes (default 2; 1 runs in this
    process), or the cluster at *scheduler*. A failing unit of work is listed in ``failures``
    and the rest goes on.

    Raises:
        UsageError: for bad seeds or workers, or a scheduler that cannot be reached.
    """
    cfg = suite_config(quick, seeds)
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1))
    if isinstance(workers, bool) or int(workers) < 1:
        raise UsageError(f"workers must be at least 1, not {workers!r}")
    t0 = time.perf_counter()
    started = time.time()
    results = _execute(_tasks(cfg), int(workers), scheduler, progress)
    failures = [{"part": r["part"], "key": r["key"], "error": r["error"]} for r in results if r["error"] is not None]
    ok = [r for r in results if r["error"] is None]

    def values(part: str) -> list[Any]:
        return [r["value"] for r in sorted((r for r in ok if r["part"] == part), key=lambda r: json.dumps(r["key"]))]

    incidents = values("resolution")
    apachejit = next(iter(values("apachejit")), None)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "config": {
            **cfg.to_dict(), "topology": TOPOLOGY, "workers": int(workers), "scheduler": scheduler,
            "python": platform.python_version(), "aisre": _version(), "started": started,
        },
        "prevention": _prevention(values("prevention"), apachejit),
        "resolution": _resolution(incidents, cfg),
        "memory": _memory(values("memory"), cfg.quick),
        "governance": _governance(values("governance"), [r["coverage"] for r in incidents]),
        "failures": failures,
        "task_seconds": {
            part: round(sum(r["seconds"] for r in results if r["part"] == part and math.isfinite(r["seconds"])), 1)
            for part in ("prevention", "resolution", "memory", "governance", "apachejit")
        },
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return doc


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aisre")
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- files


def save_scorecard(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write *result* as JSON to *path* and return the path."""
    p = Path(path)
    p.write_text(json.dumps(result, indent=1, allow_nan=False, default=str) + "\n")
    return p


def load_scorecard(path: str | Path) -> dict[str, Any]:
    """Return the scorecard document at *path*.

    Raises:
        DataError: when the file is missing, not JSON, or not a scorecard (wrong ``schema``).
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise DataError("no such scorecard file", path=p) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"scorecard is not valid JSON: {exc}", path=p) from exc
    if not isinstance(doc, Mapping) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
        raise DataError(f"not a scorecard: schema {found!r}, expected {SCHEMA!r}", path=p, field="schema")
    return dict(doc)


# --------------------------------------------------------------------------- regression check

# (name, path, kind, count path): kind "share" (higher is better), "must" (must stay at 1.0 / true),
# "lower-share" (lower is better), "seconds" (lower is better, simulated or wall-clock time).
_FIGURES: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...] | None], ...] = (
    ("prevention.prevented_share", ("prevention", "prevented_share"), "share", ("prevention", "incidents")),
    ("prevention.false_block_rate", ("prevention", "false_block_rate"), "lower-share", ("prevention", "gated")),
    ("prevention.apachejit_auc", ("prevention", "apachejit_auc"), "share", None),
    ("resolution.ac1", ("resolution", "ac1"), "share", ("resolution", "n")),
    ("resolution.ac3", ("resolution", "ac3"), "share", ("resolution", "n")),
    *[(f"resolution.by_fault.{k}.{m}", ("resolution", "by_fault", k, m), "share", ("resolution", "by_fault", k, "n"))
      for k in FAULT_KINDS for m in ("ac1", "ac3")],
    ("resolution.mitigated_share", ("resolution", "mitigated_share"), "share", ("resolution", "breached")),
    ("resolution.ttm_with_median_seconds", ("resolution", "ttm_with_median_seconds"), "seconds", None),
    ("resolution.ttd_median_seconds", ("resolution", "ttd_median_seconds"), "seconds", None),
    ("memory.recurring.ac1_with", ("memory", "recurring", "ac1_with"), "share", ("memory", "recurring", "n")),
    ("memory.recurring_ac1_gain", ("memory", "recurring_ac1_gain"), "share", ("memory", "recurring", "n")),
    ("memory.novel.ac1_with", ("memory", "novel", "ac1_with"), "share", ("memory", "novel", "n")),
    ("memory.recurring.mttm_with", ("memory", "recurring", "mttm_with"), "seconds", None),
    ("governance.policy_coverage", ("governance", "policy_coverage"), "must", None),
    ("governance.audit_coverage", ("governance", "audit_coverage"), "must", None),
    ("governance.changes_with_allow_decision", ("governance", "changes_with_allow_decision"), "must", None),
    ("governance.violations_blocked_share", ("governance", "violations_blocked_share"), "must", None),
    ("governance.tampering_detected_share", ("governance", "tampering_detected_share"), "must", None),
    ("governance.clean_copies_verify", ("governance", "clean_copies_verify"), "must", None),
    ("governance.allowed_control_executed", ("governance", "allowed_control_executed"), "must", None),
)  # fmt: skip
"""The figures :func:`compare_scorecard` watches."""

SECONDS_SLACK = (0.25, 30.0)
"""A time figure regresses when it grows by more than 25 % and more than 30 s."""


def _get(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return cur


def compare_scorecard(result: Mapping[str, Any], baseline: Mapping[str, Any] | str | Path, tolerance: float = 0.05) -> list[str]:
    """Return one line per figure of *result* that dropped beyond noise against *baseline*.

    A share (AC@k, prevented share, memory AC@1 and gain, mitigated share) regresses when it is
    lower by more than *tolerance* (absolute) **and** by more than one case of its sample (1/n):
    one incident flipping in a small sample is noise. The false-block rate regresses when it rises
    by the same margin; a time (median time to mitigation or diagnosis, memory's modelled time)
    when it grows by more than 25 % and 30 s. Governance figures must stay at 1.0 (true)
    whatever the baseline. A figure the baseline has and the result lacks is a regression.

    Raises:
        DataError: for a baseline file that cannot be read.
        UsageError: when the two come from different suites (quick against default, other seeds).
    """
    base = load_scorecard(baseline) if isinstance(baseline, (str, Path)) else dict(baseline)
    tol = float(tolerance)
    if not math.isfinite(tol) or tol < 0:
        raise UsageError(f"tolerance must be a non-negative number, not {tolerance!r}")
    for key in ("quick", "seeds", "targets_per_kind"):
        a, b = _get(result, ("config", key)), _get(base, ("config", key))
        if a is not None and b is not None and a != b:
            raise UsageError(f"the baseline ran another suite ({key} {b!r}, this run {a!r}): compare like with like")
    out = []
    for name, path, kind, npath in _FIGURES:
        was, now = _get(base, path), _get(result, path)
        if kind == "must":
            if now is None or float(now) < 1.0:
                out.append(f"{name}: {now!r} (must be 1.0)")
            continue
        if was is None:
            continue
        if now is None:
            out.append(f"{name}: missing from this run (baseline {was:g})")
            continue
        was, now = float(was), float(now)
        n = _get(base, npath) if npath else None
        margin = max(tol, 1.0 / n if n else 0.0) + 1e-9
        drop = was - now if kind == "share" else now - was
        if kind in ("share", "lower-share") and drop > margin:
            out.append(f"{name}: {was:.3f} -> {now:.3f} ({now - was:+.3f}; noise allowed {margin:.3f})")
        elif kind == "seconds" and now - was > max(SECONDS_SLACK[0] * was, SECONDS_SLACK[1]):
            out.append(f"{name}: {was:.1f} s -> {now:.1f} s ({now - was:+.1f} s)")
    return out


# --------------------------------------------------------------------------- views


def scorecard_tables(result: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Return the scorecard as tables: ``headline`` (one row per figure), ``by_fault`` (AC@1,
    AC@3 and time to mitigation per fault kind), ``incidents``, ``memory``, ``violations``,
    ``tampering``."""
    p, r, m, g = (result.get(k, {}) for k in ("prevention", "resolution", "memory", "governance"))
    head = [
        ("prevention", "incidents prevented by gating the riskiest 10 %", p.get("prevented_share")),
        ("prevention", "false-block rate (harmless among gated)", p.get("false_block_rate")),
        ("prevention", "random 10 % prevents (baseline)", p.get("random_prevented_share")),
        ("prevention", "ApacheJIT AUC (temporal split)", p.get("apachejit_auc")),
        ("resolution", "AC@1 (all fault kinds)", r.get("ac1")),
        ("resolution", "AC@3 (all fault kinds)", r.get("ac3")),
        ("resolution", "median time to diagnosis, s", r.get("ttd_median_seconds")),
        ("resolution", "median time to mitigation without aisre, s", r.get("ttm_without_median_seconds")),
        ("resolution", "median time to mitigation with aisre, s", r.get("ttm_with_median_seconds")),
        ("resolution", "SLO-breaching incidents mitigated faster", r.get("mitigated_share")),
        ("memory", "AC@1 gain on recurring incidents", m.get("recurring_ac1_gain")),
        ("memory", "time to mitigation saved on recurring, s", m.get("recurring_mttm_saved_seconds")),
        ("memory", "AC@1 loss on novel incidents (<= 0: none)", m.get("novel_ac1_loss")),
        ("governance", "policy coverage", g.get("policy_coverage")),
        ("governance", "audit coverage", g.get("audit_coverage")),
        ("governance", "policy-violating proposals blocked", f"{g.get('violations_blocked')}/{g.get('violations_injected')}"),
        ("governance", "audit tampering detected", f"{g.get('tampering_detected')}/{g.get('tampering_injected')}"),
    ]
    by_fault = pd.DataFrame([{"fault": k, **v} for k, v in (r.get("by_fault") or {}).items()])
    mem = pd.DataFrame([{"group": k, **(m.get(k) or {})} for k in ("recurring", "novel")])
    return {
        "headline": pd.DataFrame(head, columns=["section", "figure", "value"]),
        "by_fault": by_fault,
        "incidents": pd.DataFrame(r.get("incidents") or []),
        "memory": mem,
        "violations": pd.DataFrame(g.get("violations") or []),
        "tampering": pd.DataFrame(g.get("tampering") or []),
    }


def scorecard_figures(result: Mapping[str, Any]) -> dict[str, Any]:
    """Return plotly figures: ``prevention`` (prevented share and false blocks: gate, JIT only,
    random), ``accuracy`` (AC@1 and AC@3 per fault kind), ``mitigation`` (median time to
    mitigation per fault kind, with and without), ``memory`` (AC@1 with and without memory) and
    ``governance`` (the four governance shares)."""
    import plotly.graph_objects as go

    p, r, m, g = (result.get(k, {}) for k in ("prevention", "resolution", "memory", "governance"))
    figs: dict[str, Any] = {}
    names = ["gate", "JIT only", "random 10 %"]
    prev = go.Figure([go.Bar(name="incidents prevented", x=names, y=[p.get("prevented_share"), p.get("jit_only_prevented_share"),
                                                                    p.get("random_prevented_share")])])  # fmt: skip
    prev.add_bar(name="false-block rate (gate)", x=names[:1], y=[p.get("false_block_rate")])
    prev.update_layout(title="Prevention: gating the riskiest 10 % of changes", yaxis_range=[0, 1], barmode="group")
    figs["prevention"] = prev
    bf = r.get("by_fault") or {}
    kinds = list(bf)
    acc = go.Figure([go.Bar(name="AC@1", x=kinds, y=[bf[k]["ac1"] for k in kinds]),
                     go.Bar(name="AC@3", x=kinds, y=[bf[k]["ac3"] for k in kinds])])  # fmt: skip
    acc.update_layout(title=f"Resolution: root-cause accuracy per fault kind (n = {r.get('n')})", yaxis_range=[0, 1], barmode="group")
    figs["accuracy"] = acc
    ttm = go.Figure([go.Bar(name="without aisre", x=kinds, y=[bf[k]["ttm_without_median"] for k in kinds]),
                     go.Bar(name="with aisre", x=kinds, y=[bf[k]["ttm_with_median"] for k in kinds])])  # fmt: skip
    ttm.update_layout(title="Resolution: median time to mitigation on the twin (SLO-breaching runs), s", barmode="group")
    figs["mitigation"] = ttm
    groups = ["recurring", "novel"]
    mem = go.Figure([go.Bar(name="without memory", x=groups, y=[(m.get(k) or {}).get("ac1_without") for k in groups]),
                     go.Bar(name="with memory", x=groups, y=[(m.get(k) or {}).get("ac1_with") for k in groups])])  # fmt: skip
    mem.update_layout(title="Memory: AC@1 with and without incident memory", yaxis_range=[0, 1], barmode="group")
    figs["memory"] = mem
    labels = ["policy coverage", "audit coverage", "violations blocked", "tampering detected"]
    vals = [g.get("policy_coverage"), g.get("audit_coverage"), g.get("violations_blocked_share"), g.get("tampering_detected_share")]
    gov = go.Figure([go.Bar(x=labels, y=vals, text=[f"{v:.0%}" if isinstance(v, (int, float)) else "" for v in vals])])
    gov.update_layout(title="Governance (each must be 100 %)", yaxis_range=[0, 1.05])
    figs["governance"] = gov
    return figs


def scorecard_text(result: Mapping[str, Any]) -> str:
    """Return the headline figures as fixed-width text for a terminal."""
    head = scorecard_tables(result)["headline"]
    lines = []
    for _, row in head.iterrows():
        v = row["value"]
        txt = "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append(f"{row['section']:<11} {row['figure']:<48} {txt:>10}")
    fails = result.get("failures") or []
    if fails:
        lines.append(f"{len(fails)} failure(s):")
        lines.extend(f"  {f['part']} {f['key']}: {f['error']}" for f in fails[:20])
    lines.append(f"({result.get('seconds', 0):.0f} s)")
    return "\n".join(lines)


def write_scorecard_html(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write a self-contained HTML report of *result* (tables, plotly figures with plotly.js
    embedded, so it renders offline, and every ``how``) to *path*; return the path."""
    import html as _html

    tables = scorecard_tables(result)
    figs = scorecard_figures(result)
    cfg = result.get("config", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>aisre scorecard</title>",
        ("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}"
         "p.how{background:#f6f8fa;padding:.8em;font-size:90%}</style></head><body>"),
        "<h1>aisre open AI SRE scorecard</h1>",
        (f"<p>{'quick' if cfg.get('quick') else 'default'} suite, seeds {cfg.get('seeds')}, topology {cfg.get('topology')}, "
         f"aisre {cfg.get('aisre')}, Python {cfg.get('python')}; {result.get('seconds')} s.</p>"),
        tables["headline"].to_html(index=False, na_rep="-"),
    ]
    first = True
    sections = (("prevention", ["prevention"], []), ("resolution", ["accuracy", "mitigation"], ["by_fault"]),
                ("memory", ["memory"], ["memory"]), ("governance", ["governance"], ["violations", "tampering"]))  # fmt: skip
    for name, fig_names, table_names in sections:
        parts.append(f"<h2>{name.capitalize()}</h2>")
        for f in fig_names:
            parts.append(figs[f].to_html(full_html=False, include_plotlyjs=first))
            first = False
        for t in table_names:
            parts.append(tables[t].to_html(index=False, na_rep="-"))
        parts.append(f"<p class='how'><b>How:</b> {_html.escape(str(result.get(name, {}).get('how', '')))}</p>")
    if result.get("failures"):
        parts.append("<h2>Failures</h2>" + pd.DataFrame(result["failures"]).to_html(index=False))
    parts.append("</body></html>")
    p = Path(path)
    p.write_text("\n".join(parts))
    return p
