"""Median time to mitigation on simulated incidents, with and without automatic remediation.

    .venv/bin/python benchmarks/bench_remediation.py [--quick] [--seeds N] [--env ENV]

Each scenario is one fault on Online Boutique (RATE requests/s), starting at FAULT_START and
lasting FAULT_SECONDS, run on the simulator's digital twin (:class:`aisre.simulator.SimulatorTwin`).
Time to mitigation (TTM) is from the fault's start until the entry SLO (99 % of requests succeed
within their endpoint's latency objective, over a 30 s window) holds again for 30 s.

- without: nothing acts; the incident lasts until the fault ends by itself.
- with: at detection (the Case's ``detected_at``, the first alert) aisre ranks the Case so far
  (``get_ranker("aisre")``) and plans under the packaged default policy in production; after
  DECISION_LATENCY seconds ``aisre.remediate.remediate(..., executor=twin, execute=True)`` carries
  out the first allowed step on the running model (dry run first, policy again, audited; a change
  that made the SLO worse is undone through its inverse). The twin observes for 120 s; if the SLO
  is still broken, the next round ranks and plans again (up to ROUNDS). Steps that need a person
  wait: they are not carried out.

Only runs whose SLO broke without remediation count in the medians. Per scenario the output says
what the ranker put first (against the truth), what was carried out, and what waited.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from aisre.simulator import SimulatorTwin
from aisre.simulator.twin import DECISION_LATENCY, HOLD, MITIGATION_FAULTS

FAULT_START = 300.0
FAULT_SECONDS = 900.0
DURATION = 1500.0
RATE = 20.0
ROUNDS = 3

SCENARIOS = list(MITIGATION_FAULTS)


@dataclass
class Row:
    spec: str
    seed: int
    breached: bool
    ttm_without: float
    recovered_without: bool
    ttm_with: float = 0.0
    recovered_with: bool = False
    top: str = "-"
    right: bool = False
    done: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    error: str = ""


def run(spec: str, seed: int, env: str) -> Row:
    """Return the row for one scenario: the incident without remediation, then with it."""
    from aisre.rank import get_ranker
    from aisre.remediate import AuditLog, load_policy, plan, remediate

    fault = f"{spec}@{FAULT_START:.0f}+{FAULT_SECONDS:.0f}"
    kw = {"duration": DURATION, "rate": RATE, "seed": seed}
    base = SimulatorTwin("online-boutique", [fault], **kw)
    t0 = min(f.start for f in base.faults)
    base.finish()
    detected_at = base.case().detected_at
    back, breached = base.recovery(t0, hold=HOLD)
    row = Row(spec, seed, breached, (back if back is not None else base.duration) - t0, back is not None)
    row.ttm_with, row.recovered_with = row.ttm_without, row.recovered_without
    if detected_at is None:
        row.error = "never detected"
        return row
    truth = spec.split(":", 1)[1].split("/")[0]
    policy = load_policy()
    # One audit log per incident: runs share simulated timestamps, and one incident's actions
    # must not count towards another's rate limits.
    log = AuditLog(f"sqlite:///{os.environ['AISRE_HOME']}/audit-{spec.replace('/', '.').replace(':', '-')}-{seed}.db")
    twin = SimulatorTwin("online-boutique", [fault], **kw)
    decide_at = detected_at - twin.start_time
    for k in range(ROUNDS):
        if decide_at + DECISION_LATENCY >= twin.duration:
            break
        twin.run_until(decide_at)
        case = twin.case()
        ranking = get_ranker("aisre").rank(case)
        if k == 0:
            h = ranking.hypotheses[0] if ranking.hypotheses else None
            row.top = "abstained" if h is None else f"{h.entity}/{h.fault or '?'}@{h.confidence:.2f}"
            row.right = h is not None and h.entity == truth
        now = twin.start_time + decide_at
        proposed = plan(case, ranking, policy=policy, env=env, now=now, audit=log)
        twin.run_until(decide_at + DECISION_LATENCY)
        outs = remediate(case, proposed, executor=twin, execute=True, policy=policy, env=env,
                         now=twin.start_time + twin.now, audit=log)  # fmt: skip
        row.waiting += [f"{o.action}:{o.target}" for o in outs if o.status == "waiting" and k == 0]
        changed = [o for o in outs if o.executed]
        row.done += [f"{o.action}:{o.target}={o.status}" for o in changed]
        if not changed or twin.sli()["met"]:
            break
        decide_at = twin.now
    twin.finish()
    back2, _ = twin.recovery(t0, hold=HOLD)
    row.ttm_with = (back2 if back2 is not None else twin.duration) - t0
    row.recovered_with = back2 is not None
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four scenarios, one seed")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--env", default="production", help="environment the policy decides for (default production)")
    args = ap.parse_args(argv)
    scenarios = SCENARIOS[:4] if args.quick else SCENARIOS
    seeds = 1 if args.quick else args.seeds
    rows: list[Row] = []
    t_start = time.perf_counter()
    print(f"Online Boutique, {RATE:g} req/s, fault at {FAULT_START:.0f} s for {FAULT_SECONDS:.0f} s, decision latency "
          f"{DECISION_LATENCY:.0f} s, default policy in {args.env}")  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        os.environ["AISRE_HOME"] = home  # a throwaway audit log, never the real one
        os.environ.pop("AISRE_DB", None)
        for seed in range(1, seeds + 1):
            for spec in scenarios:
                try:
                    r = run(spec, seed, args.env)
                except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
                    print(f"  {spec} seed {seed} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
                rows.append(r)
                print(f"{r.spec:<30} seed {r.seed}  breached {'yes' if r.breached else 'no '}  without {r.ttm_without:5.0f} s  "
                      f"with {r.ttm_with:5.0f} s{' (back)' if r.recovered_with else ' (not back)'}  "
                      f"top {r.top} {'right' if r.right else 'WRONG'}  did [{', '.join(r.done) or '-'}]  "
                      f"waiting [{', '.join(r.waiting) or '-'}]{'  ' + r.error if r.error else ''}", flush=True)  # fmt: skip
    breached = [r for r in rows if r.breached]
    if not breached:
        print("no scenario broke the SLO")
        return 3
    med = statistics.median
    mitigated = [r for r in breached if r.recovered_with and r.ttm_with < r.ttm_without - HOLD]
    print(f"\nruns {len(rows)}, SLO breached in {len(breached)} ({time.perf_counter() - t_start:.0f} s wall)")
    print(f"median TTM without remediation         {med(r.ttm_without for r in breached):6.0f} s")
    print(f"median TTM with automatic remediation  {med(r.ttm_with for r in breached):6.0f} s  "
          f"(recovered sooner: {len(mitigated)}/{len(breached)}: {', '.join(f'{r.spec}#{r.seed}' for r in mitigated) or '-'})")
    worse = [r for r in breached if r.ttm_with > r.ttm_without + HOLD]
    if worse:
        print(f"longer with remediation: {', '.join(f'{r.spec}#{r.seed}' for r in worse)}")
    wrong = [r for r in breached if not r.right]
    if wrong:
        print("ranked wrong (the ranker's to fix): " + "; ".join(f"{r.spec}#{r.seed} top {r.top}" for r in wrong))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
