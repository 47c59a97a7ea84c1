"""Remediation on the simulator's digital twin, the path ``aisre remediate --executor simulator``
takes: the twin built from the Case (``SimulatorTwin.from_case``), the plan from the "aisre"
ranker under the packaged default policy in production, ``remediate(..., executor=twin)``.

The incident is a short CPU hog on the leaf of a three-service chain (written to a topology file,
so the Case names it and ``from_case`` finds it again): at 15 requests/s the hog leaves c a
quarter of its core, c saturates and the entry SLO breaks; three replicas carry the load.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from aisre.case import Case, Hypothesis, Ranking, save_case
from aisre.remediate import (
    AuditLog,
    PlanStep,
    get_action,
    harm,
    plan,
    remediate,
    resolve_target,
)
from aisre.remediate.planner import RemediationPlan

pytest.importorskip("simpy")

from aisre.simulator import SimulatorTwin, simulate

INJECT = 100.0
NODES = ["node-1", "node-2"]


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_DB", raising=False)
    return tmp_path / "home"


def _svc(name: str, calls=(), weight=0, work=0.002, **kw) -> dict:
    return {"name": name, **kw, "endpoints": [{"name": "op", "weight": weight, "work": work, "timeout": 1.0, "slo": 0.25,
                                               "calls": [{"service": x, "endpoint": "op", "timeout": 0.5} for x in calls]}]}  # fmt: skip


@pytest.fixture(scope="module")
def topology_file(tmp_path_factory) -> Path:
    """a (critical) -> b -> c, one replica each; c does 20 ms of work per call."""
    topo = {"name": "chain", "hosts": [{"name": "node-1", "cores": 8}, {"name": "node-2", "cores": 8}],
            "workload": {"burst_per_hour": 0, "daily_amplitude": 0},
            "services": [_svc("a", ("b",), 1, hosts=NODES, tier="critical"), _svc("b", ("c",), hosts=NODES),
                         _svc("c", work=0.02, hosts=NODES)]}  # fmt: skip
    path = tmp_path_factory.mktemp("topo") / "chain.yaml"
    path.write_text(yaml.safe_dump(topo))
    return path


@pytest.fixture(scope="module")
def incident(topology_file) -> Case:
    case = simulate(str(topology_file), [f"cpu:c@{INJECT:.0f}*0.75"], duration=400, rate=15, seed=1)
    assert case.detected_at is not None
    return case


def test_the_scale_step_runs_on_the_twin_is_audited_and_the_slo_recovers(incident):
    """The default policy lets the scale-up run alone; the twin carries it out on the running
    model; the audit log holds the allow decision and the outcome with the SLIs before (SLO
    broken) and after (met); the SLO, broken without remediation until the run's end, is back.
    The ranking is the right one, given (the CLI test below ranks for itself)."""
    case = incident
    baseline = SimulatorTwin.from_case(case)
    baseline.finish()
    assert baseline.recovery(INJECT) == (None, True), "without remediation the SLO stays broken"

    twin = SimulatorTwin.from_case(case)  # what the CLI builds for --executor simulator
    ranking = Ranking("given", [Hypothesis("c", "cpu", 1.0, 0.9)])
    now = case.detected_at
    proposed = plan(case, ranking, env="production", now=now)
    first = proposed.steps[0]
    assert (first.action.name, first.action.target, first.decision.decision) == ("scale", "c", "allow")
    outs = remediate(case, proposed, executor=twin, execute=True, approvals=None, policy=None, env="production", now=now)

    assert outs[0].status == "executed" and outs[0].executed and outs[0].ok
    assert [o.status for o in outs[1:]] and all(o.status != "executed" for o in outs[1:])
    assert twin.actions and twin.actions[0]["action"] == "scale" and twin.actions[0]["replicas"] == [1, 3]

    recs = AuditLog().records(case_id=case.id)
    allow = [r for r in recs if r.kind == "decision" and r.step_id == "s1" and not r.dry_run]
    finish = next(r for r in recs if r.kind == "finish" and r.step_id == "s1")
    assert allow and allow[0].decision == "allow" and allow[0].policies == ["permit-production-standard"]
    assert allow[0].seq < finish.seq and finish.result == "ok"
    assert finish.before["met"] is False and finish.before["burn"] > 10
    assert finish.after["met"] is True and finish.after["burn"] <= 1.0 and finish.after["replicas"] == [1, 3]
    assert AuditLog().verify() == []

    twin.finish()
    back, breached = twin.recovery(INJECT)
    assert breached and back is not None and back < now - twin.start_time + twin.observe


def test_a_rate_limit_that_makes_things_worse_is_undone_through_its_inverse(incident):
    """A rate limit that sheds most of b's traffic breaks the SLO further: the runner undoes it at
    once (policy action ``revert``), and the audit log records both changes."""
    case = incident
    twin = SimulatorTwin.from_case(case)
    now = case.detected_at
    action = get_action("rate_limit").build(case, resolve_target(case, "b"), rps=2)
    step = PlanStep("s1", action, rationale="test: a harmful limit", hypothesis="b", confidence=0.9)
    proposed = RemediationPlan(case_id=case.id, steps=[step], env="production")
    outs = remediate(case, proposed, executor=twin, execute=True, env="production", now=now)

    o = outs[0]
    assert o.status == "reverted", o.message
    assert harm(o.before, o.after) is not None
    assert o.revert is not None and o.revert.executed and o.revert.decision.policies == ["permit-revert"]
    assert [a["action"] for a in twin.actions] == ["rate_limit", "rate_limit"]
    assert twin.actions[1]["rps"] is None and not twin.engine.limited[twin.engine.svc_index["b"]]  # the limit is lifted
    recs = AuditLog().records(case_id=case.id)
    kinds = [(r.kind, r.step_id) for r in recs]
    assert ("finish", "s1") in kinds and ("finish", "s1-revert") in kinds
    assert kinds.index(("finish", "s1")) < kinds.index(("decision", "s1-revert"))
    undo = next(r for r in recs if r.kind == "finish" and r.step_id == "s1-revert")
    assert undo.params["reverts"] == "rate_limit" and undo.params["remove"] is True
    doc = json.loads(json.dumps(o.to_dict()))
    assert doc["revert"]["step_id"] == "s1-revert"


def test_the_cli_runs_the_same_path(incident, tmp_path):
    """``aisre --json remediate CASE --executor simulator --execute`` scales c on the twin."""
    from click.testing import CliRunner

    from aisre.cli import cli

    if datetime(2026, 12, 24, tzinfo=UTC).timestamp() <= datetime.now(UTC).timestamp() < datetime(2027, 1, 2, tzinfo=UTC).timestamp():
        pytest.skip("the packaged policy's year-end freeze is in force now: the CLI decides at the wall clock")
    folder = tmp_path / "case"
    save_case(incident, folder)
    res = CliRunner().invoke(cli, ["--json", "remediate", str(folder), "--executor", "simulator", "--execute"])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    s1 = doc["steps"][0]
    assert (s1["action"], s1["target"], s1["status"], s1["executed"]) == ("scale", "c", "executed", True)
    assert s1["before"]["met"] is False and s1["after"]["met"] is True
