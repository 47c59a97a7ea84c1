"""The main job end to end on a built-in simulator scenario: simulate, triage, rank, plan
(dry run) and write the postmortem."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aisre.case import Case, Plan, Ranking
from aisre.errors import UsageError

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """What the demo did: the case, its incidents, the ranking, the plan and the report."""

    case: Case
    incidents: list[Any]
    ranking: Ranking
    plan: Plan | None
    report: Any
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        top = self.ranking.hypotheses[0] if self.ranking.hypotheses else None
        return {
            "case": self.case.id,
            "truth": self.case.truth.to_dict() if self.case.truth else None,
            "alerts": len(self.case.alerts),
            "incidents": len(self.incidents),
            "root_cause": top.to_dict() if top else None,
            "plan": self.plan.to_dict() if self.plan else None,
            "report": self.report.to_dict(),
            "seconds": round(self.seconds, 2),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }

    def summary(self) -> str:
        """Return the people's summary, ending with the report's path."""
        top = self.ranking.hypotheses[0] if self.ranking.hypotheses else None
        truth = self.case.truth
        lines = [
            f"simulated {self.case.id}: {len(self.case.alerts)} alerts -> {len(self.incidents)} incident(s)",
            f"root cause: {top.entity} ({top.fault}), confidence {top.confidence:.2f}" if top else "root cause: abstained",
        ]
        if truth is not None:
            lines.append(f"ground truth: {truth.service} ({truth.fault})")
        if self.plan is not None:
            lines.append(f"plan (dry run): " + "; ".join(
                f"{s.action.name} {s.action.target} -> {s.decision.decision if s.decision else '?'}" for s in self.plan.steps))
        lines.append(f"postmortem: {self.report.html}")
        return "\n".join(lines)


def run_demo(scenario: str | None = None, *, out: str | Path | None = None, method: str = "aisre") -> DemoResult:
    """Run built-in *scenario* (default: the simulator's default) end to end and return what happened.

    Raises:
        UsageError: for an unknown scenario name.
    """
    from aisre.rank import get_ranker
    from aisre.remediate import plan as make_plan
    from aisre.report import write_postmortem
    from aisre.simulator import DEFAULT_SCENARIO, SCENARIOS, run_scenario
    from aisre.triage import triage

    scenario = scenario or DEFAULT_SCENARIO
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    case = run_scenario(scenario)
    timings["simulate"] = time.perf_counter() - t0
    t = time.perf_counter()
    incidents = triage(case.alerts, case.topology).incidents
    timings["triage"] = time.perf_counter() - t
    t = time.perf_counter()
    ranking = get_ranker(method).rank(case)
    timings["rank"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = make_plan(case, ranking)
    timings["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    report = write_postmortem(case, out=out, method=method)
    timings["postmortem"] = time.perf_counter() - t
    return DemoResult(case, incidents, ranking, plan, report, time.perf_counter() - t0, timings)
