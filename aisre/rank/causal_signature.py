"""Fault-kind signatures: which kind of fault a root service's signals point to."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["fault_kind"]

_RESOURCE = [
    ("mem", re.compile(r"mem|heap|oom|swap", re.IGNORECASE)),
    ("disk", re.compile(r"disk|\bio\b|diskio|fs_|syscall|read|write", re.IGNORECASE)),
    ("socket", re.compile(r"socket|fd|conn|tcp", re.IGNORECASE)),
    ("pool", re.compile(r"pool|thread|queue", re.IGNORECASE)),
    ("loss", re.compile(r"drop|loss|retrans", re.IGNORECASE)),
    ("cpu", re.compile(r"cpu|throttl", re.IGNORECASE)),
]
_CRASH = re.compile(r"restart|crash|oomkill|backoff|killing|exit", re.IGNORECASE)


def fault_kind(signals: pd.DataFrame, feats: pd.Series) -> str | None:
    """Return the fault kind (one of aisre.case.FAULT_KINDS) that *signals* of one service
    (rows of :data:`aisre.detect.SIGNAL_COLUMNS`) and its per-kind features point to, or None.

    Events first (deploy, config), then restarts (crash), then the strongest of: saturation of a
    resource (cpu, mem, disk, socket, pool), the service's own errors (error), latency on calls
    into it or in its own work without saturation (delay).
    """
    if signals.empty:
        return None
    names_all = [str(x) for x in signals["signal"]]
    kinds = [str(x) for x in signals["kind"]]
    scores = signals["score"].to_numpy(dtype="float64")
    events = [n for n, k in zip(names_all, kinds, strict=True) if k == "event"]
    if events:
        for kind in ("crash", "config", "deploy"):
            if any(n.endswith(kind) for n in events):
                return kind
    if any(_CRASH.search(n) for n, z in zip(names_all, scores, strict=True) if z >= 3.0):
        return "crash"
    res, err = float(feats.get("resource", 0.0)), float(feats.get("error", 0.0))
    lat = max(float(feats.get("latency", 0.0)), float(feats.get("inbound", 0.0)))
    if res >= max(err, lat * 0.8) and res > 0:
        rows = [(z, n) for n, k, z in zip(names_all, kinds, scores, strict=True) if k == "resource"]
        top = max((z for z, _ in rows), default=0.0)
        # a memory leak saturates CPU too: prefer memory when it moved nearly as much
        names = " ".join(n for z, n in rows if z >= 0.5 * top)
        for kind, pattern in _RESOURCE:
            if pattern.search(names):
                return kind
        return "cpu"
    if err >= lat and err > 0:
        return "error"
    return "delay" if lat > 0 else None
