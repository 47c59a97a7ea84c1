"""Reports: papermill runs of ``notebooks/*.ipynb`` written as ``.ipynb``, ``.html`` and ``.md``.

The postmortem notebook is thin: it calls :func:`postmortem_facts`, which gathers every section
(summary, impact, detection, timeline, root cause and trigger, contributing factors, remediation
with policy decisions, action items with owners, lessons) from the public API, so the content is
tested here and the notebook only lays it out. The HTML embeds plotly.js, so its figures render
with no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from aisre.case import Case, Plan, Ranking, load_case, save_case
from aisre.errors import DataError, UsageError

__all__ = ["Postmortem", "Report", "incident_slug", "notebook_path", "postmortem_facts", "run_notebook", "write_postmortem"]

POSTMORTEM_SECTIONS = (
    "Summary", "Impact", "Detection", "Timeline", "Root cause and trigger",
    "Contributing factors", "Remediation", "Action items", "Lessons",
)  # fmt: skip
"""The sections every postmortem has, in order."""


@dataclass
class Report:
    """The files of one written report."""

    folder: Path
    ipynb: Path
    html: Path
    md: Path

    def to_dict(self) -> dict[str, str]:
        """Return the paths as strings."""
        return {k: str(v) for k, v in self.__dict__.items()}


def notebook_path(name: str) -> Path:
    """Return the path of the shipped notebook *name* (``postmortem`` or ``postmortem.ipynb``).

    ``$AISRE_NOTEBOOKS`` overrides the folder.

    Raises:
        UsageError: when no such notebook exists.
    """
    folder = Path(os.environ.get("AISRE_NOTEBOOKS") or Path(__file__).resolve().parents[1] / "notebooks")
    path = folder / (name if name.endswith(".ipynb") else f"{name}.ipynb")
    if not path.is_file():
        raise UsageError(f"no notebook {path.name} in {folder}")
    return path


def run_notebook(name: str, out_dir: str | Path, parameters: dict[str, Any], *, stem: str | None = None,
                 hide_input: bool = True, timeout: float = 600.0) -> Report:
    """Execute notebook *name* with papermill into *out_dir* and export HTML and Markdown.

    Returns the written :class:`Report`.

    Raises:
        UsageError: for an unknown notebook.
        DataError: when the notebook fails; the message names the failing cell's error.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter, MarkdownExporter

    source = notebook_path(name)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or source.stem
    ipynb = folder / f"{stem}.ipynb"
    try:
        pm.execute_notebook(str(source), str(ipynb), parameters=parameters, progress_bar=False,
                            kernel_name="python3", execution_timeout=timeout, cwd=str(folder))
    except pm.PapermillExecutionError as exc:
        raise DataError(f"notebook {source.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", path=ipynb) from exc
    nb = nbformat.read(ipynb, as_version=4)
    html_body, _ = HTMLExporter(exclude_input=hide_input, exclude_input_prompt=True,
                                exclude_output_prompt=True).from_notebook_node(nb)
    html = folder / f"{stem}.html"
    html.write_text(html_body)
    md_body, _ = MarkdownExporter(exclude_input=hide_input).from_notebook_node(_without_html(nb))
    md = folder / f"{stem}.md"
    md.write_text(md_body)
    return Report(folder=folder, ipynb=ipynb, html=html, md=md)


def _without_html(nb: Any) -> Any:
    """Return a copy of *nb* whose HTML-only outputs (plotly figures) become a short note, so the
    Markdown report stays small and readable."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data and "text/markdown" not in data:
                output["data"] = {"text/markdown": "*(figure: see the HTML report)*"}
    return nb


def write_postmortem(case: Case | str | Path, *, out: str | Path | None = None, method: str = "aisre",
                     policy: str | None = None, env: str = "production") -> Report:
    """Write the postmortem of *case* (a Case or a Case folder) as .ipynb, .html and .md.

    The default folder is ``./reports/<incident-id>/``. Returns the :class:`Report`.

    Raises:
        DataError: when the case cannot be read or the notebook fails.
    """
    if isinstance(case, Case):
        folder = Path(out) if out else Path("reports") / incident_slug(case.id)
        case_dir = save_case(case, folder / "case")
    else:
        case_dir = Path(case)
        loaded = load_case(case_dir)
        folder = Path(out) if out else Path("reports") / incident_slug(loaded.id)
    params = {"case_path": str(Path(case_dir).resolve()), "method": method, "policy": policy, "env": env}
    return run_notebook("postmortem", folder, params, stem="postmortem")


def incident_slug(case_id: str) -> str:
    """Return the folder name a report of *case_id* is written to (``reports/<slug>/``)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in case_id).strip("-") or "incident"


# --------------------------------------------------------------------------- the facts


@dataclass
class Postmortem:
    """Every section of a blameless postmortem, as Markdown, plus its figures."""

    title: str
    sections: dict[str, str] = field(default_factory=dict)
    figures: dict[str, go.Figure] = field(default_factory=dict)
    ranking: Ranking | None = None
    plan: Plan | None = None

    def markdown(self) -> str:
        """Return the whole postmortem as one Markdown document (figures left out)."""
        parts = [f"# {self.title}"]
        parts += [f"## {name}\n\n{self.sections.get(name, '')}" for name in POSTMORTEM_SECTIONS]
        return "\n\n".join(parts)


def _utc(t: float | None) -> str:
    if t is None:
        return "unknown"
    return datetime.fromtimestamp(float(t), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _owner(case: Case, entity: str) -> str:
    if case.topology is not None and entity in case.topology:
        owner = case.topology.node(entity).get("owner")
        if owner:
            return str(owner)
    return f"team-{entity}"


def postmortem_facts(case: Case, *, method: str = "aisre", policy: str | None = None,
                     env: str = "production") -> Postmortem:
    """Gather every postmortem section for *case* from the public API.

    Returns a :class:`Postmortem` with Markdown per section and plotly figures
    (``timeline``, ``signals``).

    Raises:
        UsageError: for an unknown ranking method.
    """
    from aisre.rank import get_ranker

    ranking = get_ranker(method).rank(case)
    pm = Postmortem(title=f"Postmortem: {case.id}", ranking=ranking)
    top = ranking.hypotheses[0] if ranking.hypotheses and not ranking.abstained else None
    start, end = case.window
    truth = case.truth

    cause = f"**{top.entity}**" + (f" ({top.fault})" if top and top.fault else "") if top else "not determined"
    pm.sections["Summary"] = (
        f"Incident `{case.id}` on {case.system or 'the system'}, {_utc(start)} to {_utc(end)}. "
        f"The most likely root cause is {cause}"
        + (f", confidence {top.confidence:.2f}." if top else f": the ranker abstained ({ranking.reason}).")
    )
    pm.sections["Impact"] = _impact(case)
    first_alert = min((a.starts_at for a in case.alerts), default=None)
    detect_lines = [f"- Detected at {_utc(case.detected_at)}."]
    if first_alert is not None:
        detect_lines.append(f"- First alert at {_utc(first_alert)}; {len(case.alerts)} alerts in all.")
    if truth is not None and truth.inject_time is not None and case.detected_at is not None:
        detect_lines.append(f"- Time to detect: {case.detected_at - truth.inject_time:.0f} s after the fault began.")
    pm.sections["Detection"] = "\n".join(detect_lines)

    timeline_table, timeline_fig = _timeline(case, ranking)
    pm.sections["Timeline"] = timeline_table
    if timeline_fig is not None:
        pm.figures["timeline"] = timeline_fig
    pm.figures["signals"] = signals_figure(case, [h.entity for h in ranking.hypotheses[:3]])

    lines = []
    for i, h in enumerate(ranking.hypotheses[:3], 1):
        lines.append(f"{i}. **{h.entity}**" + (f" ({h.fault})" if h.fault else "") + f", confidence {h.confidence:.2f}")
        lines += [f"   - {e.text or e.signal}" for e in h.evidence[:4]]
    if truth is not None:
        verdict = "matches" if top and top.entity == truth.service else "differs from"
        lines.append(f"\nGround truth (known for this case): {truth.service} ({truth.fault}); the first hypothesis {verdict} it.")
    trigger = _trigger(case)
    if trigger:
        lines.append(f"\nTrigger: {trigger}")
    pm.sections["Root cause and trigger"] = "\n".join(lines) or "No hypothesis."

    others = [h.entity for h in ranking.hypotheses[1:6]]
    pm.sections["Contributing factors"] = (
        "Other services that moved: " + ", ".join(others) + "." if others else "No other service moved."
    )
    pm.plan, pm.sections["Remediation"] = _remediation(case, ranking, policy, env)
    items = []
    if top:
        items.append(f"- [ ] Fix the {top.fault or 'fault'} in {top.entity} (owner: {_owner(case, top.entity)}).")
        items.append(f"- [ ] Add a saturation alert on {top.entity} so it pages before its callers do (owner: {_owner(case, top.entity)}).")
    items.append("- [ ] Review this postmortem in the weekly incident review (owner: on-call lead).")
    pm.sections["Action items"] = "\n".join(items)
    pm.sections["Lessons"] = (
        "- What went well: the alerts were grouped into one incident and the root cause was ranked with its evidence.\n"
        "- What to improve: alert on the cause (saturation at the root) rather than the symptom (latency at the edge)."
    )
    return pm


def _impact(case: Case) -> str:
    m = case.metrics
    if m.empty:
        return "No metrics were recorded."
    entries = []
    if case.topology is not None:
        g = case.topology.call_graph()
        entries = [n for n in case.topology.services() if g.in_degree(n) == 0]
    rows = []
    for metric in ("error", "latency-90", "latency-50"):
        sel = m[(m["metric"] == metric) & (m["entity"].isin(entries) if entries else True)]
        if not sel.empty:
            peak = sel.loc[sel["value"].idxmax()]
            rows.append(f"- Peak {metric} at {peak['entity']}: {peak['value']:.3g} at {_utc(peak['time'])}.")
    services = sorted({a.service for a in case.alerts if a.service})
    if services:
        rows.append(f"- Services alerting: {', '.join(services)}.")
    return "\n".join(rows) or "No user-facing signal moved."


def _trigger(case: Case) -> str:
    ev = case.events
    if ev.empty:
        return ""
    changes = ev[ev["kind"].isin(["deploy", "config"])]
    if changes.empty:
        return ""
    row = changes.iloc[0]
    return f"{row['kind']} of {row['entity']} at {_utc(row['time'])}: {row['message']}"


def _timeline(case: Case, ranking: Ranking) -> tuple[str, go.Figure | None]:
    try:
        from aisre.timeline import timeline
    except ImportError:
        return _events_table(case), None
    tl = timeline(case, ranking=ranking)
    table = tl.table if hasattr(tl, "table") else pd.DataFrame()
    if table.empty:
        return "Nothing happened in the window.", tl.figure()
    shown = table.head(25).copy()
    shown["time"] = shown["time"].map(_utc)
    cols = [c for c in ("time", "source", "entity", "summary", "count") if c in shown.columns]
    return _md_table(shown[cols]), tl.figure()


def _events_table(case: Case) -> str:
    if case.events.empty:
        return "No events were recorded."
    shown = case.events.head(25).copy()
    shown["time"] = shown["time"].map(_utc)
    return _md_table(shown[["time", "entity", "kind", "reason", "message"]])


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    body = "\n".join("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |" for row in frame.itertuples(index=False))
    return f"{head}\n{body}"


def _remediation(case: Case, ranking: Ranking, policy: str | None, env: str) -> tuple[Plan | None, str]:
    try:
        from aisre.remediate import plan as make_plan
    except ImportError:
        return None, "No remediation planner is installed."
    plan = make_plan(case, ranking, policy=policy, env=env)
    if not plan.steps:
        return plan, "No remediation was proposed."
    rows = ["| step | action | target | decision | policies | reasons |", "|---|---|---|---|---|---|"]
    for s in plan.steps:
        d = s.decision
        rows.append(f"| {s.id} | {s.action.name} | {s.action.target} | {d.decision if d else '-'} | "
                    f"{', '.join(d.policies) if d else ''} | {'; '.join(d.reasons) if d else ''} |")
    note = "\n\nAll steps were planned as a dry run; nothing was executed." if plan.dry_run else ""
    return plan, "\n".join(rows) + note


def signals_figure(case: Case, entities: list[str]) -> go.Figure:
    """Return a plotly figure of the key signals of *entities*: each series as its robust
    deviation from normal (median and MAD of the data before detection), so series of any unit
    compare and quiet ones stay flat. The detection and, where known, the inject time are marked.
    """
    fig = go.Figure()
    m = case.metrics
    wanted = ("cpu", "mem", "latency-90", "error", "latency", "lat_90")
    sel = m[m["entity"].isin(entities) & m["metric"].isin(wanted)]
    start, end = case.window
    cut = case.detected_at if case.detected_at is not None else start + (end - start) / 3
    for (entity, metric), part in sel.groupby(["entity", "metric"], sort=True):
        v = part["value"].to_numpy(dtype=float)
        normal = v[part["time"].to_numpy() < cut - 60]
        if normal.size < 3:
            normal = v[: max(3, v.size // 3)]
        med = float(pd.Series(normal).median())
        mad = float((pd.Series(normal) - med).abs().median()) * 1.4826
        scale = max(mad, abs(med) * 0.01, 1e-9)
        fig.add_trace(go.Scatter(x=pd.to_datetime(part["time"], unit="s"), y=((v - med) / scale).clip(-50, 50),
                                 mode="lines", name=f"{entity}:{metric}"))
    marks = [("detected", case.detected_at)]
    if case.truth is not None:
        marks.append(("fault began", case.truth.inject_time))
    for i, (label, t) in enumerate(marks):
        if t is not None:
            x = pd.to_datetime(t, unit="s")
            fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line={"dash": "dot"})
            fig.add_annotation(x=x, y=1 - 0.08 * i, yref="paper", text=label, showarrow=False, xanchor="left")
    fig.update_layout(title="Key signals of the top hypotheses (robust deviation from normal, clipped at 50)",
                      height=380, margin={"l": 40, "r": 10, "t": 40, "b": 30})
    return fig


def read_json(path: str | Path) -> Any:
    """Return the JSON document at *path*.

    Raises:
        DataError: when the file is missing or not JSON.
    """
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read JSON: {exc}", path=path) from exc
