"""The investigation workbench: every view of one case on one page, wired together.

Selecting a hypothesis highlights its evidence chain in the causal graph; selecting an incident
zooms the timeline to it; clicking a service shows its signals and filters the timeline to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import ipywidgets as w

from aisre.case import Case, Hypothesis, Ranking
from aisre.errors import UsageError
from aisre.remediate import AuditLog, Executor, Policy
from aisre.triage import Incident
from aisre.widgets._util import default_actor, esc, when
from aisre.widgets.graph import CausalGraph, node_of
from aisre.widgets.hypotheses import HypothesisTable
from aisre.widgets.incidents import IncidentList
from aisre.widgets.plan import PlanView
from aisre.widgets.similar import SimilarIncidents
from aisre.widgets.timeline import TimelineView

__all__ = ["Workbench"]

T = TypeVar("T")

_STYLE = """<style>
.aisre-workbench table { border-collapse: collapse; font-size: 12px; }
.aisre-workbench th, .aisre-workbench td { border-bottom: 1px solid #d0d7de; padding: 2px 6px; text-align: left;
  vertical-align: top; }
.aisre-workbench .widget-select select { font-family: monospace; font-size: 12px; }
</style>"""


class Workbench(w.VBox):
    """One case under investigation: incidents, hypotheses, causal graph with its detail panel,
    timeline, remediation plan and similar past incidents.

    The parts are attributes: ``incidents`` (:class:`IncidentList`), ``hypotheses``
    (:class:`HypothesisTable`), ``graph`` (:class:`CausalGraph`), ``detail`` (its
    :class:`DetailPanel`), ``timeline`` (:class:`TimelineView`), ``plan`` (:class:`PlanView`),
    ``similar`` (:class:`SimilarIncidents`); ``case`` and ``ranking`` are what they show and
    ``timings`` the seconds each part took to build.

    Raises (on construction):
        UsageError: for a *case* that is not a Case or an unknown *method*.
        PolicyError: when the policy cannot be loaded.
        StoreError: when the audit log cannot be read.
    """

    def __init__(
        self,
        case: Case,
        *,
        method: str = "aisre",
        actor: str | None = None,
        ranking: Ranking | None = None,
        policy: Policy | str | None = None,
        env: str = "production",
        executor: Executor | None = None,
        audit: AuditLog | None = None,
        dry_run: bool = True,
        memory_k: int = 5,
    ) -> None:
        if not isinstance(case, Case):
            raise UsageError(f"Workbench takes an aisre.case.Case, not {type(case).__name__}")
        self.case = case
        self.timings: dict[str, float] = {}
        if ranking is None:
            from aisre.rank import get_ranker

            ranking = self._timed("rank", lambda: get_ranker(method).rank(case))
        self.ranking: Ranking = ranking
        who = actor or default_actor()
        self.incidents = self._timed("incidents", lambda: IncidentList(case))
        self.hypotheses = self._timed("hypotheses", lambda: HypothesisTable(self.ranking))
        self.graph = self._timed("graph", lambda: CausalGraph(case, self.ranking, hypothesis=self.hypotheses.selected))
        self.detail = self.graph.detail
        self.timeline = self._timed("timeline", lambda: TimelineView(case, self.ranking))
        self.plan = self._timed("plan", lambda: PlanView(case, self.ranking, actor=who, policy=policy, env=env,
                                                         executor=executor, audit=audit, dry_run=dry_run))
        self.similar = self._timed("similar", lambda: SimilarIncidents(case, self.ranking, k=memory_k))

        self.hypotheses.on_select(self._on_hypothesis)
        self.incidents.on_select(self._on_incident)
        self.graph.on_select(self._on_node)
        top = self.hypotheses.selected
        first = node_of(top.entity, self.graph.graph, case) if top is not None else None
        if first is not None:
            self.graph.select(first, notify=False)  # its signals shown; the timeline stays whole

        tabs = w.Tab([self.plan, self.similar])
        for i, title in enumerate(("remediation plan", "similar past incidents")):
            tabs.set_title(i, title)
        half = w.Layout(width="50%", padding="0 8px 0 0")
        super().__init__([
            w.HTML(_STYLE + self._header()),
            w.HBox([w.VBox([self.incidents], layout=half), w.VBox([self.hypotheses], layout=half)]),
            self.graph,
            self.timeline,
            tabs,
        ])  # fmt: skip
        self.tabs = tabs
        self.add_class("aisre-workbench")

    def _timed(self, name: str, build: Callable[[], T]) -> T:
        t = time.perf_counter()
        out = build()
        self.timings[name] = time.perf_counter() - t
        return out

    def _header(self) -> str:
        c = self.case
        top = self.ranking.hypotheses[0] if self.ranking.hypotheses else None
        suspect = (f"top suspect <b>{esc(top.entity)}</b> ({esc(top.fault or 'fault unknown')}, confidence "
                   f"{top.confidence:.2f})") if top else f"the ranker abstained ({esc(self.ranking.reason)})"
        return (f"<h3 style='margin:4px 0'>investigating {esc(c.id)}</h3><p>{esc(c.system or 'system unknown')} · "
                f"window {when(c.window[0])} to {when(c.window[1])} · detected {when(c.detected_at)} · {suspect}</p>")

    # ------------------------------------------------------------------ wiring

    def _on_hypothesis(self, h: Hypothesis | None) -> None:
        self.graph.highlight(h)

    def _on_incident(self, inc: Incident) -> None:
        end = inc.closed if inc.closed is not None else self.case.window[1]
        self.timeline.set_range(inc.opened - 300.0, end + 300.0)

    def _on_node(self, node: str) -> None:
        self.timeline.show_entities([node])

    def select_hypothesis(self, index: int) -> None:
        """Select the hypothesis in row *index* (0 = the best), as a click in the table would."""
        self.hypotheses.select.value = index
