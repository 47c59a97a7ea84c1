"""Property: over random plans and policies, nothing runs without an earlier allow and a record.

- every real execution has an earlier ``allow`` decision for that step and start/finish records;
- a step policy denies (or leaves waiting) never reaches the executor for real, and a step whose
  dry run policy refuses never reaches it at all;
- a policy whose evaluation errors denies everything.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
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
    name = "recorder"

    def __init__(self, fails: set[str]) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fails = fails

    def execute(self, step: Step, *, dry_run: bool) -> Outcome:
        self.calls.append((step.id, dry_run))
        ok = step.id not in self.fails
        return Outcome(step.id, executed=not dry_run, ok=ok, dry_run=dry_run)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cp=cases_and_plans(),
    pol=policies(),
    env=st.sampled_from(["production", "staging"]),
    execute=st.booleans(),
    approvals=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=3),
    fails=st.sets(st.sampled_from([f"s{i}" for i in range(1, 7)]), max_size=2),
    max_actions=st.sampled_from([None, 1, 2]),
)
def test_nothing_runs_without_an_earlier_allow_and_an_audit_record(cp, pol, env, execute, approvals, fails, max_actions):
    case, plan = cp
    text, broken = pol
    policy = Policy(text)
    with tempfile.TemporaryDirectory() as tmp:
        eng = create_engine(f"sqlite:///{Path(tmp) / 'audit.db'}")
        event.listen(eng, "connect", _fast)
        try:
            log = AuditLog(engine=eng)
            ex = Recorder(fails)
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
    if max_actions is not None:
        assert len(real) <= max_actions
    for sid in real:
        start = next(r for r in recs if r.kind == "start" and r.step_id == sid)
        allow = [r for r in recs if r.kind == "decision" and r.step_id == sid and r.decision == "allow" and not r.dry_run]
        assert allow and allow[0].seq < start.seq, f"{sid} ran without an earlier allow"
        assert any(r.kind == "finish" and r.ref == start.seq for r in recs)
        assert by_step[sid].executed and by_step[sid].decision.decision == "allow"
    for o in outs:
        if o.status in ("denied", "waiting") or o.decision is None or o.decision.decision != "allow":
            assert o.step_id not in real, f"{o.step_id} ({o.status}) reached the executor"
        refused_dry = [r for r in recs if r.kind == "decision" and r.step_id == o.step_id and r.dry_run and r.decision != "allow"]
        if refused_dry:
            assert all(sid != o.step_id for sid, _ in ex.calls)
    if broken:
        assert ex.calls == []
        assert all(o.status == "denied" and o.decision.policies == [EVALUATION_ERROR] for o in outs)
