"""Carrying a plan out: approvals, policy at execution time, dry run first, everything audited.

:func:`remediate` walks the plan's steps in order. For each step it asks policy whether a dry run
may happen, dry-runs it through the executor, asks policy again whether the real change may
happen *now* (so a freeze that began after planning still denies, and a rate limit counts the
actions taken meanwhile), and only then, when allowed, records a ``start``, calls the executor
and records a ``finish``. A denied step never reaches the executor; a step that needs approval
waits until :func:`approve` records who approved it. A run that died between ``start`` and
``finish`` leaves a pending record that the next run closes (:func:`reconcile`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aisre.case import Case, Decision, Outcome, Plan, Step
from aisre.errors import AisreError, UsageError
from aisre.remediate.actions import adds_capacity_only, inverse_action
from aisre.remediate.audit import AuditLog, AuditRecord
from aisre.remediate.executors import Executor
from aisre.remediate.planner import PlanStep, decide, step_to_json
from aisre.remediate.policy import Policy, load_policy

__all__ = [
    "APPROVAL_TTL",
    "HARM_BURN",
    "STATUSES",
    "UNDONE_WITHOUT_HELP",
    "StepOutcome",
    "approve",
    "harm",
    "reconcile",
    "remediate",
    "remediation_to_json",
]

APPROVAL_TTL = 4 * 3600.0
"""Seconds an approval stays valid; it is also used up by the step's next real execution."""

STATUSES = ("executed", "reverted", "failed", "dry-run", "denied", "waiting", "skipped")
"""What became of a step: carried out, carried out and undone (it made things worse, or it did not
help and its cost lasts), tried and failed (for an executor that measures SLIs: carried out, but
the SLO was still broken after it), only dry-run, denied by policy, waiting for approval, or
skipped (the run's action budget was spent, or the SLO was met again before it)."""

HARM_BURN = 1.0
"""The least rise of the SLO burn rate (in error budgets) that counts as an action doing harm."""


@dataclass
class StepOutcome(Outcome):
    """An :class:`~aisre.case.Outcome` plus the step's status and the decision it ran under."""

    status: str = ""
    action: str = ""
    target: str = ""
    decision: Decision | None = None
    revert: StepOutcome | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = super().to_dict()
        d["decision"] = self.decision.to_dict() if self.decision else None
        d["revert"] = self.revert.to_dict() if self.revert else None
        return d


def _env_of(plan: Plan, env: str | None) -> str:
    return env or getattr(plan, "env", None) or "production"


def _find(plan: Plan, step_id: str) -> Step:
    for s in plan.steps:
        if s.id == step_id:
            return s
    raise UsageError(f"plan for {plan.case_id} has no step {step_id!r}; its steps: {', '.join(s.id for s in plan.steps) or 'none'}")


def approve(
    plan: Plan,
    step_id: str,
    by: str,
    *,
    audit: AuditLog | None = None,
    now: float | None = None,
    note: str = "",
) -> AuditRecord:
    """Record that *by* approved step *step_id* of *plan*, and return the audit record.

    The approval names the step's action and target, so it does not carry over to a different
    step that happens to get the same id in a later plan. Policy still decides at execution
    time; approval only satisfies the rules written ``unless { context.approved }``.

    Raises:
        UsageError: for an unknown step or an empty approver name.
        StoreError: when the audit log cannot be written.
    """
    if not by or not str(by).strip():
        raise UsageError("an approval needs the approver's name (--by NAME)")
    step = _find(plan, step_id)
    log = audit if audit is not None else AuditLog()
    return log.log(
        "approval",
        time=now,
        actor=str(by),
        case_id=plan.case_id,
        step_id=step.id,
        action=step.action.name,
        target=step.action.target,
        params=step.action.params,
        hypothesis=step.hypothesis,
        approval={"by": str(by), "note": note},
        inverse=step.action.inverse,
        result="approved",
    )


def _approval_for(records: Sequence[AuditRecord], plan: Plan, step: Step, now: float) -> AuditRecord | None:
    """Return the approval in force for *step*: same case, step, action and target, recent, and
    not yet used by a real execution of that step."""
    found = None
    for r in records:
        if r.case_id != plan.case_id or r.step_id != step.id:
            continue
        if r.kind == "approval" and r.action == step.action.name and r.target == step.action.target:
            found = r if now - APPROVAL_TTL <= r.time <= now + 1e-6 else found
        elif r.kind == "start" and found is not None and (r.seq or 0) > (found.seq or 0):
            found = None
    return found


def reconcile(*, audit: AuditLog | None = None, now: float | None = None) -> list[AuditRecord]:
    """Close every ``start`` record no run finished (a crash between start and finish) with a
    ``reconcile`` record of result ``interrupted``; return the records written.

    Raises:
        StoreError: when the audit log cannot be read or written.
    """
    log = audit if audit is not None else AuditLog()
    out = []
    for rec in log.pending():
        out.append(
            log.log(
                "reconcile",
                time=now,
                actor="aisre",
                case_id=rec.case_id,
                step_id=rec.step_id,
                action=rec.action,
                target=rec.target,
                params=rec.params,
                hypothesis=rec.hypothesis,
                decision=rec.decision,
                policies=rec.policies,
                reasons=rec.reasons,
                dry_run=False,
                before=rec.before,
                result="interrupted",
                message=f"the run that started record {rec.seq} ended before recording its result; check {rec.target}'s state",
                inverse=rec.inverse,
                ref=rec.seq,
            )
        )
    return out


def _call(executor: Executor, step: Step, dry_run: bool) -> Outcome:
    try:
        out = executor.execute(step, dry_run=dry_run)
    except AisreError as exc:
        return Outcome(step.id, executed=False, ok=False, dry_run=dry_run, message=str(exc))
    except Exception as exc:  # a third-party executor's bug must not lose the audit trail
        return Outcome(step.id, executed=False, ok=False, dry_run=dry_run, message=f"{type(exc).__name__}: {exc}")
    if not isinstance(out, Outcome):
        return Outcome(step.id, executed=False, ok=False, dry_run=dry_run, message=f"executor returned {type(out).__name__}, not an Outcome")
    return out


def harm(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Return why the SLIs *after* an action are worse than *before* it, or ``None``.

    The SLO's ``burn`` (bad ratio over the error budget) is compared when both sides carry it: worse
    means the SLO is broken after and the burn rose by more than :data:`HARM_BURN` (or by a tenth,
    whichever is larger: a 30 s window of a few hundred requests is noisy). Without a burn, the
    ``error_ratio`` (by more than 0.01) and ``latency_p90`` (by more than a fifth) are compared.
    Executors that report no SLIs (the dry-run executor, Kubernetes) never look harmful.
    """
    def num(d: Mapping[str, Any], key: str) -> float | None:
        v = d.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            return None
        return float(v)

    b, a = num(before, "burn"), num(after, "burn")
    if b is not None and a is not None:
        if not after.get("met", a <= 1.0) and a > b + max(HARM_BURN, 0.1 * b):
            return f"the SLO burn rose from {b:g} to {a:g}"
        return None
    reasons = []
    b, a = num(before, "error_ratio"), num(after, "error_ratio")
    if b is not None and a is not None and a > b + 0.01:
        reasons.append(f"the error ratio rose from {b:g} to {a:g}")
    b, a = num(before, "latency_p90"), num(after, "latency_p90")
    if b is not None and a is not None and a > 1.2 * b and a - b > 1e-3:
        reasons.append(f"the p90 latency rose from {b:g} s to {a:g} s")
    return "; ".join(reasons) or None


UNDONE_WITHOUT_HELP = ("rate_limit", "shift_traffic", "toggle_flag")
"""Actions whose cost lasts as long as they stay (a rate limit rejects requests, a drained
instance is capacity taken away, a flag switched off is a feature taken away): undone not only
when they make things worse but also when they did not help. A rollback that did not help stays
(the previous revision is the known-good one; rolling forward mid-incident is a person's call), a
scale-up stays (capacity only), a restart cannot be undone."""


def _no_help(action: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """Return why *action* did not help (the SLO still broken and the burn down by less than a
    tenth), or ``None`` (also when the executor measures no SLO)."""
    b, a = before.get("burn"), after.get("burn")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        return None
    if after.get("met", a <= 1.0) or a < 0.9 * b:
        return None
    return f"it did not help: the SLO is still broken (burn {b:g} before, {a:g} after) and the {action} has a lasting cost"


def _met(outcome: Outcome) -> bool:
    """Return whether the executor measured the SLO met after *outcome* (``False`` when it
    measures none)."""
    return outcome.after.get("met") is True


def remediate(
    case: Case,
    plan: Plan,
    *,
    executor: Executor,
    execute: bool = False,
    actor: str = "aisre",
    approvals: Mapping[str, str] | None = None,
    policy: Policy | str | None = None,
    env: str | None = None,
    now: float | None = None,
    audit: AuditLog | None = None,
    max_actions: int | None = 1,
    revert_harmful: bool = True,
    stop_when_met: bool = True,
) -> list[StepOutcome]:
    """Carry out what policy allows of *plan* and return one :class:`StepOutcome` per step.

    Without *execute* every step is only dry-run (still decided and audited). With *execute*, an
    allowed step whose dry run passed is carried out; at most *max_actions* real changes are made
    in one run (default 1: change one thing, observe, then run again; ``None`` for no limit), the
    rest are ``skipped``. With *stop_when_met* (the default), once a change leaves the SLO met
    (an executor that measures it, such as the simulator twin, says so in the outcome's
    ``after["met"]``) the rest are ``skipped`` too: the plan's later steps were for hypotheses
    that no longer need acting on. *approvals* maps step ids to approver names and is recorded
    first (as :func:`approve` does). Pending records from a crashed run are reconciled first.
    *now* (default: the clock) is the time policy sees.

    With *revert_harmful* (the default), a change whose SLIs after are worse than before
    (:func:`harm`) is undone at once through its executable inverse
    (:func:`~aisre.remediate.actions.inverse_action`), a scale-up excepted (it only adds
    capacity, so worse SLIs after it are the incident growing, and taking the capacity away
    would deepen it); so is a change of :data:`UNDONE_WITHOUT_HELP` that did not help (the SLO
    still broken and the burn down by less than a tenth), so the next step is measured against
    the state before it and its cost does not last. The undo is a step of its own, id
    ``<step>-revert``, asked of policy as the action ``revert``, dry-run first and audited like
    any other; the step's status becomes ``reverted`` and its outcome's ``revert`` holds the
    undo's. A change to undo with no executable inverse (a restart) or whose undo policy refuses
    keeps its status, and its message says a person must undo it.

    Raises:
        PolicyError: when the policy cannot be loaded.
        UsageError: for an approval of a step the plan does not have.
        StoreError: when the audit log cannot be read or written.
    """
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    log = audit if audit is not None else AuditLog()
    env_name = _env_of(plan, env)

    def clock() -> float:
        return time.time() if now is None else float(now)

    reconcile(audit=log, now=clock())
    for step_id, by in (approvals or {}).items():
        approve(plan, step_id, by, audit=log, now=clock())
    history = log.records(case_id=plan.case_id, kind=("approval", "start"))
    outcomes: list[StepOutcome] = []
    changes = 0
    stop: str | None = None
    settled = False
    for step in plan.steps:
        approval = _approval_for(history, plan, step, clock())
        if stop is None and max_actions is not None and changes >= max_actions:
            stop = "this run's budget of changes is spent; observe, then run again"
        o = _carry_out(case, plan.case_id, step, pol, log, executor, env=env_name, actor=actor, clock=clock,
                       execute=execute, approval=approval, stop=stop, settled=settled)  # fmt: skip
        if o.executed:
            changes += 1
            why = harm(o.before, o.after) if revert_harmful and not adds_capacity_only(step.action) else None
            if why is not None:
                why = f"it made things worse ({why})"
            elif revert_harmful and step.action.name in UNDONE_WITHOUT_HELP:
                why = _no_help(step.action.name, o.before, o.after)
            if why is not None:
                o = _revert(case, plan.case_id, step, o, why, pol, log, executor, env=env_name, actor=actor, clock=clock)
            elif stop_when_met and _met(o):
                stop, settled = f"the SLO is met again after step {step.id}", True
        outcomes.append(o)
    return outcomes


def _revert(case: Case, case_id: str, step: Step, o: StepOutcome, why: str, pol: Policy, log: AuditLog,
            executor: Executor, *, env: str, actor: str, clock: Callable[[], float]) -> StepOutcome:
    """Undo *step*, whose outcome *o* calls for it (*why*: it made things worse, or did not help);
    return *o* updated."""
    inv = inverse_action(step.action)
    if inv is None:
        o.message = (f"{o.message}; {why}, and it has no executable inverse: a person must undo it "
                     f"({step.action.inverse or 'irreversible'})")  # fmt: skip
        return o
    undo = PlanStep(
        id=f"{step.id}-revert",
        action=inv,
        rationale=f"{step.action.name} on {step.action.target} (step {step.id}): {why}; undo it",
        hypothesis=step.hypothesis,
        rank=getattr(step, "rank", 0),
        fault=getattr(step, "fault", None),
        confidence=float(getattr(step, "confidence", 0.0) or 0.0),
        reverts=step.id,
    )
    r = _carry_out(case, case_id, undo, pol, log, executor, env=env, actor=actor, clock=clock, execute=True,
                   approval=None, stop=None, settled=False)  # fmt: skip
    o.revert = r
    if r.executed:
        o.status = "reverted"
        o.message = f"{o.message}; {why}, so it was undone: {r.message}"
    else:
        o.message = f"{o.message}; {why}, but the undo was {r.status}: {r.message}; a person must undo it"
    return o


def _carry_out(case: Case, case_id: str, step: Step, pol: Policy, log: AuditLog, executor: Executor, *, env: str,
               actor: str, clock: Callable[[], float], execute: bool, approval: AuditRecord | None,
               stop: str | None, settled: bool) -> StepOutcome:
    """Decide, dry-run, decide again and (when allowed, and no *stop* reason holds) carry out
    one step; audit every stage. A *settled* incident (the SLO met again) only records what
    policy says of the step and skips it, whatever the decision: nothing waits for a person."""
    a = step.action
    common = {
        "case_id": case_id, "step_id": step.id, "action": a.name, "target": a.target,
        "params": a.params, "hypothesis": step.hypothesis, "inverse": a.inverse,
    }  # fmt: skip
    approval_doc = {"by": approval.actor, "seq": approval.seq} if approval else None

    def result(status: str, d: Decision | None, message: str, out: Outcome | None = None) -> StepOutcome:
        step.decision = d
        changed = bool(out is not None and out.executed and status in ("executed", "failed"))
        return StepOutcome(
            step_id=step.id, executed=changed, ok=bool(out is not None and out.ok and status in ("executed", "dry-run")),
            dry_run=not changed,
            message=message, before=dict(out.before) if out else {}, after=dict(out.after) if out else {},
            status=status, action=a.name, target=a.target, decision=d,
        )  # fmt: skip

    # 1. may it be dry-run?
    d_dry = decide(case, step, pol, env=env, now=clock(), dry_run=True, approved=approval is not None, audit=log, actor=actor)
    if execute and settled and stop is not None:
        log.log("decision", time=clock(), actor=actor, dry_run=True, decision=d_dry.decision, policies=d_dry.policies,
                reasons=d_dry.reasons, approval=approval_doc, result="skipped", message=stop, **common)  # fmt: skip
        return result("skipped", d_dry, f"skipped: {stop}")
    if d_dry.decision != "allow":
        log.log("decision", time=clock(), actor=actor, dry_run=True, decision=d_dry.decision,
                policies=d_dry.policies, reasons=d_dry.reasons, approval=approval_doc,
                result="denied" if d_dry.decision == "deny" else "waiting", **common)  # fmt: skip
        status = "denied" if d_dry.decision == "deny" else "waiting"
        return result(status, d_dry, "; ".join(d_dry.reasons))
    # 2. the dry run
    dry = _call(executor, step, True)
    log.log("dry_run", time=clock(), actor=actor, dry_run=True, decision="allow", policies=d_dry.policies,
            reasons=d_dry.reasons, before=dry.before, after=dry.after, message=dry.message,
            result="ok" if dry.ok else "failed", **common)  # fmt: skip
    # 3. may the change happen now? (policy again, at this moment)
    d = decide(case, step, pol, env=env, now=clock(), dry_run=False, dry_run_passed=dry.ok,
               approved=approval is not None, audit=log, actor=actor)  # fmt: skip
    verdict = {"allow": "allowed", "deny": "denied", "needs_approval": "waiting"}[d.decision]
    if execute and d.decision == "allow" and stop is not None:
        verdict = "skipped"
    # dry_run=False: this decision is about the real change, whether or not this run makes it
    log.log("decision", time=clock(), actor=actor, dry_run=False, decision=d.decision, policies=d.policies,
            reasons=d.reasons, approval=approval_doc, result=verdict if execute else "dry-run", **common)  # fmt: skip
    if not execute:
        return result("dry-run", d, dry.message, dry)
    if d.decision == "deny":
        return result("denied", d, "; ".join(d.reasons), dry)
    if d.decision == "needs_approval":
        return result("waiting", d, f"waiting for approval: {'; '.join(d.reasons)}", dry)
    if stop is not None:
        return result("skipped", d, f"skipped: {stop}", dry)
    # 4. the change itself, bracketed by start and finish so a crash stays visible
    start = log.log("start", time=clock(), actor=actor, dry_run=False, decision=d.decision, policies=d.policies,
                    reasons=d.reasons, approval=approval_doc, result="pending", **common)  # fmt: skip
    out = _call(executor, step, False)
    # An executor that changed nothing and says so (the dry-run executor) is not a failure.
    status = "executed" if out.executed and out.ok else ("dry-run" if out.ok else "failed")
    log.log("finish", time=clock(), actor=actor, dry_run=not out.executed, decision=d.decision, policies=d.policies,
            reasons=d.reasons, approval=approval_doc, before=out.before, after=out.after, message=out.message,
            result={"executed": "ok", "dry-run": "nothing changed", "failed": "failed"}[status], ref=start.seq,
            **common)  # fmt: skip
    return result(status, d, out.message, out)


def remediation_to_json(plan: Plan, outcomes: Sequence[StepOutcome]) -> dict[str, Any]:
    """Return the JSON document ``aisre remediate --json`` prints: the plan contract plus, per
    step, ``executed``, ``status``, ``ok`` and ``message``; ``waiting`` lists steps that need
    approval (the command exits 1 when it is not empty)."""
    by_id = {o.step_id: o for o in outcomes}
    steps = []
    for s in plan.steps:
        doc = step_to_json(s)
        o = by_id.get(s.id)
        doc.update(
            executed=bool(o.executed) if o else False,
            status=o.status if o else "skipped",
            ok=bool(o.ok) if o else False,
            message=o.message if o else "",
            before=o.before if o else {},
            after=o.after if o else {},
            revert=o.revert.to_dict() if o and o.revert else None,
        )
        steps.append(doc)
    return {
        "case_id": plan.case_id,
        "env": getattr(plan, "env", None),
        "policy": getattr(plan, "policy", None),
        "steps": steps,
        "waiting": [o.step_id for o in outcomes if o.status == "waiting"],
    }
