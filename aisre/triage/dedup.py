"""Notifications to episodes: validate the alerts, then deduplicate them by identity
(fingerprint plus label set) and start (step 1 of :mod:`aisre.triage`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Alert
from aisre.errors import DataError
from aisre.triage.kinds import _NOISE_SEVERITIES, SEVERITY_RANK


def _service_of(alert: Alert) -> str:
    if alert.service:
        return str(alert.service)
    labels = alert.labels or {}
    for key in ("service", "app", "app_kubernetes_io_name", "job", "deployment", "container", "instance"):
        if labels.get(key):
            return str(labels[key])
    return "(unknown)"


def _frame(alerts: Sequence[Alert]) -> pd.DataFrame:
    """One row per notification, validated.

    Raises:
        DataError: for an item that is not an Alert or carries a non-numeric or non-finite time.
    """
    rows = []
    for i, a in enumerate(alerts):
        if not isinstance(a, Alert):
            raise DataError("triage takes aisre.case.Alert objects", field="alerts", row=i, value=type(a).__name__)
        labels = a.labels if isinstance(a.labels, dict) else {}
        rows.append(
            (
                str(a.fingerprint or ""),
                # labels as text: a label set, in one comparable value
                "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items())),
                str(labels.get("alertname", "") or ""),
                _service_of(a),
                str(a.severity or labels.get("severity") or "warning").lower(),
                str(a.status),
                a.starts_at,
                a.ends_at,
                labels.get("tier"),
            )
        )
    cols = ["fingerprint", "labelset", "alertname", "service", "severity", "status", "start", "end", "tier"]
    df = pd.DataFrame.from_records(rows, columns=cols)
    for col in ("start", "end"):
        try:
            df[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            bad = next(i for i, v in enumerate(df[col]) if not _numeric(v))
            raise DataError("alert time is not a number", field=f"alerts[{bad}].{col}", value=df[col][bad]) from exc
    bad_start = ~np.isfinite(df["start"].to_numpy())
    if bad_start.any():
        i = int(np.flatnonzero(bad_start)[0])
        raise DataError("alert has no finite start time", field=f"alerts[{i}].starts_at", value=df["start"][i])
    bad_status = ~df["status"].isin(("firing", "resolved"))
    if bad_status.any():
        i = int(np.flatnonzero(bad_status.to_numpy())[0])
        raise DataError("alert status must be firing or resolved", field=f"alerts[{i}].status", value=df["status"][i])
    missing = df["fingerprint"] == ""
    if missing.any():
        df.loc[missing, "fingerprint"] = [
            hashlib.sha1(s.encode()).hexdigest()[:16] for s in df.loc[missing, "labelset"]
        ]
    return df


def _numeric(v: Any) -> bool:
    if v is None:
        return True
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _episodes(df: pd.DataFrame) -> pd.DataFrame:
    """Collapse notifications into episodes: one per (identity, start)."""
    identity = pd.factorize(df["fingerprint"] + "\x1d" + df["labelset"])[0]
    df = df.assign(identity=identity, resolved=df["status"].eq("resolved"))
    end_if_resolved = df["end"].where(df["resolved"])
    df = df.assign(end_r=end_if_resolved, sev_rank=df["severity"].map(SEVERITY_RANK).fillna(2).astype(int))
    g = df.groupby(["identity", "start"], sort=False)
    ep = g.agg(
        fingerprint=("fingerprint", "first"),
        alertname=("alertname", "first"),
        service=("service", "first"),
        tier=("tier", "first"),
        sev_rank=("sev_rank", "max"),
        severity=("severity", "first"),
        resolved=("resolved", "any"),
        end=("end_r", "max"),
        notifications=("status", "size"),
    ).reset_index()
    # a resolved copy without an end time resolved no later than we heard of it
    no_end = ep["resolved"] & ep["end"].isna()
    ep.loc[no_end, "end"] = ep.loc[no_end, "start"]
    ep["end"] = np.maximum(ep["end"].to_numpy(), ep["start"].to_numpy(), where=ep["resolved"].to_numpy(), out=ep["end"].to_numpy().copy())
    sev_names = {4: "critical", 3: "error", 2: "warning", 1: "info", 0: "none"}
    ep["severity"] = np.where(
        ep["severity"].isin(_NOISE_SEVERITIES), ep["severity"], ep["sev_rank"].map(sev_names)
    )
    ep = ep.sort_values(["start", "identity"], kind="stable").reset_index(drop=True)
    return ep


def _empty_episodes() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["fingerprint", "start", "end", "resolved", "service", "alertname", "severity", "kind", "notifications", "incident", "suppressed"]
    )
