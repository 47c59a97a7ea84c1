"""Property: over random plans and policies, nothing runs without an earlier allow and a record.

- every real execution has an earlier ``allow`` decision for that step and start/finish records;
- a step policy denies (or leaves waiting) never reaches the executor for real, and a step whose
  dry run policy refuses never reaches it at all;
- a policy whose evaluation errors denies everything;
- a change that made things worse is undone only through a step of its own (``<id>-revert``) that
  policy allowed first and the audit log brackets like any other.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st
from sqlalchemy import create_engine, event

from aisre.case import Action, Case, Outcome, Plan, Step, Topology
from aisre.remediate import EVALUATION_ERROR, AuditLog, Policy, remediate

SERVICES = ("frontend", "checkout", "cart", "ads")
ACTIONS = ("scale", "rollback", "restart", "toggle_flag", "shift_traffic", "rate_limit")
NOW = 1.8e9

PERMITS = {
    "all": '@id("p-all")\npermit (principal, action, resource);',
    "env": '@id("p-env")\npermit (principal, action, resource) when { context.env == "staging" };',
    "tier": '@id("p-tier")\npermit (principal, action, resource) when { resource.tier != "critical" };',
    "scale": '@id("p-scale")\npermit (principal, action == Aisre::Action::"scale", resource);',
}
FORBIDS = {
    "freeze": '@id("f-freeze")\nforbid (principal, action, resource) when { !context.dry_run && context.now >= datetime("%START%") };',
    "blast": '@id("f-blast")\nforbid (principal, action, resource) when { !context.dry_run && context.blast_radius > %N% } unless { context.approved };',
    "irrev": '@id("f-irrev")\nforbid (principal, action, resource) when { !context.dry_run && !context.reversible } unless { context.approved };',
    "rate": '@id("f-rate")\nforbid (principal, action, resource) when { !context.dry_run && context.recent_actions >= %N% };',
    "dry": '@id("f-dry")\nforbid (principal, action, resource) when { !context.dry_run && !context.dry_run_passed };',
    "nodry": '@id("f-nodry")\nforbid (principal, action == Aisre::Action::"restart", resource) when { context.dry_run };',
}
ERROR = '@id("boom")\n{effect} (principal, action, resource) when {{ context.blast_radius + 9223372036854775807 + 1 > 0 }};'


@st.composite
def policies(draw) -> tuple[str, bool]:
    parts = [PERMITS[k] for k in draw(st.sets(st.sampled_from(sorted(PERMITS)), min_size=0, max_size=3))]
    for k in draw(st.sets(st.sampled_from(sorted(FORBIDS)), max_size=4)):
        start = draw(st.sampled_from(["2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"]))
        parts.append(FORBIDS[k].replace("%START%", start).replace("%N%", str(draw(st.integers(0, 10)))))
    broken = draw(st.booleans()) and draw(st.booleans())  # about one in four
    if broken:
        parts.append(ERROR.format(effect=draw(st.sampled_from(["permit", "forbid"]))))
    return "\n".join(parts) or '@id("none")\nforbid (principal, action, resource);', broken


@st.composite
def cases_and_plans(draw) -> tuple[Case, Plan]:
    t = Topology()
    for s in SERVICES:
        t.add_node(s, tier=draw(st.sampled_from(["critical", "standard", "best-effort"])), replicas=draw(st.integers(1, 4)))
    for a, b in (("frontend", "checkout"), ("checkout", "cart"), ("frontend", "cart"), ("frontend", "ads")):
        if draw(st.booleans()):
            t.add_edge(a, b)
    steps = []
    for i in range(draw(st.integers(1, 6))):
        target = draw(st.sampled_from(SERVICES))
        name = draw(st.sampled_from(ACTIONS))
        params = {"service": target}
        if name == "scale":
            params.update(from_replicas=2, replicas=draw(st.integers(1, 10)))
        action = Action(name, target, params, inverse=None, reversible=draw(st.booleans()), blast_radius=draw(st.integers(0, 20)))
        steps.append(Step(f"s{i + 1}", action, hypothesis=target))
    return Case("prop", topology=t), Plan("prop", steps)


def _fast(dbapi_conn, _record) -> None:
    # durability is not under test here: skip the fsyncs
    dbapi_conn.execute("PRAGMA synchronous=OFF")
    dbapi_conn.execute("PRAGMA journal_mode=MEMORY")


class Recorder:
    """Changes a pretend world; the steps in *harmful* leave the SLO worse than before."""

    name = "recorder"

    def __init__(self, fails: set[str], harmful: set[str] = frozenset()) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fails = fails
        self.harmful = harmful

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        self.calls.append((step.id, dry_run))
        ok = step.id not in self.fails
        before = {"burn": 5.0, "met": False}
        after = {} if dry_run else ({"burn": 40.0, "met": False} if step.id in self.harmful else {"burn": 0.5, "met": True})
        return Outcome(step.id, executed=not dry_run, ok=ok, dry_run=dry_run, before=before, after=after)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cp=cases_and_plans(),
    pol=policies(),
    env=st.sampled_from(["production", "staging"]),
    execute=st.booleans(),
    approvals=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=3),
    fails=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=2),
    harmful=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=6),
    max_actions=st.sampled_from([None, 1, 2]),
)
def test_nothing_runs_without_an_earlier_allow_and_an_audit_record(cp, pol, env, execute, approvals, fails, harmful,
                                                                   max_actions):
    case, plan = cp
    text, broken = pol
    policy = Policy(text)
    with tempfile.TemporaryDirectory() as tmp:
        eng = create_engine(f"sqlite:///{Path(tmp) / 'audit.db'}")
        event.listen(eng, "connect", _fast)
        try:
            log = AuditLog(engine=eng)
            ex = Recorder(fails, harmful)
            known = {s.id for s in plan.steps}
            outs = remediate(case, plan, executor=ex, execute=execute, policy=policy, env=env, now=NOW, audit=log,
                             approvals={s: "alice" for s in approvals if s in known}, max_actions=max_actions)  # fmt: skip
            recs = log.records()
            assert log.verify() == []
        finally:
            eng.dispose()
    real = [sid for sid, dry in ex.calls if not dry]
    by_step = {o.step_id: o for o in outs}
    assert len(outs) == len(plan.steps)
    if not execute:
        assert real == []
    reverts = [sid for sid in real if sid.endswith("-revert")]
    label(f"reverted: {bool(reverts)}")
    if max_actions is not None:
        assert len(real) - len(reverts) <= max_actions
    for sid in real:
        start = next(r for r in recs if r.kind == "start" and r.step_id == sid)
        allow = [r for r in recs if r.kind == "decision" and r.step_id == sid and r.decision == "allow" and not r.dry_run]
        assert allow and allow[0].seq < start.seq, f"{sid} ran without an earlier allow"
        assert any(r.kind == "finish" and r.ref == start.seq for r in recs)
        o = by_step[sid.removesuffix("-revert")]
        d = o.revert.decision if sid in reverts else o.decision
        assert d.decision == "allow" and (o.revert.executed if sid in reverts else o.executed)
    for sid in reverts:
        orig = sid.removesuffix("-revert")
        # only a change that ran, reported harm and can be undone is reverted, after its finish
        assert orig in real and orig in harmful and by_step[orig].action != "restart"
        finished = next(r for r in recs if r.kind == "finish" and r.step_id == orig)
        assert finished.seq < next(r for r in recs if r.kind == "start" and r.step_id == sid).seq
        assert by_step[orig].status == "reverted"
    for o in outs:
        if o.status in ("denied", "waiting") or o.decision is None or o.decision.decision != "allow":
            assert o.step_id not in real, f"{o.step_id} ({o.status}) reached the executor"
        refused_dry = [r for r in recs if r.kind == "decision" and r.step_id == o.step_id and r.dry_run and r.decision != "allow"]
        if refused_dry:
            assert all(sid != o.step_id for sid, _ in ex.calls)
    if broken:
        assert ex.calls == []
        assert all(o.status == "denied" and o.decision.policies == [EVALUATION_ERROR] for o in outs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cp=cases_and_plans(),
    harmful=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=6),
    forbid_revert=st.booleans(),
)
def test_a_harmful_change_is_undone_only_through_an_allowed_revert(cp, harmful, forbid_revert):
    """Every executed change that made things worse and has an executable inverse is followed by
    an undo policy allowed first, or, when policy forbids ``revert``, by no undo at all; a change
    that did no harm, a scale-up and a change without an inverse are never undone."""
    from aisre.remediate import adds_capacity_only, inverse_action

    case, plan = cp
    text = PERMITS["all"] + ("\n" + '@id("f-revert")\nforbid (principal, action == Aisre::Action::"revert", resource);'
                             if forbid_revert else "")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        eng = create_engine(f"sqlite:///{Path(tmp) / 'audit.db'}")
        event.listen(eng, "connect", _fast)
        try:
            log = AuditLog(engine=eng)
            ex = Recorder(set(), harmful)
            outs = remediate(case, plan, executor=ex, execute=True, policy=Policy(text), env="production", now=NOW,
                             audit=log, max_actions=None)  # fmt: skip
            recs = log.records()
            assert log.verify() == []
        finally:
            eng.dispose()
    real = [sid for sid, dry in ex.calls if not dry]
    for step, o in zip(plan.steps, outs, strict=True):
        undoable = (step.id in harmful and o.executed and inverse_action(step.action) is not None
                    and not adds_capacity_only(step.action))  # fmt: skip
        undone = f"{step.id}-revert" in real
        assert undone == (undoable and not forbid_revert), (step.action.name, o.status, o.message)
        assert (o.status == "reverted") == undone
        if undoable and forbid_revert:
            assert o.revert is not None and o.revert.status == "denied" and "a person must undo it" in o.message
        if undone:
            allow = next(r for r in recs if r.kind == "decision" and r.step_id == f"{step.id}-revert" and not r.dry_run)
            start = next(r for r in recs if r.kind == "start" and r.step_id == f"{step.id}-revert")
            assert allow.decision == "allow" and allow.seq < start.seq
