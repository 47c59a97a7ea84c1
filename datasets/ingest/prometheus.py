"""Prometheus HTTP API responses (``/api/v1/query_range`` and ``/api/v1/query``) to the long
metrics table ``time, entity, metric, value``.

Rules (see ``shared/formats/README.md``, section 2):

* Every result type: ``matrix`` (``values``), ``vector`` (``value``), ``scalar`` and
  ``string`` (a bare ``[ts, "v"]``); native histograms (``histogram(s)``) give ``_count`` and
  ``_sum`` rows.
* Values are strings: ``"NaN"``, ``"+Inf"`` and ``"-Inf"`` parse to floats; timestamps are
  float seconds, never truncated. A ``string`` result that is not a number gives NaN and
  the text in ``frame.attrs["strings"]``.
* Each series is read on its own (gaps stay gaps; nothing is zipped by index) and is named
  by its whole label set: entity from the first label of :data:`ENTITY_ORDER`, metric from
  ``__name__``, else the rendering of the labels that are not entity labels; where two
  series would still share an entity and a metric, the labels that tell them apart are
  appended (``up{instance="a:9100"}``).
* ``status: "error"`` raises with ``errorType`` and ``error``; any other status with data is
  accepted, and ``warnings`` / ``infos`` are kept in ``frame.attrs``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import METRIC_COLUMNS
from aisre.datasets.ingest import _common as c
from aisre.errors import DataError

__all__ = ["ENTITY_ORDER", "parse_query_range"]

ENTITY_ORDER = ("service", "service_name", "job", "app_kubernetes_io_name", "k8s", "instance")
"""Where a series' entity comes from, first match wins; ``k8s`` is the workload from
``deployment``, else the pod name with its Kubernetes suffixes stripped, else ``container``."""

_RESULT_TYPES = ("matrix", "vector", "scalar", "string")


def parse_query_range(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the samples of a Prometheus query response as the long metrics frame, sorted by
    entity, metric and time.

    ``frame.attrs`` holds ``warnings`` and ``infos`` (lists of strings), ``result_type``, and
    ``strings`` for a ``string`` result. *doc* is a parsed response, JSON text or a path;
    *path* names the file in errors when *doc* was already read.

    Raises:
        DataError: for a failed query (``status: "error"``, with its ``errorType`` and
            ``error``), an unknown result type, or a malformed field, naming it.
    """
    data, name = c.load_doc(doc, path)
    body = c.obj(data, "response", name)
    status = body.get("status")
    if status == "error":
        kind = body.get("errorType") or "error"
        raise DataError(f"the query failed: {kind}: {body.get('error') or 'no message'}", path=name, field="status")
    if "data" not in body:
        raise DataError("not a Prometheus API response: no 'data'", path=name, field="data")
    payload = c.obj(body["data"], "data", name)
    result_type = payload.get("resultType")
    if result_type not in _RESULT_TYPES:
        raise DataError(f"resultType must be one of {', '.join(_RESULT_TYPES)}", path=name, field="data.resultType", value=result_type)
    attrs: dict[str, Any] = {
        "result_type": result_type,
        "warnings": [str(w) for w in c.arr(body.get("warnings"), "warnings", name, optional=True)],
        "infos": [str(w) for w in c.arr(body.get("infos"), "infos", name, optional=True)],
    }
    result = payload.get("result")
    if result_type in ("scalar", "string"):
        sample = c.arr(result, "data.result", name)
        times, values, strings = _samples([sample], "data.result", name, strings=result_type == "string")
        out = c.frame({"time": times, "entity": [""] * len(times), "metric": [result_type] * len(times), "value": values}, METRIC_COLUMNS)
        if strings:
            attrs["strings"] = strings
        out.attrs.update(attrs)
        return out

    series = c.arr(result, "data.result", name, optional=True)
    labels: list[dict[str, str]] = []
    entities: list[str] = []
    bases: list[str] = []
    chunks: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    for i, s in enumerate(series):
        where = f"data.result[{i}]"
        item = c.obj(s, where, name)
        lab = c.str_map(item.get("metric"), f"{where}.metric", name)
        entity, used = c.entity_from_labels(lab, ENTITY_ORDER)
        rest = {k: v for k, v in lab.items() if k != "__name__" and k not in c.ENTITY_LABELS}
        base = lab.get("__name__") or (c.render_labels(rest) if rest else "value")
        labels.append({k: v for k, v in lab.items() if k != "__name__" and k not in used})
        entities.append(entity or "")
        bases.append(base)
        for key, suffix, many in (("values", "", True), ("value", "", False), ("histograms", "", True), ("histogram", "", False)):
            if key not in item:
                continue
            raw = c.arr(item[key], f"{where}.{key}", name)
            samples = raw if many else [raw]
            if key.startswith("histogram"):
                for part in ("count", "sum"):
                    t, v = _histogram(samples, part, f"{where}.{key}", name)
                    chunks.append((i, f"_{part}", t, v))
            else:
                t, v, _ = _samples(samples, f"{where}.{key}", name)
                chunks.append((i, suffix, t, v))
    names = c.series_names(entities, bases, labels)
    if not chunks:
        out = c.frame({}, METRIC_COLUMNS)
        out.attrs.update(attrs)
        return out
    # Order series by (entity, metric) and each series by time, then concatenate once: far
    # cheaper than sorting a million-row frame on object columns.
    keyed = sorted(((entities[i], _suffixed(names[i], sfx), t, v) for i, sfx, t, v in chunks), key=lambda k: (k[0], k[1]))
    for n, (ent, met, t, v) in enumerate(keyed):
        if len(t) > 1 and not (np.diff(t) >= 0).all():
            order = np.argsort(t, kind="stable")
            keyed[n] = (ent, met, t[order], v[order])
    sizes = [len(k[2]) for k in keyed]
    out = c.frame(
        {
            "time": np.concatenate([k[2] for k in keyed]),
            "entity": np.repeat(np.array([k[0] for k in keyed], dtype=object), sizes),
            "metric": np.repeat(np.array([k[1] for k in keyed], dtype=object), sizes),
            "value": np.concatenate([k[3] for k in keyed]),
        },
        METRIC_COLUMNS,
    )
    out.attrs.update(attrs)
    return out


def _suffixed(metric: str, suffix: str) -> str:
    if not suffix:
        return metric
    # Keep a label rendering last: rate{le="1"} -> rate_count{le="1"}
    head, brace, tail = metric.partition("{")
    return f"{head}{suffix}{brace}{tail}"


def _samples(samples: list[Any], field: str, path: str | None, *, strings: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return the times and values of ``[[ts, "v"], ...]`` as float arrays."""
    if not strings and samples:
        fast = _fast_samples(samples)
        if fast is not None:
            return fast[0], fast[1], []
    n = len(samples)
    times = np.empty(n, dtype="float64")
    values = np.empty(n, dtype="float64")
    texts: list[str] = []
    for j, pair in enumerate(samples):
        if not isinstance(pair, list) or len(pair) != 2:
            raise DataError("a sample must be [timestamp, \"value\"]", path=path, field=f"{field}[{j}]", value=pair)
        times[j] = c.number(pair[0], f"{field}[{j}][0]", path)
        if strings:
            texts.append(c.text(pair[1], f"{field}[{j}][1]", path) or "")
            try:
                values[j] = float(texts[-1])
            except ValueError:
                values[j] = np.nan
        else:
            values[j] = c.number(pair[1], f"{field}[{j}][1]", path)
    return times, values, texts


def _fast_samples(samples: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Convert well-formed samples in one vectorised pass; ``None`` sends the caller to the
    checked per-sample path, which names the bad sample."""
    try:
        grid = np.array(samples, dtype=object)
        if grid.ndim != 2 or grid.shape[1] != 2:
            return None
        times = grid[:, 0].astype("float64")
        if ((times == 0.0) | (times == 1.0)).any():
            return None  # perhaps JSON booleans: let the checked path decide
        return times, grid[:, 1].astype("float64")
    except (ValueError, TypeError, OverflowError):
        return None


def _histogram(samples: list[Any], part: str, field: str, path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the times and the *part* (count or sum) of native-histogram samples."""
    n = len(samples)
    times = np.empty(n, dtype="float64")
    values = np.empty(n, dtype="float64")
    for j, pair in enumerate(samples):
        if not isinstance(pair, list) or len(pair) != 2:
            raise DataError("a histogram sample must be [timestamp, {...}]", path=path, field=f"{field}[{j}]", value=pair)
        times[j] = c.number(pair[0], f"{field}[{j}][0]", path)
        h = c.obj(pair[1], f"{field}[{j}][1]", path)
        values[j] = c.number(h.get(part), f"{field}[{j}][1].{part}", path)
    return times, values
