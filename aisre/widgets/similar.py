"""Similar past incidents from the incident memory, each with why it matched.

The memory is optional: without it (not installed, or nothing remembered yet) the view says
"no memory yet" and the workbench works on.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from aisre.case import Case, Ranking
from aisre.errors import AisreError
from aisre.widgets._util import esc, when

__all__ = ["SimilarIncidents", "find_similar"]


def find_similar(case: Case, ranking: Ranking | None, k: int = 5) -> tuple[list[Any], str]:
    """Return ``(matches, note)``: the *k* most similar remembered incidents, best first, and a
    note when there are none (memory missing, empty, or unreadable)."""
    try:
        from aisre.memory import Memory
    except ImportError:
        return [], "no memory yet: the incident memory is not available in this installation"
    try:
        matches = list(Memory().similar(case, ranking, k=k))
    except AisreError as exc:
        return [], f"no memory yet: {exc}"
    return matches, "" if matches else "no memory yet: no past incident is remembered"


def _get(m: Any, *names: str) -> Any:
    for n in names:
        v = m.get(n) if isinstance(m, dict) else getattr(m, n, None)
        if v not in (None, ""):
            return v
    return None


class SimilarIncidents(w.VBox):
    """Past incidents like this one. Attributes: ``matches`` and ``note`` (why it is empty)."""

    def __init__(self, case: Case, ranking: Ranking | None, *, k: int = 5,
                 matches: list[Any] | None = None) -> None:
        if matches is None:
            self.matches, self.note = find_similar(case, ranking, k)
        else:
            self.matches, self.note = list(matches), "" if matches else "no memory yet: no past incident is remembered"
        self.html = w.HTML(self._html())
        super().__init__([self.html])
        self.add_class("aisre-similar")

    def _html(self) -> str:
        if not self.matches:
            return f"<p><b>similar past incidents</b>: {esc(self.note)}</p>"
        rows = []
        for m in self.matches:
            sim = _get(m, "similarity", "score")
            cause = _get(m, "cause", "suspect") or "-"
            fault = _get(m, "fault")
            actions = _get(m, "actions") or []
            acts = ", ".join(
                f"{esc(_get(a, 'action', 'name') or a)} {esc(_get(a, 'target') or '')}".strip() for a in actions
            ) if isinstance(actions, list) else esc(actions)
            created = _get(m, "created")
            date = when(created) if isinstance(created, (int, float)) and created > 0 else ""
            score = f"{float(sim):.2f}" if isinstance(sim, (int, float)) else "-"
            rows.append(
                f"<tr><td>{esc(_get(m, 'incident_id', 'id') or '-')}</td><td>{esc(_get(m, 'case_id') or '')}</td>"
                f"<td>{date}</td><td>{score}</td><td>{esc(cause)}{' (' + esc(fault) + ')' if fault else ''}</td>"
                f"<td>{esc(_get(m, 'status') or '')}</td><td>{acts}</td><td>{esc(_get(m, 'why') or '')}</td></tr>"
            )
        return ("<p><b>similar past incidents</b></p><table><thead><tr><th>incident</th><th>case</th><th>when</th>"
                "<th>similarity</th><th>cause</th><th>status</th><th>actions</th><th>why</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table>")
