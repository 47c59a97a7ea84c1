"""The workbench without a browser: widget state, observers, and that each button calls the right
API (approve writes an approval record; execute is refused without an allow or an approval and
re-evaluates policy at that moment)."""

from __future__ import annotations

import sys

import networkx as nx
import pytest
from plotly.callbacks import InputDeviceState, Points

from aisre.case import Alert, Case, Evidence, Hypothesis, Ranking
from aisre.errors import UsageError
from aisre.remediate import AuditLog, DryRunExecutor, Policy
from aisre.widgets import (
    PlanView,
    SimilarIncidents,
    Workbench,
    anomaly_scores,
    evidence_chain,
    layered_layout,
    node_of,
    signal_deviations,
)
from aisre.widgets.timeline import ALL

from conftest import build_toy_case

T0 = 1_700_000_000.0

POLICY = """
@id("permit-all")
@reason("the tests allow every action")
permit (principal, action, resource);

@id("approval-irreversible")
@reason("the action cannot be undone: a person must approve")
forbid (principal, action, resource)
when { !context.dry_run && !context.reversible }
unless { context.approved };

@id("dry-run-first")
@reason("a change runs only after its dry run has passed")
forbid (principal, action, resource)
when { !context.dry_run && !context.dry_run_passed };
"""
"""A clock-independent policy: everything allowed, irreversible changes need approval."""

FREEZE = """
@id("permit-all")
@reason("the tests allow every action")
permit (principal, action, resource);

@id("freeze")
@reason("a change freeze began")
forbid (principal, action, resource)
when { !context.dry_run };
"""
"""A freeze that begins after planning: every real change denied, approved or not."""


def toy_with_alerts() -> Case:
    """The toy case (CPU hog in ``cart``) plus two alerts: cart's CPU and fe's latency."""
    case = build_toy_case()
    case.alerts = [
        Alert("a-cart", {"alertname": "CPUSaturation", "service": "cart", "severity": "warning"},
              starts_at=T0 + 330, service="cart", severity="warning"),
        Alert("a-fe", {"alertname": "HighLatency", "service": "fe", "severity": "critical"},
              starts_at=T0 + 340, service="fe", severity="critical"),
    ]  # fmt: skip
    return case


def toy_ranking() -> Ranking:
    """A fixed ranking: cart (cpu) first with an edge to redis in its evidence, then redis, fe."""
    return Ranking("fixed", [
        Hypothesis("cart", "cpu", 4.0, 0.9, [Evidence("metric:cpu", "cart", T0 + 300, 96.0, None, "cpu of cart moved"),
                                             Evidence("graph", "cart", None, 0.0, ("cart", "redis"), "redis explains part")]),
        Hypothesis("redis", "delay", 2.0, 0.07, [Evidence("metric:latency-90", "redis", T0 + 305, 5.0, None, "redis slower")]),
        Hypothesis("fe", "delay", 1.0, 0.03, [Evidence("metric:latency-90", "fe", T0 + 305, 40.0, None, "fe slower")]),
    ])  # fmt: skip


@pytest.fixture
def wb() -> Workbench:
    return Workbench(toy_with_alerts(), ranking=toy_ranking(), actor="alice", policy=Policy(POLICY, source="test"),
                     executor=DryRunExecutor())


def click(graph, node: str) -> None:
    """Call the click handler the graph registered on its node trace, as plotly.js would."""
    trace = graph.figure.data[2]
    i = list(trace.customdata).index(node)
    points = Points(point_inds=[i], xs=[trace.x[i]], ys=[trace.y[i]], trace_name=trace.name, trace_index=2)
    assert trace._click_callbacks, "no click handler registered on the node trace"
    for cb in trace._click_callbacks:
        cb(trace, points, InputDeviceState())


def chain_points(graph) -> int:
    return sum(x is not None for x in graph.figure.data[1].x or ())


# --------------------------------------------------------------------------- pure parts


def test_layered_layout_puts_callers_above_callees_and_ignores_insertion_order():
    """Entry services on top, each callee one layer below its deepest caller; the same graph
    built in another order gets the same positions."""
    edges = [("fe", "cart"), ("fe", "catalog"), ("cart", "redis"), ("catalog", "redis"), ("checkout", "cart")]
    a = nx.DiGraph(edges)
    b = nx.DiGraph(list(reversed(edges)))
    pa, pb = layered_layout(a), layered_layout(b)
    assert pa == pb
    assert pa["fe"][1] == pa["checkout"][1] == 0.0
    assert pa["cart"][1] == pa["catalog"][1] == -1.0
    assert pa["redis"][1] == -2.0
    assert len(set(pa.values())) == len(pa)  # no two nodes on one spot


def test_layered_layout_survives_cycles():
    """A call cycle shares one layer instead of looping forever."""
    pos = layered_layout(nx.DiGraph([("fe", "a"), ("a", "b"), ("b", "a"), ("b", "db")]))
    assert pos["a"][1] == pos["b"][1] == -1.0
    assert pos["db"][1] == -2.0


def test_anomaly_scores_normalise_and_map_instances_to_services():
    """Scores divide by the best; an instance's hypothesis counts for its service."""
    g = nx.DiGraph([("fe", "cart"), ("cart", "redis")])
    r = Ranking("x", [Hypothesis("cart-0", "cpu", 4.0), Hypothesis("redis", None, 1.0), Hypothesis("node-1", None, 9.0)])
    assert node_of("cart-0", g) == "cart"
    assert node_of("node-1", g) is None
    s = anomaly_scores(r, g)
    assert s == {"fe": 0.0, "cart": 1.0, "redis": 0.25}


def test_evidence_chain_runs_from_the_entry_to_the_suspect_plus_evidence_edges():
    g = nx.DiGraph([("fe", "cart"), ("cart", "redis"), ("fe", "ads")])
    h = toy_ranking().hypotheses[0]
    assert evidence_chain(h, g) == [("fe", "cart"), ("cart", "redis")]
    assert evidence_chain(Hypothesis("fe"), g) == []
    assert evidence_chain(Hypothesis("elsewhere"), g) == []


def test_signal_deviations_rank_the_series_that_moved():
    """The CPU hog's series moves by far the most, and deviations are measured against the
    samples before detection (median near 0 there)."""
    case = build_toy_case()
    dev = signal_deviations(case, ["cart"], limit=1)
    assert set(dev["series"]) == {"cart:cpu"}
    before = dev[dev["time"] < case.detected_at - 30]["deviation"]
    after = dev[dev["time"] > case.detected_at]["deviation"]
    assert abs(before.median()) < 1.0 and after.median() > 50


# --------------------------------------------------------------------------- the workbench


def test_workbench_exposes_its_parts(wb: Workbench):
    assert wb.ranking.method == "fixed"
    assert [i.origin for i in wb.incidents.incidents]  # triage made at least one incident
    assert wb.hypotheses.selected.entity == "cart"
    assert wb.graph.nodes == ["cart", "fe", "redis"]
    assert wb.detail is wb.graph.detail
    assert wb.detail.entity == wb.graph.picker.value == "cart"  # the top suspect is shown first
    assert wb.timeline.entity.value == ALL  # ... without filtering the timeline
    assert {s.id for s in wb.plan.plan.steps} == set(wb.plan.approve_buttons) == set(wb.plan.execute_buttons)
    assert wb.similar.note.startswith("no memory yet")
    assert set(wb.timings) >= {"incidents", "hypotheses", "graph", "timeline", "plan", "similar"}


def test_workbench_rejects_a_non_case():
    with pytest.raises(UsageError):
        Workbench({"id": "x"})  # type: ignore[arg-type]


def test_graph_colours_nodes_by_anomaly(wb: Workbench):
    colours = dict(zip(wb.graph.figure.data[2].customdata, wb.graph.figure.data[2].marker.color, strict=True))
    assert colours == {"cart": 1.0, "redis": 0.5, "fe": 0.25}


def test_selecting_a_hypothesis_updates_the_highlighted_edges(wb: Workbench):
    """The top suspect's chain is drawn at start; selecting another row redraws it."""
    assert wb.graph.highlighted == [("fe", "cart"), ("cart", "redis")]
    assert chain_points(wb.graph) == 4
    widths = dict(zip(wb.graph.nodes, wb.graph.figure.data[2].marker.line.width, strict=True))
    assert widths["cart"] > widths["fe"]

    wb.select_hypothesis(2)  # fe: an entry service, nothing upstream, no edge in its evidence
    assert wb.graph.highlighted == []
    assert chain_points(wb.graph) == 0
    assert wb.hypotheses.evidence.value.count("fe slower") == 1

    wb.hypotheses.select.value = 1  # redis: fe -> cart -> redis
    assert wb.graph.highlighted == [("fe", "cart"), ("cart", "redis")]
    widths = dict(zip(wb.graph.nodes, wb.graph.figure.data[2].marker.line.width, strict=True))
    assert widths["redis"] > widths["cart"]
    red = [a for a in wb.graph.figure.layout.annotations if a.arrowcolor == "#cf222e"]
    assert len(red) == 2


def test_filtering_the_timeline_changes_the_figure(wb: Workbench):
    tv = wb.timeline
    total = len(tv.timeline.table)
    assert total > 0
    assert sum(len(t.x) for t in tv.figure.data) == total
    drawn = tv.plot.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    assert sum(len(t["x"]) for t in drawn) == total

    tv.entity.value = "cart"
    assert set(tv.table["entity"]) == {"cart"}
    assert {y for t in tv.figure.data for y in t.y} == {"cart"}
    shown = sum(len(t.x) for t in tv.figure.data)
    assert 0 < shown < total

    tv.sources.value = ("alert",)
    assert {t.name for t in tv.figure.data} == {"alert"}
    assert sum(len(t.x) for t in tv.figure.data) == len(tv.table) == 1

    tv.sources.value = ()
    assert len(tv.figure.data) == 0 and tv.table.empty
    tv.entity.value = ALL
    tv.sources.value = tuple(tv.sources.options)
    assert sum(len(t.x) for t in tv.figure.data) == total


def test_timeline_zoom_and_incident_selection_set_the_range(wb: Workbench):
    tv = wb.timeline
    tv.zoom.value = "detection"
    lo, hi = tv.figure.layout.xaxis.range
    assert (hi - lo).total_seconds() == pytest.approx(600.0)
    shown = tv.plot.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]["xaxis"]["range"]
    assert shown[0].startswith("2023-11-14T22:13:40")  # detected 22:18:40; the page follows the zoom
    tv.zoom.value = "window"
    lo, hi = tv.figure.layout.xaxis.range
    assert (lo.timestamp(), hi.timestamp()) == pytest.approx(wb.case.window)
    if len(wb.incidents.incidents) > 1:
        wb.incidents.select.value = 1
    else:
        wb.incidents._on_select(None)
    inc = wb.incidents.selected
    lo, hi = tv.figure.layout.xaxis.range
    assert lo.timestamp() == pytest.approx(inc.opened - 300.0)
    assert inc.id in wb.incidents.detail.value


def test_clicking_a_node_updates_the_detail_panel(wb: Workbench):
    """The registered click handler shows the node's evidence and a chart of its metrics, and
    filters the timeline to it."""
    click(wb.graph, "redis")
    assert wb.graph.selected == wb.detail.entity == "redis"
    assert "signals of redis" in wb.detail.text.value
    assert "redis slower" in wb.detail.text.value
    assert {t.name for t in wb.detail.figure.data} <= {"redis:cpu", "redis:latency-90"}
    assert len(wb.detail.figure.data) == 2
    assert wb.timeline.entity.value == ALL  # redis stayed quiet: no timeline row to filter to

    click(wb.graph, "fe")
    assert "signals of fe" in wb.detail.text.value and "redis" not in wb.detail.text.value
    assert {t.name for t in wb.detail.figure.data} == {"fe:cpu", "fe:latency-90"}
    drawn = wb.detail.plot.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert drawn["layout"]["title"]["text"] == "signals of fe" and len(drawn["data"]) == 2
    assert wb.timeline.entity.value == "fe"
    assert set(wb.timeline.table["entity"]) == {"fe"}


def test_the_service_picker_does_what_a_click_does(wb: Workbench):
    wb.graph.picker.value = "fe"
    assert wb.detail.entity == "fe" and wb.timeline.entity.value == "fe"
    click(wb.graph, "cart")
    assert wb.graph.picker.value == "cart" and wb.detail.entity == "cart"


def test_graph_falls_back_to_a_static_figure_without_anywidget(monkeypatch):
    """Without plotly's widget support the graph still draws (static) and the picker still works."""
    import plotly.graph_objects as go

    from aisre.widgets import CausalGraph

    def missing(*_a, **_k):
        raise ImportError("Please install anywidget to use the FigureWidget class")

    monkeypatch.setattr(go, "FigureWidget", missing)
    graph = CausalGraph(build_toy_case(), toy_ranking(), hypothesis=toy_ranking().hypotheses[0])
    drawn = graph._box.children[0].outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert drawn["data"][2]["customdata"] == ["cart", "fe", "redis"]
    assert len([x for x in drawn["data"][1]["x"] if x is not None]) == 4  # fe->cart, cart->redis
    graph.picker.value = "redis"
    assert graph.detail.entity == "redis"


# --------------------------------------------------------------------------- plan buttons


def _needs_approval(view: PlanView) -> str:
    ids = [s.id for s in view.plan.steps if s.decision and s.decision.decision == "needs_approval"]
    assert ids, "the test policy should make the irreversible restart need approval"
    return ids[0]


def test_the_plan_shows_decisions_and_the_dry_run(wb: Workbench):
    view = wb.plan
    sid = _needs_approval(view)
    assert "needs_approval" in view.decisions[sid].value
    assert {o.status for o in view.outcomes.values()} == {"dry-run"}
    kinds = [r.kind for r in AuditLog().records(case_id=view.plan.case_id)]
    assert kinds.count("dry_run") == len(view.plan.steps)
    assert all(dry for _sid, _a, _t, dry in view.executor.calls)  # only dry runs so far
    view.dry_run_button.click()
    kinds = [r.kind for r in AuditLog().records(case_id=view.plan.case_id)]
    assert kinds.count("dry_run") == 2 * len(view.plan.steps)


def test_approve_writes_an_approval_record_naming_who(wb: Workbench):
    view = wb.plan
    sid = _needs_approval(view)
    view.actor.value = "bob"
    view.approve_buttons[sid].click()
    recs = AuditLog().records(case_id=view.plan.case_id, kind="approval")
    assert [(r.step_id, r.actor, r.approval["by"], r.result) for r in recs] == [(sid, "bob", "bob", "approved")]
    assert "approved by bob" in view.results[sid].value
    assert view.approvals[sid].seq == recs[0].seq


def test_execute_is_refused_without_approval_and_allowed_after_it(wb: Workbench):
    view = wb.plan
    sid = _needs_approval(view)
    step = next(s for s in view.plan.steps if s.id == sid)
    real = (sid, step.action.name, step.action.target, False)

    view.execute_buttons[sid].click()
    assert view.outcomes[sid].status == "waiting"
    assert "refused" in view.message.value
    assert real not in view.executor.calls
    assert AuditLog().records(case_id=view.plan.case_id, kind="start") == []

    view.approve_buttons[sid].click()
    view.execute_buttons[sid].click()
    out = view.outcomes[sid]
    assert out.status == "dry-run" and out.ok  # the dry-run executor ran it and changed nothing
    assert real in view.executor.calls
    starts = AuditLog().records(case_id=view.plan.case_id, kind="start")
    assert [(r.step_id, r.approval["by"]) for r in starts] == [(sid, "alice")]
    finish = AuditLog().records(case_id=view.plan.case_id, kind="finish")
    assert finish[-1].ref == starts[-1].seq

    view.execute_buttons[sid].click()  # the approval was used up by that run
    assert view.outcomes[sid].status == "waiting"


def test_an_allowed_step_executes_without_approval(wb: Workbench):
    view = wb.plan
    sid = next(s.id for s in view.plan.steps if s.decision and s.decision.decision == "allow")
    view.execute_buttons[sid].click()
    assert view.outcomes[sid].status == "dry-run"
    assert AuditLog().records(case_id=view.plan.case_id, kind="approval") == []
    assert len(AuditLog().records(case_id=view.plan.case_id, kind="start")) == 1


def test_execute_evaluates_policy_again(wb: Workbench):
    """A step allowed when planned is refused when a freeze begins before it is executed, and an
    approval does not lift a plain deny."""
    view = wb.plan
    sid = next(s.id for s in view.plan.steps if s.decision and s.decision.decision == "allow")
    view.policy = Policy(FREEZE, source="freeze")
    view.approve_buttons[sid].click()
    view.execute_buttons[sid].click()
    assert view.outcomes[sid].status == "denied"
    assert "freeze" in view.decisions[sid].value
    assert AuditLog().records(case_id=view.plan.case_id, kind="start") == []
    assert not any(not dry for _s, _a, _t, dry in view.executor.calls)


def test_approve_without_a_name_is_refused_and_says_so(wb: Workbench):
    view = wb.plan
    sid = _needs_approval(view)
    view.actor.value = "  "
    assert view.approve(sid) is None
    assert "not recorded" in view.message.value
    assert AuditLog().records(kind="approval") == []


# --------------------------------------------------------------------------- similar, degraded cases


def test_similar_says_no_memory_yet_without_the_memory_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "aisre.memory", None)  # import fails
    view = SimilarIncidents(build_toy_case(), toy_ranking())
    assert view.matches == [] and "no memory yet" in view.html.value


def test_similar_lists_matches_with_why():
    match = {"incident_id": "m-1", "case_id": "old/cart", "similarity": 0.87, "cause": "cart", "fault": "cpu",
             "status": "confirmed", "actions": [{"action": "scale", "target": "cart"}], "why": "same suspect; same fault"}
    view = SimilarIncidents(build_toy_case(), toy_ranking(), matches=[match])
    for text in ("m-1", "0.87", "cart (cpu)", "scale cart", "same suspect; same fault"):
        assert text in view.html.value


def test_workbench_without_topology_alerts_or_hypotheses():
    """A bare case still builds: graph from the ranking's entities, no incident, no plan step."""
    case = build_toy_case()
    case.topology = None
    wb = Workbench(case, ranking=Ranking("fixed", abstained=True, reason="nothing moved"), actor="carol", dry_run=False)
    assert wb.graph.highlighted == [] and wb.graph.nodes == []
    assert wb.incidents.incidents == [] and "no incident" in wb.incidents.detail.value
    assert wb.plan.plan.steps == []
    assert "abstained" in wb.children[0].value
