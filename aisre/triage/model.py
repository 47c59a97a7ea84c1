"""The triage results (:class:`Incident`, :class:`Suppressed`, :class:`TriageResult`), each
printing as text in a terminal and as HTML in a notebook."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from aisre.errors import UsageError


def _when(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass
class Suppressed:
    """An alert kept out of the incidents, and why (in words)."""

    fingerprint: str
    reason: str
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"fingerprint", "reason"}``."""
        return {"fingerprint": self.fingerprint, "reason": self.reason}


@dataclass
class Incident:
    """Alerts that belong together, with the words that say why.

    ``services`` starts with the likely origin (the service every link leads to), ``alerts``
    lists fingerprints (symptoms suppressed in favour of their cause are in ``symptoms``),
    ``closed`` is ``None`` while any alert is firing, ``impact`` orders incidents.
    """

    id: str
    services: list[str]
    alerts: list[str]
    severity: str
    opened: float
    closed: float | None
    reasons: list[str]
    impact: float = 0.0
    symptoms: list[str] = field(default_factory=list)
    episodes: int = 0
    notifications: int = 0

    @property
    def origin(self) -> str:
        """The likely origin service: the first of ``services``."""
        return self.services[0] if self.services else ""

    @property
    def is_open(self) -> bool:
        """True while any of the incident's alerts is firing."""
        return self.closed is None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract: id, services, alerts, severity, opened, closed, reasons."""
        return {
            "id": self.id,
            "services": list(self.services),
            "alerts": list(self.alerts),
            "severity": self.severity,
            "opened": self.opened,
            "closed": self.closed,
            "reasons": list(self.reasons),
        }

    def _headline(self) -> str:
        state = "open" if self.closed is None else f"closed {_when(self.closed)}"
        return (
            f"{self.id}  {self.severity:<8} impact {self.impact:>5.0f}  opened {_when(self.opened)}  {state}\n"
            f"    services: {', '.join(self.services)}\n"
            f"    {len(self.alerts)} alerts ({len(self.symptoms)} symptoms suppressed, "
            f"{self.notifications} notifications)"
        )

    def __str__(self) -> str:
        return "\n".join([self._headline(), *(f"    - {r}" for r in self.reasons[:8])]) + (
            f"\n    - ... and {len(self.reasons) - 8} more" if len(self.reasons) > 8 else ""
        )

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        state = "open" if self.closed is None else f"closed {_when(self.closed)}"
        return (
            f"<p><b>{html.escape(self.id)}</b> · {html.escape(self.severity)} · impact {self.impact:.0f} · "
            f"opened {_when(self.opened)} · {state}<br>services: {html.escape(', '.join(self.services))}"
            f"<br>{len(self.alerts)} alerts, {len(self.symptoms)} symptoms suppressed</p><ul>{items}</ul>"
        )


@dataclass
class TriageResult:
    """Incidents ranked by user impact (highest first), the suppressed alerts, and the episode
    table (one row per deduplicated alert episode: ``fingerprint, start, end, resolved,
    service, alertname, severity, kind, notifications, incident, suppressed``)."""

    incidents: list[Incident]
    suppressed: list[Suppressed]
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    alerts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"incidents": [...], "suppressed": [{"fingerprint", "reason"}]}``."""
        return {
            "incidents": [i.to_dict() for i in self.incidents],
            "suppressed": [s.to_dict() for s in self.suppressed],
        }

    def incident(self, incident_id: str) -> Incident:
        """Return the incident with *incident_id*.

        Raises:
            UsageError: when no incident has that id.
        """
        for inc in self.incidents:
            if inc.id == incident_id:
                return inc
        raise UsageError(f"no incident {incident_id!r}; known: {', '.join(i.id for i in self.incidents[:10])}")

    def __len__(self) -> int:
        return len(self.incidents)

    def __str__(self) -> str:
        head = (
            f"{len(self.incidents)} incidents from {self.alerts} alerts "
            f"({len(self.episodes)} after deduplication, {len(self.suppressed)} suppressed)"
        )
        parts = [head, *(str(i) for i in self.incidents[:20])]
        if len(self.incidents) > 20:
            parts.append(f"... and {len(self.incidents) - 20} more incidents")
        if self.suppressed:
            parts.append("suppressed:")
            parts.extend(f"    {s.fingerprint}  {s.reason}" for s in self.suppressed[:10])
            if len(self.suppressed) > 10:
                parts.append(f"    ... and {len(self.suppressed) - 10} more")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(c))}</td>"
                for c in (
                    i.id, i.severity, f"{i.impact:.0f}", _when(i.opened),
                    "open" if i.closed is None else _when(i.closed),
                    ", ".join(i.services), len(i.alerts), i.reasons[0] if i.reasons else "",
                )
            )
            + "</tr>"
            for i in self.incidents[:50]
        )
        supp = "".join(
            f"<tr><td>{html.escape(s.fingerprint)}</td><td>{html.escape(s.reason)}</td></tr>"
            for s in self.suppressed[:50]
        )
        return (
            f"<p><b>{len(self.incidents)} incidents</b> from {self.alerts} alerts, "
            f"{len(self.suppressed)} suppressed</p>"
            "<table><thead><tr><th>id</th><th>severity</th><th>impact</th><th>opened</th><th>closed</th>"
            f"<th>services</th><th>alerts</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
            + (
                f"<details><summary>suppressed</summary><table><tbody>{supp}</tbody></table></details>"
                if supp
                else ""
            )
        )
