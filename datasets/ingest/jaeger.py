"""Jaeger query API JSON (``/api/traces``, ``/api/traces/{id}``) to the model's spans frame.

Accepted shapes: the API envelope ``{"data": [trace, ...], "total", "limit", ...}``, a
single trace ``{"traceID", "spans", "processes"}``, and a JSON array of traces.

Rules (see ``shared/formats/README.md``, section 4):

* ``startTime`` and ``duration`` are microseconds; they become seconds.
* Ids are lower-case hex, left-padded with zeros to 16 or 32 digits (Jaeger drops leading
  zeros); ids that are not hex (test fixtures) are kept as given.
* Parent: the first ``CHILD_OF`` reference in the same trace, else the first
  ``FOLLOWS_FROM`` in the same trace, else ``parentSpanID``; references to other traces are
  not parents.
* Service: ``processes[span.processID].serviceName``, or an embedded
  ``span.process.serviceName``.
* Status: ``error`` when the tag ``error`` is true (bool or ``"true"``) or
  ``otel.status_code`` is ``ERROR``; ``ok`` when ``otel.status_code`` is ``OK``; else unset.
* Exact repeats of a span are dropped; spans that share an id but differ are kept.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from aisre.case import SPAN_COLUMNS
from aisre.datasets.ingest import _common as c
from aisre.datasets.ingest.otlp import dedupe_spans
from aisre.errors import DataError

__all__ = ["parse_jaeger"]

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def jaeger_id(value: Any, field: str, path: str | None, *, optional: bool = False) -> str | None:
    """Return a Jaeger id as lower-case hex padded to 16 or 32 digits (non-hex ids as given).

    Raises:
        DataError: for a missing id (unless *optional*) or one that is not a string or number.
    """
    v = c.text(value, field, path, optional=optional)
    if v is None or v == "":
        if optional:
            return None
        raise DataError("missing id", path=path, field=field)
    v = v.strip()
    if _HEX.match(v) and len(v) <= 32:
        v = v.lower().zfill(16 if len(v) <= 16 else 32)
    return v


def parse_jaeger(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the spans of a Jaeger JSON response or trace as the model's spans frame.

    ``attributes`` is JSON text of the span's tags (``binary`` values stay base64, int64
    beyond 2^53 stays exact) plus ``span.kind`` where tagged.

    Raises:
        DataError: for a document that is not Jaeger JSON, or a malformed field, naming it
            (``data[0].spans[3].startTime``).
    """
    data, name = c.load_doc(doc, path)
    if isinstance(data, list):
        traces = [(f"[{i}]", t) for i, t in enumerate(data)]
    else:
        body = c.obj(data, "response", name)
        if "spans" in body:
            traces = [("", body)]
        elif "data" in body:
            errors = [e for e in c.arr(body.get("errors"), "errors", name, optional=True) if e]
            items = c.arr(body["data"], "data", name, optional=True)
            if errors and not items:
                raise DataError(f"the query failed: {errors[0]}", path=name, field="errors")
            traces = [(f"data[{i}]", t) for i, t in enumerate(items)]
        else:
            raise DataError("not Jaeger JSON: no 'data' array and no 'spans'", path=name, field="data")
    rows: list[dict[str, Any]] = []
    for where, trace in traces:
        rows.extend(_trace(trace, where, name))
    return dedupe_spans(c.frame(rows, SPAN_COLUMNS))


def _trace(data: Any, where: str, path: str | None) -> list[dict[str, Any]]:
    trace = c.obj(data, where or "trace", path)
    prefix = f"{where}." if where else ""
    processes = c.obj(trace.get("processes"), f"{prefix}processes", path, optional=True)
    services: dict[str, str | None] = {}
    for pid, proc in processes.items():
        p = c.obj(proc, f"{prefix}processes.{pid}", path, optional=True)
        services[str(pid)] = c.text(p.get("serviceName"), f"{prefix}processes.{pid}.serviceName", path, optional=True)
    trace_default = jaeger_id(trace.get("traceID"), f"{prefix}traceID", path, optional=True)
    rows = []
    for i, item in enumerate(c.arr(trace.get("spans"), f"{prefix}spans", path)):
        sw = f"{prefix}spans[{i}]"
        s = c.obj(item, sw, path)
        trace_id = jaeger_id(s.get("traceID"), f"{sw}.traceID", path, optional=True) or trace_default
        if trace_id is None:
            raise DataError("a span needs a traceID", path=path, field=f"{sw}.traceID")
        start = c.nanos(s.get("startTime"), f"{sw}.startTime", path)
        if start is None:
            raise DataError("missing startTime", path=path, field=f"{sw}.startTime")
        duration = c.nanos(s.get("duration"), f"{sw}.duration", path)
        tags = _tags(s.get("tags"), f"{sw}.tags", path)
        rows.append({
            "trace_id": trace_id,
            "span_id": jaeger_id(s.get("spanID"), f"{sw}.spanID", path),
            "parent_id": _parent(s, trace_id, sw, path),
            "service": _service(s, services, sw, path),
            "operation": c.text(s.get("operationName"), f"{sw}.operationName", path, optional=True) or "",
            "start": start / 1e6,
            "duration": (duration or 0) / 1e6,
            "status": _status(tags),
            "attributes": c.json_text(tags),
        })  # fmt: skip
    return rows


def _parent(span: Mapping[str, Any], trace_id: str, where: str, path: str | None) -> str | None:
    refs = c.arr(span.get("references"), f"{where}.references", path, optional=True)
    found: dict[str, str] = {}
    for j, ref in enumerate(refs):
        r = c.obj(ref, f"{where}.references[{j}]", path)
        kind = str(r.get("refType", "CHILD_OF")).upper()
        ref_trace = jaeger_id(r.get("traceID"), f"{where}.references[{j}].traceID", path, optional=True) or trace_id
        if ref_trace != trace_id or kind in found:
            continue
        span_id = jaeger_id(r.get("spanID"), f"{where}.references[{j}].spanID", path, optional=True)
        if span_id:
            found[kind] = span_id
    parent = found.get("CHILD_OF") or found.get("FOLLOWS_FROM")
    if parent is None and span.get("parentSpanID") not in (None, "", "0"):
        parent = jaeger_id(span.get("parentSpanID"), f"{where}.parentSpanID", path, optional=True)
    return None if parent is None or set(parent) == {"0"} else parent


def _service(span: Mapping[str, Any], services: Mapping[str, str | None], where: str, path: str | None) -> str:
    pid = span.get("processID")
    if pid is not None and services.get(str(pid)):
        return str(services[str(pid)])
    embedded = span.get("process")
    if isinstance(embedded, Mapping) and embedded.get("serviceName"):
        return str(c.text(embedded["serviceName"], f"{where}.process.serviceName", path))
    raise DataError("no service for this span: processID not in processes", path=path, field=f"{where}.processID", value=pid)


def _tags(value: Any, field: str, path: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for j, tag in enumerate(c.arr(value, field, path, optional=True)):
        t = c.obj(tag, f"{field}[{j}]", path)
        key = t.get("key")
        if not isinstance(key, str):
            raise DataError("a tag needs a string key", path=path, field=f"{field}[{j}].key", value=key)
        v = t.get("value")
        kind = str(t.get("type", "")).lower()
        if kind == "bool" and isinstance(v, str):
            v = v.strip().lower() == "true"
        elif kind == "int64" and isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                pass
        elif kind == "float64" and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        out[key] = v
    return out


def _status(tags: Mapping[str, Any]) -> str:
    error = tags.get("error")
    code = str(tags.get("otel.status_code", "")).upper()
    if error is True or (isinstance(error, str) and error.lower() == "true") or code == "ERROR":
        return "error"
    if code == "OK":
        return "ok"
    return "unset"
