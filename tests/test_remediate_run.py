"""Carrying plans out: dry run first, policy again at execution time, approvals, crash recovery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aisre.case import Case, Hypothesis, Outcome, Ranking, Step, Topology
from aisre.errors import UsageError
from aisre.remediate import (
    AuditLog,
    DryRunExecutor,
    approve,
    plan,
    remediate,
    remediation_to_json,
)

NOW = datetime(2026, 12, 23, 22, 0, tzinfo=UTC).timestamp()  # two hours before the year-end freeze
IN_FREEZE = datetime(2026, 12, 24, 0, 30, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_DB", raising=False)


class Recorder:
    """An executor that changes a pretend world and remembers every call."""

    name = "recorder"

    def __init__(self, fail: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail = fail

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        self.calls.append((step.id, dry_run))
        ok = step.id not in self.fail
        return Outcome(step.id, executed=not dry_run, ok=ok, dry_run=dry_run, message="done" if ok else "broke",
                       before={"replicas": 2}, after={} if dry_run else {"replicas": 4})  # fmt: skip


def shop() -> Case:
    t = Topology()
    t.add_node("frontend", tier="critical", replicas=3)
    t.add_node("cart", tier="standard", replicas=2)
    t.add_edge("frontend", "cart")
    return Case("shop-1", topology=t)


def cpu_plan(case: Case, now: float = NOW):
    """s1 scale cart (allow), s2 rate_limit cart (allow), s3 restart cart (needs approval)."""
    return plan(case, Ranking("fake", [Hypothesis("cart", "cpu", 1.0, 0.9)]), now=now)


def test_dry_run_mode_never_executes_but_audits_every_step():
    case = shop()
    p = cpu_plan(case)
    ex = Recorder()
    outs = remediate(case, p, executor=ex, now=NOW)
    assert [o.status for o in outs] == ["dry-run"] * 3
    assert all(not o.executed for o in outs)
    assert ex.calls == [("s1", True), ("s2", True), ("s3", True)]
    kinds = [r.kind for r in AuditLog().records()]
    assert kinds == ["dry_run", "decision"] * 3


def test_execute_runs_the_first_allowed_step_once_and_skips_the_rest():
    case = shop()
    p = cpu_plan(case)
    ex = Recorder()
    outs = remediate(case, p, executor=ex, execute=True, now=NOW)
    assert [(o.step_id, o.status, o.executed) for o in outs] == [
        ("s1", "executed", True), ("s2", "skipped", False), ("s3", "waiting", False),
    ]  # fmt: skip
    assert [c for c in ex.calls if not c[1]] == [("s1", False)]
    recs = AuditLog().records(case_id="shop-1")
    decision = next(r for r in recs if r.kind == "decision" and r.step_id == "s1")
    start = next(r for r in recs if r.kind == "start")
    finish = next(r for r in recs if r.kind == "finish")
    assert decision.decision == "allow" and decision.seq < start.seq < finish.seq and finish.ref == start.seq
    assert finish.before == {"replicas": 2} and finish.after == {"replicas": 4}
    assert finish.inverse == "scale cart back to 2 replicas" and finish.hypothesis == "cart"
    doc = json.loads(json.dumps(remediation_to_json(p, outs)))
    assert [s["executed"] for s in doc["steps"]] == [True, False, False] and doc["waiting"] == ["s3"]


def test_failed_dry_run_blocks_execution():
    case = shop()
    ex = Recorder(fail={"s1"})
    outs = remediate(case, cpu_plan(case), executor=ex, execute=True, now=NOW, max_actions=None)
    assert outs[0].status == "denied" and outs[0].decision.policies == ["dry-run-first"]
    assert ("s1", False) not in ex.calls


def test_waiting_step_runs_after_approval_and_records_who_approved():
    case = shop()
    p = cpu_plan(case)
    restart = Step(**{k: getattr(p.steps[2], k) for k in ("id", "action", "rationale", "hypothesis")})
    p.steps = [restart]  # only the irreversible restart
    ex = Recorder()
    assert remediate(case, p, executor=ex, execute=True, now=NOW)[0].status == "waiting"
    assert ("s3", False) not in ex.calls
    rec = approve(p, "s3", "alice", now=NOW + 1)
    assert rec.kind == "approval" and rec.approval["by"] == "alice"
    outs = remediate(case, p, executor=ex, execute=True, now=NOW + 2)
    assert outs[0].status == "executed"
    finish = AuditLog().records(kind="finish")[-1]
    assert finish.approval["by"] == "alice"
    # the approval is used up: the next run waits again
    assert remediate(case, p, executor=ex, execute=True, now=NOW + 3)[0].status == "waiting"


def test_approvals_argument_records_the_approval_first():
    case = shop()
    p = cpu_plan(case)
    p.steps = [p.steps[2]]
    outs = remediate(case, p, executor=Recorder(), execute=True, now=NOW, approvals={"s3": "bob"})
    assert outs[0].status == "executed"
    with pytest.raises(UsageError, match="no step 's9'"):
        approve(p, "s9", "bob")
    with pytest.raises(UsageError, match="approver"):
        approve(p, "s3", " ")


def test_a_freeze_that_began_after_planning_still_denies():
    """Planned (and approved) before the freeze, executed during it: denied, executor untouched."""
    case = shop()
    p = cpu_plan(case, now=NOW)
    assert p.steps[0].decision.decision == "allow"
    ex = Recorder()
    outs = remediate(case, p, executor=ex, execute=True, now=IN_FREEZE, approvals={"s3": "alice"})
    assert {o.status for o in outs} == {"denied"}
    assert all(o.decision.policies == ["freeze-year-end-2026"] for o in outs)
    assert not [c for c in ex.calls if not c[1]]


def test_a_crash_between_start_and_finish_is_reconciled_by_the_next_run():
    case = shop()
    p = cpu_plan(case)

    class Crash(Recorder):
        def execute(self, step, *, dry_run):
            if not dry_run:
                raise KeyboardInterrupt  # the process dies mid-action
            return super().execute(step, dry_run=dry_run)

    with pytest.raises(KeyboardInterrupt):
        remediate(case, p, executor=Crash(), execute=True, now=NOW)
    log = AuditLog()
    pending = log.pending()
    assert len(pending) == 1 and pending[0].result == "pending" and pending[0].step_id == "s1"
    remediate(case, p, executor=Recorder(), now=NOW + 10)
    assert log.pending() == []
    rec = log.records(kind="reconcile")[0]
    assert rec.ref == pending[0].seq and rec.result == "interrupted"
    assert log.verify() == []


def test_executor_errors_are_recorded_as_failures():
    case = shop()

    class Broken(Recorder):
        def execute(self, step, *, dry_run):
            if not dry_run:
                raise RuntimeError("api down")
            return super().execute(step, dry_run=dry_run)

    outs = remediate(case, cpu_plan(case), executor=Broken(), execute=True, now=NOW)
    assert outs[0].status == "failed" and "api down" in outs[0].message and not outs[0].executed
    assert AuditLog().records(kind="finish")[0].result == "failed"


def test_dry_run_executor_changes_nothing_even_with_execute():
    case = shop()
    ex = DryRunExecutor()
    outs = remediate(case, cpu_plan(case), executor=ex, execute=True, now=NOW)
    assert not any(o.executed for o in outs)
    assert outs[0].message == "dry-run executor: nothing changed (would scale cart from 2 to 4 replicas)"
    assert ex.calls[0] == ("s1", "scale", "cart", True)


def test_an_action_already_carried_out_is_not_proposed_again():
    case = shop()
    remediate(case, cpu_plan(case), executor=Recorder(), execute=True, now=NOW)
    again = cpu_plan(case, now=NOW + 300)
    assert ("scale", "cart") not in [(s.action.name, s.action.target) for s in again.steps]
    assert any("scale on cart was already carried out" in n for n in again.notes)


def test_an_action_that_ran_but_did_not_help_is_not_proposed_again():
    """A change the executor carried out without the effect it should have (ok False) still
    happened: the next plan does not repeat it."""

    class NoEffect(Recorder):
        def execute(self, step, *, dry_run):
            out = super().execute(step, dry_run=dry_run)
            out.ok = dry_run
            return out

    case = shop()
    outs = remediate(case, cpu_plan(case), executor=NoEffect(), execute=True, now=NOW)
    assert (outs[0].status, outs[0].executed) == ("failed", True)
    again = cpu_plan(case, now=NOW + 300)
    assert ("scale", "cart") not in [(s.action.name, s.action.target) for s in again.steps]
    assert again.steps[0].action.name == "rate_limit"


class Measured(Recorder):
    """An executor that measures the SLO: the steps in *fixes* leave it met, the rest leave it
    broken at the same burn (they did not help)."""

    def __init__(self, fixes: set[str] = frozenset()) -> None:
        super().__init__()
        self.fixes = fixes

    def execute(self, step, *, dry_run):
        out = super().execute(step, dry_run=dry_run)
        out.before = {"burn": 20.0, "met": False}
        if not dry_run:
            met = step.id in self.fixes
            out.after = {"burn": 0.5 if met else 19.5, "met": met}
            out.ok = met
        return out


def torn_plan(case: Case, now: float = NOW):
    """cart-1 is suspect #1 (delay: drain it, allowed), cart #2 (cpu: scale it, allowed)."""
    from aisre.case import Evidence

    hyps = [Hypothesis("cart", "delay", 1.0, 0.9, evidence=[Evidence("m", "cart-1")]), Hypothesis("cart", "cpu", 0.9, 0.8)]
    return plan(case, Ranking("fake", hyps), now=now)


def test_once_the_slo_is_met_the_rest_of_the_plan_is_skipped():
    """The drain ends the incident: later steps are recorded as skipped, never dry-run, and a step
    that would need a person does not wait."""
    case = shop()
    p = torn_plan(case)
    assert [s.action.name for s in p.steps][:2] == ["shift_traffic", "scale"]
    ex = Measured(fixes={"s1"})
    outs = remediate(case, p, executor=ex, execute=True, now=NOW, max_actions=None)
    assert [o.status for o in outs] == ["executed"] + ["skipped"] * (len(outs) - 1)
    assert all("the SLO is met again after step s1" in o.message for o in outs[1:])
    assert ex.calls == [("s1", True), ("s1", False)]
    skipped = [r for r in AuditLog().records(case_id=case.id) if r.result == "skipped"]
    assert {r.step_id for r in skipped} == {o.step_id for o in outs[1:]}


def test_a_drain_that_did_not_help_is_undone_before_the_next_step_is_measured():
    case = shop()
    ex = Measured(fixes={"s2"})
    outs = remediate(case, torn_plan(case), executor=ex, execute=True, now=NOW, max_actions=None)
    assert outs[0].status == "reverted" and "did not help" in outs[0].message
    undo = outs[0].revert
    assert undo.executed and undo.decision.policies == ["permit-revert"]
    real = [sid for sid, dry in ex.calls if not dry]
    assert real == ["s1", "s1-revert", "s2"]  # the undo comes before the next step is measured
    assert outs[1].status == "executed"
    finish = next(r for r in AuditLog().records(case_id=case.id) if r.kind == "finish" and r.step_id == "s1-revert")
    assert finish.params["restore"] == "cart-1" and finish.params["reverts"] == "shift_traffic"


def test_a_scale_up_that_did_not_help_stays():
    """It only added capacity; taking it away mid-incident could deepen the incident."""
    case = shop()
    outs = remediate(case, cpu_plan(case), executor=Measured(), execute=True, now=NOW)
    assert outs[0].action == "scale" and outs[0].status == "failed" and outs[0].revert is None


def test_an_undo_does_not_count_towards_the_rate_limits():
    """Drain (undone), scale, rate limit: three actions on cart, the undo not among them."""
    case = shop()
    remediate(case, torn_plan(case), executor=Measured(), execute=True, now=NOW, max_actions=2)
    log = AuditLog()
    starts = [r.step_id for r in log.records(case_id=case.id, kind="start")]
    assert starts == ["s1", "s1-revert", "s2"]
    assert log.executed_count("cart", since=NOW - 60, until=NOW + 60) == 2
