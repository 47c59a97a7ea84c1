"""The causal graph: services laid out in layers from the topology, coloured by how anomalous the
ranking found them, the selected hypothesis' evidence chain drawn as thick red edges; a click on a
service shows its signals in the detail panel.

The layout is computed, not simulated: callers above callees, layers by longest path from the
entry services (cycles collapsed first), order within a layer by the barycentre of the callers,
ties by name. The same graph always gets the same picture.

The graph is a plotly FigureWidget, for its click events. Its Python-side updates do not reach
the page under voila with plotly 6+ (anywidget), so a new highlight builds a new FigureWidget
with the final state and swaps it in; the detail chart is a static figure in an Output widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ipywidgets as w
import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from aisre.case import Case, Hypothesis, Ranking, topology_from_spans
from aisre.widgets._util import esc, show_figure

__all__ = [
    "CausalGraph",
    "DetailPanel",
    "anomaly_scores",
    "evidence_chain",
    "layered_layout",
    "node_of",
    "service_graph",
    "signal_deviations",
]

EDGE_COLOUR = "#8c959f"
"""Colour of an ordinary dependency edge."""

CHAIN_COLOUR = "#cf222e"
"""Colour of the selected hypothesis' evidence chain."""

CHAIN_WIDTH = 5.0
"""Line width of the evidence chain (ordinary edges are 1.5)."""

DETAIL_SERIES = 6
"""Most signals the detail chart draws: the ones that moved most."""


# --------------------------------------------------------------------------- the model side


def service_graph(case: Case, ranking: Ranking | None = None) -> nx.DiGraph:
    """Return the service-level dependency graph of *case* (caller -> callee), nodes and edges
    inserted in sorted order so everything built from it is deterministic.

    From the topology's services, databases, caches and queues when the case has a topology,
    else recovered from the spans, else the ranking's entities with no edge (never invented).
    """
    topo = case.topology if case.topology is not None else topology_from_spans(case.spans)
    g = nx.DiGraph()
    if topo is not None:
        keep = set(topo.services()) or set(topo.nodes())
        calls = topo.call_graph()
        for n in sorted(keep):
            g.add_node(n, **topo.node(n))
        g.add_edges_from(sorted((u, v) for u, v in calls.edges() if u in keep and v in keep and u != v))
    elif ranking is not None:
        for n in sorted(ranking.entities()):
            g.add_node(n, kind="service")
    return g


def node_of(entity: str, graph: nx.DiGraph, case: Case | None = None) -> str | None:
    """Return the graph node *entity* belongs to: itself, the service an instance node names,
    or the longest node name that prefixes it (``cartservice-0`` -> ``cartservice``); ``None``
    when no node fits."""
    if entity in graph:
        return entity
    topo = case.topology if case is not None else None
    if topo is not None and entity in topo:
        svc = topo.node(entity).get("service")
        if svc in graph:
            return str(svc)
    best = None
    for n in graph.nodes:
        if entity.startswith(f"{n}-") and (best is None or len(n) > len(best)):
            best = n
    return best


def anomaly_scores(ranking: Ranking | None, graph: nx.DiGraph, case: Case | None = None) -> dict[str, float]:
    """Return every node's anomaly score in [0, 1]: its best hypothesis score (its instances'
    count for it) divided by the best score of all; 0 where the ranking says nothing."""
    raw = dict.fromkeys(graph.nodes, 0.0)
    if ranking is not None:
        for h in ranking.hypotheses:
            n = node_of(h.entity, graph, case)
            if n is not None and np.isfinite(h.score):
                raw[n] = max(raw[n], float(h.score))
    top = max(raw.values(), default=0.0)
    return {n: (v / top if top > 0 else 0.0) for n, v in raw.items()}


def evidence_chain(hypothesis: Hypothesis, graph: nx.DiGraph, scores: dict[str, float] | None = None,
                   case: Case | None = None) -> list[tuple[str, str]]:
    """Return the edges that carry *hypothesis*: the call path from the entry service (a node no
    one calls; the most anomalous one that reaches the suspect, ties by name) down to the
    suspect, then every edge its evidence names. Empty when the suspect is not in the graph."""
    target = node_of(hypothesis.entity, graph, case)
    if target is None:
        return []
    scores = scores or {}
    chain: list[tuple[str, str]] = []
    ancestors = nx.ancestors(graph, target)
    entries = sorted((n for n in ancestors if graph.in_degree(n) == 0), key=lambda n: (-scores.get(n, 0.0), n))
    if entries:
        path = nx.shortest_path(graph, entries[0], target)
        chain.extend(zip(path[:-1], path[1:], strict=True))
    for ev in hypothesis.evidence:
        if not ev.edge:
            continue
        a, b = (node_of(str(x), graph, case) for x in ev.edge)
        if a is not None and b is not None and a != b and (a, b) not in chain:
            chain.append((a, b))
    return chain


def layered_layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Return ``{node: (x, y)}``: y = -layer (callers on top), x spread evenly in each layer.

    Layers are longest paths from the nodes no one calls, over the graph with its cycles
    collapsed; one barycentre pass orders each layer under its callers; ties break by name.
    """
    if graph.number_of_nodes() == 0:
        return {}
    g = nx.DiGraph()
    g.add_nodes_from(sorted(graph.nodes))
    g.add_edges_from(sorted(graph.edges))
    cond = nx.condensation(g)
    key = {c: min(cond.nodes[c]["members"]) for c in cond.nodes}
    depth: dict[int, int] = {}
    for c in nx.lexicographical_topological_sort(cond, key=lambda c: key[c]):
        depth[c] = max((depth[p] + 1 for p in cond.predecessors(c)), default=0)
    layer_of = {n: depth[cond.graph["mapping"][n]] for n in g.nodes}
    layers: dict[int, list[str]] = {}
    for n in sorted(g.nodes):
        layers.setdefault(layer_of[n], []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    for d in sorted(layers):
        names = layers[d]
        if d > 0:
            def bary(n: str) -> float:
                xs = [pos[p][0] for p in g.predecessors(n) if p in pos]
                return float(np.mean(xs)) if xs else 0.0

            names = sorted(names, key=lambda n: (bary(n), n))
        width = len(names)
        for i, n in enumerate(names):
            pos[n] = (float(i - (width - 1) / 2.0), float(-d))
    return pos


def signal_deviations(case: Case, entities: Sequence[str], *, limit: int = DETAIL_SERIES) -> pd.DataFrame:
    """Return ``time, series, deviation`` for the metrics of *entities*: each series' robust
    deviation from its normal (median and MAD before ``detected_at``, else the first third of the
    window), the *limit* series that moved most. Empty when the entities have no metric."""
    m = case.metrics
    if m.empty or not entities:
        return pd.DataFrame({"time": pd.Series(dtype="float64"), "series": pd.Series(dtype="object"),
                             "deviation": pd.Series(dtype="float64")})
    sub = m[m["entity"].astype(str).isin(set(entities))]
    if sub.empty:
        return signal_deviations(case, [], limit=limit)
    sub = sub.assign(series=sub["entity"].astype(str) + ":" + sub["metric"].astype(str))[["time", "series", "value"]]
    split = case.detected_at
    if split is None:
        lo, hi = sub["time"].min(), sub["time"].max()
        split = lo + (hi - lo) / 3.0
    normal = sub[sub["time"] < split]
    if normal.empty:
        normal = sub
    med = normal.groupby("series")["value"].median()
    mad = (normal["value"] - normal["series"].map(med)).abs().groupby(normal["series"]).median()
    spread = (1.4826 * mad).reindex(med.index)
    floor = np.maximum(med.abs() * 0.01, 1e-9)
    spread = spread.where(spread > floor, floor)
    dev = (sub["value"] - sub["series"].map(med)) / sub["series"].map(spread)
    out = pd.DataFrame({"time": sub["time"].to_numpy(), "series": sub["series"].to_numpy(), "deviation": dev.to_numpy()})
    out = out.dropna()
    peak = out["deviation"].abs().groupby(out["series"]).max().sort_values(ascending=False, kind="stable")
    keep = list(peak.index[:limit])
    return out[out["series"].isin(keep)].sort_values(["series", "time"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the views


class DetailPanel(w.VBox):
    """One service's signals: its evidence in words and a small chart of how far its metrics moved.

    ``entity`` is the node shown (``None`` before a click); ``text`` is the HTML widget,
    ``figure`` the chart (a plotly Figure) and ``plot`` the Output widget showing it.
    """

    def __init__(self, case: Case, ranking: Ranking | None, graph: nx.DiGraph) -> None:
        self.case = case
        self.ranking = ranking
        self._graph = graph
        self.entity: str | None = None
        self.text = w.HTML(self._placeholder())
        self.text.add_class("aisre-detail-text")
        self.figure = self._figure([], "signals")
        self.plot = w.Output()
        super().__init__([self.text, self.plot], layout=w.Layout(width="40%", min_width="320px"))
        self.add_class("aisre-detail")

    def _figure(self, traces: list[go.Scatter], title: str) -> go.Figure:
        fig = go.Figure(traces)
        fig.update_layout(height=280, margin={"l": 50, "r": 10, "t": 30, "b": 30}, title={"text": title, "font": {"size": 12}},
                          yaxis={"title": "deviation (robust σ)"}, showlegend=True, legend={"font": {"size": 9}})
        if self.case.detected_at is not None and traces:
            x = pd.to_datetime(self.case.detected_at, unit="s", utc=True)
            fig.add_shape(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                          line={"dash": "dot", "color": "#57606a"})
        return fig

    @staticmethod
    def _placeholder() -> str:
        return "<div class='aisre-detail-title'><b>signals</b>: click a service in the graph</div>"

    def entities_for(self, node: str) -> list[str]:
        """Return the entities whose signals belong to *node*: itself and its instances."""
        names = [str(e) for e in self.case.metrics["entity"].astype(str).unique()]
        return sorted({node, *(e for e in names if node_of(e, self._graph, self.case) == node)})

    def evidence_for(self, node: str) -> list[str]:
        """Return the evidence sentences the ranking gives for *node* or its instances."""
        out: list[str] = []
        for h in self.ranking.hypotheses if self.ranking is not None else []:
            for ev in h.evidence:
                if node_of(ev.entity, self._graph, self.case) == node and ev.text and ev.text not in out:
                    out.append(ev.text)
        return out

    def show(self, node: str) -> None:
        """Show *node*'s evidence and signal chart."""
        self.entity = node
        attrs = dict(self._graph.nodes[node]) if node in self._graph else {}
        facts = ", ".join(f"{k} {esc(attrs[k])}" for k in ("kind", "tier", "owner") if attrs.get(k))
        evidence = self.evidence_for(node)
        items = "".join(f"<li>{esc(t)}</li>" for t in evidence[:8]) or "<li>no evidence names it</li>"
        self.text.value = (
            f"<div class='aisre-detail-title' data-entity='{esc(node)}'><b>signals of {esc(node)}</b>"
            f"{' (' + facts + ')' if facts else ''}</div><ul>{items}</ul>"
        )
        dev = signal_deviations(self.case, self.entities_for(node))
        traces = [
            go.Scatter(x=pd.to_datetime(g["time"], unit="s", utc=True), y=g["deviation"], mode="lines", name=str(s))
            for s, g in dev.groupby("series", sort=False)
        ]
        self.figure = self._figure(traces, f"signals of {node}" if traces else f"{node}: no metrics")
        show_figure(self.plot, self.figure)


class CausalGraph(w.HBox):
    """The service graph with the detail panel beside it.

    Attributes: ``figure`` (FigureWidget: trace 0 the edges, trace 1 the evidence chain, trace 2
    the services; replaced by a new one when the highlight changes; a static Figure when plotly's
    widget support, anywidget, is missing), ``picker`` (Dropdown: the same choice as a click),
    ``detail`` (:class:`DetailPanel`), ``graph`` (the networkx DiGraph), ``positions``,
    ``scores`` (anomaly 0..1 per node), ``highlighted`` (the chain's edges) and ``selected`` (the
    node last clicked).
    """

    def __init__(self, case: Case, ranking: Ranking | None, *, hypothesis: Hypothesis | None = None) -> None:
        self.case = case
        self.ranking = ranking
        self.graph = service_graph(case, ranking)
        self.positions = layered_layout(self.graph)
        self.scores = anomaly_scores(ranking, self.graph, case)
        self.nodes: list[str] = list(self.graph.nodes)
        self.selected: str | None = None
        self._picking = False
        self._click_listeners: list[Callable[[str], None]] = []
        self.highlighted, self._target = self._chain(hypothesis)
        self.detail = DetailPanel(case, ranking, self.graph)
        self.picker = w.Dropdown(options=[("(click a service)", None), *((n, n) for n in self.nodes)], value=None,
                                 description="service", layout=w.Layout(width="320px"))
        self.picker.observe(self._on_pick, names="value")
        self.figure, view = self._widget()
        self._box = w.Box([view], layout=w.Layout(width="100%"))
        self._box.add_class("aisre-graph")
        super().__init__([w.VBox([self._box, self.picker], layout=w.Layout(width="60%")), self.detail],
                         layout=w.Layout(width="100%"))

    def _widget(self) -> tuple[go.Figure, w.Widget]:
        """Return the figure and the widget that shows it: a FigureWidget (clickable), else the
        static figure in an Output."""
        try:
            fig = go.FigureWidget(self._build())
        except ImportError:  # plotly >= 6 needs anywidget for FigureWidget
            static = self._build()
            out = w.Output()
            show_figure(out, static)
            return static, out
        fig.data[2].on_click(self._on_click)
        return fig, fig

    # building
    def _segments(self, edges: Iterable[tuple[str, str]]) -> tuple[list[float | None], list[float | None]]:
        xs: list[float | None] = []
        ys: list[float | None] = []
        for a, b in edges:
            (x0, y0), (x1, y1) = self.positions[a], self.positions[b]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        return xs, ys

    def _arrows(self) -> list[dict[str, Any]]:
        chain = set(self.highlighted)
        out = []
        for a, b in self.graph.edges:
            red = (a, b) in chain
            (x0, y0), (x1, y1) = self.positions[a], self.positions[b]
            out.append({
                "x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x", "ayref": "y",
                "showarrow": True, "arrowhead": 2, "arrowsize": 1.2, "standoff": 14, "startstandoff": 12,
                "arrowwidth": 2.5 if red else 1.2, "arrowcolor": CHAIN_COLOUR if red else EDGE_COLOUR, "text": "",
            })  # fmt: skip
        return out

    def _build(self) -> go.Figure:
        ex, ey = self._segments(self.graph.edges)
        hx, hy = self._segments(self.highlighted)
        nx_, ny_ = zip(*(self.positions[n] for n in self.nodes), strict=True) if self.nodes else ((), ())
        hover = []
        for n in self.nodes:
            d = self.graph.nodes[n]
            hover.append(f"<b>{esc(n)}</b><br>{esc(d.get('kind', ''))} · {esc(d.get('tier', ''))}"
                         f"<br>owner {esc(d.get('owner') or '-')}<br>anomaly {self.scores[n]:.2f}")
        fig = go.Figure([
            go.Scatter(x=ex, y=ey, mode="lines", line={"color": EDGE_COLOUR, "width": 1.5}, hoverinfo="skip", name="depends on"),
            go.Scatter(x=hx, y=hy, mode="lines", line={"color": CHAIN_COLOUR, "width": CHAIN_WIDTH}, hoverinfo="skip",
                       name="evidence chain"),
            go.Scatter(
                x=list(nx_), y=list(ny_), mode="markers+text", name="services", text=self.nodes, customdata=self.nodes,
                textposition="bottom center", textfont={"size": 10}, hovertext=hover, hoverinfo="text",
                marker={"size": 26, "color": [self.scores[n] for n in self.nodes], "colorscale": "YlOrRd", "cmin": 0.0,
                        "cmax": 1.0, "showscale": True, "colorbar": {"title": {"text": "anomaly"}, "thickness": 12},
                        "line": {"width": [4.0 if n == self._target else 1.0 for n in self.nodes], "color": "#24292f"}},
            ),
        ])  # fmt: skip
        layers = {y for _, y in self.positions.values()}
        fig.update_layout(
            title={"text": f"causal graph of {self.case.id}", "font": {"size": 13}},
            height=max(320, 110 * len(layers) + 80), margin={"l": 10, "r": 10, "t": 40, "b": 10},
            showlegend=False, plot_bgcolor="white", annotations=self._arrows(), clickmode="event",
            xaxis={"visible": False}, yaxis={"visible": False, "range": [min(layers, default=0) - 0.6, 0.5]},
            dragmode="pan",
        )  # fmt: skip
        return fig

    # behaviour
    def highlight(self, hypothesis: Hypothesis | None) -> list[tuple[str, str]]:
        """Draw *hypothesis*' evidence chain in red (``None`` clears it); return the chain."""
        self.highlighted, self._target = self._chain(hypothesis)
        old = self._box.children[0]
        self.figure, view = self._widget()
        self._box.children = (view,)
        old.close()
        return self.highlighted

    def _chain(self, hypothesis: Hypothesis | None) -> tuple[list[tuple[str, str]], str | None]:
        if hypothesis is None:
            return [], None
        return (evidence_chain(hypothesis, self.graph, self.scores, self.case),
                node_of(hypothesis.entity, self.graph, self.case))

    def select(self, node: str, *, notify: bool = True) -> None:
        """Show *node*'s signals in the detail panel, show it in the picker, and (with *notify*)
        tell the listeners.

        Raises:
            KeyError: for a node the graph does not have.
        """
        if node not in self.graph:
            raise KeyError(node)
        self.selected = node
        self._picking = True
        try:
            self.picker.value = node
        finally:
            self._picking = False
        self.detail.show(node)
        if notify:
            for fn in self._click_listeners:
                fn(node)

    def on_select(self, fn: Callable[[str], None]) -> None:
        """Call *fn(node)* whenever a node is selected (clicked)."""
        self._click_listeners.append(fn)

    def _on_pick(self, change: dict[str, Any]) -> None:
        if not self._picking and change["new"] is not None:
            self.select(change["new"])

    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        inds = list(getattr(points, "point_inds", []) or [])
        if inds:
            self.select(self.nodes[inds[0]])
