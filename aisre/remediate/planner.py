"""The planner: ranked hypotheses in, an ordered remediation plan out, each step with its reason.

For each of the top hypotheses, the fault kind picks the remedies (:data:`PLAYBOOK`): first the
remedies that address that fault directly, in the playbook's order (a bad deploy is rolled back
before anything else), then the alternatives, preferring reversible actions with a small blast
radius. Remedies whose preconditions fail are left out, and the plan's notes say why.

The plan covers the top hypotheses in one order, by how likely each step is to end the incident:
the hypothesis' confidence, times :data:`ALTERNATIVE_WEIGHT` for an alternative remedy (ties
keep the rank, then the playbook's order). So when the ranker is torn between two suspects, the
direct remedy of the second (restart a crash-looping pod) comes before a long shot at the first
(scale a service whose fault has no direct remedy that applies); a confident first suspect keeps
all its remedies first. The runner carries the steps out in that order, measuring the SLO after
each (:func:`aisre.remediate.remediate`). Every step then gets the policy's decision for carrying
it out now (assuming its dry run passes).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any

from aisre.case import Case, Decision, Plan, Ranking, Step
from aisre.remediate.actions import Target, get_action, resolve_target
from aisre.remediate.audit import AuditLog
from aisre.remediate.policy import Policy, build_request, load_policy

__all__ = [
    "ALTERNATIVE_WEIGHT",
    "FALLBACK",
    "PLAYBOOK",
    "PlanStep",
    "RemediationPlan",
    "decide",
    "plan",
    "plan_to_json",
    "step_to_json",
]

PLAYBOOK: dict[str | None, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "deploy": (("rollback",), ("toggle_flag", "shift_traffic", "restart")),
    "config": (("rollback", "toggle_flag"), ("restart",)),
    "cpu": (("scale",), ("rate_limit", "restart", "rollback")),
    "mem": (("scale", "restart"), ("rate_limit", "rollback")),
    "pool": (("scale", "restart"), ("rate_limit", "rollback")),
    "socket": (("scale", "restart"), ("rate_limit", "rollback")),
    "disk": (("scale", "restart"), ("rollback",)),
    "crash": (("restart",), ("scale", "shift_traffic", "rollback")),
    "delay": (("shift_traffic",), ("scale", "restart", "rate_limit", "rollback")),
    "loss": (("shift_traffic",), ("restart", "scale", "rollback")),
    "error": (("toggle_flag", "rollback"), ("shift_traffic", "restart")),
    "neighbour": (("shift_traffic", "restart"), ("scale",)),
    None: (("rollback",), ("scale", "restart", "shift_traffic")),
}
"""Fault kind -> (direct remedies in order, alternatives); ``None`` when the fault is unknown."""

FALLBACK: dict[str | None, tuple[str, ...]] = {"error": ("restart",)}
"""Fault kind -> the direct remedy when none of the playbook's direct remedies applies: a code
error with no feature flag and no deploy on record to roll back gets a restart (it clears a bad
process state; whether it may run without a person is policy's call)."""

ALTERNATIVE_WEIGHT = 0.5
"""How much an alternative remedy counts against a direct one when steps for different hypotheses
are ordered: a direct remedy is the playbook's answer to the fault; an alternative only eases
some faults of the kind (scaling around a slow pod), so it is taken for half as likely to help."""

HORIZON = 3600.0
"""Seconds over which executed actions count towards the per-service rate limit."""


@dataclass
class PlanStep(Step):
    """A :class:`~aisre.case.Step` that also keeps the hypothesis' rank, fault and confidence,
    whether the ranking behind it abstained, and (for the runner's undo of a harmful change) the
    id of the step it ``reverts``."""

    rank: int = 0
    fault: str | None = None
    confidence: float = 0.0
    abstained: bool = False
    reverts: str | None = None


@dataclass
class RemediationPlan(Plan):
    """A :class:`~aisre.case.Plan` with the environment, the policy used and the planner's notes."""

    env: str = "production"
    policy: str = ""
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"plan for {self.case_id} in {self.env}" + (" (dry run)" if self.dry_run else "") + f", policy {self.policy}"
        lines = [head]
        if not self.steps:
            lines.append("  no step proposed")
        for s in self.steps:
            d = s.decision
            verdict = d.decision if d else "undecided"
            lines.append(f"  {s.id:<4} {s.action.name:<13} {s.action.target:<24} {verdict:<15} {', '.join(d.policies) if d else ''}")
            lines.append(f"       why: {s.rationale}")
            if d and d.reasons:
                lines.append(f"       policy: {'; '.join(d.reasons)}")
            lines.append(f"       undo: {s.action.inverse or 'cannot be undone'}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"allow": "#1a7f37", "deny": "#cf222e", "needs_approval": "#9a6700"}
        rows = []
        for s in self.steps:
            d = s.decision
            verdict = d.decision if d else "undecided"
            rows.append(
                "<tr>"
                f"<td>{html.escape(s.id)}</td><td>{html.escape(s.action.name)}</td><td>{html.escape(s.action.target)}</td>"
                f"<td style='color:{colour.get(verdict, '#57606a')}'><b>{html.escape(verdict)}</b></td>"
                f"<td>{html.escape(', '.join(d.policies) if d else '')}</td>"
                f"<td>{html.escape('; '.join(d.reasons) if d else '')}</td>"
                f"<td>{s.action.blast_radius}</td><td>{html.escape(s.action.inverse or 'irreversible')}</td>"
                f"<td>{html.escape(s.rationale)}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<p><b>plan for {html.escape(self.case_id)}</b> in {html.escape(self.env)}"
            f"{' (dry run)' if self.dry_run else ''}, policy {html.escape(self.policy)}</p>"
            "<table><thead><tr><th>step</th><th>action</th><th>target</th><th>decision</th><th>policies</th>"
            "<th>reasons</th><th>blast radius</th><th>undo</th><th>why</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else "")
        )


_INSTANCE_ACTIONS = ("restart", "shift_traffic")
"""Actions that act on one instance when the evidence points at one."""


def _suspect_instance(case: Case, h: Any, target: Target) -> Target | None:
    """Return the one instance of *target*'s service that *h*'s evidence names, when the service
    has other replicas serving (so acting on that instance alone leaves the service up), else
    ``None``."""
    if target.instance is not None or not target.known or target.replicas < 2:
        return None
    # Pods started during the incident (a scale-up's) are not suspects: they came after the fault.
    old = _instances_before(case, target.service)
    found = set()
    for e in getattr(h, "evidence", None) or []:
        entity = getattr(e, "entity", None)
        if not entity or entity == target.service:
            continue
        t = resolve_target(case, str(entity))
        if t.service == target.service and t.instance is not None and (old is None or t.instance in old):
            found.add(t.instance)
    if not found and old is not None and len(old) == 1:
        found = set(old)  # the service ran one pod before the incident: that pod is the suspect
    if len(found) != 1:
        return None
    return resolve_target(case, found.pop())


def _instances_before(case: Case, service: str) -> set[str] | None:
    """Return the instances of *service* that reported non-zero metrics before the incident's
    detection, or ``None`` when that cannot be told (no detection time, no instance metrics)."""
    topo, m = case.topology, case.metrics
    if topo is None or case.detected_at is None or m.empty:
        return None
    # a node marked initial=False was added during the incident (the twin marks the pods it starts)
    names = {n for n in topo.nodes("instance") if topo.node(n).get("service") == service and topo.node(n).get("initial", True) is not False}
    if not names:
        return None
    ent = m["entity"]
    # a pod that did not exist yet reports nothing, or zeros where a series is filled in
    rows = m.loc[ent.isin(list(names)) & (m["time"] < float(case.detected_at)) & (m["value"] != 0), "entity"]
    seen = {str(x) for x in rows.unique()}
    return seen or None


def _rationale(rank: int, h_entity: str, fault: str | None, conf: float, name: str, direct: bool, action: Any, case: Case) -> str:
    spec = get_action(name)
    role = f"the first remedy for {fault}" if direct and fault else ("a remedy for an unknown fault" if not fault else f"an alternative for {fault}")
    deps = len(action.params.get("affected", [])) - 1
    risk = "reversible" if action.reversible else "irreversible"
    return (
        f"{h_entity} is suspect #{rank} ({fault or 'fault unknown'}, confidence {conf:.2f}); "
        f"{spec.summary} is {role}: {spec.effect}; {risk}, blast radius {action.blast_radius}"
        f" ({deps} dependent{'s' if deps != 1 else ''}){_change_evidence(action, case)}"
    )


def _change_evidence(action: Any, case: Case) -> str:
    """Return the change behind a rollback or a flag switch, with its time against the incident's
    detection ("" when there is none to tell)."""
    p = action.params or {}
    when = p.get("flag_changed_at") if action.name == "toggle_flag" else p.get("change_time") if action.name == "rollback" else None
    if not isinstance(when, (int, float)) or isinstance(when, bool):
        return ""
    what = f"flag {p.get('flag')} was switched on" if action.name == "toggle_flag" or p.get("flag") else f"the {p.get('change_kind') or 'change'} {p.get('change') or ''}".rstrip() + " was made"
    if case.detected_at is None:
        return f"; {what} at {when:.0f}"
    lag = float(case.detected_at) - float(when)
    return f"; {what} {abs(lag):.0f} s {'before' if lag >= 0 else 'after'} the incident was detected"


def plan(
    case: Case,
    ranking: Ranking,
    *,
    policy: Policy | str | None = None,
    env: str = "production",
    now: float | None = None,
    top: int = 3,
    per_hypothesis: int = 3,
    min_confidence: float = 0.1,
    audit: AuditLog | None = None,
    actor: str = "aisre",
) -> RemediationPlan:
    """Return the remediation plan for *case* from *ranking*, each step decided by *policy*.

    *policy* is a :class:`Policy`, a policy file path, or ``None`` for the policy in force
    (:func:`~aisre.remediate.policy.load_policy`). Decisions are for carrying a step out at *now*
    (default: the current time) in *env*, assuming its dry run passes; the rate limits count the
    actions *audit* (default: the store's audit log) recorded in the hour before *now*, and an
    action already carried out for this case in that hour is not proposed again. At most
    *per_hypothesis* steps are proposed for each of the *top* hypotheses; a hypothesis whose
    confidence is below *min_confidence* gets none (acting on a guess is worse than waiting).

    Raises:
        PolicyError: when the policy cannot be loaded.
        StoreError: when the audit log cannot be read.
    """
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    when = time.time() if now is None else float(now)
    out = RemediationPlan(case_id=case.id, steps=[], dry_run=True, env=env, policy=pol.source)
    if not ranking.hypotheses:
        out.notes.append(f"the ranker {ranking.method} abstained ({ranking.reason or 'no hypothesis'}): nothing to remediate")
        return out
    if ranking.abstained:
        out.notes.append(f"the ranker {ranking.method} abstained ({ranking.reason or 'no reason given'}): its suspects are "
                         "proposed with confidence 0, so nothing runs without a person")  # fmt: skip
    log = audit if audit is not None else AuditLog()
    # An action already carried out for this case in the last hour did not end the incident
    # (whether or not the executor judged it a success, and whether or not it was undone since):
    # proposing it again would repeat a change that did not help.
    done = {
        (r.action, r.target)
        for r in log.records(case_id=case.id, kind="finish", since=when - HORIZON)
        if not r.dry_run and r.result in ("ok", "failed") and r.time <= when
    }
    seen: set[tuple[str, str]] = set(done)
    for name, target in sorted(done):
        out.notes.append(f"{name} on {target} was already carried out for this case in the last hour: not proposed again")
    rank = 0
    pool: list[tuple[float, int, int, bool, Any, Any]] = []  # (usefulness, rank, order, direct, action, hypothesis)
    for h in ranking.hypotheses:
        if rank >= top:
            break
        rank += 1
        if not h.confidence >= min_confidence:
            out.notes.append(f"{h.entity} (suspect #{rank}) has confidence {h.confidence:.2f} < {min_confidence:.2f}: no remedy proposed")
            continue
        target = resolve_target(case, h.entity)
        one = _suspect_instance(case, h, target)
        if one is not None:
            out.notes.append(f"the evidence against {h.entity} points at one instance, {one.instance}: restarts and traffic "
                             f"shifts act on it ({one.replicas} replicas serve)")  # fmt: skip
        fault = h.fault if h.fault in PLAYBOOK else None
        direct, alternatives = PLAYBOOK[fault]
        if fault in FALLBACK and not any(get_action(n).applies(case, target) is None for n in direct):
            direct = FALLBACK[fault]
            alternatives = tuple(n for n in alternatives if n not in direct)
            out.notes.append(f"none of {', '.join(PLAYBOOK[fault][0])} applies to {h.entity}: {', '.join(direct)} proposed first")
        candidates: list[tuple[bool, Any]] = []
        for names, is_direct in ((direct, True), (alternatives, False)):
            group = []
            for name in names:
                spec = get_action(name)
                where = one if one is not None and name in _INSTANCE_ACTIONS else target
                why_not = spec.applies(case, where)
                if why_not is not None:
                    if is_direct:
                        out.notes.append(f"{name} not proposed for {h.entity}: {why_not}")
                    continue
                group.append(spec.build(case, where))
            if not is_direct:
                group.sort(key=lambda a: (not a.reversible, a.blast_radius))
            candidates.extend((is_direct, a) for a in group)
        conf = float(h.confidence) if not ranking.abstained else 0.0
        for k, (is_direct, action) in enumerate(candidates):
            pool.append((conf * (1.0 if is_direct else ALTERNATIVE_WEIGHT), rank, k, is_direct, action, h))
    taken: dict[int, int] = {}
    for _use, r, _k, is_direct, action, h in sorted(pool, key=lambda c: (-c[0], c[1], c[2])):
        key = (action.name, action.target)
        if key in seen or taken.get(r, 0) >= per_hypothesis:
            continue
        seen.add(key)
        taken[r] = taken.get(r, 0) + 1
        out.steps.append(
            PlanStep(
                id=f"s{len(out.steps) + 1}",
                action=action,
                rationale=_rationale(r, h.entity, h.fault, h.confidence, action.name, is_direct, action, case),
                hypothesis=h.entity,
                rank=r,
                fault=h.fault,
                confidence=float(h.confidence),
                abstained=bool(ranking.abstained),
            )
        )
    for step in out.steps:
        step.decision = decide(case, step, pol, env=env, now=when, dry_run=False, dry_run_passed=True, audit=log, actor=actor)
    return out


def decide(
    case: Case,
    step: Step,
    policy: Policy,
    *,
    env: str,
    now: float,
    dry_run: bool,
    dry_run_passed: bool = False,
    approved: bool = False,
    audit: AuditLog,
    actor: str = "aisre",
) -> Decision:
    """Return policy's decision on *step* at *now*, counting recent actions from *audit*.

    Raises:
        StoreError: when the audit log cannot be read.
    """
    req = build_request(case, step, env=env, now=now, dry_run=dry_run, dry_run_passed=dry_run_passed, approved=approved, actor=actor)
    recent = audit.executed_count(req.service, since=now - HORIZON, until=now)
    return policy.decide(req.with_context(recent_actions=recent))


def step_to_json(step: Step) -> dict[str, Any]:
    """Return the JSON contract for one step (``id``, ``action``, ``target``, ``decision``,
    ``policies``, ``reasons``, ``inverse`` and the details)."""
    d = step.decision
    return {
        "id": step.id,
        "action": step.action.name,
        "target": step.action.target,
        "decision": d.decision if d else None,
        "policies": list(d.policies) if d else [],
        "reasons": list(d.reasons) if d else [],
        "inverse": step.action.inverse,
        "reversible": step.action.reversible,
        "blast_radius": step.action.blast_radius,
        "params": step.action.params,
        "expected_effect": step.action.expected_effect,
        "hypothesis": step.hypothesis,
        "rationale": step.rationale,
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """Return the JSON document ``aisre plan --json`` prints: ``{"case_id", "env", "policy",
    "notes", "steps": [...]}`` with :func:`step_to_json` for each step."""
    return {
        "case_id": plan.case_id,
        "env": getattr(plan, "env", None),
        "policy": getattr(plan, "policy", None),
        "dry_run": plan.dry_run,
        "notes": list(getattr(plan, "notes", [])),
        "steps": [step_to_json(s) for s in plan.steps],
    }

