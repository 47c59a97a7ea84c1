"""Shared helpers for the ingestion parsers: reading a document, checked access to JSON
fields, timestamps, and the naming rules (pod -> workload, labels -> entity, series names).

Every helper raises :class:`aisre.errors.DataError` naming the file and the field on bad
input, so the parsers built on them let no other exception type escape.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aisre.errors import DataError

Doc = Mapping[str, Any] | Sequence[Any] | str | bytes | os.PathLike[str]
"""What every parser accepts: a parsed JSON document, JSON text (str or bytes) or a path."""


# --------------------------------------------------------------------------- reading


def read_json(path: str | os.PathLike[str]) -> Any:
    """Return the JSON document in the file at *path*.

    A file that is not one JSON document but JSON Lines (one document per line, as the
    OpenTelemetry collector's file exporter writes) is returned as the list of its documents.

    Raises:
        DataError: when the file is missing, unreadable, not UTF-8 or not valid JSON.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file", path=p) from None
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path=p) from exc
    except ValueError as exc:  # a NUL byte in the path
        raise DataError(f"not a usable path ({exc})", path=repr(str(path))) from None
    return parse_text(raw, path=p)


def parse_text(raw: str | bytes, *, path: str | os.PathLike[str] | None = None) -> Any:
    """Return the JSON document in *raw* (one document, or JSON Lines as a list).

    Raises:
        DataError: for text that is not UTF-8 or not valid JSON.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DataError("not UTF-8 text", path=path) from None
    if not raw.strip():
        raise DataError("empty document: expected JSON", path=path)
    try:
        return json.loads(raw)
    except RecursionError:
        raise DataError("JSON nested too deeply", path=path) from None
    except json.JSONDecodeError as exc:
        lines = [line for line in raw.splitlines() if line.strip()]
        if exc.msg == "Extra data" and len(lines) > 1:
            try:
                return [json.loads(line) for line in lines]
            except (json.JSONDecodeError, RecursionError):
                pass
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", path=path) from None


def load_doc(doc: Any, path: str | os.PathLike[str] | None = None) -> tuple[Any, str | None]:
    """Return ``(document, path)`` for what a parser was given.

    *doc* may be a parsed document (dict or list), JSON text (``bytes``, or a ``str`` whose
    first non-blank character is ``{`` or ``[``), or a path (``Path``, or any other ``str``).
    *path* names the file in errors when the document was read elsewhere.

    Raises:
        DataError: for a missing or invalid file, invalid JSON, or a value of another type.
    """
    name = None if path is None else str(path)
    if isinstance(doc, (Mapping, list)):
        return doc, name
    if isinstance(doc, bytes):
        return parse_text(doc, path=name), name
    if isinstance(doc, str) and doc.lstrip()[:1] in ("{", "[", ""):
        return parse_text(doc, path=name), name
    if isinstance(doc, (str, os.PathLike)):
        return read_json(doc), str(doc)
    raise DataError(f"expected a JSON document, JSON text or a path, not {type(doc).__name__}", path=name)


# --------------------------------------------------------------------------- checked access


def obj(value: Any, field: str, path: str | None, *, optional: bool = False) -> Mapping[str, Any]:
    """Return *value* as a JSON object; ``None`` gives ``{}`` when *optional*.

    Raises:
        DataError: for anything else, naming *field*.
    """
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise DataError(f"expected an object, got {_kind(value)}", path=path, field=field)
    return value


def arr(value: Any, field: str, path: str | None, *, optional: bool = False) -> list[Any]:
    """Return *value* as a JSON array; ``None`` gives ``[]`` when *optional*.

    Raises:
        DataError: for anything else, naming *field*.
    """
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise DataError(f"expected an array, got {_kind(value)}", path=path, field=field)
    return value


def text(value: Any, field: str, path: str | None, *, optional: bool = False) -> str | None:
    """Return *value* as a string: numbers and booleans are rendered, ``None`` allowed when
    *optional*.

    Raises:
        DataError: for a missing value that is not optional, or an object or array.
    """
    if value is None:
        if optional:
            return None
        raise DataError("missing", path=path, field=field)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise DataError(f"expected a string, got {_kind(value)}", path=path, field=field)


def str_map(value: Any, field: str, path: str | None) -> dict[str, str]:
    """Return a label map (``{}`` for null): keys and scalar values as strings.

    Raises:
        DataError: for a value that is not an object, or an object or array as a label value.
    """
    out: dict[str, str] = {}
    for k, v in obj(value, field, path, optional=True).items():
        if v is None:
            continue
        out[str(k)] = text(v, f"{field}.{k}", path)  # type: ignore[assignment]
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


# --------------------------------------------------------------------------- times


def rfc3339(value: Any, field: str, path: str | None, *, optional: bool = False) -> float | None:
    """Return an RFC 3339 timestamp as float unix seconds, UTC.

    Fractional seconds may have 0 to 9 digits and the zone may be ``Z`` or an offset; a time
    without a zone is read as UTC. Go's zero time (year 1, as Alertmanager sends for "no end")
    gives ``None``, as does a missing value when *optional*.

    Raises:
        DataError: for a missing (not optional) or malformed timestamp, naming *field*.
    """
    if value is None or value == "":
        if optional:
            return None
        raise DataError("missing timestamp", path=path, field=field)
    if not isinstance(value, str):
        raise DataError(f"expected an RFC 3339 timestamp string, got {_kind(value)}", path=path, field=field, value=value)
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DataError("not an RFC 3339 timestamp", path=path, field=field, value=value) from None
    if dt.year <= 1:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise DataError("timestamp out of range", path=path, field=field, value=value) from None


def nanos(value: Any, field: str, path: str | None) -> int | None:
    """Return a 64-bit integer count (OTLP nanoseconds, counts) given as a string or number;
    ``None`` for a missing value.

    Raises:
        DataError: for anything that is not a whole number.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DataError("expected an integer, got a boolean", path=path, field=field, value=value)
    n: int | None = None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and len(value) < 40:
        try:
            n = int(value.strip())
        except ValueError:
            pass
    if n is None:
        raise DataError("expected an integer (a decimal string or a number)", path=path, field=field, value=value)
    if not -_INT64 <= n < 2 * _INT64:  # int64 or uint64 (fixed64 counts)
        raise DataError("integer out of 64-bit range", path=path, field=field, value=value)
    return n


_INT64 = 2**63


def ns_to_seconds(ns: int | None) -> float:
    """Return nanoseconds since the epoch as float seconds; ``None`` or 0 (unset) give NaN."""
    if not ns:
        return math.nan
    # Split first: a 19-digit int through float would lose the sub-microsecond part anyway,
    # but the integer seconds must not be rounded.
    return ns // 1_000_000_000 + (ns % 1_000_000_000) / 1e9


def number(value: Any, field: str, path: str | None) -> float:
    """Return a sample value given as a number or a string (``"NaN"``, ``"+Inf"`` included).

    Raises:
        DataError: for anything that is not a number.
    """
    if isinstance(value, bool) or value is None:
        raise DataError(f"expected a number, got {_kind(value)}", path=path, field=field)
    try:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
    except OverflowError:
        raise DataError("number out of range", path=path, field=field, value=value) from None
    except ValueError:
        pass
    raise DataError("expected a number", path=path, field=field, value=value)


# --------------------------------------------------------------------------- names

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString alphabet
_POD_RULES = (
    # Deployment pod: <deployment>-<pod-template-hash>-<5 random>
    re.compile(rf"^(?P<w>.+)-[{_SAFE}]{{6,10}}-[{_SAFE}]{{5}}$"),
    # CronJob pod: <cronjob>-<schedule minutes>-<5 random>
    re.compile(rf"^(?P<w>.+)-\d{{8,}}-[{_SAFE}]{{5}}$"),
    # DaemonSet / Job pod: <name>-<5 random>
    re.compile(rf"^(?P<w>.+)-[{_SAFE}]{{5}}$"),
    # StatefulSet pod: <statefulset>-<ordinal>
    re.compile(r"^(?P<w>.+)-\d+$"),
)
_REPLICASET = re.compile(rf"^(?P<w>.+)-[{_SAFE}]{{6,10}}$")


def workload_from_pod(name: str) -> str:
    """Return the workload (service) a pod name belongs to.

    The rule: strip what Kubernetes appends. ``<deployment>-<pod-template-hash>-<5 chars>``
    (``checkout-6d8f7c9b54-x7k2p`` -> ``checkout``), ``<cronjob>-<minutes>-<5 chars>``,
    ``<daemonset|job>-<5 chars>`` and ``<statefulset>-<ordinal>`` (``redis-0`` -> ``redis``).
    Hash and suffix are recognised by Kubernetes' random alphabet (no vowels, no 0/1/3), so
    ``api-gateway`` stays whole. A name matching no rule is returned unchanged.
    """
    for rule in _POD_RULES:
        m = rule.match(name)
        if m:
            return m.group("w")
    return name


def workload_from_replicaset(name: str) -> str:
    """Return the Deployment a ReplicaSet name belongs to (``checkout-6d8f7c9b54`` -> ``checkout``)."""
    m = _REPLICASET.match(name)
    return m.group("w") if m else name


ENTITY_LABELS = (
    "service", "service_name", "app", "app_kubernetes_io_name", "job",
    "deployment", "pod", "pod_name", "container", "container_name", "namespace", "instance",
)  # fmt: skip
"""Labels that name where a signal comes from rather than what it measures."""


def entity_from_labels(labels: Mapping[str, str], order: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """Return ``(entity, labels used)`` by the first rule in *order* that finds a value.

    Rules are label names, plus ``"k8s"``: a Kubernetes workload from ``deployment``, else the
    pod name (``pod`` or ``pod_name``, see :func:`workload_from_pod`), else ``container`` or
    ``container_name``. ``namespace`` alone names no workload.
    """
    for rule in order:
        if rule == "k8s":
            if labels.get("deployment"):
                return labels["deployment"], ("deployment",)
            for key in ("pod", "pod_name"):
                if labels.get(key):
                    return workload_from_pod(labels[key]), (key,)
            for key in ("container", "container_name"):
                if labels.get(key):
                    return labels[key], (key,)
        elif labels.get(rule):
            return labels[rule], (rule,)
    return None, ()


def render_labels(labels: Mapping[str, Any]) -> str:
    """Return ``{a="1",b="x"}``: the label set sorted by name, values quoted as PromQL does."""
    parts = (f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted(labels.items()))
    return "{" + ",".join(parts) + "}"


def series_names(entities: Sequence[str], bases: Sequence[str], labels: Sequence[Mapping[str, str]]) -> list[str]:
    """Return one metric name per series, keeping distinct series distinct.

    A series' name is its *base* (the metric name) alone when no other series in the same
    document shares its entity and base. Otherwise the labels whose values differ among those
    series are appended (``up{instance="a:9100"}``), so no two series ever merge and the
    names stay as short as the document allows.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(entities, bases, strict=True)):
        groups.setdefault(key, []).append(i)
    out = list(bases)
    for members in groups.values():
        if len(members) < 2:
            continue
        keys = sorted({k for i in members for k in labels[i]})
        varying = [k for k in keys if len({labels[i].get(k) for i in members}) > 1]
        for i in members:
            out[i] = bases[i] + render_labels({k: labels[i][k] for k in varying if k in labels[i]})
    return out


def json_text(value: Any) -> str:
    """Return *value* as compact JSON text with sorted keys; non-finite floats become strings."""
    return json.dumps(_finite(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def frame(rows: Iterable[Mapping[str, Any]] | dict[str, list[Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """Return a frame with exactly *columns* (name -> dtype), built once from *rows*."""
    data = rows if isinstance(rows, dict) else None
    if data is None:
        rows = list(rows)
        data = {c: [r.get(c) for r in rows] for c in columns}
    out = pd.DataFrame({c: pd.Series(data.get(c, []), dtype=t) for c, t in columns.items()})
    return out
