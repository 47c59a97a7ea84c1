"""Median time to mitigation on simulated incidents, with and without automatic remediation.

For each scenario (a fault on a service of Online Boutique) the simulator runs the incident with
the fault lasting FAULT_SECONDS. Time to mitigation (TTM) is measured on the SLO of the entry
services (no callers): from the fault's start until their p90 latency and error ratio stay within
their pre-fault band for HOLD seconds.

- without: nothing acts; the incident lasts until the fault ends by itself (or a person steps in
  after the fault's full length, which is the same number here).
- with: at detection (the case's ``detected_at``) aisre ranks (the registry's "aisre" ranker),
  plans under the packaged default policy, and ``remediate(..., execute=True)`` carries out one
  allowed step per round. The executor stands in for the simulator's twin: a step mitigates when
  it acts on the true root-cause service with an action whose catalogue entry ``fixes`` the true
  fault kind; the fault is then cut ACT_SECONDS after the round started and the incident is
  simulated again with the same seed to measure the SLO's recovery. A step that does not
  mitigate costs OBSERVE_SECONDS before the next round; after MAX_ROUNDS rounds the incident
  keeps its unmitigated TTM.

When ``aisre.simulator.twin`` lands, swap ``FaultCutExecutor`` for the twin so the action itself
changes the running model. Run: ``.venv/bin/python benchmarks/bench_remediation.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from aisre.case import Case, Outcome, Ranking, Step
from aisre.remediate import AuditLog, get_action, load_policy, plan, remediate

FAULT_START = 300.0
FAULT_SECONDS = 1200.0
DURATION = 1800.0
RATE = 10.0
HOLD = 30.0
ACT_SECONDS = 60.0
OBSERVE_SECONDS = 120.0
MAX_ROUNDS = 3

SCENARIOS = [
    ("cpu", "cartservice"),
    ("mem", "productcatalogservice"),
    ("delay", "currencyservice"),
    ("loss", "shippingservice"),
    ("error", "paymentservice"),
    ("crash", "recommendationservice"),
    ("socket", "cartservice"),
    ("cpu", "checkoutservice"),
]


@dataclass
class Row:
    scenario: str
    seed: int
    ttm_without: float
    ttm_with: float
    steps: str
    top1: bool


def slo_recovery(case: Case, start: float) -> float:
    """Return seconds from *start* until the entry services' SLO holds for HOLD seconds."""
    topo = case.topology
    entries = [n for n in topo.services() if not topo.callers(n)] if topo is not None else []
    wide = case.wide()
    cols = [c for c in wide.columns if c.split(":")[0] in entries and c.split(":")[1] in ("latency-90", "error")]
    frame = wide[cols].ffill().fillna(0.0)
    t = frame.index.to_numpy(dtype=float)
    before = frame[t < start]
    ok = np.ones(len(frame), dtype=bool)
    for c in cols:
        base = before[c].to_numpy()
        hi = np.quantile(base, 0.99) if len(base) else 0.0
        slack = 0.02 if c.endswith(":error") else 0.25 * max(hi, 1e-3)
        ok &= frame[c].to_numpy() <= hi + slack
    after = t >= start
    run = 0
    for ti, good in zip(t[after], ok[after], strict=True):
        run = run + 1 if good else 0
        if run >= HOLD:
            return float(ti - start - HOLD + 1)
    return float(t[-1] - start) if len(t) else float("nan")


class FaultCutExecutor:
    """Stand-in for the simulator twin: a step mitigates when it fixes the true fault."""

    name = "fault-cut"

    def __init__(self, truth_service: str, truth_fault: str) -> None:
        self.truth = (truth_service, truth_fault)
        self.mitigated_by: str | None = None

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        service = step.action.params.get("service", step.action.target)
        fixes = service == self.truth[0] and self.truth[1] in get_action(step.action.name).fixes
        if not dry_run and fixes:
            self.mitigated_by = f"{step.action.name}:{step.action.target}"
        return Outcome(step.id, executed=not dry_run, ok=True, dry_run=dry_run,
                       message="would act" if dry_run else ("mitigated" if fixes else "no effect"))  # fmt: skip


def rank(case: Case) -> Ranking:
    try:
        from aisre.rank import get_ranker

        return get_ranker("aisre").rank(case)
    except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
        print(f"  aisre ranker failed ({exc}); using the nsigma-free fallback: no ranking", file=sys.stderr)
        return Ranking("none", abstained=True, reason=str(exc))


def one(simulate, kind: str, target: str, seed: int) -> Row:
    spec = f"{kind}:{target}@{FAULT_START:.0f}+{FAULT_SECONDS:.0f}"
    case = simulate("online-boutique", [spec], duration=DURATION, rate=RATE, seed=seed)
    start = case.window[0] + FAULT_START
    ttm_without = slo_recovery(case, start)
    detected = case.detected_at if case.detected_at is not None else start
    ranking = rank(case)
    truth = case.truth
    top1 = bool(ranking.hypotheses) and ranking.hypotheses[0].entity.startswith(truth.service)
    # The simulator's own fault kind vocabulary is the model's; the ranker may not name a fault:
    # plan from its ranking as is.
    ex = FaultCutExecutor(truth.service, truth.fault or kind)
    # One audit log per incident: the runs share simulated timestamps, and one incident's actions
    # must not count towards another's rate limits.
    log = AuditLog(f"sqlite:///{os.environ['AISRE_HOME']}/audit-{kind}-{target}-{seed}.db")
    policy = load_policy()
    taken = []
    clock = detected
    for _ in range(MAX_ROUNDS):
        p = plan(case, ranking, policy=policy, now=clock, audit=log)
        outs = remediate(case, p, executor=ex, execute=True, policy=policy, now=clock, audit=log)
        done = [o for o in outs if o.status == "executed"]
        if not done:
            break
        taken.append(f"{done[0].action}:{done[0].target}")
        if ex.mitigated_by:
            break
        clock += OBSERVE_SECONDS
    if ex.mitigated_by:
        cut = clock + ACT_SECONDS - start
        again = simulate("online-boutique", [f"{kind}:{target}@{FAULT_START:.0f}+{max(cut, 1.0):.0f}"], duration=DURATION, rate=RATE, seed=seed)
        ttm_with = slo_recovery(again, start)
    else:
        ttm_with = ttm_without
    return Row(spec, seed, ttm_without, ttm_with, ",".join(taken) or "-", top1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four scenarios, one seed")
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        from aisre.simulator import simulate
    except ImportError as exc:
        print(f"aisre.simulator is not available yet ({exc}); this benchmark is pending", file=sys.stderr)
        return 3
    scenarios = SCENARIOS[:4] if args.quick else SCENARIOS
    with tempfile.TemporaryDirectory() as home:
        os.environ["AISRE_HOME"] = home  # a throwaway audit log, never the real one
        os.environ.pop("AISRE_DB", None)
        rows = []
        t0 = time.perf_counter()
        for seed in range(1, args.seeds + 1):
            for kind, target in scenarios:
                try:
                    rows.append(one(simulate, kind, target, seed))
                except Exception as exc:  # noqa: BLE001 - record and go on
                    print(f"  {kind}:{target} seed {seed} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
                r = rows[-1]
                print(f"{r.scenario:<45} seed {r.seed}  without {r.ttm_without:7.0f} s  with {r.ttm_with:7.0f} s"
                      f"  top1 {'yes' if r.top1 else 'no ':<3}  actions {r.steps}")  # fmt: skip
    # A fault that never broke the entry SLO is not an incident to mitigate.
    breached = [r for r in rows if r.ttm_without >= HOLD]
    if not breached:
        return 3
    med_without = statistics.median(r.ttm_without for r in breached)
    med_with = statistics.median(r.ttm_with for r in breached)
    mitigated = sum(r.ttm_with < r.ttm_without for r in breached)
    print(f"\nruns {len(rows)}  SLO breached {len(breached)}  mitigated automatically {mitigated}  "
          f"median TTM without {med_without:.0f} s  with {med_with:.0f} s  ({time.perf_counter() - t0:.0f} s wall)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
