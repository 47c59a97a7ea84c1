"""The timeline view: every source's rows in one zoomable figure, filtered by source and entity.

A change of filter rebuilds the figure from :meth:`aisre.timeline.Timeline.figure` over the
remaining rows, so the view shows exactly what the library would draw for them. The figure is
drawn into an Output widget as plotly's MIME bundle (plotly.js zooms and pans it in the page);
a FigureWidget is not used here because its Python-side updates do not reach the page under
voila with plotly 6+ (anywidget), while a re-rendered Output always does.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go

from aisre.case import Case, Ranking
from aisre.timeline import Timeline, timeline
from aisre.widgets._util import esc, show_figure, when

__all__ = ["ALL", "TimelineView"]

ALL = "(all entities)"
"""The entity choice that keeps every entity."""

ROWS_SHOWN = 40
"""Rows of the filtered table listed under the figure."""


class TimelineView(w.VBox):
    """The case's timeline with filters.

    Attributes: ``timeline`` (the full :class:`~aisre.timeline.Timeline`), ``sources``
    (SelectMultiple), ``entity`` (Dropdown), ``zoom`` (ToggleButtons: ``window`` or
    ``detection``), ``figure`` (the plotly Figure shown), ``plot`` (the Output showing it), ``rows`` (HTML list of the filtered rows) and
    ``table`` (the filtered rows).
    """

    def __init__(self, case: Case, ranking: Ranking | None = None, *, tl: Timeline | None = None) -> None:
        self.case = case
        self.timeline = tl if tl is not None else timeline(case, ranking=ranking)
        full = self.timeline.table
        sources = sorted(set(full["source"].astype(str)))
        self.sources = w.SelectMultiple(options=sources, value=tuple(sources), rows=min(6, max(2, len(sources))),
                                        description="sources", layout=w.Layout(width="240px"))
        self.entity = w.Dropdown(options=[ALL, *self.timeline.entities()], value=ALL, description="entity",
                                 layout=w.Layout(width="320px"))
        zooms = ["window"] + (["detection"] if case.detected_at is not None else [])
        self.zoom = w.ToggleButtons(options=zooms, value="window", description="zoom",
                                    tooltips=["the whole case window", "ten minutes around detection"][: len(zooms)])
        self.figure = go.Figure()
        self.plot = w.Output(layout=w.Layout(width="100%"))
        self.rows = w.HTML()
        self.table: pd.DataFrame = full
        self._range: list[float] | None = None
        for control in (self.sources, self.entity):
            control.observe(self._on_filter, names="value")
        self.zoom.observe(self._on_zoom, names="value")
        box = w.Box([self.plot], layout=w.Layout(width="100%"))
        box.add_class("aisre-timeline")
        super().__init__([w.HBox([self.sources, w.VBox([self.entity, self.zoom])]), box, self.rows])
        self.refresh()

    def filtered(self) -> pd.DataFrame:
        """Return the timeline rows the filters keep, in time order."""
        t = self.timeline.table
        keep = t["source"].astype(str).isin(set(self.sources.value))
        if self.entity.value != ALL:
            keep &= t["entity"].astype(str) == self.entity.value
        return t[keep]

    def refresh(self) -> None:
        """Rebuild the figure and the row list from the current filters."""
        self.table = self.filtered()
        fig = Timeline(self.table, case_id=self.case.id, ranking=self.timeline.ranking).figure()
        if self.table.empty:
            fig.add_annotation(text="no rows for these filters", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 40}, height=min(fig.layout.height or 300, 700))
        x = self._xrange()
        if x is not None:
            fig.update_xaxes(range=x, autorange=False)
        self.figure = fig
        show_figure(self.plot, fig)
        lines = "".join(
            f"<tr><td>{when(r.time)}</td><td>{esc(r.source)}</td><td>{esc(r.entity)}</td>"
            f"<td>{'x' + str(r.count) if r.count > 1 else ''}</td><td>{esc(r.summary)}</td></tr>"
            for r in self.table.head(ROWS_SHOWN).itertuples()
        )
        more = f"<p>... and {len(self.table) - ROWS_SHOWN} more rows</p>" if len(self.table) > ROWS_SHOWN else ""
        self.rows.value = (
            f"<details><summary>{len(self.table)} of {len(self.timeline.table)} rows</summary>"
            f"<table><thead><tr><th>time</th><th>source</th><th>entity</th><th>n</th><th>summary</th></tr></thead>"
            f"<tbody>{lines}</tbody></table>{more}</details>"
        )

    def _xrange(self) -> list[pd.Timestamp] | None:
        """The x range to show: the zoom set, else the case window (``None``: let plotly fit)."""
        lo, hi = self._range if self._range is not None else self.case.window
        return [pd.to_datetime(t, unit="s", utc=True) for t in (lo, hi)] if hi > lo else None

    def set_range(self, start: float | None, end: float | None = None) -> None:
        """Zoom the x axis to ``[start, end]`` (unix seconds); ``None`` shows the case window."""
        self._range = None if start is None or end is None else [float(start), float(end)]
        x = self._xrange()
        self.figure.layout.xaxis.range = x
        self.figure.layout.xaxis.autorange = x is None
        show_figure(self.plot, self.figure)

    def show_entities(self, entities: Sequence[str]) -> None:
        """Filter to the first of *entities* the timeline has (all entities when none is)."""
        for e in entities:
            if e in self.entity.options:
                self.entity.value = e
                return
        self.entity.value = ALL

    def _on_filter(self, _change: object) -> None:
        self.refresh()

    def _on_zoom(self, change: dict) -> None:
        if change["new"] == "detection" and self.case.detected_at is not None:
            self.set_range(self.case.detected_at - 300.0, self.case.detected_at + 300.0)
        else:
            self.set_range(None)
