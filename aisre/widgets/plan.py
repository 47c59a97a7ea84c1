"""The remediation plan: each step with the policy's decision and its dry-run result, and approve /
execute buttons wired to the audit log.

Nothing here decides: approving calls :func:`aisre.remediate.approve` (an ``approval`` record
naming who approved), executing calls :func:`aisre.remediate.remediate` with ``execute=True`` for
that one step, which evaluates policy again at that moment and refuses a step that is neither
allowed nor approved. Every call is in the audit log.
"""

from __future__ import annotations

import dataclasses
import ipywidgets as w

from aisre.case import Case, Plan, Ranking, Step
from aisre.errors import AisreError
from aisre.remediate import (
    AuditLog,
    AuditRecord,
    DryRunExecutor,
    Executor,
    Policy,
    StepOutcome,
    approve,
    load_policy,
    plan as make_plan,
    remediate,
)
from aisre.widgets._util import default_actor, esc

__all__ = ["DECISION_COLOURS", "PlanView"]

DECISION_COLOURS = {"allow": "#1a7f37", "deny": "#cf222e", "needs_approval": "#9a6700"}
"""How each policy decision is coloured."""

_STATUS_COLOURS = {"executed": "#1a7f37", "dry-run": "#0969da", "denied": "#cf222e", "waiting": "#9a6700",
                   "failed": "#cf222e", "skipped": "#57606a"}


class PlanView(w.VBox):
    """The plan for a case under a policy, with one row of controls per step.

    Attributes: ``plan``, ``policy``, ``audit`` (the AuditLog), ``executor`` (default the
    dry-run executor), ``actor`` (Text: who approves and executes), ``approve_buttons`` and
    ``execute_buttons`` (step id -> Button), ``decisions`` and ``results`` (step id -> HTML),
    ``outcomes`` (step id -> the last StepOutcome), ``approvals`` (step id -> AuditRecord) and
    ``message`` (HTML: what the last button did).

    Raises (on construction):
        PolicyError: when the policy cannot be loaded.
        StoreError: when the audit log cannot be read.
    """

    def __init__(
        self,
        case: Case,
        ranking: Ranking,
        *,
        actor: str | None = None,
        policy: Policy | str | None = None,
        env: str = "production",
        executor: Executor | None = None,
        audit: AuditLog | None = None,
        plan: Plan | None = None,
        dry_run: bool = True,
    ) -> None:
        self.case = case
        self.env = env
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.audit = audit if audit is not None else AuditLog()
        self.executor: Executor = executor if executor is not None else DryRunExecutor()
        self.actor = w.Text(value=actor or default_actor(), description="you are", layout=w.Layout(width="280px"))
        self.plan = plan if plan is not None else make_plan(case, ranking, policy=self.policy, env=env, audit=self.audit,
                                                            actor=self.actor.value)
        self.outcomes: dict[str, StepOutcome] = {}
        self.approvals: dict[str, AuditRecord] = {}
        self.decisions: dict[str, w.HTML] = {}
        self.results: dict[str, w.HTML] = {}
        self.approve_buttons: dict[str, w.Button] = {}
        self.execute_buttons: dict[str, w.Button] = {}
        self.message = w.HTML()
        self.dry_run_button = w.Button(description="dry run all", icon="flask", tooltip="dry-run every step (audited)")
        self.dry_run_button.on_click(lambda _b: self.dry_run())
        cells: list[w.Widget] = [w.HTML(f"<b>{h}</b>") for h in
                                 ("step", "action", "target", "decision", "dry-run result", "", "")]
        for step in self.plan.steps:
            cells.extend(self._row(step))
        grid = w.GridBox(cells, layout=w.Layout(grid_template_columns="50px 110px 170px 1.2fr 1.4fr 100px 100px",
                                                grid_gap="4px 8px", width="100%"))
        notes = "".join(f"<li>{esc(n)}</li>" for n in getattr(self.plan, "notes", []))
        head = w.HTML(f"<b>remediation plan</b> for {esc(self.plan.case_id)} in {esc(env)}, policy "
                      f"{esc(self.policy.source)}; executor {esc(getattr(self.executor, 'name', type(self.executor).__name__))}"
                      + ("" if self.plan.steps else "<p>no step proposed</p>"))
        super().__init__([head, w.HBox([self.actor, self.dry_run_button]), grid, self.message,
                          w.HTML(f"<ul>{notes}</ul>" if notes else "")])
        self.add_class("aisre-plan")
        if dry_run and self.plan.steps:
            self.dry_run()

    # ------------------------------------------------------------------ rows

    def _row(self, step: Step) -> list[w.Widget]:
        sid = step.id
        self.decisions[sid] = w.HTML(self._decision_html(step))
        self.results[sid] = w.HTML("<i>not dry-run yet</i>")
        approve_b = w.Button(description="approve", icon="check", tooltip=f"record your approval of {sid}",
                             layout=w.Layout(width="95px"))
        execute_b = w.Button(description="execute", icon="play", tooltip=f"carry out {sid} if policy allows it now",
                             button_style="danger", layout=w.Layout(width="95px"))
        approve_b.on_click(lambda _b, s=sid: self.approve(s))
        execute_b.on_click(lambda _b, s=sid: self.execute(s))
        self.approve_buttons[sid] = approve_b
        self.execute_buttons[sid] = execute_b
        self._style_approve(step)
        why = w.HTML(f"<span title='{esc(step.rationale)}'>{esc(step.action.name)}</span>")
        return [w.HTML(esc(sid)), why, w.HTML(esc(step.action.target)), self.decisions[sid], self.results[sid],
                approve_b, execute_b]

    def _step(self, step_id: str) -> Step:
        for s in self.plan.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @staticmethod
    def _decision_html(step: Step) -> str:
        d = step.decision
        if d is None:
            return "<i>undecided</i>"
        colour = DECISION_COLOURS.get(d.decision, "#57606a")
        why = "; ".join(d.reasons)
        return (f"<b style='color:{colour}'>{esc(d.decision)}</b> <small>{esc(', '.join(d.policies))}</small>"
                f"<br><small>{esc(why)}</small>")

    def _style_approve(self, step: Step) -> None:
        waiting = step.decision is not None and step.decision.decision == "needs_approval"
        self.approve_buttons[step.id].button_style = "warning" if waiting else ""

    def _show(self, outcome: StepOutcome) -> None:
        self.outcomes[outcome.step_id] = outcome
        step = self._step(outcome.step_id)
        self.decisions[step.id].value = self._decision_html(step)
        self._style_approve(step)
        approval = self.approvals.get(step.id)
        by = f" <small>(approved by {esc(approval.actor)})</small>" if approval is not None else ""
        colour = _STATUS_COLOURS.get(outcome.status, "#57606a")
        self.results[step.id].value = f"<b style='color:{colour}'>{esc(outcome.status)}</b>{by}<br><small>{esc(outcome.message)}</small>"

    def _subplan(self, step_id: str) -> Plan:
        return dataclasses.replace(self.plan, steps=[self._step(step_id)])

    def _run(self, plan: Plan, execute: bool) -> list[StepOutcome]:
        return remediate(self.case, plan, executor=self.executor, execute=execute, actor=self.actor.value.strip() or "aisre",
                         policy=self.policy, env=self.env, audit=self.audit)

    # ------------------------------------------------------------------ actions

    def dry_run(self) -> list[StepOutcome]:
        """Dry-run every step through the executor (policy decides each; all audited) and show the
        results; return the outcomes (empty after an error, which the message shows)."""
        try:
            outcomes = self._run(self.plan, execute=False)
        except AisreError as exc:
            self.message.value = f"<p style='color:#cf222e'>dry run failed: {esc(exc)}</p>"
            return []
        for o in outcomes:
            self._show(o)
        self.message.value = f"<p>dry run of {len(outcomes)} step(s) recorded in the audit log</p>"
        return outcomes

    def approve(self, step_id: str) -> AuditRecord | None:
        """Record that the person in ``actor`` approved *step_id*, dry-run the step again under
        the approval, and return the approval record (``None`` after an error, shown in
        ``message``)."""
        by = self.actor.value.strip()
        try:
            record = approve(self.plan, step_id, by, audit=self.audit)
        except AisreError as exc:
            self.message.value = f"<p style='color:#cf222e'>approval of {esc(step_id)} not recorded: {esc(exc)}</p>"
            return None
        self.approvals[step_id] = record
        try:
            for o in self._run(self._subplan(step_id), execute=False):
                self._show(o)
        except AisreError as exc:
            self.message.value = f"<p style='color:#cf222e'>approved, but the dry run failed: {esc(exc)}</p>"
            return record
        self.message.value = f"<p>{esc(step_id)} approved by {esc(by)} (audit record {record.seq})</p>"
        return record

    def execute(self, step_id: str) -> StepOutcome | None:
        """Carry out *step_id* through the executor if policy allows it now (an approval counts);
        return its outcome, whose ``status`` is ``denied`` or ``waiting`` when refused (``None``
        after an error, shown in ``message``)."""
        try:
            outcomes = self._run(self._subplan(step_id), execute=True)
        except AisreError as exc:
            self.message.value = f"<p style='color:#cf222e'>{esc(step_id)} not executed: {esc(exc)}</p>"
            return None
        out = outcomes[0]
        self._show(out)
        if out.status in ("executed", "failed", "dry-run"):
            self.approvals.pop(step_id, None)  # a real run uses the approval up
        if out.status in ("denied", "waiting"):
            self.message.value = f"<p style='color:#cf222e'>{esc(step_id)} refused: {esc(out.message)}</p>"
        else:
            self.message.value = f"<p>{esc(step_id)}: {esc(out.status)}: {esc(out.message)}</p>"
        return out

    def audit_records(self) -> list[AuditRecord]:
        """Return this case's audit records, oldest first."""
        return self.audit.records(case_id=self.plan.case_id)
