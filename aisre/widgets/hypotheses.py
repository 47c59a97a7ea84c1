"""The hypotheses table: ranked root causes with their confidence and evidence; selecting a row
tells the listeners (the workbench highlights that hypothesis in the causal graph)."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from aisre.case import Hypothesis, Ranking
from aisre.widgets._util import esc, when

__all__ = ["HypothesisTable"]

SHOWN = 10
"""Hypotheses listed (the best first)."""


class HypothesisTable(w.VBox):
    """The ranking as a selectable table.

    Attributes: ``ranking``, ``hypotheses`` (the rows), ``table`` (HTML of every row's scores,
    folded), ``select``
    (a Select whose value is the row index, ``None`` when the ranker abstained) and ``evidence``
    (HTML of the selected row's evidence).
    """

    def __init__(self, ranking: Ranking) -> None:
        self.ranking = ranking
        self.hypotheses: list[Hypothesis] = list(ranking.hypotheses[:SHOWN])
        self._listeners: list[Callable[[Hypothesis | None], None]] = []
        options = [(f"#{n + 1} {h.entity} ({h.fault or 'fault unknown'}) · confidence {h.confidence:.2f}", n)
                   for n, h in enumerate(self.hypotheses)]
        self.select = w.Select(options=options, value=0 if options else None, rows=min(SHOWN, max(2, len(options))),
                               description="select", layout=w.Layout(width="100%"))
        self.table = w.HTML(self._table())
        self.evidence = w.HTML(layout=w.Layout(max_height="260px", overflow="auto"))
        self.select.observe(self._on_select, names="value")
        head = f"<b>root-cause hypotheses</b> ({esc(ranking.method)}, {ranking.seconds:.1f} s)"
        if ranking.abstained:
            head += f": abstained ({esc(ranking.reason)})"
        super().__init__([w.HTML(head), self.select, self.evidence, self.table])
        self.add_class("aisre-hypotheses")
        self._show()

    def _table(self) -> str:
        rows = "".join(
            f"<tr><td>{n + 1}</td><td>{esc(h.entity)}</td><td>{esc(h.fault or '-')}</td><td>{h.confidence:.2f}</td>"
            f"<td>{h.score:.3g}</td><td>{len(h.evidence)}</td><td>{esc(h.evidence[0].text if h.evidence else '')}</td></tr>"
            for n, h in enumerate(self.hypotheses)
        )
        return (f"<details><summary>scores of all {len(self.hypotheses)} hypotheses</summary>"
                "<table><thead><tr><th>#</th><th>entity</th><th>fault</th><th>confidence</th><th>score</th>"
                f"<th>evidence</th><th>first evidence</th></tr></thead><tbody>{rows}</tbody></table></details>")

    @property
    def selected(self) -> Hypothesis | None:
        """The selected hypothesis, or ``None``."""
        return None if self.select.value is None else self.hypotheses[self.select.value]

    def on_select(self, fn: Callable[[Hypothesis | None], None]) -> None:
        """Call *fn(hypothesis)* whenever the selection changes."""
        self._listeners.append(fn)

    def _show(self) -> None:
        h = self.selected
        if h is None:
            self.evidence.value = "<p>no hypothesis to show</p>"
            return
        items = "".join(
            f"<li><code>{esc(e.signal)}</code> {esc(e.text or e.entity)}"
            f"{' (onset ' + when(e.onset) + ')' if e.onset is not None else ''}</li>"
            for e in h.evidence
        ) or "<li>no evidence recorded</li>"
        self.evidence.value = (f"<p><b>{esc(h.entity)}</b> ({esc(h.fault or 'fault unknown')}), confidence "
                               f"{h.confidence:.2f}</p><ul>{items}</ul>")

    def _on_select(self, _change: object) -> None:
        self._show()
        for fn in self._listeners:
            fn(self.selected)
