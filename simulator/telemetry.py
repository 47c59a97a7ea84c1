"""Telemetry a real stack would emit, computed from the engine's records with numpy.

- **Metrics** every second for every service, instance and host (long table): ``cpu`` (percent of
  one core, as cAdvisor's rate x 100), ``mem`` (bytes), ``diskio`` (bytes/s), ``socket`` (open
  sockets), ``workload`` (requests received/s), ``error`` (failed requests/s), ``latency-50``,
  ``latency-90``, ``latency-99`` (seconds, server side, of requests finishing in that second,
  carried forward through seconds with none). Hosts get ``cpu`` and ``mem``.
- **Logs** from templates (the ``template`` column, Drain-style ``<*>``), OpenTelemetry
  severity text (``INFO``, ``WARN``, ``ERROR``): errors on the faulty path (the failing
  service's own error, each caller's client error and retry warnings), lifecycle lines, and a
  2 % sample of successful requests at INFO.
- **Spans** with trace/span/parent ids and OTLP attribute names. Sampling: every trace with an
  error is kept (tail sampling's error policy) plus a head-based share ``trace_sample`` of the
  rest (default 10 %), decided per trace, so sampled traces are complete.
- **Events**: Kubernetes events, deploys, config changes, scaling (from the engine).
- **Alerts** from Prometheus-style rules, as :class:`aisre.case.Alert` and as Alertmanager
  webhook (version 4) payloads: multi-window SLO burn on entry services, error ratio per
  service, CPU/memory/socket saturation per instance, crash looping, the always-firing
  ``Watchdog`` and a few unrelated noise alerts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from aisre.case import Alert

from .engine import (
    BAD_VERSION,
    CAUSES,
    CONFIG,
    EXCEPTION,
    OK,
    POOL,
    RATE_LIMITED,
    RECORD_FIELDS,
    REFUSED,
    RESET,
    SOCKET,
    TIMEOUT,
    UPSTREAM,
    Engine,
    EngineResult,
)  # fmt: skip

__all__ = [
    "METRICS",
    "NOISE_ALERTS",
    "Telemetry",
    "alertmanager_payloads",
    "build_telemetry",
]

METRICS = ("cpu", "mem", "diskio", "socket", "workload", "error", "latency-50", "latency-90", "latency-99")
"""Metric names emitted per service and instance, every second."""

INFO_SAMPLE = 0.02
"""Share of successful requests that write an INFO access log line."""

SLO_TARGET = 0.99
"""Availability/latency objective of entry endpoints used by the burn-rate alert."""

NOISE_ALERTS = ("KubeCPUOvercommit", "TargetDown", "NodeClockNotSynchronising", "KubeJobFailed", "PrometheusRuleFailures")
"""Alerts the simulator fires at random, unrelated to any fault (plus the always-on Watchdog)."""

_F = {name: k for k, name in enumerate(RECORD_FIELDS)}
_MB = float(2**20)


class Telemetry:
    """The tables of one run: metrics, logs, spans, events, alerts and webhook payloads."""

    def __init__(
        self,
        metrics: pd.DataFrame,
        logs: pd.DataFrame,
        spans: pd.DataFrame,
        events: pd.DataFrame,
        alerts: list[Alert],
        noise: list[str],
    ) -> None:
        self.metrics = metrics
        self.logs = logs
        self.spans = spans
        self.events = events
        self.alerts = alerts
        self.noise = noise


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

_STR = pd.Series(["x"]).dtype
"""The dtype pandas gives a column of Python strings (Arrow-backed ``str`` from pandas 3 on)."""

_ARROW = isinstance(_STR, pd.StringDtype) and _STR.storage == "pyarrow"


def _hex_chars(*parts: np.ndarray) -> np.ndarray:
    """Return (n, 16 * len(parts)) ASCII codes: each part's uint64s as 16 lowercase hex digits
    (``f"{v:016x}"``), the parts side by side."""
    out = np.empty((parts[0].size, 16 * len(parts)), dtype=np.uint8)
    for k, v in enumerate(parts):
        b = np.ascontiguousarray(v, dtype=">u8").view(np.uint8).reshape(-1, 8)
        out[:, 16 * k : 16 * k + 16 : 2] = _HEX_DIGITS[b >> 4]
        out[:, 16 * k + 1 : 16 * k + 16 : 2] = _HEX_DIGITS[b & 15]
    return out


def _text(chars: np.ndarray, valid: np.ndarray | None = None) -> Any:
    """Return a string column of the fixed-width ASCII rows *chars* (missing where *valid* is
    False), the column pandas would make of the same Python strings, built without them."""
    n, w = chars.shape
    if not _ARROW:
        values = chars.view(f"S{w}").ravel().astype(f"U{w}").astype(object) if n else np.zeros(0, dtype=object)
        if valid is not None:
            values[~valid] = None
        return values
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap, nulls = pa.py_buffer(np.packbits(valid, bitorder="little")), int(n - valid.sum())
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)), bitmap, nulls)
    return pd.array(arr, dtype=_STR)


def _pick(names: Sequence[str], codes: np.ndarray) -> Any:
    """Return the string column ``[names[c] for c in codes]`` (codes >= 0) without a Python loop
    over the rows: Arrow decodes it from a dictionary."""
    if not _ARROW:
        return np.array(list(names), dtype=object)[codes] if len(codes) else np.zeros(0, dtype=object)
    arr = pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), pa.array(list(names), type=pa.large_string()))
    return pd.array(arr, dtype=_STR)


def _ffill(m: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along axis 1, then fill what is left with 0."""
    if m.size == 0:
        return m
    mask = np.isnan(m)
    idx = np.where(~mask, np.arange(m.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = m[np.arange(m.shape[0])[:, None], idx]
    return np.nan_to_num(out, nan=0.0)


def _percentiles(keys: np.ndarray, values: np.ndarray, n_keys: int, qs: Sequence[float],
                 by_value: np.ndarray | None = None) -> np.ndarray:
    """Return nearest-rank percentiles of *values* per integer key, NaN for empty keys.

    *by_value* is ``np.argsort(values)`` when the caller has it (several key sets over the
    same values share one sort of the values)."""
    out = np.full((len(qs), n_keys), np.nan)
    n = keys.size
    if n == 0:
        return out
    by_value = np.argsort(values) if by_value is None else by_value
    if n_keys <= 1 << 16:
        # by key, then value: a stable sort of the keys in value order; 16-bit keys make numpy
        # sort by radix, in linear time
        order = by_value[np.argsort(keys[by_value].astype(np.uint16), kind="stable")]
    elif n_keys * n < 2**62:
        # one sort of unique integers (key, then position in value order)
        rank = np.empty(n, dtype=np.int64)
        rank[by_value] = np.arange(n, dtype=np.int64)
        order = np.argsort(keys * n + rank)
    else:
        order = np.lexsort((values, keys))
    k = keys[order]
    v = values[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(k[1:], k[:-1], out=first[1:])
    start = np.flatnonzero(first)
    uniq = k[start]
    count = np.diff(np.append(start, n))
    for j, q in enumerate(qs):
        pos = start + np.maximum(np.ceil(q * count).astype(np.int64) - 1, 0)
        out[j, uniq] = v[pos]
    return out


def _distinct_rows(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct rows of the integer *columns* (each >= -1) and, for every row, the
    index of its distinct row: ``np.unique(axis=0, return_inverse=True)`` on one mixed-radix
    integer per row, a plain sort instead of a sort of records."""
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in columns], axis=1)
    if stacked.shape[0] == 0:
        return stacked, np.zeros(0, dtype=np.int64)
    radix = [int(c.max()) + 2 for c in stacked.T]
    if math.prod(radix) >= 2**62:
        distinct, which = np.unique(stacked, axis=0, return_inverse=True)
        return distinct, which.reshape(-1)
    code = np.zeros(stacked.shape[0], dtype=np.int64)
    for col, r in zip(stacked.T, radix):
        code = code * r + (col + 1)
    _, first, which = np.unique(code, return_index=True, return_inverse=True)
    return stacked[first], which.reshape(-1)


def _intervals_mask(intervals: Sequence[tuple[int, float, float]], n: int, T: int) -> np.ndarray:
    """Boolean (n, T): True in seconds overlapping any ``(row, t0, t1)`` interval."""
    m = np.zeros((n, T), dtype=bool)
    for row, t0, t1 in intervals:
        a = max(0, int(math.floor(t0)))
        b = min(T, int(math.ceil(t1)))
        if b > a:
            m[row, a:b] = True
    return m


class _Builder:
    def __init__(self, eng: Engine, res: EngineResult, start_time: float, duration: float, rng: np.random.Generator,
                 system: str, trace_sample: float) -> None:
        self.eng = eng
        self.res = res
        self.t0 = float(start_time)
        self.T = int(math.ceil(duration))
        self.rng = rng
        self.system = system
        self.trace_sample = trace_sample
        R = res.records
        self.R = R
        self.n_inst = eng.n_inst
        self.n_svc = len(eng.svc_names)
        self.host_m: dict[str, np.ndarray] = {}
        self.salt = rng.integers(0, 2**62, size=3, dtype=np.int64).astype(np.uint64)
        if R.size:
            self.inst = R[:, _F["instance"]].astype(np.int64)
            self.svc = R[:, _F["service"]].astype(np.int64)
            self.status = R[:, _F["status"]].astype(np.int64)
            self.served = R[:, _F["served"]] > 0
            self.start = R[:, _F["start"]]
            self.end = R[:, _F["end"]]
        else:
            z = np.zeros(0, dtype=np.int64)
            self.inst = self.svc = self.status = z
            self.served = z.astype(bool)
            self.start = self.end = z.astype(np.float64)

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, np.ndarray]]:
        eng, T, n = self.eng, self.T, self.n_inst
        topo = eng.topo
        sv = self.served
        inst = self.inst[sv]
        s_sec = np.clip(self.start[sv].astype(np.int64), 0, T - 1)
        e_sec = np.clip(self.end[sv].astype(np.int64), 0, T - 1)
        dur = self.end[sv] - self.start[sv]
        work = self.R[sv, _F["work"]] if self.R.size else np.zeros(0)
        failed = self.status[sv] != OK
        size = n * T
        workload = np.bincount(inst * T + s_sec, minlength=size).reshape(n, T).astype(np.float64)
        errors = np.bincount((inst * T + e_sec)[failed], minlength=size).reshape(n, T).astype(np.float64)
        busy = np.bincount(inst * T + s_sec, weights=work, minlength=size).reshape(n, T)
        conc = np.bincount(inst * T + s_sec, weights=dur, minlength=size).reshape(n, T)
        by_dur = np.argsort(dur)
        lat = _percentiles(inst * T + e_sec, dur, size, (0.5, 0.9, 0.99), by_dur)
        lat = [_ffill(lat[j].reshape(n, T)) for j in range(3)]

        svc_of = np.array(eng.inst_svc, dtype=np.int64)
        services = topo.services
        cores = np.array(eng.cores)
        base_mem = np.array([services[s].mem_mb for s in eng.inst_svc]) * _MB
        limit_mem = np.array([services[s].mem_limit_mb for s in eng.inst_svc]) * _MB
        disk_b = np.array([services[s].disk_kb for s in eng.inst_svc]) * 1024.0
        base_sock = np.array([services[s].sockets for s in eng.inst_svc], dtype=np.float64)
        sock_limit = np.array([services[s].socket_limit for s in eng.inst_svc], dtype=np.float64)
        t = np.arange(T, dtype=np.float64)
        down = _intervals_mask(self.res.down, n, T)
        up = ~down

        noise = self.rng.normal(0.0, 1.0, size=(4, n, T))
        cpu = 100.0 * busy + 0.8 + 0.3 * np.abs(noise[0])
        for kind, row, a, b, amount in self.res.hogs:
            if kind == "cpu":
                lo, hi = int(math.floor(a)), int(math.ceil(b))
                cpu[row, lo:hi] += 100.0 * amount
        cpu = np.minimum(cpu, 100.0 * cores[:, None] * (1.0 + 0.02 * np.abs(noise[1])))
        mem = base_mem[:, None] * (1.0 + 0.005 * noise[2]) + 0.5 * _MB * conc
        for row, a, b, rate in self.res.leaks:
            lo, hi = int(math.floor(a)), min(T, int(math.ceil(b)))
            mem[row, lo:hi] += rate * np.clip(t[lo:hi] - a, 0.0, None)
        mem = np.minimum(mem, limit_mem[:, None])
        diskio = disk_b[:, None] * workload + 2048.0 * np.abs(noise[3])
        for kind, row, a, b, amount in self.res.hogs:
            if kind == "disk":
                # a Case taken mid-run (the twin's snapshot) ends before the fault does
                lo, hi = min(T, int(math.floor(a))), min(T, int(math.ceil(b)))
                diskio[row, lo:hi] += amount * (1.0 + 0.1 * self.rng.standard_normal(hi - lo))
        sockets = base_sock[:, None] + np.ceil(conc)
        for row, a, b, rate in self.res.sockets:
            lo, hi = int(math.floor(a)), min(T, int(math.ceil(b)))
            sockets[row, lo:hi] += np.floor(rate * np.clip(t[lo:hi] - a, 0.0, None))
        sockets = np.minimum(sockets, sock_limit[:, None])
        for m in (cpu, mem, diskio, sockets):
            m[down] = 0.0
        inst_m = {
            "cpu": cpu, "mem": mem, "diskio": diskio, "socket": sockets, "workload": workload, "error": errors,
            "latency-50": lat[0], "latency-90": lat[1], "latency-99": lat[2],
        }  # fmt: skip

        # services: sums over instances, percentiles over all the service's requests
        agg = np.zeros((self.n_svc, n))
        agg[svc_of, np.arange(n)] = 1.0
        svc_m = {k: agg @ inst_m[k] for k in ("cpu", "mem", "diskio", "socket", "workload", "error")}
        slat = _percentiles(self.svc[sv] * T + e_sec, dur, self.n_svc * T, (0.5, 0.9, 0.99), by_dur)
        for j, name in enumerate(("latency-50", "latency-90", "latency-99")):
            svc_m[name] = _ffill(slat[j].reshape(self.n_svc, T))

        # hosts: the sum of their instances plus whatever else runs there (a noisy neighbour)
        n_host = len(eng.host_names)
        host_m: dict[str, np.ndarray] = {}
        if n_host:
            hagg = np.zeros((n_host, n))
            has = np.array(eng.inst_host) >= 0
            hagg[np.array(eng.inst_host)[has], np.arange(n)[has]] = 1.0
            host_m["cpu"] = hagg @ cpu + 5.0
            host_m["mem"] = hagg @ mem + 512 * _MB
            for kind, row, a, b, amount in self.res.hogs:
                if kind == "neighbour":
                    lo, hi = int(math.floor(a)), int(math.ceil(b))
                    host_m["cpu"][row, lo:hi] += 100.0 * amount
                    host_m["mem"][row, lo:hi] += 2048 * _MB
            host_cores = np.array([h.cores for h in topo.hosts])
            host_m["cpu"] = np.minimum(host_m["cpu"], 100.0 * host_cores[:, None])
        self.host_m = host_m

        times = self.t0 + t
        ran = np.array([i not in self.res.never_ran for i in range(n)], dtype=bool)
        parts_e: list[np.ndarray] = []
        parts_m: list[np.ndarray] = []
        parts_v: list[np.ndarray] = []
        names: list[str] = []
        metric_names = list(METRICS)

        def add(entities: list[str], table: dict[str, np.ndarray], rows: np.ndarray | None = None) -> None:
            base = len(names)
            names.extend(entities)
            codes = np.arange(base, base + len(entities))
            for mname, mat in table.items():
                mat = mat if rows is None else mat[rows]
                parts_e.append(np.repeat(codes, T))
                parts_m.append(np.full(mat.size, metric_names.index(mname)))
                parts_v.append(mat.ravel())

        add(eng.svc_names, svc_m)
        add([eng.inst_names[i] for i in range(n) if ran[i]], inst_m, ran)
        if host_m:
            add(eng.host_names, host_m)
        ent = np.concatenate(parts_e) if parts_e else np.zeros(0, dtype=np.int64)
        frame = pd.DataFrame(
            {
                "time": np.tile(times, ent.size // T) if parts_e else np.zeros(0),
                "entity": pd.Categorical.from_codes(ent, categories=pd.Index(names, dtype=object)),
                "metric": pd.Categorical.from_codes(
                    np.concatenate(parts_m) if parts_m else np.zeros(0, dtype=np.int64),
                    categories=pd.Index(metric_names, dtype=object),
                ),
                "value": np.concatenate(parts_v) if parts_v else np.zeros(0),
            }
        )
        return frame, svc_m, inst_m

    # ------------------------------------------------------------------ ids
    def rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of records with *ids*, and which of them exist (in flight at the end: not)."""
        all_ids = self.res.ids
        pos = np.clip(np.searchsorted(all_ids, ids), 0, max(all_ids.size - 1, 0))
        found = (all_ids.size > 0) & (all_ids[pos] == ids) if all_ids.size else np.zeros(ids.size, dtype=bool)
        return pos, found

    def trace_ids(self, traces: np.ndarray, valid: np.ndarray | None = None) -> Any:
        """The 32-hex-digit trace ids of run-local trace numbers, as a string column."""
        hi = _splitmix(traces.astype(np.uint64) ^ self.salt[0])
        lo = _splitmix(traces.astype(np.uint64) + self.salt[1])
        return _text(_hex_chars(hi, lo), valid)

    def span_ids(self, rows: np.ndarray, valid: np.ndarray | None = None) -> Any:
        """The 16-hex-digit span ids of record ids, as a string column."""
        return _text(_hex_chars(_splitmix(rows.astype(np.uint64) ^ self.salt[2])), valid)

    # ------------------------------------------------------------------ logs
    def logs(self) -> pd.DataFrame:
        eng, R = self.eng, self.R
        frames: list[pd.DataFrame] = []
        if R.size:
            ops = eng.ep_ops
            svc_names = eng.svc_names
            inst_names = eng.inst_names
            trace = R[:, _F["trace"]].astype(np.int64)
            caller = R[:, _F["caller"]].astype(np.int64)
            parent = R[:, _F["parent"]].astype(np.int64)
            ep = R[:, _F["endpoint"]].astype(np.int64)
            attempt = R[:, _F["attempt"]].astype(np.int64)
            detail = R[:, _F["detail"]].astype(np.int64)
            status = self.status
            # the cause a failing child reported, for the parent's upstream message
            child_err = np.full(len(R), OK, dtype=np.int64)
            bad_child = np.flatnonzero((status != OK) & (parent >= 0))
            prow, found = self.rows_of(parent[bad_child])
            child_err[prow[found]] = status[bad_child[found]]
            rows: list[tuple[float, str, str, str, str, int]] = []
            codes = {TIMEOUT: "DeadlineExceeded", REFUSED: "Unavailable", RESET: "Unavailable", SOCKET: "Unavailable",
                     EXCEPTION: "Internal", BAD_VERSION: "Internal", CONFIG: "FailedPrecondition", UPSTREAM: "Internal",
                     POOL: "ResourceExhausted", RATE_LIMITED: "ResourceExhausted"}  # fmt: skip
            for r in np.flatnonzero(status != OK).tolist():
                st = int(status[r])
                t_end = float(R[r, _F["end"]])
                t_start = float(R[r, _F["start"]])
                s = svc_names[int(self.svc[r])]
                op = ops[int(ep[r])]
                i = int(self.inst[r])
                pod = inst_names[i] if i >= 0 else s
                c = int(caller[r])
                cs = svc_names[eng.inst_svc[c]] if c >= 0 else None
                tr = int(trace[r])
                if self.served[r]:
                    if st == EXCEPTION:
                        rows.append((t_end, s, "ERROR", "Unhandled exception in <*>: <*>",
                                     f"Unhandled exception in {op}: java.lang.IllegalStateException: unexpected null from repository (pod {pod})", tr))
                    elif st == BAD_VERSION:
                        rows.append((t_end, s, "ERROR", "panic recovered in <*>: runtime error: invalid memory address or nil pointer dereference (version <*>)",
                                     f"panic recovered in {op}: runtime error: invalid memory address or nil pointer dereference (version {eng.version[i] if i >= 0 else '?'})", tr))
                    elif st == CONFIG:
                        rows.append((t_end, s, "ERROR", "rejecting request to <*>: invalid configuration value for <*>",
                                     f"rejecting request to {op}: invalid configuration value for server.max_threads", tr))
                    elif st == SOCKET:
                        rows.append((t_end, s, "ERROR", "accept4: too many open files; retrying in <*>",
                                     "accept4: too many open files; retrying in 5ms", tr))
                    elif st == TIMEOUT:
                        rows.append((t_end, s, "WARN", "request <*> cancelled by client after <*> ms",
                                     f"request {op} cancelled by client after {1000 * (t_end - t_start):.0f} ms", tr))
                    elif st == POOL:
                        callee = svc_names[int(detail[r])]
                        rows.append((t_end, s, "ERROR", "Timeout waiting for connection from pool to <*>",
                                     f"Timeout waiting for connection from pool to {callee} (pod {pod})", tr))
                    elif st == UPSTREAM:
                        callee = svc_names[int(detail[r])] if detail[r] >= 0 else "?"
                        why = int(child_err[r]) if child_err[r] != OK else UPSTREAM
                        rows.append((t_end, s, "ERROR", "<*> failed: rpc error: code = <*> desc = <*> calling <*>",
                                     f"{op} failed: rpc error: code = {codes.get(why, 'Unknown')} desc = {CAUSES[why]} calling {callee}", tr))
                # the caller's side of a transport failure
                if cs is not None and st in (TIMEOUT, REFUSED, RESET, SOCKET):
                    desc = {TIMEOUT: "context deadline exceeded", REFUSED: f"connection error: dial tcp {s}:8080: connect: connection refused",
                            RESET: "transport is closing", SOCKET: "dial tcp: socket: too many open files"}[st]  # fmt: skip
                    rows.append((t_end if st == RESET else max(t_start, min(t_end, t_start + 1e-3)) if st != TIMEOUT else t_end,
                                 cs, "WARN" if attempt[r] == 0 and st != TIMEOUT else "ERROR",
                                 "rpc error: code = <*> desc = <*> calling <*>",
                                 f"rpc error: code = {codes[st]} desc = {desc} calling {s}/{op}", tr))
            for r in np.flatnonzero((attempt > 0) & (caller >= 0)).tolist():
                cs = svc_names[eng.inst_svc[int(caller[r])]]
                rows.append((float(R[r, _F["start"]]), cs, "WARN", "retrying <*> (attempt <*>)",
                             f"retrying {svc_names[int(self.svc[r])]}/{ops[int(ep[r])]} (attempt {int(attempt[r]) + 1})", int(trace[r])))
            ok = np.flatnonzero((status == OK) & self.served)
            pick = ok[self.rng.random(ok.size) < INFO_SAMPLE] if ok.size else ok
            dur_ms = (R[pick, _F["end"]] - R[pick, _F["start"]]) * 1000.0
            info = pd.DataFrame({
                "time": R[pick, _F["end"]],
                "entity": [svc_names[int(x)] for x in self.svc[pick].tolist()],
                "level": "INFO",
                "template": "<*> completed with status OK in <*> ms",
                "message": [f"{ops[int(e)]} completed with status OK in {d:.1f} ms" for e, d in zip(ep[pick].tolist(), dur_ms.tolist())],
                "trace": trace[pick],
            })  # fmt: skip
            err = pd.DataFrame(rows, columns=["time", "entity", "level", "template", "message", "trace"])
            frames.extend([err, info])
        if self.res.logs:
            life = pd.DataFrame(self.res.logs, columns=["time", "entity", "level", "template", "message", "trace"])
            life["entity"] = [self._service_of(e) for e in life["entity"]]
            life["trace"] = -1
            frames.append(life)
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"time": [], "entity": [], "level": [], "template": [], "message": [], "trace_id": []})
        logs = pd.concat(frames, ignore_index=True)
        logs["trace"] = logs["trace"].astype(np.int64)
        traces = logs["trace"].to_numpy()
        logs["trace_id"] = self.trace_ids(traces, traces >= 0)
        logs["time"] = logs["time"].astype(np.float64) + self.t0
        logs = logs.drop(columns="trace")
        order = np.lexsort((logs["message"].to_numpy().astype(str), logs["entity"].to_numpy().astype(str), logs["time"].to_numpy()))
        return logs.iloc[order].reset_index(drop=True)

    def _service_of(self, name: str) -> str:
        i = self.eng.inst_index.get(name)
        return self.eng.svc_names[self.eng.inst_svc[i]] if i is not None else name

    # ------------------------------------------------------------------ spans
    def spans(self) -> pd.DataFrame:
        eng, R = self.eng, self.R
        cols = ["trace_id", "span_id", "parent_id", "service", "operation", "start", "duration", "status", "attributes"]
        if not R.size:
            return pd.DataFrame({c: [] for c in cols})
        trace = R[:, _F["trace"]].astype(np.int64)
        n_tr = int(trace.max()) + 1
        has_err = np.zeros(n_tr, dtype=bool)
        has_err[trace[self.status != OK]] = True
        keep_tr = has_err | (self.rng.random(n_tr) < self.trace_sample)
        # traces cut by the end of the window (a parent still in flight) are left out whole
        par = R[:, _F["parent"]].astype(np.int64)
        has_parent = par >= 0
        _, found = self.rows_of(par[has_parent])
        keep_tr[trace[has_parent][~found]] = False
        rows = np.flatnonzero(keep_tr[trace])
        parent = R[rows, _F["parent"]].astype(np.int64)
        caller = R[rows, _F["caller"]].astype(np.int64)
        ep = R[rows, _F["endpoint"]].astype(np.int64)
        svc = self.svc[rows]
        inst = self.inst[rows]
        status = self.status[rows]
        served = self.served[rows]
        span_ids = self.span_ids(self.res.ids[rows])
        pmask = parent >= 0
        parent_ids = self.span_ids(parent, pmask)
        # who owns each span: the server, or (a request that never got in) the caller's client span
        client = ~served & (caller >= 0)
        inst_svc = np.array(eng.inst_svc + [-1], dtype=np.int64)  # index -1 -> -1
        owner_svc = np.where(client, inst_svc[caller], svc)
        owner_pod = np.where(client, caller, inst)
        inst_host = np.array(eng.inst_host + [-1], dtype=np.int64)
        host = inst_host[inst]
        q = json.dumps
        svc_j = [q(n) for n in eng.svc_names]
        pod_j = [q(n) for n in eng.inst_names] + ["null"]
        host_j = [q(n) for n in eng.host_names] + ["null"]
        op_j = [q(o) for o in eng.ep_ops]
        ns = q(self.system)
        grpc = {OK: 0, TIMEOUT: 4, REFUSED: 14, RESET: 14, SOCKET: 14, EXCEPTION: 2, BAD_VERSION: 13, CONFIG: 9, POOL: 8, UPSTREAM: 13,
                RATE_LIMITED: 8}
        tail = {st: f',"rpc.grpc.status_code":{grpc.get(st, 2)}' + ("" if st == OK else f',"error.type":{q(CAUSES[st])}')
                for st in range(len(CAUSES))}
        # a span's attributes depend on seven small numbers; write each combination once
        combos, which = _distinct_rows(owner_svc, owner_pod, host, client, svc, ep, status)
        attrs = [
            f'{{"service.name":{svc_j[o]},"service.instance.id":{pod_j[p]},"host.name":{host_j[h]},'
            f'"span.kind":"{"CLIENT" if c else "SERVER"}","rpc.system":"grpc","rpc.service":{svc_j[sv]},'
            f'"rpc.method":{op_j[e]},"server.address":{svc_j[sv]},"k8s.namespace.name":{ns},'
            f'"k8s.pod.name":{pod_j[p]}{tail[st]}}}'
            for o, p, h, c, sv, e, st in combos.tolist()
        ]
        start = R[rows, _F["start"]]
        end = R[rows, _F["end"]]
        return pd.DataFrame({
            "trace_id": self.trace_ids(trace[rows]),
            "span_id": span_ids,
            "parent_id": parent_ids,
            "service": _pick(eng.svc_names, owner_svc),
            "operation": _pick(eng.ep_ops, ep),
            "start": start + self.t0,
            "duration": end - start,
            "status": _pick(("error", "ok"), (status == OK).astype(np.int64)),
            "attributes": _pick(attrs, which.reshape(-1)),
        })  # fmt: skip

    # ------------------------------------------------------------------ events
    def events(self) -> pd.DataFrame:
        rows = sorted(self.res.events, key=lambda e: e[0])
        return pd.DataFrame({
            "time": np.array([e[0] for e in rows], dtype=np.float64) + self.t0,
            "entity": [e[1] for e in rows],
            "kind": [e[2] for e in rows],
            "reason": [e[3] for e in rows],
            "message": [e[4] for e in rows],
            "attributes": [json.dumps(e[5], sort_keys=True, default=str) for e in rows],
        })  # fmt: skip

    # ------------------------------------------------------------------ alerts
    def alerts(self, svc_m: dict[str, np.ndarray], inst_m: dict[str, np.ndarray]) -> tuple[list[Alert], int]:
        eng, T = self.eng, self.T
        topo = eng.topo
        out: list[Alert] = []

        def episodes(cond: np.ndarray, hold: int) -> list[tuple[int, int, int | None]]:
            """(row, fire second, resolve second or None) for runs of *cond* lasting *hold* s."""
            if cond.size == 0:
                return []
            padded = np.zeros((cond.shape[0], cond.shape[1] + 2), dtype=np.int8)
            padded[:, 1:-1] = cond
            d = np.diff(padded, axis=1)
            starts = np.argwhere(d == 1)
            ends = np.argwhere(d == -1)
            res = []
            for (row, a), (_, b) in zip(starts.tolist(), ends.tolist()):
                if b - a > hold:
                    res.append((row, a + hold, b if b < T else None))
            return res

        def window(m: np.ndarray, w: int) -> np.ndarray:
            c = np.cumsum(np.pad(m, ((0, 0), (1, 0))), axis=1)
            lo = np.maximum(np.arange(1, T + 1) - w, 0)
            return c[:, 1:] - c[:, lo]

        def add(name: str, service: str, severity: str, fire: int, resolve: int | None, summary: str,
                description: str, pod: str | None = None) -> None:
            labels = {"alertname": name, "namespace": self.system, "service": service, "severity": severity}
            if pod:
                labels["pod"] = pod
            out.append(_alert(labels, summary, description, self.t0 + fire, None if resolve is None else self.t0 + resolve))

        tier = {s.name: s.tier for s in topo.services}
        # SLO burn on entry services: requests that failed or broke the endpoint's latency SLO
        R = self.R
        if R.size:
            root = (R[:, _F["parent"]] < 0)
            slo = np.array([e.slo for s in topo.services for e in s.endpoints])
            ep = R[:, _F["endpoint"]].astype(np.int64)
            bad = root & ((self.status != OK) | (self.end - self.start > slo[ep]))
            sec = np.clip(self.end.astype(np.int64), 0, T - 1)
            total = np.bincount(self.svc[root] * T + sec[root], minlength=self.n_svc * T).reshape(self.n_svc, T)
            badc = np.bincount(self.svc[bad] * T + sec[bad], minlength=self.n_svc * T).reshape(self.n_svc, T)
            budget = 1.0 - SLO_TARGET
            with np.errstate(divide="ignore", invalid="ignore"):
                long_b = window(badc, 300) / np.maximum(window(total, 300), 1) / budget
                short_b = window(badc, 60) / np.maximum(window(total, 60), 1) / budget
            cond = (long_b > 14.4) & (short_b > 14.4) & (window(total, 60) >= 20)
            for row, fire, resolve in episodes(cond, 0):
                s = eng.svc_names[row]
                add("SLOBurnRateHigh", s, "critical", fire, resolve, f"{s} is burning its error budget fast",
                    f"{s} burns its {SLO_TARGET:.0%} objective {short_b[row, fire]:.1f}x faster than sustainable (1m and 5m windows above 14.4x)")
        # error ratio per service
        req60 = window(svc_m["workload"], 60)
        err60 = window(svc_m["error"], 60)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(req60 > 0, err60 / np.maximum(req60, 1e-9), 0.0)
        for row, fire, resolve in episodes((ratio > 0.05) & (req60 >= 10), 30):
            s = eng.svc_names[row]
            sev = "critical" if tier[s] == "critical" else "warning"
            add("HighErrorRatio", s, sev, fire, resolve, f"{s} fails more than 5% of requests",
                f"{ratio[row, fire]:.1%} of requests to {s} failed over the last minute")
        # saturation per instance
        cores = np.array(eng.cores)
        mem_limit = np.array([topo.services[s].mem_limit_mb for s in eng.inst_svc]) * _MB
        sock_limit = np.array([topo.services[s].socket_limit for s in eng.inst_svc], dtype=np.float64)
        ran = np.array([i not in self.res.never_ran for i in range(eng.n_inst)])
        rules = (
            ("CPUSaturation", inst_m["cpu"] / (100.0 * cores[:, None]) > 0.9, 60, "CPU above 90% of its limit"),
            ("MemoryNearLimit", inst_m["mem"] / mem_limit[:, None] > 0.9, 15, "memory above 90% of its limit"),
            ("SocketsExhausted", inst_m["socket"] / sock_limit[:, None] > 0.9, 15, "open sockets above 90% of the limit"),
        )
        for name, cond, hold, what in rules:
            cond = cond & ran[:, None]
            for row, fire, resolve in episodes(cond, hold):
                pod = eng.inst_names[row]
                s = eng.svc_names[eng.inst_svc[row]]
                add(name, s, "warning", fire, resolve, f"{pod}: {what}", f"pod {pod} of {s}: {what} for {hold}s", pod=pod)
        # hosts: sustained CPU pressure on a node (what a noisy neighbour shows)
        if "cpu" in self.host_m:
            host_cores = np.array([h.cores for h in topo.hosts])
            for row, fire, resolve in episodes(self.host_m["cpu"] / (100.0 * host_cores[:, None]) > 0.8, 60):
                h = eng.host_names[row]
                add("NodeCPUHigh", h, "warning", fire, resolve, f"node {h}: CPU above 80%",
                    f"node {h} has used more than 80% of its {host_cores[row]:g} cores for a minute")
        # crash looping: two restarts of one pod within ten minutes
        seen: dict[str, list[float]] = {}
        for t, entity, kind, reason, _msg, attrs in sorted(self.res.events, key=lambda e: e[0]):
            if kind == "k8s" and reason in ("OOMKilled", "Error", "Killed"):
                seen.setdefault(entity, []).append(t)
        for pod, times in sorted(seen.items()):
            if len(times) >= 2 and times[1] - times[0] <= 600:
                s = self._service_of(pod)
                fire = int(math.ceil(times[1])) + 15
                if fire < T:
                    add("KubePodCrashLooping", s, "warning", fire, None, f"pod {pod} is crash looping",
                        f"pod {pod} of {s} restarted {len(times)} times", pod=pod)
        # what every real cluster also sends: the dead man's switch and unrelated noise
        add("Watchdog", "prometheus", "none", 0, None, "alerting pipeline is alive", "This alert is always firing.")
        noise = self._noise(add)
        out.sort(key=lambda a: (a.starts_at, a.labels.get("alertname", ""), a.fingerprint))
        return out, noise

    def _noise(self, add: Any) -> int:
        eng, T = self.eng, self.T
        n = int(self.rng.poisson(1.5 * T / 600.0))
        kinds = NOISE_ALERTS
        marks: list[str] = []
        for _ in range(n):
            kind = kinds[int(self.rng.integers(len(kinds)))]
            fire = int(self.rng.integers(0, max(1, T - 30)))
            length = int(self.rng.integers(30, 180))
            resolve = fire + length if fire + length < T else None
            if kind == "TargetDown":
                s = eng.svc_names[int(self.rng.integers(len(eng.svc_names)))]
                add(kind, s, "warning", fire, resolve, f"a scrape target of {s} is down",
                    f"1 of the targets of job {s} has been unreachable for a scrape")
            elif kind == "NodeClockNotSynchronising" and eng.host_names:
                h = eng.host_names[int(self.rng.integers(len(eng.host_names)))]
                add(kind, h, "warning", fire, resolve, f"clock on {h} is not synchronising", f"NTP on {h} lost sync")
            elif kind == "KubeJobFailed":
                add(kind, "batch", "warning", fire, resolve, "job nightly-report failed", "Job default/nightly-report failed to complete")
            else:
                add(kind, "cluster", "warning", fire, resolve, f"{kind}", f"{kind} fired for the cluster")
        return n


def _alert(labels: dict[str, str], summary: str, description: str, starts: float, ends: float | None) -> Alert:
    fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return Alert(
        fingerprint=fp,
        labels=dict(labels),
        annotations={"summary": summary, "description": description,
                     "runbook_url": f"https://runbooks.example.com/{labels['alertname']}"},
        status="firing" if ends is None else "resolved",
        starts_at=float(starts),
        ends_at=None if ends is None else float(ends),
        service=labels.get("service"),
        severity=labels.get("severity", "warning"),
    )  # fmt: skip


def _rfc3339(t: float | None) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(round((t % 1) * 1000)) % 1000:03d}Z"


def alertmanager_payloads(alerts: Sequence[Alert], *, receiver: str = "aisre",
                          external_url: str = "http://alertmanager.monitoring:9093") -> list[dict[str, Any]]:
    """Render *alerts* as the Alertmanager webhook (version 4) payloads a receiver would get.

    One notification per alert when it fires and one when it resolves, in time order; each
    payload has the ``receiver``, ``status``, ``alerts``, ``groupLabels``, ``commonLabels``,
    ``commonAnnotations``, ``externalURL``, ``version`` ("4"), ``groupKey`` and
    ``truncatedAlerts`` fields.
    """
    notes: list[tuple[float, str, dict[str, Any]]] = []
    for a in alerts:
        name = a.labels.get("alertname", "")
        expr = f'ALERTS{{alertname="{name}",service="{a.labels.get("service", "")}"}}'
        for status, when in (("firing", a.starts_at), ("resolved", a.ends_at)):
            if when is None:
                continue
            item = {
                "status": status,
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": _rfc3339(a.starts_at),
                "endsAt": _rfc3339(a.ends_at if status == "resolved" else None),
                "generatorURL": "http://prometheus.monitoring:9090/graph?g0.expr=" + expr.replace('"', "%22"),
                "fingerprint": a.fingerprint,
            }
            payload = {
                "receiver": receiver,
                "status": status,
                "alerts": [item],
                "groupLabels": {"alertname": name},
                "commonLabels": dict(a.labels),
                "commonAnnotations": dict(a.annotations),
                "externalURL": external_url,
                "version": "4",
                "groupKey": f'{{}}:{{alertname="{name}"}}',
                "truncatedAlerts": 0,
            }
            notes.append((float(when), a.fingerprint, payload))
    notes.sort(key=lambda x: (x[0], x[1], x[2]["status"]))
    return [p for _, _, p in notes]


def build_telemetry(
    eng: Engine,
    res: EngineResult,
    *,
    start_time: float,
    duration: float,
    rng: np.random.Generator,
    system: str,
    trace_sample: float = 0.1,
) -> Telemetry:
    """Turn one engine run into its :class:`Telemetry` (times converted to unix seconds)."""
    b = _Builder(eng, res, start_time, duration, rng, system, trace_sample)
    metrics, svc_m, inst_m = b.metrics()
    logs = b.logs()
    spans = b.spans()
    events = b.events()
    alerts, _ = b.alerts(svc_m, inst_m)
    noise = [a.fingerprint for a in alerts if a.labels.get("alertname") in NOISE_ALERTS]
    return Telemetry(metrics, logs, spans, events, alerts, noise)
