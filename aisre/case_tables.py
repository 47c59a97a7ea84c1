"""The model's tables: their columns and dtypes, and how a frame is made to conform to them.

A Case holds four tables (metrics, logs, spans, events) as pandas DataFrames with the fixed
columns below; :mod:`aisre.case` (the model and its folders) and :mod:`aisre.case_pack` (table
packs) both build on these specs, and :mod:`aisre.case` re-exports the public names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aisre.errors import DataError

__all__ = ["EVENT_COLUMNS", "LOG_COLUMNS", "METRIC_COLUMNS", "SPAN_COLUMNS", "empty_table"]

METRIC_COLUMNS = {"time": "float64", "entity": "object", "metric": "object", "value": "float64"}
"""Columns and dtypes of the long metrics table."""

LOG_COLUMNS = {
    "time": "float64", "entity": "object", "level": "object",
    "template": "object", "message": "object", "trace_id": "object",
}  # fmt: skip
"""Columns and dtypes of the logs table."""

SPAN_COLUMNS = {
    "trace_id": "object", "span_id": "object", "parent_id": "object", "service": "object",
    "operation": "object", "start": "float64", "duration": "float64", "status": "object",
    "attributes": "object",
}  # fmt: skip
"""Columns and dtypes of the spans table; ``duration`` in seconds, ``status`` ok/error/unset,
``attributes`` a JSON object as text."""

EVENT_COLUMNS = {
    "time": "float64", "entity": "object", "kind": "object", "reason": "object",
    "message": "object", "attributes": "object",
}  # fmt: skip
"""Columns and dtypes of the events table; ``attributes`` a JSON object as text."""

_LABEL_COLUMNS = {"metrics": ("entity", "metric"), "logs": (), "spans": (), "events": ()}
"""Columns with few distinct values over many rows: saved as dictionary-encoded Parquet (pandas
categoricals), which reads back several times faster than plain strings. Only the metrics' keys:
the other tables are small, and their text columns are filled and edited as plain strings."""

_TABLES = {
    "metrics": METRIC_COLUMNS,
    "logs": LOG_COLUMNS,
    "spans": SPAN_COLUMNS,
    "events": EVENT_COLUMNS,
}


_EMPTY: dict[str, pd.DataFrame] = {}


def empty_table(name: str) -> pd.DataFrame:
    """Return an empty frame with the columns of table *name* (metrics, logs, spans, events).

    Raises:
        KeyError: for a table name the model does not have.
    """
    if name not in _EMPTY:
        _EMPTY[name] = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _TABLES[name].items()})
    return _EMPTY[name].copy(deep=False)


_OPTIONAL_COLUMNS = frozenset({"template", "message", "trace_id", "attributes", "reason", "parent_id", "status"})


def _conform(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Return *frame* with exactly the model's columns for table *name*, times as float64.

    A frame that already conforms is returned as it is (no copy): loading a cached Case must
    cost no more than reading it.

    Raises:
        DataError: when a required column is missing or a time column is not numeric.
    """
    if frame is None:
        return empty_table(name)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"table {name} must be a DataFrame", field=name, value=type(frame).__name__)
    columns = _TABLES[name]
    floats = [c for c, t in columns.items() if t == "float64"]
    if list(frame.columns) == list(columns) and all(frame[c].dtype == np.float64 for c in floats):
        return frame if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 else frame.reset_index(drop=True)
    missing = [c for c in columns if c not in frame.columns]
    if any(c not in _OPTIONAL_COLUMNS for c in missing):
        raise DataError(f"table {name} lacks columns {missing}", field=name)
    out = frame.copy()
    for c in missing:
        out[c] = None
    out = out[list(columns)]
    for c in floats:
        if out[c].dtype != np.float64:
            try:
                out[c] = pd.to_numeric(out[c], errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise DataError(f"table {name} has non-numeric values", field=c) from exc
    return out.reset_index(drop=True)
