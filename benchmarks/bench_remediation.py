"""Time to mitigation on simulated incidents, with and without automatic remediation.

    .venv/bin/python benchmarks/bench_remediation.py [--quick] [--seeds N] [--env ENV]

Each incident is one fault of ``simulator.twin.MITIGATION_FAULTS`` on Online Boutique (RATE
requests/s), starting at FAULT_START and lasting FAULT_SECONDS, run on the simulator's digital
twin (:class:`aisre.simulator.SimulatorTwin`). Time to mitigation (TTM) is from the fault's start
until the entry SLO (99 % of requests succeed within their endpoint's latency objective, over a
30 s window) is back for good: met from then on, for at least 30 s (an incident that flaps is not
over at its first quiet half minute).

Three runs per incident, same seed:

- without: nothing acts; the incident lasts until the fault ends by itself.
- automatic: at detection (the Case's ``detected_at``, the first alert) aisre ranks the Case so
  far (``get_ranker("aisre")``) and plans under the packaged default policy (production); after
  DECISION_LATENCY seconds ``aisre.remediate.remediate(..., executor=twin, execute=True)`` carries
  out the plan's first allowed step on the running model: dry run first, policy again at that
  moment, audited; the twin observes 120 s after the change; a change that made the SLO worse, or
  a rate limit, drain or flag switch that did not help, is undone. If the SLO is still broken, the
  next round ranks and plans again (actions already taken are not proposed again): at once after
  a change, else when the alert notifies again (ALERT_REPEAT); if the SLO breaks again after it
  was met, a round starts then; at most ROUNDS rounds. Steps that need a person wait: they are not
  carried out.
- with approval (only where a step waited): the same, and a person paged when a step waits
  approves the plan's waiting steps APPROVAL_DELAY seconds later; policy decides again then, and
  the approved steps run in order until the SLO is met.

Per incident the output says whether the SLO broke, the TTM of each run and whether it recovered
(``back``: the SLO came back for good before the run's end; ``sooner``: by more than 30 s before
it did without remediation), the automatic run's verdict (``recovered``, ``waits for approval``,
``denied``, ``no remedy``, ``not recovered``), what the ranker put first (against the truth), what
was carried out (and whether the SLO was met after it, still broken, or the change was undone),
what waited and what policy denied. Medians count the incidents whose SLO broke without
remediation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from aisre.simulator import SimulatorTwin
from aisre.simulator.faults import parse_fault
from aisre.simulator.twin import (
    DECISION_LATENCY,
    HOLD,
    MITIGATION_FAULTS,
    scenario_fault,
)

FAULT_START = 300.0
FAULT_SECONDS = 900.0
DURATION = 1500.0
RATE = 20.0
ROUNDS = 6
"""Most times aisre ranks and plans for one incident."""
APPROVAL_DELAY = 300.0
"""Seconds from a step starting to wait to a person's approval: paged, acknowledged, plan read."""
ALERT_REPEAT = 300.0
"""Seconds after which a still-firing alert notifies again (Alertmanager's group_interval), and
aisre plans again when its last plan changed nothing."""
WATCH = 10.0
"""Seconds between checks of the SLO while an incident is quiet (a new breach starts a round)."""

SCENARIOS = list(MITIGATION_FAULTS)


@dataclass
class Run:
    """One run of an incident with remediation: its TTM and what was done."""

    ttm: float
    back: bool
    done: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    proposed: int = 0


@dataclass
class Row:
    spec: str
    seed: int
    breached: bool
    ttm_without: float
    back_without: bool
    auto: Run | None = None
    approval: Run | None = None
    top: str = "-"
    right: bool = False
    error: str = ""

    def sooner(self, run: Run | None) -> bool:
        """Whether *run* brought the SLO back for good, more than HOLD s before it came back alone."""
        return run is not None and run.back and run.ttm < self.ttm_without - HOLD

    @property
    def verdict(self) -> str:
        a = self.auto
        if a is None:
            return "not run"
        if self.sooner(a):
            return "recovered"
        if a.waiting:
            return "waits for approval"
        if a.denied and not a.done:
            return "denied"
        if not a.proposed:
            return "no remedy"
        return "not recovered"


def _what(o: Any) -> str:
    """Return what a carried-out step did to the SLO, in a word or two."""
    return {"executed": "SLO met", "failed": "still broken", "reverted": "undone"}.get(o.status, o.status)


def _next_breach(twin: SimulatorTwin) -> float | None:
    """Advance *twin* until its SLO is broken again (over its window) and return that second, or
    ``None`` when it is not before the run's end."""
    while twin.now + WATCH < twin.duration:
        twin.run_until(twin.now + WATCH)
        if not twin.sli()["met"]:
            return twin.now
    return None


def _remediated(fault: str, kw: dict[str, Any], detected_at: float, t0: float, env: str, log: Any,
                approve: bool, first: list[Any]) -> Run:
    """Return the run with automatic remediation (and, with *approve*, a person approving what
    waits); *first* receives the first ranking."""
    from aisre.rank import get_ranker
    from aisre.remediate import load_policy, plan, remediate
    from aisre.remediate.planner import RemediationPlan

    policy = load_policy()
    twin = SimulatorTwin("online-boutique", [fault], **kw)
    run = Run(0.0, False)
    decide_at = detected_at - twin.start_time
    for _k in range(ROUNDS):
        if decide_at + DECISION_LATENCY >= twin.duration:
            break
        twin.run_until(decide_at)
        case = twin.case()
        ranking = get_ranker("aisre").rank(case)
        if not first:
            first.append(ranking)
        proposed = plan(case, ranking, policy=policy, env=env, now=twin.start_time + decide_at, audit=log)
        run.proposed += len(proposed.steps)
        twin.run_until(decide_at + DECISION_LATENCY)
        # one change per round: after it the plan is stale (a scale-up makes one pod the suspect)
        outs = remediate(case, proposed, executor=twin, execute=True, policy=policy, env=env, max_actions=1,
                         now=twin.start_time + twin.now, audit=log)  # fmt: skip
        run.done += [f"{o.action}:{o.target}={_what(o)}" for o in outs if o.executed]
        waiting = [o for o in outs if o.status == "waiting"]
        run.waiting += [f"{o.action}:{o.target}" for o in waiting]
        run.denied += [f"{o.action}:{o.target}" for o in outs if o.status == "denied"]
        changed = any(o.executed for o in outs)
        if approve and waiting and not twin.sli()["met"] and twin.now + APPROVAL_DELAY < twin.duration:
            # the person approves what waited, as planned; policy decides again at that moment
            twin.run_until(twin.now + APPROVAL_DELAY)
            ids = {o.step_id for o in waiting}
            sub = RemediationPlan(case_id=proposed.case_id, steps=[s for s in proposed.steps if s.id in ids], env=env,
                                  policy=proposed.policy)  # fmt: skip
            outs = remediate(case, sub, executor=twin, execute=True, policy=policy, env=env, max_actions=None,
                             approvals={i: "oncall" for i in sorted(ids)}, now=twin.start_time + twin.now, audit=log)  # fmt: skip
            run.approved += [f"{o.action}:{o.target}={_what(o)}" for o in outs if o.executed]
            changed = changed or any(o.executed for o in outs)
        if twin.sli()["met"]:
            # the incident is quiet: aisre acts again only if the SLO breaks again (the alert fires)
            again = _next_breach(twin)
            if again is None:
                break
            decide_at = again
        else:
            # still broken: plan again at once after a change, else when the alert notifies again
            decide_at = twin.now if changed else max(twin.now, decide_at + ALERT_REPEAT)
    twin.finish()
    back, _ = twin.recovery(t0, hold=HOLD, lasting=True)
    run.ttm = (back if back is not None else twin.duration) - t0
    run.back = back is not None
    return run


def run(spec: str, seed: int, env: str) -> Row:
    """Return the row for one incident: without remediation, automatic, and with approval."""
    from aisre.remediate import AuditLog

    fault = scenario_fault(spec, FAULT_START, FAULT_SECONDS)
    kw = {"duration": DURATION, "rate": RATE, "seed": seed}
    base = SimulatorTwin("online-boutique", [fault], **kw)
    t0 = min(f.start for f in base.faults)
    base.finish()
    detected_at = base.case().detected_at
    back, breached = base.recovery(t0, hold=HOLD, lasting=True)
    row = Row(spec, seed, breached, (back if back is not None else base.duration) - t0, back is not None)
    if detected_at is None:
        row.error = "never detected"
        return row
    truth = parse_fault(spec).target.split("/")[0]
    slug = f"{spec.replace('/', '.').replace(':', '-').replace('*', 'x').replace('#', '-')}-{seed}"
    first: list[Any] = []
    # One audit log per incident and mode: runs share simulated timestamps, and one run's actions
    # must not count towards another's rate limits.
    log = AuditLog(f"sqlite:///{os.environ['AISRE_HOME']}/audit-{slug}-auto.db")
    row.auto = _remediated(fault, kw, detected_at, t0, env, log, False, first)
    if first and first[0].hypotheses:
        h = first[0].hypotheses[0]
        row.top = f"{h.entity}/{h.fault or '?'}@{h.confidence:.2f}"
        row.right = h.entity == truth
    elif first:
        row.top = "abstained"
    if row.auto.waiting and not row.sooner(row.auto):
        log = AuditLog(f"sqlite:///{os.environ['AISRE_HOME']}/audit-{slug}-approval.db")
        row.approval = _remediated(fault, kw, detected_at, t0, env, log, True, [])
    return row


def _ttm(ttm: float, back: bool, sooner: bool | None = None) -> str:
    mark = "back" if back else "not back"
    if sooner is not None:
        mark += ", sooner" if sooner else ""
    return f"{ttm:5.0f} s ({mark})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four incidents, one seed")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--env", default="production", help="environment the policy decides for (default production)")
    args = ap.parse_args(argv)
    scenarios = SCENARIOS[:4] if args.quick else SCENARIOS
    seeds = 1 if args.quick else args.seeds
    rows: list[Row] = []
    t_start = time.perf_counter()
    print(f"Online Boutique, {RATE:g} req/s, fault at {FAULT_START:.0f} s for {FAULT_SECONDS:.0f} s, decision latency "
          f"{DECISION_LATENCY:.0f} s, approval {APPROVAL_DELAY:.0f} s after a step waits, default policy in {args.env}")  # fmt: skip
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
                a = r.auto
                line = (f"{r.spec:<40} seed {r.seed}  SLO broken {'yes' if r.breached else 'no '}  "
                        f"without {_ttm(r.ttm_without, r.back_without)}")  # fmt: skip
                if a is not None:
                    line += f"  automatic {_ttm(a.ttm, a.back, r.sooner(a))}  recovered {'yes' if r.sooner(a) else 'no '}  [{r.verdict}]"
                if r.approval is not None:
                    p = r.approval
                    line += f"  with approval {_ttm(p.ttm, p.back, r.sooner(p))}  recovered {'yes' if r.sooner(p) else 'no'}"
                print(line + (f"  {r.error}" if r.error else ""), flush=True)
                if a is not None:
                    print(f"    top {r.top} {'right' if r.right else 'WRONG'}; did [{', '.join(a.done) or '-'}]; "
                          f"waited [{', '.join(dict.fromkeys(a.waiting)) or '-'}]"
                          + (f"; denied [{', '.join(dict.fromkeys(a.denied))}]" if a.denied else "")
                          + (f"; approved and did [{', '.join(r.approval.approved) or '-'}]" if r.approval else ""),
                          flush=True)  # fmt: skip
    broken = [r for r in rows if r.breached and r.auto is not None]
    if not broken:
        print("no incident broke the SLO")
        return 3
    med = statistics.median
    auto_ok = [r for r in broken if r.sooner(r.auto)]
    waits = [r for r in broken if r.verdict == "waits for approval"]
    approved_ok = [r for r in waits if r.sooner(r.approval)]
    others = [r for r in broken if r.verdict not in ("recovered", "waits for approval")]

    def best(r: Row) -> float:
        return r.approval.ttm if r.approval is not None and r.sooner(r.approval) else r.auto.ttm

    print(f"\nruns {len(rows)}, SLO broken in {len(broken)} ({time.perf_counter() - t_start:.0f} s wall)")
    print(f"median TTM without remediation                   {med(r.ttm_without for r in broken):6.0f} s")
    print(f"median TTM with automatic remediation            {med(r.auto.ttm for r in broken):6.0f} s")
    print(f"median TTM automatic, a person approving waits   {med(best(r) for r in broken):6.0f} s")
    print(f"recovered automatically: {len(auto_ok)}/{len(broken)}"
          f" ({', '.join(f'{r.spec}#{r.seed}' for r in auto_ok) or '-'})")  # fmt: skip
    print(f"waits for approval: {len(waits)}/{len(broken)}, recovered once approved: {len(approved_ok)}/{len(waits)}"
          f" ({', '.join(f'{r.spec}#{r.seed}' for r in waits) or '-'})")  # fmt: skip
    if others:
        print("neither: " + "; ".join(f"{r.spec}#{r.seed} {r.verdict}" for r in others))
    worse = [r for r in broken if r.auto.ttm > r.ttm_without + HOLD]
    if worse:
        print(f"longer with remediation: {', '.join(f'{r.spec}#{r.seed}' for r in worse)}")
    wrong = [r for r in broken if not r.right]
    if wrong:
        print("ranked wrong first (the ranker's to fix): " + "; ".join(f"{r.spec}#{r.seed} top {r.top}" for r in wrong))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
