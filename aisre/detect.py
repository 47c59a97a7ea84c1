"""Per-signal anomaly detection: a robust score and an onset time for every metric, span and log
signal of a :class:`~aisre.case.Case`.

Every detector compares an *abnormal* period with a *normal* one (see :func:`split_periods`) and
returns rows of one table, :data:`SIGNAL_COLUMNS`:

- ``signal``: what moved (``metric:<name>``, ``span:self``, ``span:edge``, ``span:error``,
  ``log:error``, ``log:template``);
- ``entity``: the service (or container, node) it belongs to; for an edge signal the callee;
- ``kind``: ``resource``, ``latency``, ``client_latency``, ``error``, ``load``, ``host``, ``other``;
- ``score``: a robust z-score in the *bad* direction (>= 0, capped at :data:`Z_CAP`);
- ``onset``: the first time the signal crossed :data:`ONSET_Z` and stayed there (NaN if never);
- ``baseline``/``peak``: the normal median and the sustained abnormal level, in the signal's unit;
- ``caller``/``callee``: the call edge for edge signals, else ``None``.

The normal period ends a *guard* before the detection time and the abnormal period starts there,
so an alert that fires minutes after the fault began still sees a clean baseline; scores use the
*sustained* level (the highest value held for a few samples), so one spike does not make an anomaly.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from aisre.case import Case

__all__ = [
    "ONSET_Z",
    "SIGNAL_COLUMNS",
    "Z_CAP",
    "Periods",
    "aligned_wide",
    "detect",
    "edge_of",
    "log_anomalies",
    "metric_anomalies",
    "metric_kind",
    "robust_z",
    "sampling_step",
    "span_anomalies",
    "split_periods",
]

Z_CAP = 1000.0
"""Largest score a signal can get; a column constant in the normal period cannot score infinity."""

ONSET_Z = 3.0
"""Robust z a signal must reach (and hold) for its onset to be recorded."""

REL_FLOOR = 0.05
"""Smallest scale relative to the normal level: a 5 % move is never more than one unit of z."""

RATE_REL_FLOOR = 0.005
"""Smallest scale of error and availability rates relative to their level (100 % -> 0.5 points)."""

RANGE_FLOOR = 0.01
"""Smallest scale relative to the column's full range over the case (floors constant columns)."""

NEW_TEMPLATE_Z = 3.0
"""Score of one error line of a template the entity never logged in the normal period (grows
with the square root of the count)."""

GUARD_SECONDS = 120.0
"""How far before the detection time the normal period ends: alerts fire after the fault starts."""

SUSTAIN_SECONDS = 10.0
"""How long a level must be held to count (in samples: at least one)."""

SIGNAL_COLUMNS = ["signal", "entity", "kind", "score", "onset", "baseline", "peak", "caller", "callee"]
"""Columns of every detector's table."""

_KIND_PATTERNS = [
    # the node or host a pod runs on: shared by every pod there, so not the pod's own
    ("host", re.compile(r"^(?:[Nn]ode|NODE|[Hh]ost|HOST|[Mm]achine)(?:[_.]|[A-Z])|^(?:node|host)$")),
    ("client_latency", re.compile(r"client.*(lat|dur)|(lat|dur).*client", re.IGNORECASE)),
    ("error", re.compile(r"err|fail|5xx|exception|availability|success|status_code", re.IGNORECASE)),
    ("latency", re.compile(r"lat|duration|response.?time|\brt\b|delay|p50|p90|p95|p99", re.IGNORECASE)),
    ("load", re.compile(r"lod|load|workload|request|qps|rps|throughput|\bops\b|count|receive|transmit|bytes", re.IGNORECASE)),
    ("resource", re.compile(r"cpu|mem|disk|(?<![a-z])io(?![a-z])|socket|(?<![a-z])fd|thread|(?<![a-z])gc(?![a-z])|syscall|net|swap|heap", re.IGNORECASE)),
]
_DOWN_IS_BAD = re.compile(r"availability|success|uptime", re.IGNORECASE)


_EDGE = re.compile(r"^(?P<name>.*?)(?P<arrow>->|<-)(?P<peer>[^>]+)$")


def edge_of(entity: str, metric: str) -> tuple[str, str, str] | None:
    """Return ``(caller, callee, name)`` for a per-edge metric (``<name>->callee`` measured on the
    caller, ``<name><-caller`` measured on the callee), else None."""
    m = _EDGE.match(metric)
    if not m:
        return None
    if m.group("arrow") == "->":
        return entity, m.group("peer"), m.group("name")
    return m.group("peer"), entity, m.group("name")


def metric_kind(metric: str) -> str:
    """Return the kind of a metric from its name: host (the node's own figures), resource,
    latency, client_latency, error, load or other. A per-edge metric (``name->callee``) is classified by its name part."""
    m = _EDGE.match(metric)
    if m:
        metric = m.group("name")
        # measured on the caller: a property of the call; on the callee: of its serving
        base = metric_kind(metric)
        if base in ("latency", "client_latency", "other"):
            return "client_latency" if m.group("arrow") == "->" else "latency"
        return base
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(metric):
            return kind
    return "other"


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Periods:
    """The normal and abnormal periods of a case, as closed time intervals in unix seconds.

    ``split`` is where the abnormal period starts (the detection time less the guard, or the
    start of a given anomalous window); ``step`` the typical sample interval of the metrics.
    """

    normal: tuple[float, float]
    abnormal: tuple[float, float]
    split: float
    step: float

    def normal_mask(self, times: np.ndarray) -> np.ndarray:
        """Return a boolean mask of *times* inside the normal period."""
        return (times >= self.normal[0]) & (times <= self.normal[1])

    def abnormal_mask(self, times: np.ndarray) -> np.ndarray:
        """Return a boolean mask of *times* inside the abnormal period."""
        return (times >= self.abnormal[0]) & (times <= self.abnormal[1])


def sampling_step(times: np.ndarray) -> float:
    """Return the median spacing of the distinct *times* in seconds (1.0 with fewer than two)."""
    if len(times) < 2:
        return 1.0
    d = np.diff(np.unique(times))
    return float(np.median(d)) if len(d) else 1.0


def _window(value: object) -> tuple[float, float] | None:
    try:
        a, b = value  # type: ignore[misc]
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return None
    return (a, b) if np.isfinite(a) and np.isfinite(b) and b >= a else None


def split_periods(case: Case, times: np.ndarray | None = None, *, guard: float = GUARD_SECONDS) -> Periods:
    """Return the normal and abnormal periods of *case*.

    A case whose ``meta`` names ``normal_window`` and ``anomalous_window`` (data recorded apart)
    uses them, except that the abnormal period starts no later than *guard* seconds before
    ``detected_at`` (a late alert), and right after a baseline recorded apart (a gap of more
    than two samples), never inside the normal window. Otherwise the abnormal period starts *guard* seconds before
    ``detected_at`` (shrunk so that at least a third of the earlier samples stay normal) and the
    normal period is everything before it; without ``detected_at`` the window's midpoint is used.
    *times* are the sample times (default: the metric times, else the span and log times).
    """
    if times is None:
        parts = [case.metrics["time"].to_numpy(), case.spans["start"].to_numpy(), case.logs["time"].to_numpy()]
        times = next((p for p in parts if len(p)), np.array([case.window[0], case.window[1]]))
    times = np.unique(np.asarray(times, dtype="float64"))
    times = times[np.isfinite(times)]
    step = sampling_step(times)
    normal = _window(case.meta.get("normal_window")) if case.meta else None
    abnormal = _window(case.meta.get("anomalous_window")) if case.meta else None
    if normal and abnormal:
        after_normal = times[times > normal[1]]
        floor = float(after_normal[0]) if len(after_normal) else abnormal[0]
        if floor > normal[1] + 2.0 * step:
            # a baseline recorded apart: everything recorded after it is what the alert is about,
            # however late the alert (a late one must not hide the fault's first minutes)
            start = min(abnormal[0], floor)
        elif case.detected_at is not None:
            # a detection at d means the fault was already visible at d - guard
            start = max(floor, min(abnormal[0], float(case.detected_at) - guard))
        else:
            start = abnormal[0]
        abnormal = (start, max(abnormal[1], start))
        return Periods(normal, abnormal, abnormal[0], step)
    start = float(times[0]) if len(times) else case.window[0]
    end = float(times[-1]) if len(times) else case.window[1]
    det = case.detected_at if case.detected_at is not None else (start + end) / 2.0
    before = times[times < det]
    # keep at least two thirds of the earlier samples (and three) in the normal period: with
    # coarse samples the guard shrinks to less than a step rather than leave no baseline
    keep = min(len(before), max(3, (2 * len(before)) // 3))
    limit = float(before[keep - 1]) if keep >= 1 else start
    # coarse samples (under four per guard): guard one sample, a late alert is one sample late
    guard = guard if 4 * step <= guard else step
    split = max(det - guard, limit + step / 2.0)
    split = min(split, det)
    return Periods((start, split - 1e-9), (split, max(end, split)), split, step)


# --------------------------------------------------------------------------- metrics


_D2 = np.array([1.0, 1.0, 1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078, 3.173, 3.258])
"""Expected range of n normal samples in standard deviations (index n), for n < 13."""


def _nanquantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Column quantiles of *x* ignoring NaN (linear interpolation), vectorised over columns."""
    srt = np.sort(x, axis=0)  # NaN sort last
    n = np.sum(~np.isnan(x), axis=0)
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        a = np.take_along_axis(srt, lo[None, :], axis=0)[0]
        b = np.take_along_axis(srt, hi[None, :], axis=0)[0]
        out.append(np.where(n > 0, a + (b - a) * frac, np.nan))
    return out


def robust_z(values: np.ndarray, normal: np.ndarray,
             rel_floor: np.ndarray | float = REL_FLOOR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(z, median, scale)``: *values* (rows x columns) as robust z-scores against the
    *normal* rows, with the scale floored (relative to the level and the range) so that a
    column constant in the normal period gets large but finite scores.
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(normal):
            med, q75, q25 = _nanquantiles(normal, (0.5, 0.75, 0.25))
            (mad,) = _nanquantiles(np.abs(normal - med), (0.5,))
            # with a handful of normal samples quartiles say little: the range over its expected
            # width in standard deviations (d2) is the better estimate of the spread
            n = np.sum(~np.isnan(normal), axis=0)
            # the sample farthest from the median may be a previous incident's tail: leave it out
            far = np.nanargmax(np.where(np.isnan(normal), -np.inf, np.abs(normal - med)), axis=0)
            trimmed = normal.copy()
            drop = n >= 4
            trimmed[far[drop], np.flatnonzero(drop)] = np.nan
            m = n - drop
            rng = np.nanmax(trimmed, axis=0) - np.nanmin(trimmed, axis=0)
            by_range = np.where((m >= 2) & (m < len(_D2)), rng / _D2[np.clip(m, 0, len(_D2) - 1)], 0.0)
            n_normal = n
        else:
            med = np.full(values.shape[1], np.nan)
            q75 = q25 = med
            mad = med * 0
            by_range = med * 0
            n_normal = np.zeros(values.shape[1])
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
        scale = np.nanmax(
            # quartiles of fewer than eight samples follow a single outlier: not used then
            np.vstack([np.where(n_normal >= 8, (q75 - q25) / 1.349, 0.0), 1.4826 * mad, by_range, rel_floor * np.abs(med), RANGE_FLOOR * spread,
                       np.full_like(med, 1e-9)]),
            axis=0,
        )
        z = (values - med) / scale
    return z, med, scale


def _sustained(z: np.ndarray, width: int) -> np.ndarray:
    """Return the rolling minimum of *z* over *width* rows (the level held for *width* samples)."""
    if width <= 1 or z.shape[0] < width:
        return z
    view = np.lib.stride_tricks.sliding_window_view(z, width, axis=0)
    return np.nanmin(view, axis=-1)


def aligned_wide(case: Case) -> pd.DataFrame:
    """Return the metrics as one column per (entity, metric) pair indexed by time, with samples of
    series scraped at slightly different instants (per-pod collectors) snapped to one grid.

    The grid step is the median step of the series; samples falling in one grid cell are averaged.
    Built with integer codes and bincount, so ten million rows take seconds, not minutes.
    """
    m = case.metrics
    if m.empty:
        return pd.DataFrame(index=pd.Index([], name="time", dtype="float64"))
    values = m["value"].to_numpy(dtype="float64")
    t = m["time"].to_numpy(dtype="float64")
    ok = np.isfinite(values) & np.isfinite(t)
    e_codes, e_names = pd.factorize(m["entity"].astype(str) if m["entity"].dtype == object else m["entity"])
    k_codes, k_names = pd.factorize(m["metric"].astype(str) if m["metric"].dtype == object else m["metric"])
    pair = e_codes.astype(np.int64) * max(len(k_names), 1) + k_codes
    codes, pairs = pd.factorize(pair[ok])
    t, values = t[ok], values[ok]
    if not len(t):
        return pd.DataFrame(index=pd.Index([], name="time", dtype="float64"))
    per_series = np.bincount(codes).max()
    uniq, t_idx = np.unique(t, return_inverse=True)
    if len(uniq) > 1.5 * per_series:
        step = _series_step(t, codes)
        t0 = float(uniq[0])
        t = t0 + np.round((t - t0) / step) * step
        uniq, t_idx = np.unique(t, return_inverse=True)
    n_t, n_p = len(uniq), len(pairs)
    flat = t_idx.astype(np.int64) * n_p + codes
    sums = np.bincount(flat, weights=values, minlength=n_t * n_p)
    counts = np.bincount(flat, minlength=n_t * n_p)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = (sums / counts).reshape(n_t, n_p)
    n_k = max(len(k_names), 1)
    ents = np.asarray(e_names.astype(str))[pairs // n_k]
    mets = np.asarray(k_names.astype(str))[pairs % n_k]
    order = np.lexsort((mets, ents))
    columns = pd.MultiIndex.from_arrays([ents[order], mets[order]], names=["entity", "metric"])
    return pd.DataFrame(grid[:, order], index=pd.Index(uniq, name="time"), columns=columns)


def _series_step(t: np.ndarray, codes: np.ndarray, sample: int = 64) -> float:
    """Median sampling step of up to *sample* series."""
    steps = []
    for c in np.unique(codes)[:sample]:
        d = np.diff(np.sort(t[codes == c]))
        d = d[d > 0]
        if len(d):
            steps.append(float(np.median(d)))
    return float(np.median(steps)) if steps else 1.0


def _split_columns(wide: pd.DataFrame, case: Case) -> tuple[list[str], list[str]]:
    """Return (entities, metrics) of *wide*'s columns: a (entity, metric) MultiIndex as it is,
    ``entity:metric`` strings split where the entity is one the case names."""
    if isinstance(wide.columns, pd.MultiIndex):
        return ([str(x) for x in wide.columns.get_level_values(0)], [str(x) for x in wide.columns.get_level_values(1)])
    known = set(case.metrics["entity"].astype(str).unique())
    ents, mets = [], []
    for c in map(str, wide.columns):
        cut = next((i for i in range(len(c)) if c[i] == ":" and c[:i] in known), c.find(":"))
        ents.append(c[:cut] if cut >= 0 else c)
        mets.append(c[cut + 1:] if cut >= 0 else c)
    return ents, mets


ONSET_LOOKBACK = 600.0
"""How far before the abnormal period an onset is searched for (alerts fire minutes late)."""


def _onsets(times: np.ndarray, values: np.ndarray, med: np.ndarray, scale: np.ndarray, sign: np.ndarray,
            kinds: np.ndarray, amask: np.ndarray, periods: Periods, width: int) -> np.ndarray:
    """Return per column the start of the sustained excursion (z >= ONSET_Z) that contains its
    first crossing in the abnormal period, searched back up to ONSET_LOOKBACK before it."""
    look = (times >= periods.abnormal[0] - ONSET_LOOKBACK) & (times <= periods.abnormal[1])
    if not look.any():
        return np.full(values.shape[1], np.nan)
    t = times[look]
    with np.errstate(all="ignore"):
        z = (values[look] - med) / scale
    bad = np.where((kinds == "load")[None, :], np.abs(z) * 0.5, z * sign)
    held = _sustained(np.where(np.isnan(bad), -np.inf, bad), width)
    crossed = held >= ONSET_Z
    in_abn = amask[look][: held.shape[0]]
    first = np.argmax(crossed & in_abn[:, None], axis=0)
    has = (crossed & in_abn[:, None]).any(axis=0)
    idx = np.arange(held.shape[0])[:, None]
    last_false = np.maximum.accumulate(np.where(~crossed, idx, -1), axis=0)
    start = last_false[first, np.arange(held.shape[1])] + 1
    return np.where(has, t[np.minimum(start, len(t) - 1)], np.nan)


def metric_anomalies(case: Case, wide: pd.DataFrame | None = None, periods: Periods | None = None) -> pd.DataFrame:
    """Return one row per metric column (see :data:`SIGNAL_COLUMNS`): its robust score in the
    bad direction over the abnormal period, and its onset.

    Latency, error and resource metrics score increases (availability and success rates
    decreases); load scores a move either way, at half weight.
    """
    wide = aligned_wide(case) if wide is None else wide
    if wide.empty or wide.shape[1] == 0:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    times = wide.index.to_numpy(dtype="float64")
    periods = periods or split_periods(case, times)
    values = wide.to_numpy(dtype="float64")
    nmask, amask = periods.normal_mask(times), periods.abnormal_mask(times)
    ents, metric = _split_columns(wide, case)
    cols = metric
    entity = np.array(ents, dtype=object)
    kinds = np.array([metric_kind(m) for m in metric], dtype=object)
    sign = np.array([-1.0 if _DOWN_IS_BAD.search(m) else 1.0 for m in metric])
    # rates (availability, errors) near a ceiling move by a few points when they move at all
    rel = np.where(kinds == "error", RATE_REL_FLOOR, REL_FLOOR)
    z, med, scale = robust_z(values[amask | nmask], values[nmask], rel)
    z_abn = z[amask[amask | nmask]]
    # samples between a distant normal window and the abnormal one show the level just before
    # the fault: what was already there then is drift, not the fault's doing
    pmask = ~nmask & ~amask & (times < periods.abnormal[0]) & (times >= periods.abnormal[0] - 10 * periods.step)
    if pmask.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pre = (np.nanmedian(values[pmask], axis=0) - med) / scale
        pre_bad = np.where(kinds == "load", np.abs(pre) * 0.5, pre * sign)
        pre_bad = np.where(np.isfinite(pre_bad), np.clip(pre_bad, 0.0, None), 0.0)
    else:
        pre_bad = np.zeros(values.shape[1])
    t_abn = times[amask]
    # coarse samples: one outlier row is not an anomaly either, hold it for two rows
    width = max(2, round(SUSTAIN_SECONDS / max(periods.step, 1e-9)))
    width = min(width, max(1, len(t_abn) // 2))
    bad = z_abn * sign
    both = np.abs(z_abn)
    bad = np.where((kinds == "load")[None, :], both * 0.5, bad)
    held = _sustained(np.where(np.isnan(bad), -np.inf, bad), width)
    if held.shape[0] == 0:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    score = np.clip(np.nanmax(held, axis=0) - pre_bad, 0.0, Z_CAP)
    score[~np.isfinite(score)] = 0.0
    onset = _onsets(times, values, med, scale, sign, kinds, amask, periods, width)
    peak_row = np.nanargmax(np.where(np.isfinite(held), held, -np.inf), axis=0)
    peak = med + sign * np.where(kinds == "load", np.sign(z_abn[peak_row, np.arange(len(cols))]), 1.0) * \
        held[peak_row, np.arange(len(cols))] * scale
    edges = [edge_of(e, m) for e, m in zip(entity, metric, strict=True)]
    return pd.DataFrame({
        "signal": ["metric:" + m for m in metric], "entity": entity, "kind": kinds, "score": score,
        "onset": onset, "baseline": med, "peak": peak,
        "caller": [e[0] if e else None for e in edges], "callee": [e[1] if e else None for e in edges],
    })


# --------------------------------------------------------------------------- spans


def _span_frame(spans: pd.DataFrame) -> pd.DataFrame:
    """Return spans with ``self`` time (duration less the children's) and the callee service of
    cross-service children; duplicates on (trace, span) dropped."""
    s = spans.drop_duplicates(["trace_id", "span_id"]).reset_index(drop=True)
    s = s[np.isfinite(s["start"].to_numpy(dtype="float64")) & np.isfinite(s["duration"].to_numpy(dtype="float64"))]
    kids = s[["trace_id", "parent_id", "duration", "service"]].dropna(subset=["parent_id"])
    child_sum = kids.groupby(["trace_id", "parent_id"], sort=False)["duration"].sum()
    key = pd.MultiIndex.from_arrays([s["trace_id"], s["span_id"]])
    s = s.assign(child=child_sum.reindex(key).fillna(0.0).to_numpy())
    s["self"] = np.clip(s["duration"].to_numpy() - s["child"].to_numpy(), 0.0, None)
    # a span whose children run in another service is a client span: its self time is the wire
    parent_svc = s[["trace_id", "span_id", "service"]].rename(columns={"span_id": "parent_id", "service": "caller"})
    pairs = kids.merge(parent_svc, on=["trace_id", "parent_id"], how="inner")
    pairs = pairs[pairs["caller"] != pairs["service"]]
    callee = pairs.drop_duplicates(["trace_id", "parent_id"]).set_index(["trace_id", "parent_id"])["service"]
    s["callee"] = callee.reindex(key).to_numpy()
    return s


def _shift(base: np.ndarray, abn: np.ndarray, pooled: np.ndarray | None = None) -> float:
    """Robust shift of *abn* above *base*: (75th percentile of abn - median of base) / scale.

    With fewer than three *base* samples the *pooled* sample (the same signal of every service
    or edge, a sane reference when most of them are healthy) stands in for it.
    """
    if len(base) < 3 and pooled is not None:
        base = pooled
    if len(base) < 3 or len(abn) < 2:
        return 0.0
    med = float(np.median(base))
    q75, q25 = np.percentile(base, [75, 25])
    mad = float(np.median(np.abs(base - med)))
    scale = max((q75 - q25) / 1.349, 1.4826 * mad, REL_FLOOR * abs(med), 1e-6)
    # a shift the size of the noise needs enough samples to count
    level = float(np.percentile(abn, 75))
    return float(np.clip((level - med) / scale, 0.0, Z_CAP)) * min(1.0, len(abn) / 5.0)


def _onset(times: np.ndarray, values: np.ndarray, base: np.ndarray) -> float:
    if len(base) < 3 or not len(times):
        return float("nan")
    med = float(np.median(base))
    scale = max(float(np.percentile(base, 75) - np.percentile(base, 25)) / 1.349, REL_FLOOR * abs(med), 1e-6)
    order = np.argsort(times)
    over = (values[order] - med) / scale >= ONSET_Z
    # two crossings in a row: the first sustained one
    both = over[:-1] & over[1:] if len(over) > 1 else over
    idx = np.flatnonzero(both)
    return float(times[order][idx[0]]) if len(idx) else float("nan")


def span_anomalies(case: Case, periods: Periods | None = None) -> pd.DataFrame:
    """Return span signals (see :data:`SIGNAL_COLUMNS`): per service the shift of its spans' self
    time (``span:self``) and error share (``span:error``), and per call edge the shift of the
    caller's client-span self time (``span:edge``, entity = callee), so a slow callee is not
    blamed on its caller.
    """
    if case.spans.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    periods = periods or split_periods(case)
    s = _span_frame(case.spans)
    t = s["start"].to_numpy(dtype="float64")
    nm, am = periods.normal_mask(t), periods.abnormal_mask(t)
    rows: list[dict] = []
    is_client = s["callee"].notna().to_numpy()
    err = s["status"].astype(str).str.lower().eq("error").to_numpy()
    selfv_all = s["self"].to_numpy()
    pooled_self = selfv_all[nm & ~is_client]
    pooled_edge = selfv_all[nm & is_client]
    if len(pooled_edge) < 3:
        # nothing before the split: every edge's calls, most of them healthy, are the reference
        pooled_edge = selfv_all[is_client]
    if len(pooled_self) < 3:
        pooled_self = selfv_all[~is_client]
    for svc, idx in s.groupby("service", sort=True).indices.items():
        own = idx[~is_client[idx]]
        selfv = selfv_all[own]
        b, a = selfv[nm[own]], selfv[am[own]]
        score = _shift(b, a, pooled_self)
        if len(a):
            b = b if len(b) >= 3 else pooled_self
            rows.append({"signal": "span:self", "entity": svc, "kind": "latency", "score": score,
                             "onset": _onset(t[own][am[own]], a, b), "baseline": float(np.median(b)),
                             "peak": float(np.percentile(a, 75)), "caller": None, "callee": None})
        eb, ea = err[idx][nm[idx]], err[idx][am[idx]]
        if len(ea) and err.any():
            pb, pa = float(eb.mean()) if len(eb) else 0.0, float(ea.mean())
            z = (pa - pb) / np.sqrt(max(pb * (1 - pb), 0.01) / max(len(ea), 1))
            rows.append({"signal": "span:error", "entity": svc, "kind": "error", "score": float(np.clip(z, 0, Z_CAP)),
                             "onset": float(np.min(t[idx][am[idx]][err[idx][am[idx]]])) if ea.any() else np.nan,
                             "baseline": pb, "peak": pa, "caller": None, "callee": None})
    client = s[is_client]
    for (caller, callee), idx in client.groupby(["service", "callee"], sort=True).indices.items():
        selfv = client["self"].to_numpy()[idx]
        tt = client["start"].to_numpy()[idx]
        b, a = selfv[periods.normal_mask(tt)], selfv[periods.abnormal_mask(tt)]
        if len(a):
            score = _shift(b, a, pooled_edge)
            b = b if len(b) >= 3 else pooled_edge
            rows.append({"signal": "span:edge", "entity": callee, "kind": "client_latency", "score": score,
                             "onset": _onset(tt[periods.abnormal_mask(tt)], a, b), "baseline": float(np.median(b)),
                             "peak": float(np.percentile(a, 75)), "caller": caller, "callee": callee})
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


# --------------------------------------------------------------------------- logs

_MASK = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}(-[0-9a-f]{4,})*|\d+(\.\d+)?", re.IGNORECASE)
_ERROR_LEVELS = {"error", "err", "fatal", "critical", "crit", "severe", "panic", "alert", "emerg"}


def _templates(logs: pd.DataFrame) -> pd.Series:
    tpl = logs["template"]
    missing = tpl.isna() | (tpl.astype(str) == "")
    if missing.any():
        masked = logs["message"].astype(object).fillna("").astype(str).str.slice(0, 200).str.replace(_MASK, "*", regex=True)
        tpl = tpl.where(~missing, masked)
    return tpl.astype(str)


def log_anomalies(case: Case, periods: Periods | None = None) -> pd.DataFrame:
    """Return log signals (see :data:`SIGNAL_COLUMNS`) per entity: the rise of its error-level
    share (``log:error``) and of error templates it did not log before (``log:template``).
    """
    logs = case.logs
    if logs.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    periods = periods or split_periods(case)
    t = logs["time"].to_numpy(dtype="float64")
    level = logs["level"].astype(object).fillna("").astype(str).str.lower().to_numpy()
    msg_err = logs["message"].astype(object).fillna("").astype(str).str.contains(r"\b(?:error|exception|fail)", case=False, regex=True).to_numpy()
    is_err = np.isin(level, list(_ERROR_LEVELS)) | (msg_err & ~np.isin(level, ["info", "debug", "trace"]) & (level == ""))
    tpl = _templates(logs).to_numpy()
    ent = logs["entity"].astype(object).fillna("").astype(str).to_numpy()
    nm, am = periods.normal_mask(t), periods.abnormal_mask(t)
    frame = pd.DataFrame({"entity": ent, "t": t, "err": is_err, "tpl": tpl, "n": nm, "a": am})
    normal, abn = frame[frame["n"]], frame[frame["a"]]
    if abn.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    pb = normal.groupby("entity")["err"].mean()
    ga = abn.groupby("entity").agg(pa=("err", "mean"), na=("err", "size"))
    pb = pb.reindex(ga.index).fillna(0.0)
    z = (ga["pa"] - pb) / np.sqrt(np.maximum(pb * (1 - pb), 0.02) / ga["na"])
    err_a = abn[abn["err"]]
    onset = err_a.groupby("entity")["t"].min().reindex(ga.index)
    rows = [{"signal": "log:error", "entity": e, "kind": "error", "score": float(np.clip(zz, 0, Z_CAP)), "onset": o,
                 "baseline": float(b), "peak": float(a), "caller": None, "callee": None}
            for e, zz, o, b, a in zip(ga.index, z, onset, pb, ga["pa"], strict=True)]
    # error templates an entity did not log in the normal period
    seen = normal[normal["err"]][["entity", "tpl"]].drop_duplicates().assign(seen=True)
    new = err_a.merge(seen, on=["entity", "tpl"], how="left")
    new = new[new["seen"].isna()]
    for e, g in new.groupby("entity", sort=True):
        rows.append({"signal": "log:template", "entity": e, "kind": "error",
                         "score": float(min(Z_CAP, NEW_TEMPLATE_Z * np.sqrt(len(g)))), "onset": float(g["t"].min()),
                         "baseline": 0.0, "peak": float(len(g)), "caller": None, "callee": None})
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


EARLIER_SPLITS = (300.0, 600.0)
"""Seconds before the detection time also tried as the start of the abnormal period: an alert
can fire so late that the fault is over by then."""

SEARCH_CELLS = 2_000_000
"""Wide frames above this many cells are split at the detection time only (time budget)."""


def _best_split(case: Case, wide: pd.DataFrame, periods: Periods) -> tuple[pd.DataFrame, Periods]:
    """Score the metrics with the abnormal period starting at the detection time's guard and
    up to :data:`EARLIER_SPLITS` before it; keep the split whose ten strongest signals are
    strongest (a change point search over a few candidates)."""
    best = metric_anomalies(case, wide, periods)
    if (case.meta and case.meta.get("anomalous_window")) or case.detected_at is None or wide.size > SEARCH_CELLS:
        return best, periods
    times = wide.index.to_numpy(dtype="float64")
    strength = float(best["score"].nlargest(10).sum()) if len(best) else 0.0
    for back in EARLIER_SPLITS:
        earlier = split_periods(replace(case, detected_at=case.detected_at - back), times)
        if earlier.split >= periods.split - periods.step or earlier.normal_mask(times).sum() < 3:
            continue
        table = metric_anomalies(case, wide, earlier)
        s = float(table["score"].nlargest(10).sum()) if len(table) else 0.0
        # an earlier split must be clearly better: the detection time is the default belief
        if s > 1.5 * strength:
            best, periods, strength = table, earlier, s
    return best, periods


def detect(case: Case, wide: pd.DataFrame | None = None) -> tuple[pd.DataFrame, Periods]:
    """Return every signal of *case* scored (metrics, spans, logs in one table, see
    :data:`SIGNAL_COLUMNS`) and the periods used."""
    wide = aligned_wide(case) if wide is None else wide
    times = wide.index.to_numpy(dtype="float64") if not wide.empty else None
    periods = split_periods(case, times)
    metrics, periods = _best_split(case, wide, periods)
    shift = periods.split - split_periods(case, times).split if times is not None else 0.0
    # spans and logs often cover less time than metrics: split them on their own samples
    moved = replace(case, detected_at=case.detected_at + shift) if shift and case.detected_at is not None else case
    span_periods = split_periods(moved, case.spans["start"].to_numpy()) if len(case.spans) else periods
    log_periods = split_periods(moved, case.logs["time"].to_numpy()) if len(case.logs) else periods
    parts = [metrics, span_anomalies(case, span_periods), log_anomalies(case, log_periods)]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=SIGNAL_COLUMNS), periods
    table = pd.concat(parts, ignore_index=True)
    return table, periods
