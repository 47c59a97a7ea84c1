"""OTLP/JSON requests to the model's tables: ``ExportTraceServiceRequest`` -> spans,
``ExportLogsServiceRequest`` -> logs, ``ExportMetricsServiceRequest`` -> long metrics.

Accepted wrappers: a bare request, Jaeger API v3's ``{"result": {...}}``, and a JSON array
of requests (the collector's file exporter writes JSON Lines; :func:`read_json` turns those
into an array).

Rules (see ``shared/formats/README.md``, section 3):

* 64-bit integers (``*UnixNano``, ``intValue``, ``count``) may be strings or numbers and
  never pass through a float before being split into seconds. A missing or zero time is
  NaN (proto3 omits zero values); logs fall back to ``observedTimeUnixNano``.
* Ids are lower-case hex; base64 ids (12 or 24 characters, or any non-hex character) are
  decoded. An empty or all-zero ``parentSpanId`` means a root.
* Enums may be integers or names (``2`` or ``"STATUS_CODE_ERROR"``); ``status: {}`` is unset.
* Resources are read by content, not position; identical spans are dropped.
* Service: the resource attribute ``service.name``, else ``unknown_service``.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import LOG_COLUMNS, METRIC_COLUMNS, SPAN_COLUMNS
from aisre.datasets.ingest import _common as c
from aisre.errors import DataError

__all__ = ["any_value", "parse_otlp_logs", "parse_otlp_metrics", "parse_otlp_traces", "normalise_id"]

UNKNOWN_SERVICE = "unknown_service"
"""The service of telemetry whose resource has no ``service.name`` (the SDKs' default)."""

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2, "UNSET": 0, "OK": 1, "ERROR": 2}
_KINDS = {0: None, 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_LEVELS = ((1, "trace"), (5, "debug"), (9, "info"), (13, "warn"), (17, "error"), (21, "fatal"))
_LEVEL_WORDS = {
    "trace": "trace", "debug": "debug", "info": "info", "information": "info", "informational": "info",
    "notice": "info", "warn": "warn", "warning": "warn", "error": "error", "err": "error",
    "critical": "fatal", "crit": "fatal", "fatal": "fatal", "alert": "fatal", "emergency": "fatal",
}  # fmt: skip


# --------------------------------------------------------------------------- shared parts


def normalise_id(value: Any, field: str, path: str | None) -> str | None:
    """Return a trace or span id as lower-case hex; ``None`` for a missing, empty or all-zero id.

    Base64 ids (12 or 24 characters, or with characters that are not hex) are decoded.

    Raises:
        DataError: for an id that is neither hex nor base64.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DataError("an id must be a string", path=path, field=field, value=value)
    v = value.strip()
    if not _HEX.match(v) or len(v) in (12, 24):
        try:
            v = base64.b64decode(v, validate=True).hex()
        except (binascii.Error, ValueError):
            if not _HEX.match(v):
                raise DataError("an id must be hex or base64", path=path, field=field, value=value) from None
    v = v.lower()
    return None if not v or set(v) == {"0"} else v


def any_value(value: Any, field: str, path: str | None, depth: int = 0) -> Any:
    """Return an OTLP ``AnyValue`` as plain JSON: str, bool, int, float, list, dict or None.

    Raises:
        DataError: for a value that is not an AnyValue object or nests too deeply.
    """
    if depth > 32:
        raise DataError("AnyValue nested too deeply", path=path, field=field)
    v = c.obj(value, field, path, optional=True)
    if "stringValue" in v:
        return c.text(v["stringValue"], f"{field}.stringValue", path, optional=True)
    if "boolValue" in v:
        b = v["boolValue"]
        return b if isinstance(b, bool) else str(b).lower() == "true"
    if "intValue" in v:
        return c.nanos(v["intValue"], f"{field}.intValue", path)
    if "doubleValue" in v:
        return c.number(v["doubleValue"], f"{field}.doubleValue", path)
    if "bytesValue" in v:
        return c.text(v["bytesValue"], f"{field}.bytesValue", path, optional=True)
    if "arrayValue" in v:
        arr = c.obj(v["arrayValue"], f"{field}.arrayValue", path, optional=True)
        items = c.arr(arr.get("values"), f"{field}.arrayValue.values", path, optional=True)
        return [any_value(x, f"{field}.arrayValue.values[{i}]", path, depth + 1) for i, x in enumerate(items)]
    if "kvlistValue" in v:
        kv = c.obj(v["kvlistValue"], f"{field}.kvlistValue", path, optional=True)
        return attributes(kv.get("values"), f"{field}.kvlistValue.values", path, depth + 1)
    return None


def attributes(value: Any, field: str, path: str | None, depth: int = 0) -> dict[str, Any]:
    """Return an OTLP attribute list ``[{key, value}]`` as a dict (later keys win).

    Raises:
        DataError: for a list item without a string ``key``.
    """
    out: dict[str, Any] = {}
    for i, item in enumerate(c.arr(value, field, path, optional=True)):
        kv = c.obj(item, f"{field}[{i}]", path)
        key = kv.get("key")
        if not isinstance(key, str):
            raise DataError("an attribute needs a string key", path=path, field=f"{field}[{i}].key", value=key)
        out[key] = any_value(kv.get("value"), f"{field}[{i}].value", path, depth)
    return out


def _requests(doc: c.Doc, path: str | os.PathLike[str] | None, key: str) -> tuple[list[tuple[str, Mapping[str, Any]]], str | None]:
    """Return ``[(field prefix, request)]`` from a request, a ``{"result": ...}`` wrapper or
    an array of either."""
    data, name = c.load_doc(doc, path)
    items = [("", data)] if not isinstance(data, list) else [(f"[{i}].", d) for i, d in enumerate(data)]
    out = []
    for prefix, item in items:
        req = c.obj(item, prefix.rstrip(".") or "request", name)
        if key not in req and isinstance(req.get("result"), Mapping):
            prefix, req = f"{prefix}result.", req["result"]
        if key not in req:
            raise DataError(f"not an OTLP request: no '{key}' array", path=name, field=f"{prefix}{key}")
        out.append((prefix, req))
    return out, name


def _resources(reqs: list[tuple[str, Mapping[str, Any]]], key: str, scope_key: str, item_key: str, path: str | None) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
    """Yield ``(field, service, scope info, item)`` for every span / record / metric."""
    for prefix, req in reqs:
        for i, rs in enumerate(c.arr(req[key], f"{prefix}{key}", path, optional=True)):
            where = f"{prefix}{key}[{i}]"
            r = c.obj(rs, where, path)
            resource = c.obj(r.get("resource"), f"{where}.resource", path, optional=True)
            rattrs = attributes(resource.get("attributes"), f"{where}.resource.attributes", path)
            service = rattrs.get("service.name")
            service = str(service) if service not in (None, "") else UNKNOWN_SERVICE
            for j, ss in enumerate(c.arr(r.get(scope_key), f"{where}.{scope_key}", path, optional=True)):
                swhere = f"{where}.{scope_key}[{j}]"
                s = c.obj(ss, swhere, path)
                scope = c.obj(s.get("scope"), f"{swhere}.scope", path, optional=True)
                info = {"otel.scope.name": scope.get("name")} if scope.get("name") else {}
                for k, item in enumerate(c.arr(s.get(item_key), f"{swhere}.{item_key}", path, optional=True)):
                    yield f"{swhere}.{item_key}[{k}]", service, info, item


def _enum(value: Any, names: Mapping[str, int], field: str, path: str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        key = value.strip().upper()
        if key in names:
            return names[key]
        if key.isdigit():
            return int(key)
    raise DataError("unknown enum value", path=path, field=field, value=value)


# --------------------------------------------------------------------------- traces

_KIND_NAMES = {f"SPAN_KIND_{n}": i for i, n in enumerate(("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"))}


def parse_otlp_traces(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the spans of an ``ExportTraceServiceRequest`` as the model's spans frame.

    ``start`` and ``duration`` are seconds (NaN where the request omits them); ``status`` is
    ok, error or unset; ``attributes`` is JSON text of the span attributes plus ``span.kind``
    and ``otel.scope.name``. Identical spans are kept once.

    Raises:
        DataError: for a document that is not a trace request, or a malformed field.
    """
    reqs, name = _requests(doc, path, "resourceSpans")
    rows = []
    wheres: list[str] = []
    for where, service, scope, item in _resources(reqs, "resourceSpans", "scopeSpans", "spans", name):
        s = c.obj(item, where, name)
        wheres.append(where)
        start_ns = c.nanos(s.get("startTimeUnixNano"), f"{where}.startTimeUnixNano", name)
        end_ns = c.nanos(s.get("endTimeUnixNano"), f"{where}.endTimeUnixNano", name)
        duration = (end_ns - start_ns) / 1e9 if start_ns and end_ns else math.nan
        status = c.obj(s.get("status"), f"{where}.status", name, optional=True)
        code = _enum(status.get("code"), _STATUS_NAMES, f"{where}.status.code", name)
        if code not in _STATUS:
            raise DataError("status.code must be 0, 1 or 2", path=name, field=f"{where}.status.code", value=code)
        attrs = {**scope, **attributes(s.get("attributes"), f"{where}.attributes", name)}
        kind = _KINDS.get(_enum(s.get("kind"), _KIND_NAMES, f"{where}.kind", name))
        if kind:
            attrs["span.kind"] = kind
        if status.get("message"):
            attrs["otel.status_description"] = str(status["message"])
        rows.append({
            "trace_id": s.get("traceId"),
            "span_id": s.get("spanId"),
            "parent_id": s.get("parentSpanId"),
            "service": service,
            "operation": c.text(s.get("name"), f"{where}.name", name, optional=True) or "",
            "start": c.ns_to_seconds(start_ns),
            "duration": duration,
            "status": _STATUS[code],
            "attributes": c.json_text(attrs),
        })  # fmt: skip
    out = c.frame(rows, SPAN_COLUMNS)
    for column, key in (("trace_id", "traceId"), ("span_id", "spanId"), ("parent_id", "parentSpanId")):
        out[column] = _ids(out[column], [f"{w}.{key}" for w in wheres] if len(out) else [], name)
    missing = out["trace_id"].isna() | out["span_id"].isna()
    if missing.any():
        i = int(missing.to_numpy().argmax())
        key = "traceId" if out["trace_id"].iloc[i] is None else "spanId"
        raise DataError("a span needs a traceId and a spanId", path=name, field=f"{wheres[i]}.{key}")
    return dedupe_spans(out)


_WELL_FORMED = r"[0-9a-f]{16}|[0-9a-f]{32}"


def _ids(raw: pd.Series, fields: list[str], path: str | None) -> pd.Series:
    """Normalise a column of ids at once; only ids that are not plain 16/32-digit hex go
    through :func:`normalise_id` one by one."""
    if raw.empty:
        return raw.astype(object)
    # Non-strings become None here (pandas' .str refuses columns without strings) and are
    # then checked one by one, which names them.
    strings = raw.where(raw.map(type) == str, None).astype(object)
    low = strings.str.lower()
    plain = low.str.fullmatch(_WELL_FORMED).fillna(False).astype(bool)
    out = low.where(plain & ~low.str.fullmatch("0+").fillna(False).astype(bool), None).astype(object)
    for i in np.flatnonzero(~plain.to_numpy()):
        out.iat[i] = normalise_id(raw.iat[i], fields[i], path)
    return out


def dedupe_spans(spans: pd.DataFrame) -> pd.DataFrame:
    """Return *spans* without exact repeats (same ids, service, operation, start and duration).

    Spans that share an id but differ otherwise (Zipkin-style shared client/server spans) are
    kept.
    """
    key = ["trace_id", "span_id", "service", "operation", "start", "duration"]
    return spans.drop_duplicates(subset=key, ignore_index=True)


# --------------------------------------------------------------------------- logs

_SEVERITY_NAMES = {f"SEVERITY_NUMBER_{w.upper()}{n if n > 1 else ''}": base + n - 1 for base, w in _LEVELS for n in range(1, 5)}


def _level(number: int, text: str | None) -> str | None:
    if 1 <= number <= 24:
        return next(word for lo, word in reversed(_LEVELS) if number >= lo)
    if text:
        word = text.strip().lower()
        return _LEVEL_WORDS.get(word, word)
    return None


def parse_otlp_logs(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the records of an ``ExportLogsServiceRequest`` as the model's logs frame,
    sorted by time.

    ``level`` is trace, debug, info, warn, error or fatal from ``severityNumber``, else the
    lower-cased ``severityText``; ``message`` is the body (a string, or JSON text for a
    structured body); ``template`` is left empty for the log parser downstream.

    Raises:
        DataError: for a document that is not a logs request, or a malformed field.
    """
    reqs, name = _requests(doc, path, "resourceLogs")
    rows = []
    for where, service, _, item in _resources(reqs, "resourceLogs", "scopeLogs", "logRecords", name):
        r = c.obj(item, where, name)
        t = c.nanos(r.get("timeUnixNano"), f"{where}.timeUnixNano", name) or c.nanos(
            r.get("observedTimeUnixNano"), f"{where}.observedTimeUnixNano", name
        )
        body = any_value(r.get("body"), f"{where}.body", name)
        number = _enum(r.get("severityNumber"), _SEVERITY_NAMES, f"{where}.severityNumber", name)
        rows.append({
            "time": c.ns_to_seconds(t),
            "entity": service,
            "level": _level(number, c.text(r.get("severityText"), f"{where}.severityText", name, optional=True)),
            "template": None,
            "message": body if isinstance(body, str) else ("" if body is None else c.json_text(body)),
            "trace_id": normalise_id(r.get("traceId"), f"{where}.traceId", name),
        })  # fmt: skip
    out = c.frame(rows, LOG_COLUMNS)
    return out.sort_values("time", kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- metrics


def parse_otlp_metrics(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the data points of an ``ExportMetricsServiceRequest`` as the long metrics frame.

    Gauges and sums give one row per point (``asDouble`` or ``asInt``); histograms and
    exponential histograms give ``<name>_count`` and ``<name>_sum``; summaries give
    ``_count``, ``_sum`` and one ``<name>{quantile="q"}`` row per quantile. Entity is the
    resource's ``service.name``; series of one metric that differ in point attributes get
    those attributes appended to the name (``latency{route="/a"}``).

    Raises:
        DataError: for a document that is not a metrics request, or a malformed field.
    """
    reqs, name = _requests(doc, path, "resourceMetrics")
    series: dict[tuple[str, str, str], tuple[str, str, dict[str, str], list[float], list[float]]] = {}
    for where, service, _, item in _resources(reqs, "resourceMetrics", "scopeMetrics", "metrics", name):
        m = c.obj(item, where, name)
        metric = c.text(m.get("name"), f"{where}.name", name)
        for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
            if kind not in m:
                continue
            body = c.obj(m[kind], f"{where}.{kind}", name, optional=True)
            for p, point in enumerate(c.arr(body.get("dataPoints"), f"{where}.{kind}.dataPoints", name, optional=True)):
                pw = f"{where}.{kind}.dataPoints[{p}]"
                dp = c.obj(point, pw, name)
                t = c.ns_to_seconds(c.nanos(dp.get("timeUnixNano"), f"{pw}.timeUnixNano", name))
                attrs = {k: c.json_text(v) if isinstance(v, (list, dict)) else str(v) for k, v in attributes(dp.get("attributes"), f"{pw}.attributes", name).items()}
                for base, value in _point_values(kind, metric, dp, pw, name):  # type: ignore[arg-type]
                    key = (service, base, c.render_labels(attrs))
                    entry = series.setdefault(key, (service, base, attrs, [], []))
                    entry[3].append(t)
                    entry[4].append(value)
    entries = list(series.values())
    names = c.series_names([e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries])
    cols: dict[str, list[Any]] = {"time": [], "entity": [], "metric": [], "value": []}
    for (service, _, _, times, values), metric_name in zip(entries, names, strict=True):
        cols["time"].extend(times)
        cols["value"].extend(values)
        cols["entity"].extend([service] * len(times))
        cols["metric"].extend([metric_name] * len(times))
    out = c.frame(cols, METRIC_COLUMNS)
    return out.sort_values(["entity", "metric", "time"], kind="stable", ignore_index=True)


def _point_values(kind: str, metric: str, dp: Mapping[str, Any], where: str, path: str | None) -> list[tuple[str, float]]:
    if kind in ("gauge", "sum"):
        if "asDouble" in dp:
            return [(metric, c.number(dp["asDouble"], f"{where}.asDouble", path))]
        if "asInt" in dp:
            n = c.nanos(dp["asInt"], f"{where}.asInt", path)
            return [(metric, float(n) if n is not None else math.nan)]
        return [(metric, math.nan)]  # a point with no value is NaN (proto3 omitted it)
    count = c.nanos(dp.get("count"), f"{where}.count", path) or 0
    out = [(f"{metric}_count", float(count))]
    if "sum" in dp:
        out.append((f"{metric}_sum", c.number(dp["sum"], f"{where}.sum", path)))
    if kind == "summary":
        for q, qv in enumerate(c.arr(dp.get("quantileValues"), f"{where}.quantileValues", path, optional=True)):
            qd = c.obj(qv, f"{where}.quantileValues[{q}]", path)
            quantile = c.number(qd.get("quantile", 0.0), f"{where}.quantileValues[{q}].quantile", path)
            out.append((f"{metric}{c.render_labels({'quantile': f'{quantile:g}'})}", c.number(qd.get("value", 0.0), f"{where}.quantileValues[{q}].value", path)))
    return out
