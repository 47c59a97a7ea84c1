"""Parser for Nezha's log minute files (``<HH_MM>_log.csv``): logs joined to traces, each row a
Docker json-file record of the application's line.

Traps handled (NOTES.md): a row's ``TimeUnixNano`` is used only when sane (Go's zero time
appears), else ``Timestamp`` (6-9 fractional digits with ``Z``, or milliseconds without); lines
are read one record per physical line, tolerating a fragment glued after the closing quote.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aisre.datasets.nezha_parse import _NS_MAX, _NS_MIN, _map_unique, _unix_seconds, service_of
from aisre.errors import DataError

__all__ = ["read_logs"]

_LOG_HEADER = ("Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log")
_QUOTED = r'(?s)^"(?P<body>(?:[^"]|"")*)"(?P<junk>[^"].*)?$'  # closing quote: one not doubled
_JAVA = r"^\d\d:\d\d:\d\d(?:\.\d+)?\s+(?P<level>[A-Za-z]+)\s+(?P<logger>\S+)\s+TraceID:"


def _extract(values: pd.Series, pattern: str) -> pd.DataFrame:
    """Like ``Series.str.extract`` (named groups, NaN where no match), in pyarrow's C++ regex
    engine: this pandas falls back to a Python loop for extract on pyarrow strings."""
    arr = pa.array(values.astype(object).to_numpy(), type=pa.large_string(), from_pandas=True)
    found = pc.extract_regex(arr, pattern)
    names = [found.type.field(i).name for i in range(found.type.num_fields)]
    cols = {n: pd.Series(pc.struct_field(found, [i]).to_pandas(), index=values.index, dtype=object)
            for i, n in enumerate(names)}  # fmt: skip
    return pd.DataFrame(cols, index=values.index)


def read_logs(path: Path) -> pd.DataFrame:
    """Read a ``<HH_MM>_log.csv`` into the logs table plus a ``pod`` column.

    One record per physical line (no record spans lines upstream, and two upstream lines carry
    a fragment glued after the closing quote, which is dropped). ``time`` is ``TimeUnixNano``
    where sane, else ``Timestamp``; ``message`` is the application's line (the Docker json-file
    wrapper removed; for OB's JSON logs, their ``message``); ``level`` is upper-cased;
    ``template`` is the Java ``logger#line`` (the log statement) where the line has one.

    Raises:
        DataError: for an empty file, a wrong header, a row with too few fields, or a bad time.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].strip():
        raise DataError("empty file", path=path)
    header = [h.strip() for h in lines[0].rstrip("\r").split(",")]
    if tuple(header) != _LOG_HEADER:
        raise DataError(f"unexpected header {header[:10]}; expected {list(_LOG_HEADER)}", path=path, field="Log")
    if len(lines) == 1:
        return _empty_logs()
    # pyarrow-backed strings: str.split/extract run in C++ rather than row by row.
    rows = pd.Series(lines[1:], dtype="str").str.rstrip("\r")
    parts = rows.str.split(",", n=7, expand=True)
    if parts.shape[1] < 8 or parts[7].isna().any():
        short = parts[parts.columns[-1]].isna().to_numpy() if parts.shape[1] >= 8 else np.ones(len(rows), bool)
        i = int(np.flatnonzero(short)[0])
        raise DataError("row has too few fields", path=path, field="Log", row=i + 2, value=rows.iloc[i][:60])
    parts.columns = list(_LOG_HEADER)
    log_field = parts["Log"]
    quoted = _extract(log_field, _QUOTED)
    is_quoted = log_field.str.startswith('"')
    bad = (is_quoted & quoted["body"].isna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("unterminated quoted field", path=path, field="Log", row=i + 2, value=log_field.iloc[i][:60])
    raw_log = quoted["body"].astype("str").str.replace('""', '"', regex=False).where(is_quoted, log_field)
    times = _log_times(parts, path)
    inner, stream_level = _unwrap_docker(raw_log)
    message, level, template = _split_app_line(inner)
    level = level.fillna(stream_level)
    pods = parts["PodName"].astype(str)
    out = pd.DataFrame({
        "time": times,
        "entity": _map_unique(pods, service_of),
        "level": level.str.upper().astype(object),
        "template": template.astype(object),
        "message": message.astype(object),
        "trace_id": parts["TraceID"].replace("", None).astype(object),
        "pod": pods.astype(object),
    })  # fmt: skip
    return out


def _empty_logs() -> pd.DataFrame:
    cols = {"time": "float64", "entity": object, "level": object, "template": object,
            "message": object, "trace_id": object, "pod": object}  # fmt: skip
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


def _log_times(parts: pd.DataFrame, path: Path) -> np.ndarray:
    """``TimeUnixNano`` where it is a sane number, else the ``Timestamp`` text (always UTC)."""
    nano = pd.to_numeric(parts["TimeUnixNano"], errors="coerce")
    sane = (nano >= _NS_MIN) & (nano < _NS_MAX)
    out = np.empty(len(parts), dtype="float64")
    if sane.all():
        return (nano.astype("int64") / 1e9).to_numpy()
    idx = np.flatnonzero(~sane.to_numpy())
    stamps = parts["Timestamp"].iloc[idx].reset_index(drop=True)
    parsed = _unix_seconds(stamps.replace("", None), path, "Timestamp")
    ok = np.flatnonzero(sane.to_numpy())
    out[ok] = nano.iloc[ok].astype("int64").to_numpy() / 1e9
    out[idx] = parsed
    return out


def _unwrap_docker(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return the application line of each Docker json-file record ``{"log": ..., "stream": ...}``
    (trailing newline removed; the raw text where a record is not such JSON), and a fallback
    level from the stream (stderr -> ERROR is not safe to assume, so it stays missing)."""
    inner = raw.copy()
    looks = raw.str.startswith('{"log"').fillna(False).to_numpy(dtype=bool)
    if looks.any():
        subset = raw[looks]
        decoded = _json_strings(subset, "log")
        inner.loc[decoded.index] = decoded
    inner = inner.str.removesuffix("\n")
    return inner, pd.Series(None, index=raw.index, dtype=object)


def _json_strings(records: pd.Series, key: str) -> pd.Series:
    """Decode *key* of every JSON object in *records*, in one C-level parse of a JSON array
    (row by row only on the error path, keeping rows that fail undecoded)."""
    try:
        docs = json.loads("[" + ",".join(records.tolist()) + "]")
        if len(docs) == len(records):
            frame = pd.DataFrame.from_records([d if isinstance(d, dict) else {} for d in docs])
            if key in frame.columns:
                values = pd.Series(frame[key].to_numpy(), index=records.index)
                return values[values.notna()].astype(str).astype(object)
            return records.iloc[:0]
    except (json.JSONDecodeError, RecursionError):
        pass
    out = {}
    for idx, text in records.items():  # error path only
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get(key), str):
            out[idx] = doc[key]
    return pd.Series(out, dtype=object)


def _split_app_line(inner: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return message, level and template of application lines: TT Java lines
    (``HH:MM:SS.mmm LEVEL logger#line TraceID: ...``; level and logger#line taken, the message is
    the whole line) and OB JSON lines (``{"message", "severity", ...}``)."""
    inner = inner.astype("str")  # pyarrow-backed: the regex runs in C++
    message = inner.copy()
    level = pd.Series(None, index=inner.index, dtype=object)
    template = pd.Series(None, index=inner.index, dtype=object)
    java = _extract(inner, _JAVA)
    hit = java["level"].notna()
    level[hit] = java.loc[hit, "level"]
    named = hit & (java["logger"] != "-")  # adservice logs "-" where other Java services name the logger
    template[named] = java.loc[named, "logger"]
    obj = (~hit & inner.str.startswith("{").fillna(False)).to_numpy(dtype=bool)
    if obj.any():
        subset = inner[obj]
        msg = _json_strings(subset, "message")
        sev = _json_strings(subset, "severity")
        message.loc[msg.index] = msg
        level.loc[sev.index] = sev
    return message, level, template
