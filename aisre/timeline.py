"""One ordered table of what changed when, from every source of a :class:`~aisre.case.Case`.

Rows come from metric anomaly onsets (:func:`aisre.detect.detect`, the detector the ranker
uses, so both tell one story), log error
bursts (template and count), trace latency and error shifts per service, deploys and config
changes, Kubernetes events, alerts and remediation actions. Every row has ``time`` (first seen),
``source``, ``entity``, ``kind``, ``summary``, ``link`` (where the raw data is:
``metrics:<entity>:<metric>``, ``logs:<entity>:<template>``, ``spans:<service>``,
``events:<row>``, ``changes:<id>``, ``alert:<fingerprint>``), ``count`` and ``last`` (last
seen): repeats of one source/entity/kind closer than ``collapse_gap`` seconds are one row.

Trace shifts use the same split as the metrics: the normal period ends :data:`GUARD` seconds
before the detection time (or a third into the case without one).
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Ranking
from aisre.detect import ONSET_Z, detect
from aisre.errors import DataError, UsageError

__all__ = ["COLUMNS", "SOURCES", "Timeline", "timeline"]

COLUMNS = ["time", "source", "entity", "kind", "summary", "link", "count", "last"]
"""Columns of the timeline table, in order."""

SOURCES = ("metric", "log", "trace", "deploy", "config", "change", "k8s", "alert", "remediation", "event")
"""Where a row can come from."""

GUARD = 120.0
"""Seconds before the detection time where the trace baseline ends (faults precede alerts)."""

_ERROR_LEVELS = re.compile(r"^(err|error|fatal|crit|critical|panic|severe|alert|emerg)", re.I)

_EVENT_SOURCE = {
    "deploy": "deploy", "config": "config", "k8s": "k8s", "scale": "k8s",
    "remediation": "remediation", "other": "event",
}  # fmt: skip


def _when(t: float) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _split_time(case: Case, times: np.ndarray) -> float:
    """End of the normal period: detection time less a guard, else a third into the data."""
    if case.detected_at is not None and math.isfinite(case.detected_at):
        return float(case.detected_at) - GUARD
    lo, hi = case.window
    if hi > lo:
        return lo + (hi - lo) / 3.0
    if times.size:
        return float(np.nanmin(times) + (np.nanmax(times) - np.nanmin(times)) / 3.0)
    return 0.0


# --------------------------------------------------------------------------- sources


def _metric_rows(case: Case) -> pd.DataFrame:
    """One row per metric series that :func:`aisre.detect.detect` found moving, at its onset."""
    if case.metrics.empty:
        return _empty()
    signals, _ = detect(case)
    m = signals[signals["signal"].astype(str).str.startswith("metric:")]
    m = m[np.isfinite(m["onset"].to_numpy(dtype="float64")) & (m["score"].to_numpy(dtype="float64") >= ONSET_Z)]
    if m.empty:
        return _empty()
    metric = m["signal"].astype(str).str.slice(len("metric:"))
    entity = m["entity"].astype(str)
    onset = m["onset"].to_numpy(dtype="float64")
    base = m["baseline"].to_numpy(dtype="float64")
    peak = m["peak"].to_numpy(dtype="float64")
    summary = [
        f"{met} on {ent} {'rose' if pk >= b else 'fell'} from {b:.4g} to {pk:.4g} (robust z {sc:.1f})"
        for met, ent, b, pk, sc in zip(metric, entity, base, peak, m["score"].to_numpy(dtype="float64"), strict=True)
    ]
    return pd.DataFrame(
        {
            "time": onset, "source": "metric", "entity": entity.to_numpy(), "kind": "anomaly onset",
            "summary": summary, "link": ("metrics:" + entity + ":" + metric).to_numpy(), "count": 1, "last": onset,
        }
    )  # fmt: skip


def _log_rows(case: Case) -> pd.DataFrame:
    logs = case.logs
    if logs.empty:
        return _empty()
    level = logs["level"].astype(str)
    err = logs[level.str.match(_ERROR_LEVELS)]
    if err.empty:
        return _empty()
    template = err["template"].where(err["template"].notna(), err["message"]).astype(str).str.slice(0, 200)
    frame = pd.DataFrame(
        {
            "time": err["time"].to_numpy(dtype="float64"),
            "source": "log",
            "entity": err["entity"].astype(str).to_numpy(),
            "kind": "error burst",
            "summary": template.to_numpy(),
            "link": ("logs:" + err["entity"].astype(str) + ":" + template).to_numpy(),
            "count": 1,
            "last": err["time"].to_numpy(dtype="float64"),
            "_key": template.to_numpy(),
        }
    )
    return frame


def _trace_rows(case: Case, bin_seconds: float = 30.0) -> pd.DataFrame:
    spans = case.spans
    if spans.empty:
        return _empty()
    s = spans.dropna(subset=["start", "duration", "service"])
    if s.empty:
        return _empty()
    t = s["start"].to_numpy(dtype="float64")
    split = _split_time(case, t)
    frame = pd.DataFrame(
        {
            "service": s["service"].astype(str).to_numpy(),
            "t": t,
            "d": s["duration"].to_numpy(dtype="float64"),
            "e": s["status"].astype(str).str.lower().eq("error").to_numpy(),
        }
    )
    frame["normal"] = frame["t"] < split
    base = frame[frame["normal"]].groupby("service").agg(p50=("d", "median"), p99=("d", lambda x: x.quantile(0.99)), err=("e", "mean"), n=("d", "size"))
    abn = frame[~frame["normal"]].assign(bin=lambda f: np.floor(f["t"] / bin_seconds) * bin_seconds)
    if abn.empty or base.empty:
        return _empty()
    abn = abn.merge(base[base["n"] >= 10].add_suffix("_base"), left_on="service", right_index=True, how="inner")
    if abn.empty:
        return _empty()
    # the onset is the first bad span in the first bad bin, not the bin's edge
    abn["t_slow"] = abn["t"].where(abn["d"] > 2.0 * abn["p50_base"])
    abn["t_err"] = abn["t"].where(abn["e"])
    per_bin = abn.groupby(["service", "bin"]).agg(
        p50=("d", "median"), err=("e", "mean"), n=("d", "size"), t_slow=("t_slow", "min"), t_err=("t_err", "min"),
        p50_base=("p50_base", "first"), p99_base=("p99_base", "first"), err_base=("err_base", "first"),
    ).reset_index()  # fmt: skip
    rows = []
    lat = per_bin[(per_bin["p50"] > 2.0 * per_bin["p50_base"]) & (per_bin["p50"] > per_bin["p99_base"]) & (per_bin["n"] >= 3)]
    for r in lat.sort_values("bin").drop_duplicates("service").itertuples():
        ratio = r.p50 / max(r.p50_base, 1e-12)
        rows.append((r.t_slow, "trace", r.service, "latency shift", f"median latency of {r.service} spans {r.p50:.3g} s vs {r.p50_base:.3g} s before ({ratio:.1f}x)", f"spans:{r.service}", 1, r.t_slow))
    err = per_bin[(per_bin["err"] >= per_bin["err_base"] + 0.1) & (per_bin["err"] >= 2 * per_bin["err_base"]) & (per_bin["n"] >= 3)]
    for r in err.sort_values("bin").drop_duplicates("service").itertuples():
        rows.append((r.t_err, "trace", r.service, "error shift", f"error rate of {r.service} spans {r.err:.0%} vs {r.err_base:.0%} before", f"spans:{r.service}", 1, r.t_err))
    return pd.DataFrame(rows, columns=COLUMNS) if rows else _empty()


def _event_rows(case: Case) -> pd.DataFrame:
    ev = case.events
    if ev.empty:
        return _empty()
    kind = ev["kind"].astype(str)
    reason = ev["reason"].where(ev["reason"].notna(), kind).astype(str)
    message = ev["message"].where(ev["message"].notna(), "").astype(str)
    summary = np.where(message.str.len() > 0, reason + ": " + message.str.slice(0, 160), reason)
    return pd.DataFrame(
        {
            "time": ev["time"].to_numpy(dtype="float64"),
            "source": kind.map(_EVENT_SOURCE).fillna("event").to_numpy(),
            "entity": ev["entity"].astype(str).to_numpy(),
            "kind": reason.to_numpy(),
            "summary": summary,
            "link": [f"events:{i}" for i in range(len(ev))],
            "count": 1,
            "last": ev["time"].to_numpy(dtype="float64"),
        }
    )


def _change_rows(case: Case) -> pd.DataFrame:
    if not case.changes:
        return _empty()
    rows = [
        (
            float(c.time), "change", c.service or "-", "deploy" if c.revision else "change",
            (f"{c.revision[:12]} " if c.revision else "") + (c.description or "change")[:160]
            + (f" by {c.author}" if c.author else ""),
            f"changes:{c.id}", 1, float(c.time),
        )
        for c in case.changes
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _alert_rows(case: Case) -> pd.DataFrame:
    if not case.alerts:
        return _empty()
    rows = []
    for a in case.alerts:
        name = (a.labels or {}).get("alertname") or "alert"
        svc = a.service or (a.labels or {}).get("service") or "-"
        what = (a.annotations or {}).get("summary") or ""
        rows.append((float(a.starts_at), "alert", svc, f"{name} firing", f"{name} ({a.severity}) firing on {svc}" + (f": {what}" if what else ""), f"alert:{a.fingerprint}", 1, float(a.starts_at)))
        if a.status == "resolved" and a.ends_at is not None:
            rows.append((float(a.ends_at), "alert", svc, f"{name} resolved", f"{name} resolved on {svc}", f"alert:{a.fingerprint}", 1, float(a.ends_at)))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # a repeated notification is the same alert firing: keep one row per alert and time
    return frame.drop_duplicates(["time", "kind", "link"])


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("time", "last") else ("int64" if c == "count" else "object")) for c in COLUMNS})


def _collapse(frame: pd.DataFrame, gap: float) -> pd.DataFrame:
    """Rows of one source/entity/kind (and log template) closer than *gap* become one row."""
    if frame.empty:
        return frame
    key = frame["_key"] if "_key" in frame else pd.Series([""] * len(frame), index=frame.index)
    frame = frame.assign(_key=key.astype(object).fillna("").astype(str))
    frame = frame.sort_values(["source", "entity", "kind", "_key", "time"], kind="stable").reset_index(drop=True)
    same = (
        frame[["source", "entity", "kind", "_key"]].eq(frame[["source", "entity", "kind", "_key"]].shift()).all(axis=1)
    ).to_numpy()
    prev_last = frame["last"].shift().to_numpy()
    new = ~same | (frame["time"].to_numpy() - np.nan_to_num(prev_last, nan=-np.inf) > gap)
    group = np.cumsum(new)
    frame["_g"] = group
    out = frame.groupby("_g", sort=False).agg(
        time=("time", "min"), source=("source", "first"), entity=("entity", "first"), kind=("kind", "first"),
        summary=("summary", "first"), link=("link", "first"), count=("count", "sum"), last=("last", "max"),
    )  # fmt: skip
    many = out["count"] > 1
    if many.any():
        out.loc[many, "summary"] = (
            out.loc[many, "summary"].astype(str) + " (x" + out.loc[many, "count"].astype(str) + " until "
            + out.loc[many, "last"].map(_when).astype(str) + ")"
        )  # fmt: skip
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- the view


class Timeline:
    """The ordered table (``.table``, columns :data:`COLUMNS`) with a terminal view, an HTML
    view for notebooks and a plotly figure."""

    def __init__(self, table: pd.DataFrame, *, case_id: str = "", ranking: Ranking | None = None) -> None:
        self.table = table
        self.case_id = case_id
        self.ranking = ranking

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Timeline(case={self.case_id!r}, rows={len(self.table)})"

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"case", "rows": [{column: value}]}``, JSON-ready."""
        rows = self.table.astype(object).where(self.table.notna(), None).to_dict("records")
        for r in rows:
            r["count"] = int(r["count"])
        return {"case": self.case_id, "rows": rows}

    def entities(self) -> list[str]:
        """Return the entities in figure order: ranked suspects first, then by first row."""
        first = list(dict.fromkeys(self.table["entity"]))
        ranked = self.ranking.entities() if self.ranking is not None else []
        return [e for e in ranked if e in first] + [e for e in first if e not in ranked]

    def _lines(self, limit: int) -> list[str]:
        lines = []
        for r in self.table.head(limit).itertuples():
            n = f"x{r.count}" if r.count > 1 else ""
            lines.append(f"{_when(r.time)}  {r.source:<11} {str(r.entity)[:24]:<24} {n:>5}  {r.summary[:100]}")
        return lines

    def __str__(self) -> str:
        head = f"timeline of {self.case_id}: {len(self.table)} rows"
        lines = [head, *self._lines(60)]
        if len(self.table) > 60:
            lines.append(f"... and {len(self.table) - 60} more rows")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        show = self.table.head(200).assign(time=lambda f: f["time"].map(_when), last=lambda f: f["last"].map(_when))
        return f"<p><b>timeline of {html.escape(self.case_id)}</b>: {len(self.table)} rows</p>" + show.to_html(index=False, escape=True)

    def figure(self) -> Any:
        """Return a plotly Figure: one row per entity, markers coloured by source, hover text
        with the summary; ranked suspects at the top."""
        import plotly.graph_objects as go

        fig = go.Figure()
        order = self.entities()
        t = self.table
        for source in [s for s in SOURCES if s in set(t["source"])] + sorted(set(t["source"]) - set(SOURCES)):
            sub = t[t["source"] == source]
            fig.add_trace(
                go.Scatter(
                    x=pd.to_datetime(sub["time"], unit="s", utc=True),
                    y=sub["entity"],
                    mode="markers",
                    name=source,
                    marker={"size": (8 + 3 * np.log2(sub["count"].clip(lower=1))).tolist(), "symbol": "circle"},
                    text=[f"{k}: {s}" for k, s in zip(sub["kind"], sub["summary"], strict=True)],
                    customdata=sub["link"],
                    hovertemplate="%{x}<br>%{y}<br>%{text}<br>%{customdata}<extra>" + source + "</extra>",
                )
            )
        fig.update_layout(
            title=f"timeline of {self.case_id}",
            yaxis={"categoryorder": "array", "categoryarray": list(reversed(order)), "title": None},
            xaxis={"title": "time (UTC)"},
            height=max(300, 28 * len(order) + 120),
            legend={"title": "source"},
        )
        return fig


def timeline(case: Case, *, ranking: Ranking | None = None, collapse_gap: float = 60.0) -> Timeline:
    """Return the timeline of *case*: every source's rows, repeats within *collapse_gap*
    seconds collapsed, ordered by time (ties: source, entity). *ranking* orders the figure's
    entities (suspects first).

    Raises:
        UsageError: for a non-Case argument or a negative gap.
        DataError: when a table holds values the detectors cannot read.
    """
    if not isinstance(case, Case):
        raise UsageError(f"timeline takes an aisre.case.Case, not {type(case).__name__}")
    if not collapse_gap >= 0:
        raise UsageError(f"collapse_gap must be >= 0 seconds, not {collapse_gap!r}")
    try:
        parts = [
            _metric_rows(case), _log_rows(case), _trace_rows(case), _event_rows(case),
            _change_rows(case), _alert_rows(case),
        ]  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise DataError(f"case {case.id}: cannot read a table for the timeline: {exc}") from exc
    parts = [p for p in parts if not p.empty]
    if not parts:
        return Timeline(_empty(), case_id=case.id, ranking=ranking)
    table = _collapse(pd.concat(parts, ignore_index=True), float(collapse_gap))
    table = table.sort_values(["time", "source", "entity", "kind"], kind="stable").reset_index(drop=True)
    table["count"] = table["count"].astype("int64")
    return Timeline(table[COLUMNS], case_id=case.id, ranking=ranking)
