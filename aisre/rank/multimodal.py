"""A trace-and-log scoring channel for the causal ranker: per service, how strongly its own spans
and logs say it is the root cause, with an onset, a fault-kind guess and one sentence of evidence.

The channel never needs a fault-free period outside the case. Four signals:

- **own time** per *segment* (a service's part of a trace: its entry span's duration minus the
  union of its outgoing client spans): the time a service spends itself. Callers inherit their
  callees' latency in their durations but not in their own time, so a slow leaf is blamed on the
  leaf. Each operation after the split (the detection time, or the first third of the spans
  when too little precedes it) is compared with the same operation before it.
- **call gaps** (a client span's duration minus its callee's entry span): network and queueing.
  A healthy system's gaps are milliseconds on every edge, so every call of the window is compared
  with the case's pooled gaps (no clean "before" needed; inject labels are a minute off at times).
  A slow call is split between callee (a jammed pod: all its callers see it slow) and caller
  (a starved client: all its callees look slow) by how consistently each end's other calls moved.
- **error logs**: ERROR lines (WARN a tenth, other lines naming an exception a half) per service
  and template after the split; a template never seen before counts in full, one seen before
  only its excess rate. A service whose errors are matched by a callee's is mostly explained by
  that callee.
- **cut traces**: a request that fails part-way stops, so its trace is much shorter than the
  traces of the same root operation before the split; the last service it entered is where it
  broke off. Code-level faults (error returns, exceptions) that log nothing show here.

Scores are extra seconds of own time or gap per minute, plus :data:`LOG_WEIGHT` per novel error
line per minute and :data:`TRUNC_WEIGHT` per cut trace per minute. :func:`trace_log_scores` returns one row per service seen in spans or logs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aisre.case import Case, topology_from_spans

__all__ = [
    "COLUMNS",
    "ERROR_LEVELS",
    "MIN_BEFORE",
    "trace_log_scores",
]

COLUMNS = ("entity", "score", "onset", "fault", "evidence")
"""Columns of the frame :func:`trace_log_scores` returns."""

ERROR_LEVELS = {"ERROR": 1.0, "FATAL": 1.0, "CRITICAL": 1.0, "SEVERE": 1.0, "WARN": 0.1, "WARNING": 0.1}
"""Weight of a log line by level (upper-cased); other levels count (0.5) only when the text names
an exception. WARN lines are mostly business outcomes ("order not found"), not faults."""

MIN_BEFORE = 3
"""Spans of an operation needed before the split for the operation to have a baseline."""

SPLIT_SHARE = 0.2
"""Least share of spans before the detection time for it to be the split; else the split is the
first third of the spans' time range (the fault then covers the whole window, and the early part
is the least affected)."""

TIME_FLOOR = 0.001
"""Seconds below which a rise in self time is noise (timer resolution, scheduling)."""

REF_QUANTILE = 0.9
"""Quantile of the before-split self times an after-split span must exceed to count as slow."""

GAP_FACTOR = 5.0
"""Most times the case's median call gap that a call's gap may take before it counts as slow."""

SPREAD_CPU = 0.6
"""Share of a service's operations (with a baseline) that must slow down to call the fault cpu."""

LOG_WEIGHT = 0.5
"""Weight of the error-log score relative to the span scores: one novel ERROR line per minute
weighs as half a second of extra self time or call gap per minute (a lone error line is weaker
evidence than a call that became a thousand times slower). Accuracy on the Nezha development
cases is the same for any weight in 0.3-0.7."""

TRUNC_SHARE = 0.5
"""Most share of its root operation's usual span count that a trace may have to count as cut short."""

TRUNC_WEIGHT = 0.5
"""Weight of one truncated trace per minute: as one novel error line per minute (both are one
failed request). Accuracy on the Nezha development cases is the same for 0.25 to 1, and for a
:data:`TRUNC_SHARE` of 0.35 to 0.65."""

EDGE_WEIGHT = 1.0
"""Weight of call-gap excess (blamed on the callee) relative to own self-time excess."""


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "entity": pd.Series(dtype=object), "score": pd.Series(dtype="float64"),
        "onset": pd.Series(dtype="float64"), "fault": pd.Series(dtype=object),
        "evidence": pd.Series(dtype=object),
    })  # fmt: skip


# --------------------------------------------------------------------------- spans


def _segments(spans: pd.DataFrame) -> pd.DataFrame:
    """Return one row per *segment* (a service's part of a trace: its entry span and every
    descendant in the same service) plus one row per *call* between services.

    A segment's ``self`` is its entry span's duration minus the union of its outgoing client
    spans (spans with a child in another service), clipped to the entry: the time the service
    spent itself, whatever its internal spans overlap (asynchronous handlers included). A call's
    ``self`` is the client span's duration minus its callee's entry span: network and queueing,
    blamed on the callee. Columns: service (blamed), channel (own/edge), operation, caller,
    start, self.
    """
    s = spans[["trace_id", "span_id", "parent_id", "service", "operation", "start", "duration"]]
    s = s.dropna(subset=["span_id", "service", "start", "duration"]).drop_duplicates(["trace_id", "span_id"])
    s = s.reset_index(drop=True)
    n = len(s)
    service = s["service"].astype(str).to_numpy()
    operation = s["operation"].astype(str).to_numpy()
    start = s["start"].to_numpy(dtype="float64")
    dur = np.clip(s["duration"].to_numpy(dtype="float64"), 0.0, None)
    end = start + dur
    trace = s["trace_id"].astype(str)
    key = trace + "\x00" + s["span_id"].astype(str)
    parent = pd.Index(key).get_indexer(trace + "\x00" + s["parent_id"].astype(str))
    idx = np.arange(n)
    inner = (parent >= 0) & (service[np.maximum(parent, 0)] == service)
    # the segment entry of every span, by pointer doubling (depth is tens, not rows)
    entry = np.where(inner, parent, idx)
    for _ in range(64):
        nxt = entry[entry]
        if np.array_equal(nxt, entry):
            break
        entry = nxt
    cross = (parent >= 0) & ~inner  # span i is a callee entry; parent[i] is the client span
    client, callee_entry = parent[cross], idx[cross]
    first = ~pd.Series(client).duplicated().to_numpy()
    client, callee_entry = client[first], callee_entry[first]
    seg = entry[client]
    # union of the client spans of each segment, clipped to the segment's entry span
    cs = np.maximum(start[client], start[seg])
    ce = np.minimum(end[client], end[seg])
    ok = ce > cs
    seg_o, cs, ce = seg[ok], cs[ok], ce[ok]
    order = np.lexsort((cs, seg_o))
    seg_o, cs, ce = seg_o[order], cs[order], ce[order]
    frame = pd.DataFrame({"p": seg_o, "ce": ce})
    prev = frame.groupby("p", sort=False)["ce"].cummax().groupby(frame["p"], sort=False).shift(1)
    prev = np.nan_to_num(prev.to_numpy(dtype="float64"), nan=-np.inf)
    covered = np.bincount(seg_o, weights=np.clip(ce - np.maximum(cs, prev), 0.0, None), minlength=n)
    entries = np.flatnonzero(entry == idx)
    own = pd.DataFrame({
        "service": service[entries], "channel": "own", "operation": operation[entries],
        "caller": "", "start": start[entries], "self": np.clip(dur[entries] - covered[entries], 0.0, None),
    })  # fmt: skip
    calls = pd.DataFrame({
        "service": service[callee_entry], "channel": "edge", "operation": operation[callee_entry],
        "caller": service[client], "start": start[client],
        "self": np.clip(dur[client] - dur[callee_entry], 0.0, None),
    })  # fmt: skip
    return pd.concat([own, calls], ignore_index=True)


def _split_time(times: np.ndarray, at: float | None) -> float:
    """Return the time that separates the reference part from the examined part (see SPLIT_SHARE)."""
    if times.size == 0:
        return float(at) if at is not None else np.nan
    if at is not None and np.isfinite(at) and np.mean(times < at) >= SPLIT_SHARE:
        return float(at)
    lo, hi = float(np.min(times)), float(np.max(times))
    return lo + (hi - lo) / 3.0


def _span_scores(spans: pd.DataFrame, split: float) -> pd.DataFrame:
    """Return per service: ``own`` and ``edge`` excess seconds per minute after the split, the
    share of its operations that slowed down, an onset, and the most telling operation."""
    st = _segments(spans)
    st["blame"] = st["service"]
    st["key"] = st["service"] + "\x00" + st["operation"] + "\x00" + st["caller"]
    times = st["start"].to_numpy()
    before = times < split
    is_edge = (st["channel"] == "edge").to_numpy()
    # own time: each operation against itself before the split
    grouped = st[before & ~is_edge].groupby("key")["self"]
    ref = pd.DataFrame({"n_ref": grouped.size(), "ref_med": grouped.median(), "ref_hi": grouped.quantile(REF_QUANTILE)})
    own = st[~before & ~is_edge].join(ref[ref["n_ref"] >= MIN_BEFORE], on="key", how="inner")
    own_minutes = max((float(times.max()) - split) / 60.0, 1.0 / 6.0)
    own = own.assign(threshold=np.maximum(own["ref_hi"], own["ref_med"]) + TIME_FLOOR, per_minute=1.0 / own_minutes)
    # call gaps: a network gap is a few milliseconds on every edge of a healthy system, so the
    # gaps of all calls in the case are each call's reference, and every call of the window is
    # examined (inject labels are a minute off at times: nothing before the split is sure to be
    # clean, and the pooled reference needs no clean part)
    edge = st[is_edge]
    if len(edge):
        edge_minutes = max((float(times.max()) - float(times.min())) / 60.0, 1.0 / 6.0)
        gaps = edge["self"]
        # the pooled quantile, capped at a multiple of the pooled median: when one busy edge
        # is slow (a small system), its calls are the quantile, and must not be their own norm
        med = float(gaps.median())
        edge = edge.assign(n_ref=float(len(gaps)), ref_med=med,
                           ref_hi=min(float(gaps.quantile(REF_QUANTILE)), GAP_FACTOR * med),
                           per_minute=1.0 / edge_minutes)
        edge = edge.assign(threshold=edge["ref_hi"] + TIME_FLOOR)
    after = pd.concat([x for x in (own, edge) if len(x)], ignore_index=True) if len(own) or len(edge) else own
    if after.empty:
        return pd.DataFrame()
    after = after.assign(excess=np.clip(after["self"] - after["threshold"], 0.0, None) * after["per_minute"])
    after = after.assign(slow=after["excess"] > 0)
    per_key = after.groupby(["blame", "channel", "key"], sort=False).agg(
        excess=("excess", "sum"), slow=("slow", "mean"), n=("slow", "size"),
        med=("self", "median"), ref_med=("ref_med", "first"), operation=("operation", "first"),
        service=("caller", "first")).reset_index()
    # an operation counts as slowed when most of its after-split spans exceed its reference;
    # the excess of the others is the tail every operation has, not a shift
    per_key["moved"] = per_key["slow"] >= 0.5
    per_key["excess"] = per_key["excess"].where(per_key["moved"], 0.0)
    own = per_key[per_key["channel"] == "own"].groupby("blame").agg(
        own=("excess", "sum"), spread=("moved", "mean"), n_ops=("moved", "size"))
    edge = _edge_blame(per_key[per_key["channel"] == "edge"])
    out = own.join(edge, how="outer").fillna({"own": 0.0, "edge": 0.0, "spread": 0.0, "n_ops": 0})
    moved_keys = per_key.loc[per_key["moved"], "key"]
    slow_times = after[after["slow"] & after["key"].isin(moved_keys)].groupby("blame")["start"].min()
    out["onset"] = slow_times.reindex(out.index)
    top = per_key.sort_values("excess", ascending=False, kind="stable").drop_duplicates("blame")
    out = out.join(top.set_index("blame")[["operation", "service", "channel", "med", "ref_med", "slow", "n"]]
                   .rename(columns={"service": "top_service", "channel": "top_channel"}))
    return out


def _edge_blame(calls: pd.DataFrame) -> pd.DataFrame:
    """Return per service the call-gap excess it is blamed for.

    A slow call A -> B is A's doing (CPU starvation in A's client) or B's (a jammed network on
    B's pod): when most of B's callers see B slow, B is the common end; when most of A's callees
    look slow from A, A is. Each call's excess is split between its two ends in proportion to
    how consistently each end's other calls moved.
    """
    if calls.empty:
        return pd.DataFrame({"edge": pd.Series(dtype="float64")})
    pairs = calls.groupby(["service", "blame"], sort=False).agg(
        excess=("excess", "sum"), moved=("moved", "max")).reset_index()
    pairs = pairs.rename(columns={"service": "caller", "blame": "callee"})
    out_share = pairs.groupby("caller")["moved"].mean()
    in_share = pairs.groupby("callee")["moved"].mean()
    a = pairs["caller"].map(out_share).to_numpy(dtype="float64")
    b = pairs["callee"].map(in_share).to_numpy(dtype="float64")
    to_callee = np.where(a + b > 0, b / np.where(a + b > 0, a + b, 1.0), 1.0)
    blame = pd.concat([
        pd.Series(pairs["excess"].to_numpy() * to_callee, index=pairs["callee"].to_numpy()),
        pd.Series(pairs["excess"].to_numpy() * (1.0 - to_callee), index=pairs["caller"].to_numpy()),
    ])  # fmt: skip
    return blame.groupby(level=0).sum().to_frame("edge")


# --------------------------------------------------------------------------- logs


def _log_scores(logs: pd.DataFrame, split: float) -> pd.DataFrame:
    """Return per service: error lines per minute after the split beyond the rate before it
    (novel templates in full), an onset, and the most telling template."""
    lg = logs[["time", "entity", "level", "template", "message"]].dropna(subset=["time", "entity"])
    if lg.empty:
        return pd.DataFrame()
    level = lg["level"].astype(str).str.upper()
    weight = level.map(ERROR_LEVELS).fillna(0.0).to_numpy()
    text = lg["message"].astype(str).str.contains("exception", case=False, regex=False).to_numpy()
    weight = np.where((weight == 0) & text, 0.5, weight)
    lg = lg.assign(w=weight, template=lg["template"].fillna(lg["message"].astype(str).str[:60]).astype(str),
                   entity=lg["entity"].astype(str))
    lg = lg[lg["w"] > 0]
    if lg.empty:
        return pd.DataFrame()
    t = logs["time"].to_numpy(dtype="float64")
    t_before = max(split - float(np.nanmin(t)), 1.0)
    t_after = max(float(np.nanmax(t)) - split, 1.0)
    before = lg["time"].to_numpy() < split
    counts = pd.DataFrame({
        "entity": lg["entity"], "template": lg["template"], "w": lg["w"], "before": before,
    }).groupby(["entity", "template"]).agg(
        w=("w", "max"), n_before=("before", "sum"), n=("before", "size")).reset_index()  # fmt: skip
    counts["n_after"] = counts["n"] - counts["n_before"]
    expected = counts["n_before"] * (t_after / t_before)
    novel = counts["n_before"] == 0
    counts["excess"] = np.where(novel, counts["n_after"], np.clip(counts["n_after"] - expected, 0.0, None) * 0.5)
    counts["excess"] = counts["excess"] * counts["w"] / (t_after / 60.0)
    counts = counts[counts["excess"] > 0]
    if counts.empty:
        return pd.DataFrame()
    out = counts.groupby("entity").agg(log=("excess", "sum"))
    first = lg[~before].merge(counts[["entity", "template"]], on=["entity", "template"])
    out["log_onset"] = first.groupby("entity")["time"].min().reindex(out.index)
    top = counts.sort_values("excess", ascending=False, kind="stable").drop_duplicates("entity").set_index("entity")
    out = out.join(top[["template", "n_after", "n_before"]].rename(columns={"template": "log_template"}))
    return out


def _explain_by_callees(scores: pd.Series, case: Case) -> pd.Series:
    """Return *scores* with each service's score reduced by its strongest callee's: errors and
    slowness a callee shows first are the callee's, and its callers only pass them on."""
    if scores.empty or not (scores > 0).any():
        return scores
    topo = case.topology or topology_from_spans(case.spans)
    if topo is None:
        return scores
    edges = pd.DataFrame([(u, v) for u, v, k in topo.edges() if k == "calls"], columns=["caller", "callee"])
    if edges.empty:
        return scores
    edges["callee_score"] = edges["callee"].map(scores).fillna(0.0)
    best = edges.groupby("caller")["callee_score"].max().reindex(scores.index).fillna(0.0)
    return (scores - best).clip(lower=0.0) + 0.1 * scores


# --------------------------------------------------------------------------- public


def _truncation_scores(spans: pd.DataFrame, split: float) -> pd.DataFrame:
    """Return per service ``trunc``: the truncated traces per minute after *split* that it was
    the last service to enter, above the rate before the split (``trunc_onset``: the first one;
    ``n_trunc``: their count; ``typical``: the usual span count). Empty when none.

    A request that fails part-way stops: its trace is much shorter than the traces of the same
    root operation before the split, and the last service it entered is where it broke off (the
    callers only pass the error back)."""
    s = spans[["trace_id", "span_id", "parent_id", "service", "operation", "start"]]
    s = s.drop_duplicates(["trace_id", "span_id"]).sort_values(["trace_id", "start"], kind="stable")
    is_root = (s["parent_id"].isna() | ~s["parent_id"].isin(s["span_id"])).to_numpy()
    by_trace = s.groupby("trace_id", sort=False)
    per = pd.DataFrame({"size": by_trace.size(), "t": by_trace["start"].min()})
    per["key"] = s[is_root].drop_duplicates("trace_id").set_index("trace_id")["operation"].astype(str).reindex(per.index)
    owner = s.drop_duplicates("span_id").set_index("span_id")["service"]
    entered = s[(s["parent_id"].map(owner).to_numpy() != s["service"].to_numpy()) | is_root]
    per["last"] = entered.groupby("trace_id", sort=False)["service"].last().reindex(per.index)
    before = (per["t"] < split).to_numpy()
    usual = per[before].groupby("key")["size"].agg(["median", "size"])
    usual = usual.loc[usual["size"] >= MIN_BEFORE, "median"]
    truncated = (per["size"] <= TRUNC_SHARE * per["key"].map(usual)).to_numpy()
    if not (truncated & ~before).any():
        return pd.DataFrame()
    after_minutes = max((float(per["t"].max()) - split) / 60.0, 1.0)
    before_minutes = max((split - float(per["t"].min())) / 60.0, 1.0)
    cut_after = per[truncated & ~before].groupby("last")
    cut_before = per[truncated & before].groupby("last").size()
    rate = (cut_after.size() / after_minutes).sub(cut_before / before_minutes, fill_value=0.0)
    out = pd.DataFrame({"trunc": rate.clip(lower=0.0), "trunc_onset": cut_after["t"].min(),
                        "n_trunc": cut_after.size(), "typical": float(usual.median())})
    out.index.name = "entity"
    return out[out["trunc"] > 0]


def trace_log_scores(case: Case) -> pd.DataFrame:
    """Return one row per service seen in *case*'s spans or logs: ``entity``, ``score`` (>= 0,
    higher = more likely the root cause, 0 when nothing moved), ``onset`` (unix s or NaN),
    ``fault`` (a kind of :data:`aisre.case.FAULT_KINDS` or None) and ``evidence`` (one sentence).

    Rows are sorted by score, highest first; a case without spans and logs gives an empty frame
    with those columns. Never raises on well-formed Case tables.
    """
    spans, logs = case.spans, case.logs
    has_spans = spans is not None and not spans.empty
    has_logs = logs is not None and not logs.empty
    if not has_spans and not has_logs:
        return _empty()
    at = float(case.detected_at) if case.detected_at is not None else None
    parts = []
    if has_spans:
        split = _split_time(spans["start"].to_numpy(dtype="float64"), at)
        sp = _span_scores(spans, split)
        if not sp.empty:
            parts.append(sp)
        tr = _truncation_scores(spans, split)
        if not tr.empty:
            parts.append(tr)
    if has_logs:
        split_l = _split_time(logs["time"].to_numpy(dtype="float64"), at)
        lg = _log_scores(logs, split_l)
        if not lg.empty:
            parts.append(lg)
    names = set()
    if has_spans:
        names |= set(spans["service"].dropna().astype(str))
    if has_logs:
        names |= set(logs["entity"].dropna().astype(str))
    table = pd.DataFrame(index=pd.Index(sorted(names), name="entity"))
    for part in parts:
        table = table.join(part, how="left")
    for col in ("own", "edge", "log", "spread", "trunc"):
        table[col] = table[col].fillna(0.0) if col in table else 0.0
    span_part = table["own"] + EDGE_WEIGHT * table["edge"]
    log_part = _explain_by_callees(LOG_WEIGHT * table["log"], case)
    score = span_part + log_part + TRUNC_WEIGHT * table["trunc"]
    table["score"] = score.to_numpy()
    table["fault"] = _fault(table)
    table["onset"] = _onset(table)
    table["evidence"] = _evidence(table)
    out = table.reset_index()[list(COLUMNS)]
    return out.sort_values(["score", "entity"], ascending=[False, True], kind="stable", ignore_index=True)


def _fault(t: pd.DataFrame) -> pd.Series:
    span_part = t["own"] + EDGE_WEIGHT * t["edge"]
    kind = np.where((t["log"] * LOG_WEIGHT + t["trunc"] * TRUNC_WEIGHT) > span_part, "error",
                    np.where(t["edge"] * EDGE_WEIGHT > t["own"], "delay",
                             np.where(t["spread"] >= SPREAD_CPU, "cpu", "delay")))
    return pd.Series(np.where(t["score"] > 0, kind, None), index=t.index, dtype=object)


def _onset(t: pd.DataFrame) -> pd.Series:
    cols = [c for c in ("onset", "log_onset", "trunc_onset") if c in t]
    if not cols:
        return pd.Series(np.nan, index=t.index)
    return t[cols].min(axis=1).where(t["score"] > 0)


def _evidence(t: pd.DataFrame) -> pd.Series:
    empty = pd.Series("", index=t.index, dtype=object)
    text = empty.copy()
    if "operation" in t:
        med = (t["med"] * 1000).round(1).astype(str)
        ref = (t["ref_med"] * 1000).round(1).astype(str)
        share = (t["slow"] * 100).round(0).fillna(0).astype(int).astype(str)
        where = ("own time of " + t["operation"].astype(str)).where(
            t["top_channel"] != "edge",
            "calls from " + t["top_service"].astype(str) + " (" + t["operation"].astype(str) + ")")
        span_text = (where + " rose from " + ref + " ms to " + med + " ms median (" + share
                     + " % of spans slow)")
        has = t["operation"].notna() & ((t["own"] + t["edge"]) > 0)
        text = text.where(~has, span_text)
    if "log_template" in t:
        log_text = ("error log " + t["log_template"].astype(str) + ": "
                    + t["n_after"].fillna(0).astype(int).astype(str) + " lines after the split, "
                    + t["n_before"].fillna(0).astype(int).astype(str) + " before")
        has = t["log_template"].notna() & (t["log"] > 0)
        text = text.where(~has, (text + "; " + log_text).where(text != "", log_text))
    if "n_trunc" in t:
        cut_text = (t["n_trunc"].fillna(0).astype(int).astype(str) + " traces ended in it after the split with at most half the usual "
                    + t["typical"].fillna(0).round(0).astype(int).astype(str) + " spans")
        has = t["n_trunc"].notna() & (t["trunc"] > 0)
        text = text.where(~has, (text + "; " + cut_text).where(text != "", cut_text))
    return text.where(t["score"] > 0, "no change in spans or logs")
