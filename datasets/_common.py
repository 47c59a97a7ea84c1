"""Parsing helpers shared by the dataset loaders: strict CSV reading, time units, wide -> long.

Every helper raises :class:`aisre.errors.DataError` naming the file, the field and (where known)
the 1-based CSV line, and nothing else: pandas, the csv parser and the OS raise a zoo of types on
bad input, and they are all translated here, once.

Conventions kept by all loaders:

* An **empty cell** is a missing sample: it is dropped from the long metrics table (a long table
  has no place for "no value"). A literal ``NaN``/``nan`` or other text in a numeric column is
  malformed input, and so is ``inf``.
* The time column must be present, numeric, finite, strictly increasing and free of duplicates.
* A file is **truncated** when its last line has fewer fields than its header (a cut download);
  a last line cut inside its final number cannot be told from a complete one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import METRIC_COLUMNS
from aisre.errors import DataError

__all__ = [
    "read_json",
    "read_numeric_csv",
    "read_text",
    "check_time",
    "to_seconds",
    "unit_of",
    "melt",
]

_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""Seconds per unit of a raw timestamp."""


def unit_of(values: np.ndarray | pd.Series) -> str:
    """Return the unit of unix timestamps *values* by their magnitude: ``s``, ``ms``, ``us`` or ``ns``.

    Any date after 1973 has >= 9 digits in seconds, and no date before 2286 has more than 10, so
    the digit count decides: ~1e9 s, ~1e12 ms, ~1e15 µs, ~1e18 ns.
    """
    arr = np.asarray(values, dtype="float64")
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return "s"
    m = float(np.nanmedian(np.abs(arr)))
    if m >= 1e17:
        return "ns"
    if m >= 1e14:
        return "us"
    if m >= 1e11:
        return "ms"
    return "s"


def to_seconds(values: np.ndarray | pd.Series, unit: str | None = None) -> np.ndarray:
    """Return *values* converted to float unix seconds (unit detected when *unit* is None)."""
    arr = np.asarray(values, dtype="float64")
    return arr * _UNITS[unit or unit_of(arr)]


def read_text(path: Path) -> str:
    """Return the UTF-8 text of *path*.

    Raises:
        DataError: when the file is unreadable or not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8 text", path=path) from exc
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc


def read_json(path: Path) -> Any:
    """Return the parsed JSON document at *path*.

    Raises:
        DataError: when the file is unreadable, empty or not valid JSON.
    """
    text = read_text(path)
    if not text.strip():
        raise DataError("empty file", path=path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from exc
    except RecursionError as exc:
        raise DataError("JSON nested too deeply", path=path) from exc


def _last_line_fields(path: Path) -> tuple[int, int] | None:
    """Return (fields in the header, fields in the last non-empty line), or None if unknown."""
    try:
        with path.open("rb") as fh:
            header = fh.readline()
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except OSError:
        return None
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines or b'"' in header or b'"' in lines[-1]:
        return None  # quoted fields may hold commas; leave those to the parser
    return header.count(b",") + 1, lines[-1].count(b",") + 1


def read_numeric_csv(
    path: Path,
    *,
    header: int | list[int] = 0,
    index_col: int | None = None,
    skiprows: Sequence[int] | None = None,
    check_truncation: bool = True,
) -> pd.DataFrame:
    """Read a CSV whose cells are all numbers (empty cells allowed) and return it.

    Raises:
        DataError: for an unreadable, empty, truncated or ragged file, a cell holding text, or an
            infinite value; the error names the file, the column and the CSV line.
    """
    try:
        if path.stat().st_size == 0:
            raise DataError("empty file", path=path)
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        frame = pd.read_csv(
            path,
            header=header,
            index_col=index_col,
            skiprows=skiprows,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
            low_memory=False,
        )
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError("empty file (no columns)", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8 text", path=path) from exc
    except Exception as exc:  # the C parser raises ParserError, ValueError, OverflowError, ...
        raise DataError(f"unreadable CSV: {' '.join(str(exc).split())[:160]}", path=path) from exc
    if check_truncation and isinstance(header, int):
        counts = _last_line_fields(path)
        if counts is not None and counts[1] < counts[0]:
            raise DataError(
                f"truncated: the last line has {counts[1]} of {counts[0]} fields",
                path=path,
                field=str(frame.columns[min(counts[1], len(frame.columns)) - 1]),
                row=len(frame) + 1,
            )
    return frame


def numeric_block(frame: pd.DataFrame, path: Path, *, first_line: int = 2) -> np.ndarray:
    """Return the values of *frame* as a float64 matrix.

    *first_line* is the CSV line of the frame's first row, used in error messages.

    Raises:
        DataError: naming the first column holding text, or an infinite value, and its line.
    """
    bad = [
        j for j, dtype in enumerate(frame.dtypes)
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    ]  # fmt: skip
    if bad:
        frame = frame.copy()
    for j in bad:
        col = frame.iloc[:, j]
        coerced = _coerce(col, path, _name(frame.columns[j]), first_line)
        wrong = coerced.isna() & col.notna()
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            raise DataError("text in a numeric column", path=path, field=_name(frame.columns[j]), row=first_line + i, value=col.iloc[i])
        frame.isetitem(j, coerced.astype("float64"))
    try:
        values = frame.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"non-numeric values: {exc}", path=path) from exc
    inf = np.isinf(values)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise DataError("infinite value", path=path, field=_name(frame.columns[c]), row=first_line + int(r), value=float(values[r, c]))
    return values


def _coerce(col: pd.Series, path: Path, field: str, first_line: int) -> pd.Series:
    """Return *col* as numbers, NaN where a cell is not one (lists and dicts included)."""
    try:
        return pd.to_numeric(col.astype(object), errors="coerce")
    except (TypeError, ValueError):
        # to_numeric refuses containers outright; find the first one for the message
        for i, v in enumerate(col.to_numpy(dtype=object)):
            if isinstance(v, (list, dict, tuple, set)):
                raise DataError("a cell holds a list or object, not a number", path=path, field=field, row=first_line + i) from None
        raise DataError("non-numeric values", path=path, field=field) from None


def _name(col: Any) -> str:
    return "/".join(map(str, col)) if isinstance(col, tuple) else str(col)


def check_time(
    times: pd.Series | np.ndarray, path: Path, *, field: str = "time", first_line: int = 2
) -> np.ndarray:
    """Return *times* as float64 after checking they are finite, unique and increasing.

    Raises:
        DataError: for a missing, non-numeric, infinite, duplicate or out-of-order timestamp,
            naming the file, the field and the CSV line.
    """
    s = pd.Series(times)
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        coerced = _coerce(s, path, field, first_line)
        wrong = coerced.isna() & s.notna()
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            raise DataError("timestamp is not a number", path=path, field=field, row=first_line + i, value=s.iloc[i])
        s = coerced
    arr = s.to_numpy(dtype="float64", na_value=np.nan)
    if arr.size == 0:
        raise DataError("no data rows", path=path, field=field)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("missing or infinite timestamp", path=path, field=field, row=first_line + i, value=None if math.isnan(arr[i]) else float(arr[i]))
    step = np.diff(arr)
    if (step == 0).any():
        i = int(np.flatnonzero(step == 0)[0]) + 1
        raise DataError("duplicate timestamp", path=path, field=field, row=first_line + i, value=float(arr[i]))
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0]) + 1
        raise DataError("timestamps out of order", path=path, field=field, row=first_line + i, value=float(arr[i]))
    return arr


def melt(times: np.ndarray, values: np.ndarray, entities: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Return the long metrics table from a wide block: one row per non-missing cell.

    *values* has one row per time and one column per (entity, metric) pair; rows come out
    time-major, columns in the given order.
    """
    n_t, n_c = values.shape
    flat = values.ravel()
    keep = ~np.isnan(flat)
    ent = np.asarray(list(entities), dtype=object)
    met = np.asarray(list(metrics), dtype=object)
    frame = pd.DataFrame(
        {
            "time": np.repeat(np.asarray(times, dtype="float64"), n_c)[keep],
            "entity": np.tile(ent, n_t)[keep],
            "metric": np.tile(met, n_t)[keep],
            "value": flat[keep],
        }
    )
    return frame.astype(METRIC_COLUMNS)


def find_case_folders(path: Path, marker: str, is_case: Callable[[Path], bool],
                      sort_key: Callable[[Path], Any], *, depth: int = 4) -> list[Path]:
    """Return the case folders at or below *path* (a root, a sub-folder, a case folder or a file
    in one): folders up to *depth* levels down holding *marker* for which *is_case* holds,
    sorted by *sort_key*."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if is_case(path):
        return [path]
    if not path.is_dir():
        return []
    found = {hit.parent for d in range(1, depth + 1) for hit in path.glob("/".join(["*"] * d) + "/" + marker)}
    return sorted((f for f in found if is_case(f)), key=sort_key)

