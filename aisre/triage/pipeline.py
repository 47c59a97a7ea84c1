"""The entry point, :func:`triage`: the steps of :mod:`aisre.triage`, in order, on one alert stream."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from aisre.case import Alert, Topology
from aisre.errors import UsageError
from aisre.triage.dedup import _empty_episodes, _episodes, _frame
from aisre.triage.grouping import _bursts, _group
from aisre.triage.kinds import _NOISE_SEVERITIES, alert_kind
from aisre.triage.model import Suppressed, TriageResult
from aisre.triage.ranking import _build_incidents
from aisre.triage.suppression import (
    _flapping,
    _noise_records,
    _symptom_records,
    _symptoms,
)
from aisre.triage.topology import _dependency_pairs, _resolve_names


def triage(
    alerts: Sequence[Alert],
    topology: Topology | None = None,
    *,
    window: float = 300.0,
    now: float | None = None,
    max_hops: int = 3,
    flap_count: int = 3,
    flap_window: float = 1800.0,
) -> TriageResult:
    """Return the incidents *alerts* make, ranked by user impact, and the alerts suppressed.

    *window* (seconds) is how close in time alerts must be to group; *now* (unix seconds,
    default the latest time in the alerts) is when still-firing alerts are judged open;
    *max_hops* bounds the dependency path between grouped services; an identity that fired and
    resolved *flap_count* times within *flap_window* seconds is flapping.

    Raises:
        UsageError: for a non-positive window, max_hops < 0 or flap_count < 2.
        DataError: for an item that is not an Alert, or a bad time or status.
    """
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise UsageError(f"window must be a positive number of seconds, not {window!r}")
    if int(max_hops) < 0 or int(flap_count) < 2 or not flap_window > 0:
        raise UsageError("max_hops must be >= 0, flap_count >= 2 and flap_window > 0")
    if topology is not None and not isinstance(topology, Topology):
        raise UsageError(f"topology must be an aisre.case.Topology, not {type(topology).__name__}")
    alerts = list(alerts)
    if not alerts:
        return TriageResult([], [], _empty_episodes(), 0)
    df = _frame(alerts)
    ep = _episodes(df)
    ep["service"] = _resolve_names(ep["service"], topology)
    latest = float(np.nanmax(np.r_[ep["start"].to_numpy(), ep["end"].to_numpy()]))
    now_t = latest if now is None else float(now)
    ep["kind"] = ep["alertname"].map({n: alert_kind(n) for n in ep["alertname"].unique()})
    ep["suppressed"] = pd.Series([None] * len(ep), dtype=object)
    ep["incident"] = pd.Series([None] * len(ep), dtype=object)

    suppressed: list[Suppressed] = []
    info = ep["severity"].isin(_NOISE_SEVERITIES).to_numpy()
    flap = _flapping(ep, int(flap_count), float(flap_window)) & ~info
    ep.loc[info, "suppressed"] = "info"
    ep.loc[flap, "suppressed"] = "flapping"
    suppressed += _noise_records(ep, info, flap, flap_window)

    live = ep[~(info | flap)].copy()
    live["active_end"] = np.where(live["resolved"], live["end"], max(now_t, float(live["start"].max()) if len(live) else now_t))
    live["svc_code"] = pd.factorize(live["service"])[0]
    live["burst"] = _bursts(live, float(window)) if len(live) else np.zeros(0, dtype=np.int64)
    pairs = _dependency_pairs(topology, int(max_hops)) if topology is not None and max_hops > 0 else pd.DataFrame(columns=["service", "dep", "hops"])
    bursts, links, model = _group(live, pairs, float(window))

    symptom_of = _symptoms(live, pairs)
    incidents, ids = _build_incidents(live, bursts, links, symptom_of, topology, float(window), model)
    live["incident"] = ids[live["comp"].to_numpy()]
    sym_mask = live.index.isin(symptom_of.index)
    live.loc[sym_mask, "suppressed"] = "symptom"
    ep.loc[live.index, "incident"] = live["incident"]
    ep.loc[live.index, "suppressed"] = live["suppressed"]
    suppressed += _symptom_records(live, symptom_of)

    order = {inc.id: k for k, inc in enumerate(incidents)}
    suppressed.sort(key=lambda s: (order.get(s.incident or "", len(order)), s.reason, s.fingerprint))
    keep = ["fingerprint", "start", "end", "resolved", "service", "alertname", "severity", "kind", "notifications", "incident", "suppressed"]
    return TriageResult(incidents, suppressed, ep[keep].reset_index(drop=True), len(alerts))
