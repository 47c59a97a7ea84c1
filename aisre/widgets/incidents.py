"""The incident list: the case's alerts triaged into incidents, most user impact first."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from aisre.case import Case
from aisre.triage import Incident, TriageResult, triage
from aisre.widgets._util import esc, when

__all__ = ["IncidentList"]


class IncidentList(w.VBox):
    """Incidents from :func:`aisre.triage.triage` over ``case.alerts``.

    Attributes: ``result`` (the TriageResult), ``incidents`` (its list), ``select`` (a Select
    whose value is the incident's index, ``None`` when there is none) and ``detail`` (HTML of the
    selected incident's reasons).
    """

    def __init__(self, case: Case, *, result: TriageResult | None = None) -> None:
        self.case = case
        self.result = result if result is not None else triage(case.alerts, case.topology)
        self.incidents: list[Incident] = list(self.result.incidents)
        self._listeners: list[Callable[[Incident], None]] = []
        options = [(self._label(i), n) for n, i in enumerate(self.incidents)]
        self.select = w.Select(options=options, value=0 if options else None, rows=min(6, max(2, len(options))),
                               layout=w.Layout(width="100%"))
        self.detail = w.HTML()
        self.select.observe(self._on_select, names="value")
        head = w.HTML(f"<b>incidents</b>: {len(self.incidents)} from {len(case.alerts)} alerts"
                      f" ({len(self.result.suppressed)} suppressed)")
        super().__init__([head, self.select, self.detail] if self.incidents else [head, self.detail])
        self.add_class("aisre-incidents")
        self._show()

    @staticmethod
    def _label(i: Incident) -> str:
        state = "open" if i.closed is None else "closed"
        return f"{i.id} · {i.severity} · impact {i.impact:.0f} · {', '.join(i.services[:3])} · {state}"

    @property
    def selected(self) -> Incident | None:
        """The selected incident, or ``None``."""
        return None if self.select.value is None else self.incidents[self.select.value]

    def on_select(self, fn: Callable[[Incident], None]) -> None:
        """Call *fn(incident)* whenever another incident is selected."""
        self._listeners.append(fn)

    def _show(self) -> None:
        inc = self.selected
        if inc is None:
            self.detail.value = "<p>no incident: the case has no alert that triage keeps</p>"
            return
        reasons = "".join(f"<li>{esc(r)}</li>" for r in inc.reasons)
        self.detail.value = (
            f"<p><b>{esc(inc.id)}</b> opened {when(inc.opened)}, "
            f"{'still open' if inc.closed is None else 'closed ' + when(inc.closed)}; "
            f"services {esc(', '.join(inc.services))}; {len(inc.alerts)} alerts, "
            f"{len(inc.symptoms)} symptoms suppressed</p><ul>{reasons}</ul>"
        )

    def _on_select(self, _change: object) -> None:
        self._show()
        inc = self.selected
        if inc is not None:
            for fn in self._listeners:
                fn(inc)
