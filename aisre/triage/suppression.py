"""Alerts kept out of incidents, and the words saying why: informational and flapping alerts
(step 2), and symptoms whose cause is in the same incident (step 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aisre.triage.model import Suppressed, _when


def _flapping(ep: pd.DataFrame, flap_count: int, flap_window: float) -> np.ndarray:
    """Mask of episodes that belong to a flapping run of their identity."""
    res = ep[ep["resolved"]]
    if len(res) < flap_count:
        return np.zeros(len(ep), dtype=bool)
    t0 = float(ep["start"].min())
    span = float(ep["start"].max()) - t0 + 4 * flap_window + 1.0
    # one sorted key per identity band, so searchsorted works on all identities at once
    rkey = np.sort(res["identity"].to_numpy() * span + (res["start"].to_numpy() - t0))
    lo = np.searchsorted(rkey, rkey - flap_window, side="left")
    flagged = rkey[(np.arange(len(rkey)) - lo + 1) >= flap_count]
    if flagged.size == 0:
        return np.zeros(len(ep), dtype=bool)
    key = ep["identity"].to_numpy() * span + (ep["start"].to_numpy() - t0)
    idx = np.searchsorted(flagged, key)
    after = flagged[np.minimum(idx, flagged.size - 1)]
    before = flagged[np.maximum(idx - 1, 0)]
    near_after = (idx < flagged.size) & (after - key <= flap_window)
    near_before = (idx > 0) & (key - before <= flap_window)
    return near_after | near_before


def _noise_records(ep: pd.DataFrame, info: np.ndarray, flap: np.ndarray, flap_window: float) -> list[Suppressed]:
    out: list[Suppressed] = []
    if info.any():
        sub = ep[info].drop_duplicates("fingerprint")
        out += [
            Suppressed(fp, f"informational: {name or 'alert'} on {svc} is labelled severity {sev}, not a problem to page on")
            for fp, name, svc, sev in zip(sub["fingerprint"], sub["alertname"], sub["service"], sub["severity"], strict=True)
        ]
    if flap.any():
        sub = ep[flap]
        stats = sub.groupby("fingerprint", sort=False).agg(
            alertname=("alertname", "first"), svc=("service", "first"), n=("start", "size"),
            first=("start", "min"), last=("start", "max"),
        )  # fmt: skip
        out += [
            Suppressed(
                fp,
                f"flapping: {name or 'alert'} on {svc} fired and resolved {n} times between "
                f"{_when(first)} and {_when(last)}, too often to page on",
            )
            for fp, name, svc, n, first, last in zip(
                stats.index, stats["alertname"], stats["svc"], stats["n"], stats["first"], stats["last"], strict=True
            )
        ]
    return out


def _symptoms(live: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Symptom episodes whose cause sits on a dependency in the same incident.

    Returns a frame indexed like *live* with the cause's ``dep``, ``cause_name`` and ``hops``.
    """
    empty = pd.DataFrame(columns=["dep", "cause_name", "hops"])
    if pairs.empty or live.empty:
        return empty
    causes = live.loc[live["kind"].eq("cause"), ["comp", "service", "alertname"]]
    sym = live.loc[live["kind"].eq("symptom"), ["comp", "service"]]
    if causes.empty or sym.empty:
        return empty
    causes = causes.drop_duplicates(["comp", "service"]).rename(columns={"service": "dep", "alertname": "cause_name"})
    sym_keys = sym.drop_duplicates()
    m = sym_keys.merge(pairs, on="service").merge(causes, on=["comp", "dep"])
    if m.empty:
        return empty
    m = m.sort_values(["comp", "service", "hops"], kind="stable").drop_duplicates(["comp", "service"])
    joined = sym.reset_index().merge(m, on=["comp", "service"], how="inner").set_index("index")
    return joined[["dep", "cause_name", "hops"]]


def _symptom_records(live: pd.DataFrame, symptom_of: pd.DataFrame) -> list[Suppressed]:
    if symptom_of.empty:
        return []
    sub = live.loc[symptom_of.index, ["fingerprint", "alertname", "service", "incident"]].join(symptom_of)
    sub = sub.drop_duplicates("fingerprint")
    return [
        Suppressed(
            fp,
            f"symptom: {name or 'alert'} on {svc} is explained by {cause} on {dep}, which it depends on "
            f"({int(hops)} hop{'s' if hops != 1 else ''}), in the same incident {inc}",
            inc,
        )
        for fp, name, svc, inc, dep, cause, hops in zip(
            sub["fingerprint"], sub["alertname"], sub["service"], sub["incident"],
            sub["dep"], sub["cause_name"], sub["hops"], strict=True,
        )
    ]
