"""No input, however wrong, makes a parser raise anything but an aisre error.

Random bytes, random JSON, and random mutations of valid documents go to every parser,
to format detection and to ingest_files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisre.datasets import ingest
from aisre.errors import AisreError

PARSERS = {
    "alertmanager": lambda d: ingest.parse_alertmanager(d, received_at=1.7e9),
    "prometheus": ingest.parse_query_range,
    "otlp-traces": ingest.parse_otlp_traces,
    "otlp-logs": ingest.parse_otlp_logs,
    "otlp-metrics": ingest.parse_otlp_metrics,
    "jaeger": ingest.parse_jaeger,
    "k8s-events": ingest.parse_k8s_events,
    "github": ingest.parse_github,
    "detect": ingest.detect_format,
}

scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.just(10**400)
    | st.floats(allow_nan=False) | st.text(max_size=12) | st.sampled_from(["0001-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "NaN", "1e999", "\x00"])
)
keys = st.sampled_from([
    "alerts", "status", "labels", "startsAt", "endsAt", "fingerprint", "data", "resultType", "result", "values",
    "value", "metric", "resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "startTimeUnixNano",
    "resourceLogs", "scopeLogs", "logRecords", "body", "resourceMetrics", "scopeMetrics", "metrics", "gauge",
    "sum", "histogram", "summary", "dataPoints", "attributes", "key", "stringValue", "kvlistValue", "arrayValue",
    "traceID", "spanID", "processes", "references", "startTime", "duration", "tags", "items", "involvedObject",
    "regarding", "lastTimestamp", "eventTime", "series", "count", "deployment", "deployment_status",
    "created_at", "id", "repository", "payload", "name", "kind", "asDouble", "intValue", "timeUnixNano",
]) | st.text(max_size=8)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_aisre_errors(doc: Any, only: tuple[str, ...] | None = None) -> None:
    for name, parse in PARSERS.items():
        if only is not None and name not in only:
            continue
        try:
            parse(doc)
        except AisreError:
            pass
        except Exception as exc:  # the property under test: nothing else escapes
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc!r} on {doc!r:.300}") from exc


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    _only_aisre_errors(raw)


@SETTINGS
@given(json_values)
def test_random_json(doc):
    _only_aisre_errors(doc)
    _only_aisre_errors(json.dumps(doc))


@SETTINGS
@given(st.dictionaries(keys, json_values, max_size=6))
def test_random_objects(doc):
    _only_aisre_errors(doc)


VALID = {
    "alertmanager": {"alerts": [{"status": "firing", "labels": {"service": "a"}, "annotations": {}, "startsAt": "2024-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f"}]},
    "prometheus": {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "up", "job": "x"}, "values": [[1, "1"], [2, "NaN"]]}]}},
    "otlp-traces": {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "parentSpanId": "", "name": "op", "kind": 2, "startTimeUnixNano": "1", "endTimeUnixNano": "2", "status": {"code": 2}, "attributes": [{"key": "k", "value": {"arrayValue": {"values": [{"intValue": "3"}]}}}]}]}]}]},
    "otlp-logs": {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "1", "severityNumber": 9, "body": {"kvlistValue": {"values": [{"key": "a", "value": {"doubleValue": 1.5}}]}}, "traceId": "5B8EFFF798038103D269B633813FC60C"}]}]}]},
    "otlp-metrics": {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "summary": {"dataPoints": [{"timeUnixNano": "1", "count": "2", "sum": 3, "quantileValues": [{"quantile": 0.5, "value": 1}]}]}}]}]}]},
    "jaeger": {"data": [{"traceID": "1", "spans": [{"spanID": "2", "startTime": 1, "duration": 1, "processID": "p", "references": [{"refType": "CHILD_OF", "spanID": "3"}], "tags": [{"key": "error", "type": "bool", "value": "true"}]}], "processes": {"p": {"serviceName": "a"}}}]},
    "k8s-events": {"kind": "List", "items": [{"involvedObject": {"kind": "Pod", "name": "a-6d8f7c9b54-x7k2p"}, "reason": "BackOff", "lastTimestamp": "2024-01-01T00:00:00Z", "count": 2, "series": {"count": 3}}]},
    "github": {"deployment": {"id": 1, "created_at": "2024-01-01T00:00:00Z", "payload": {"service": "a"}, "creator": {"login": "x"}}, "deployment_status": {"state": "success", "created_at": "2024-01-01T00:01:00Z"}, "repository": {"name": "r"}},
}


def _mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace one randomly chosen node of *doc* (or a key's value) with random JSON."""
    if depth > 12 or data.draw(st.integers(0, 4), label="replace here") == 0:
        return data.draw(json_values, label="replacement")
    if isinstance(doc, dict) and doc:
        key = data.draw(st.sampled_from(sorted(doc)), label="key")
        return {**doc, key: _mutate(doc[key], data, depth + 1)}
    if isinstance(doc, list) and doc:
        i = data.draw(st.integers(0, len(doc) - 1), label="index")
        return [*doc[:i], _mutate(doc[i], data, depth + 1), *doc[i + 1 :]]
    return data.draw(json_values, label="replacement")


def test_valid_documents_parse():
    """The fixtures the mutation test starts from are valid, so mutations probe deep code."""
    for name, doc in VALID.items():
        fmt = ingest.detect_format(doc)
        assert fmt.startswith(name), (name, fmt)
        PARSERS[name](doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(VALID)), st.data())
def test_mutated_valid_documents(name, data):
    _only_aisre_errors(_mutate(VALID[name], data))


HOSTILE = [None, 0, 1, -1, True, 1.5, 10**400, 2**64, "", "x", "NaN", "0001-01-01T00:00:00Z", {}, {"a": 1}, [], [1], [[1, "1"]]]
"""Values put in place of every node of every valid document, one at a time."""


def _nodes(doc: Any, trail: tuple = ()) -> list[tuple]:
    out = [trail]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, (*trail, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _nodes(v, (*trail, i))
    return out


def _replace(doc: Any, trail: tuple, value: Any) -> Any:
    if not trail:
        return value
    head, rest = trail[0], trail[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    return [*doc[:head], _replace(doc[head], rest, value), *doc[head + 1 :]]


def test_every_node_replaced_by_every_hostile_value():
    """Exhaustive and deterministic: each node of each valid document, swapped for each hostile
    value (and each key dropped), gives a result or an aisre error, never another exception."""
    checked = 0
    for name, doc in VALID.items():
        for trail in _nodes(doc):
            for value in HOSTILE:
                _only_aisre_errors(_replace(doc, trail, value), (name, "detect"))
                checked += 1
            if trail:
                parent = doc
                for step in trail[:-1]:
                    parent = parent[step]
                if isinstance(parent, dict):
                    dropped = {k: v for k, v in parent.items() if k != trail[-1]}
                    _only_aisre_errors(_replace(doc, trail[:-1], dropped), (name,))
    assert checked > 1000


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(json_values)
def test_ingest_files_random_json(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.json"
        path.write_text(json.dumps(doc))
        try:
            ingest.ingest_files([path])
        except AisreError:
            pass
