"""Median time to mitigation on the simulator's digital twin, with and without automatic remediation.

    .venv/bin/python benchmarks/bench_twin.py [--quick] [--seeds N]

Each scenario is a fault on Online Boutique (20 requests/s) starting at second 300 and lasting
FAULT_SECONDS. Time to mitigation (TTM) is from the fault's start until the entry SLO (99 % of
requests succeed within their endpoint's latency objective, over a 30 s window) is back for good:
met from then on, for at least 30 s (:func:`aisre.simulator.time_to_mitigation` with ``lasting``).

- without: nothing acts; the incident lasts until the fault ends by itself.
- with (planner): at detection (the Case's ``detected_at``: the first alert), aisre ranks the
  Case so far (the "aisre" ranker), plans under the packaged default policy and carries out the
  first *allowed* step on the twin, DECISION_LATENCY seconds later; the twin changes the running
  model and measures the SLO. If the SLO is still broken OBSERVE seconds later, the next round
  plans again (up to ROUNDS).
  ``--env`` picks the environment the policy decides for (default ``production``, where the
  packaged policy asks a person to approve large-blast-radius and irreversible steps: those
  steps are not carried out automatically).
- with (fixed): the same, with the action a fixed fault -> action table picks for the true root
  cause (FIXED below): what the twin does when the ranking is right.

Only runs whose SLO broke without action count in the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from aisre.case import Action, Case, Outcome, Step
from aisre.simulator import SimulatorTwin, time_to_mitigation
from aisre.simulator.faults import parse_fault
from aisre.simulator.twin import DECISION_LATENCY, MITIGATION_FAULTS, scenario_fault

FAULT_START = 300
FAULT_SECONDS = 900
DURATION = 1500.0
RATE = 20.0
ROUNDS = 2

SCENARIOS = list(MITIGATION_FAULTS)

FIXED = {
    "deploy": "rollback",
    "config": "rollback",
    "error": "toggle_flag",
    "crash": "restart",
    "mem": "restart",
    "socket": "restart",
    "pool": "restart",
    "cpu": "scale",
    "disk": "scale",
    "delay": "scale",
    "loss": "scale",
    "neighbour": "shift_traffic",
}
"""Fault kind -> the action the fixed policy takes on the true target."""


def fixed_action(spec: str) -> Action:
    """Return the action :data:`FIXED` takes for fault *spec* on its true target (a flag switch
    names the fault's own flag: the fixed table knows the root cause)."""
    fault = parse_fault(spec)
    service = fault.target.split("/")[0]
    name = FIXED[fault.kind]
    params: dict[str, Any] = {"service": service}
    if name == "shift_traffic":
        params = {"away_from": service}
    elif name == "toggle_flag":
        params["flag"], params["enabled"] = fault.flag or "suspect-path", False
    elif name == "scale":
        params["replicas"] = 3
    return Action(name, service, params)


def planner_chooser(tag: str, env: str = "production", notes: list[str] | None = None):
    """A chooser for time_to_mitigation: rank the case so far, plan, take the first allowed step."""
    from aisre.rank import get_ranker
    from aisre.remediate import AuditLog, load_policy, plan

    policy = load_policy()
    log = AuditLog(f"sqlite:///{os.environ['AISRE_HOME']}/audit-{tag}.db")
    tried: set[tuple[str, str]] = set()

    def choose(case: Case, twin: SimulatorTwin, outcomes: list[Outcome]) -> Step | None:
        ranking = get_ranker("aisre").rank(case)
        p = plan(case, ranking, policy=policy, now=twin.start_time + twin.now, audit=log, env=env)
        if notes is not None:
            notes.extend(f"{s.action.name}:{s.action.target}={s.decision.decision if s.decision else '?'}" for s in p.steps[:3])
        for s in p.steps:
            key = (s.action.name, s.action.target)
            if s.decision is not None and s.decision.decision == "allow" and key not in tried:
                tried.add(key)
                return s
        return None

    return choose


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four scenarios, one seed")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--env", default="production", help="environment the policy decides for (default production)")
    args = ap.parse_args(argv)
    scenarios = SCENARIOS[:4] if args.quick else SCENARIOS
    try:
        import aisre.rank  # noqa: F401
        import aisre.remediate  # noqa: F401

        have_planner = True
    except ImportError as exc:
        print(f"planner unavailable ({exc}); fixed mapping only", file=sys.stderr)
        have_planner = False
    rows: list[tuple[str, int, Any, Any]] = []
    t0 = time.perf_counter()
    print(f"decision latency {DECISION_LATENCY:.0f} s; fault at {FAULT_START} s for {FAULT_SECONDS} s; {RATE:g} req/s")
    with tempfile.TemporaryDirectory() as home:
        os.environ["AISRE_HOME"] = home  # a throwaway audit log, never the real one
        os.environ.pop("AISRE_DB", None)
        for seed in range(1, args.seeds + 1):
            for spec in scenarios:
                fault = scenario_fault(spec, FAULT_START, FAULT_SECONDS)
                kw = dict(duration=DURATION, rate=RATE, seed=seed, lasting=True)
                try:
                    fx = time_to_mitigation("online-boutique", [fault], fixed_action(spec), **kw)
                    notes: list[str] = []
                    tag = f"{spec.replace('/', '.').replace(':', '-').replace('*', 'x').replace('#', '-')}-{seed}"
                    pl = (time_to_mitigation("online-boutique", [fault], planner_chooser(tag, args.env, notes), rounds=ROUNDS, **kw)
                          if have_planner else None)  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - a benchmark records and goes on
                    print(f"  {spec} seed {seed} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
                rows.append((spec, seed, fx, pl))
                pl_txt = f"planner {pl.ttm_with:5.0f} s [{','.join(pl.actions) or '-'}] (proposed {' '.join(notes) or '-'})" if pl else ""
                print(f"{spec:<40} seed {seed}  breached {'yes' if fx.breached else 'no '}  without {fx.ttm_without:5.0f} s  "
                      f"fixed {fx.ttm_with:5.0f} s [{','.join(fx.actions)}]  {pl_txt}", flush=True)  # fmt: skip
    breached = [r for r in rows if r[2].breached]
    if not breached:
        print("no scenario broke the SLO")
        return 3
    med = statistics.median
    print(f"\nruns {len(rows)}, SLO breached in {len(breached)} ({time.perf_counter() - t0:.0f} s wall)")
    print(f"median TTM without remediation        {med(r[2].ttm_without for r in breached):6.0f} s")
    print(f"median TTM with fixed fault->action   {med(r[2].ttm_with for r in breached):6.0f} s  "
          f"(mitigated {sum(r[2].ok and r[2].ttm_with < r[2].ttm_without for r in breached)}/{len(breached)})")
    if have_planner and all(r[3] is not None for r in breached):
        print(f"median TTM with planner + policy      {med(r[3].ttm_with for r in breached):6.0f} s  "
              f"(mitigated {sum(r[3].ok and r[3].ttm_with < r[3].ttm_without for r in breached)}/{len(breached)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
