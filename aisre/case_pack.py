"""Table packs: the tables of many Case folders in one set of Parquet files, shared rows once.

The dataset cache saves a whole entry's cases with one :class:`TablePack`; their manifests
(schema ``aisre.case/2``, see :func:`aisre.case.save_case`) name row ranges in the pack's files,
and :class:`_PackFile` reads those ranges back for :func:`aisre.case.load_cases`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from aisre.case_tables import _LABEL_COLUMNS, _TABLES, _conform
from aisre.errors import DataError

__all__ = ["TablePack"]

_PACK_GROUP_ROWS = 1 << 20
"""A pack flushes a row group once this many new rows are pending (or ``_PACK_GROUP_BYTES``)."""

_PACK_GROUP_BYTES = 128 << 20
"""A pack flushes a row group once this many bytes of new rows are pending."""

_PACK_KEEP_ROWS = 4 << 20
"""A reader keeps decoded row groups of one pack up to this many rows (the most recent first)."""

_CHUNK_BITS = 10
"""A chunk of rows ends after each row whose hash has its low ``_CHUNK_BITS`` bits clear: chunks
of about 1024 rows, cut where the content says, so a run of rows shared by two tables is cut at
the same places in both."""

_CHUNK_MIN_MEAN = 64
"""Fewer rows per chunk than this on average means rows repeat: the table is cut every 1024 rows."""

_PACK_COMPRESSION = "lz4"
"""Parquet compression of pack files: LZ4 reads almost as fast as none (a third faster than
Snappy) at Snappy's size, a fifth of none's on metrics."""


def _column_kinds(name: str) -> dict[str, str]:
    """Return ``{column: kind}`` of table *name*: ``float``, ``label`` (categorical) or ``text``."""
    return {
        c: "float" if t == "float64" else "label" if c in _LABEL_COLUMNS[name] else "text"
        for c, t in _TABLES[name].items()
    }


_KINDS = {name: _column_kinds(name) for name in _TABLES}


def _pack_schema(name: str) -> Any:
    """Return the Arrow schema of table *name* in a pack: floats, dictionary-encoded labels, text."""
    import pyarrow as pa

    types = {"float": pa.float64(), "label": pa.dictionary(pa.int32(), pa.string()), "text": pa.large_string()}
    return pa.schema([(c, types[k]) for c, k in _KINDS[name].items()])


def _mix(h: np.ndarray) -> np.ndarray:
    """Return splitmix64's finaliser of *h* (uint64): every output bit depends on every input bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _row_hashes(name: str, frame: pd.DataFrame) -> np.ndarray:
    """Return one uint64 hash per row of *frame* over every column of table *name*.

    Floats hash their bits (so 0.0 and -0.0 differ; every NaN is one value, as the pack stores
    NaN as null); text hashes its value, categorical or not, with None and NaN alike.
    """
    h = np.zeros(len(frame), dtype=np.uint64)
    for column, kind in _KINDS[name].items():
        if kind == "float":
            values = frame[column].to_numpy(dtype=np.float64, copy=True)
            values[np.isnan(values)] = np.nan
            part = _mix(values.view(np.uint64))
        else:
            part = pd.util.hash_pandas_object(frame[column], index=False).to_numpy()
        h = _mix(h * np.uint64(0x100000001B3) ^ part)
    return h


class TablePack:
    """Tables that many Case folders share, each distinct run of rows stored once.

    ``<folder>/<table>.parquet`` holds the rows of every case saved with the pack, in a few large
    row groups; each case's manifest lists its rows' ranges there. A table is cut into chunks
    where its content says (after every row whose hash has its low ten bits clear), and a chunk
    whose rows all hash as those of a stored chunk is referenced instead of written again. So the
    normal-period data that every case of a PetShop scenario carries is stored, and read, once.

    The files are complete only after :meth:`close`. Leaving a ``with`` block closes the pack,
    or, on an exception, drops what is pending: the caller is abandoning the files.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._stored = {name: 0 for name in _TABLES}
        self._chunks: dict[str, dict[bytes, int]] = {name: {} for name in _TABLES}
        self._pending: dict[str, list[Any]] = {name: [] for name in _TABLES}
        self._pending_rows = {name: 0 for name in _TABLES}
        self._pending_bytes = {name: 0 for name in _TABLES}
        self._writers: dict[str, Any] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        self._pending = {name: [] for name in _TABLES}
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()

    def file(self, name: str) -> Path:
        """Return the path of the pack file of table *name*."""
        return self.folder / f"{name}.parquet"

    def add(self, name: str, frame: pd.DataFrame) -> dict[str, Any] | None:
        """Store the rows of *frame* as table *name*; return where they are, for a manifest:
        ``{"rows": [[start, stop], ...], "categories": {column: [sorted values present]}}``
        (row ranges in :meth:`file`; categories of the label columns, so a reader need not find
        them), or None when its values do not fit the pack's column types (text that is not
        text, say), in which case nothing is stored.

        Raises:
            OSError: when a pack file cannot be written.
        """
        import pyarrow as pa

        frame = _conform(name, frame)
        try:
            table = pa.Table.from_pandas(frame, schema=_pack_schema(name), preserve_index=False, nthreads=1)
        except (pa.ArrowException, ValueError, TypeError):
            return None
        table = table.replace_schema_metadata(None)
        hashes = _row_hashes(name, frame)
        n = len(frame)
        cuts = np.flatnonzero((hashes & np.uint64((1 << _CHUNK_BITS) - 1)) == 0) + 1
        if len(cuts) * _CHUNK_MIN_MEAN > n:  # rows repeat: content-defined cuts would shred the table
            cuts = np.arange(1 << _CHUNK_BITS, n, 1 << _CHUNK_BITS)
        bounds = [0, *cuts[cuts < n].tolist(), n]
        known = self._chunks[name]
        ranges: list[list[int]] = []
        new: list[list[int]] = []
        for start, stop in itertools.pairwise(bounds):
            key = hashlib.blake2b(hashes[start:stop].tobytes(), digest_size=16).digest()
            at = known.get(key)
            if at is None:
                at = known[key] = self._stored[name]
                self._stored[name] += stop - start
                if new and new[-1][1] == start:
                    new[-1][1] = stop
                else:
                    new.append([start, stop])
            if ranges and ranges[-1][1] == at:
                ranges[-1][1] = at + stop - start
            else:
                ranges.append([at, at + stop - start])
        for start, stop in new:
            piece = table.slice(start, stop - start)
            self._pending[name].append(piece)
            self._pending_rows[name] += stop - start
            self._pending_bytes[name] += piece.nbytes
        if self._pending_rows[name] >= _PACK_GROUP_ROWS or self._pending_bytes[name] >= _PACK_GROUP_BYTES:
            self._flush(name)
        ref: dict[str, Any] = {"rows": ranges}
        labels = [c for c, k in _KINDS[name].items() if k == "label"]
        if labels:
            ref["categories"] = {c: sorted(table.column(c).unique().dictionary_decode().drop_null().to_pylist()) for c in labels}
        # A text column with no value at all comes back as the missing value it held (None or
        # NaN), as parsing gave it; a column with some text comes back as text with NaN gaps.
        missing = {
            c: "None" if frame[c].iloc[0] is None else "NaN"
            for c, k in _KINDS[name].items() if k == "text" and table.column(c).null_count == n
        }  # fmt: skip
        if missing:
            ref["missing"] = missing
        return ref

    def _flush(self, name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._pending[name]:
            return
        table = pa.concat_tables(self._pending[name]).unify_dictionaries().combine_chunks()
        writer = self._writers.get(name)
        if writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            labels = [c for c, k in _KINDS[name].items() if k == "label"]
            writer = self._writers[name] = pq.ParquetWriter(
                self.file(name), table.schema, compression=_PACK_COMPRESSION, use_dictionary=labels or False,
                write_statistics=False, write_page_checksum=True,
            )  # fmt: skip
        writer.write_table(table, row_group_size=table.num_rows)  # one row group: one read
        self._pending[name], self._pending_rows[name], self._pending_bytes[name] = [], 0, 0

    def close(self) -> None:
        """Write what is pending and finish the pack files.

        Raises:
            OSError: when a pack file cannot be written.
        """
        for name in _TABLES:
            self._flush(name)
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()


def _text_dtype() -> Any:
    """Return the dtype pandas gives Arrow text (``str`` on pandas 3, object before)."""
    import pyarrow as pa

    return pa.array([], pa.large_string()).to_pandas().dtype


class _PackFile:
    """One pack file being read: its row groups decoded when first needed, the recent ones kept."""

    def __init__(self, path: Path, name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.name = path, name
        try:
            # Page checksums: a damaged pack is an error, never rows that silently differ.
            self.file = pq.ParquetFile(path, page_checksum_verification=True)
            schema = self.file.schema_arrow
        except FileNotFoundError as exc:
            raise DataError("table pack is missing", path=path) from exc
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"unreadable Parquet: {exc}", path=path) from exc
        if not schema.remove_metadata().equals(_pack_schema(name)):
            raise DataError(f"not a pack of the {name} table", path=path, field="schema")
        meta = self.file.metadata
        self.starts = np.cumsum([0, *(meta.row_group(g).num_rows for g in range(meta.num_row_groups))])
        self.rows = int(self.starts[-1])
        self._groups: dict[int, dict[str, Any]] = {}
        self._unions: dict[tuple[str, tuple[int, ...]], tuple[pd.Index, list[np.ndarray]]] = {}
        self._dtypes: dict[tuple[str, tuple[int, ...], Any], tuple[pd.CategoricalDtype, type, np.ndarray | None]] = {}
        self._text = _text_dtype()
        self._kinds = _KINDS[name]
        self._columns = pd.Index(list(self._kinds))

    def check(self, ref: Mapping[str, Any], manifest: Path) -> tuple[list[tuple[int, int]], dict[str, Any]]:
        """Return the row ranges of a manifest's *ref* to this pack, once they are known to lie
        in the pack, and what else the reader needs: the label columns' categories and the
        missing value of text columns that have none.

        Raises:
            DataError: for ranges that are not ``[start, stop)`` pairs within the pack's rows,
                categories that are not sorted lists of text for the table's label columns, or
                missing values other than ``"None"`` and ``"NaN"`` for its text columns.
        """
        ranges = ref.get("rows")
        out: list[tuple[int, int]] = []
        if not isinstance(ranges, list) or not ranges:
            raise DataError(f"table {self.name} needs a list of row ranges", path=manifest, field="tables")
        for item in ranges:
            if (
                not isinstance(item, list) or len(item) != 2 or not all(type(x) is int for x in item)
                or not 0 <= item[0] < item[1] <= self.rows
            ):  # fmt: skip
                raise DataError(f"row range {item} is not within the {self.rows} rows of the pack", path=manifest,
                                field="tables", value=item)  # fmt: skip
            out.append((item[0], item[1]))
        extra: dict[str, Any] = {}
        categories = ref.get("categories")
        if categories is not None:
            labels = {c for c, k in self._kinds.items() if k == "label"}
            if (
                not isinstance(categories, Mapping) or set(categories) != labels
                or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) and v == sorted(set(v))
                           for v in categories.values())
            ):  # fmt: skip
                raise DataError(f"table {self.name} has malformed categories", path=manifest, field="tables")
            extra["categories"] = {c: tuple(v) for c, v in categories.items()}
        missing = ref.get("missing", {})
        if (
            not isinstance(missing, Mapping) or not all(self._kinds.get(c) == "text" for c in missing)
            or not all(v in ("None", "NaN") for v in missing.values())
        ):  # fmt: skip
            raise DataError(f"table {self.name} has malformed missing values", path=manifest, field="tables")
        extra["missing"] = {c: None if v == "None" else np.nan for c, v in missing.items()}
        return out, extra

    def _group(self, g: int) -> dict[str, Any]:
        """Return row group *g* decoded (float arrays, label categories and codes, Arrow text),
        keeping the most recently used groups up to ``_PACK_KEEP_ROWS`` rows."""
        got = self._groups.pop(g, None)
        if got is None:
            got = self._decode(g)
        self._groups[g] = got  # most recently used last
        while len(self._groups) > 1 and sum(int(self.starts[k + 1] - self.starts[k]) for k in self._groups) > _PACK_KEEP_ROWS:
            self._groups.pop(next(iter(self._groups)))
        return got

    def _decode(self, g: int) -> dict[str, Any]:
        """Return row group *g* read: float columns as arrays, label columns as (sorted
        categories, codes, has nulls), text columns as Arrow arrays.

        Raises:
            DataError: when the row group cannot be read.
        """
        import pyarrow as pa

        try:
            table = self.file.read_row_group(g, use_threads=False).unify_dictionaries().combine_chunks()
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"unreadable Parquet row group {g}: {exc}", path=self.path) from exc
        got: dict[str, Any] = {}
        for column, kind in self._kinds.items():
            array = table.column(column).chunk(0)
            if kind == "float":
                got[column] = array.to_numpy(zero_copy_only=False)
            elif kind == "label":
                # Codes renumbered once per group to the sorted categories, in pandas' smallest
                # code type, so a case that has every category takes a plain copy of its rows.
                cats = pd.Index(self._text_values(array.dictionary))
                order = cats.argsort()
                rank = np.empty(len(cats) + 1, dtype=_code_type(len(cats)))
                rank[order] = np.arange(len(cats))
                rank[-1] = -1
                indices = array.indices.fill_null(-1) if array.null_count else array.indices
                codes = rank.take(indices.to_numpy())
                got[column] = (cats[order], codes, array.null_count > 0)
            else:
                got[column] = array
        return got

    def _text_values(self, array: Any) -> Any:
        """Return Arrow text as pandas gives it (an ArrowStringArray on pandas 3)."""
        from_arrow = getattr(self._text, "__from_arrow__", None)
        return from_arrow(array) if from_arrow is not None else array.to_numpy(zero_copy_only=False)

    def take(
        self, ranges: list[tuple[int, int]], categories: dict[str, tuple[str, ...]] | None = None,
        missing: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Return a new frame of the rows in *ranges*, in order: its arrays are its own.

        *categories* (from the manifest) are the values present in each label column; without
        them they are counted. *missing* is the value (None or NaN) of text columns that hold
        nothing else; without it, None.

        Raises:
            DataError: when a row group cannot be read, or a row's label is not in *categories*.
        """
        import pyarrow as pa

        pieces: list[tuple[int, int, int]] = []  # (row group, start, stop) within the group
        for start, stop in ranges:
            g = int(np.searchsorted(self.starts, start, side="right")) - 1
            while start < stop:
                end = min(stop, int(self.starts[g + 1]))
                pieces.append((g, start - int(self.starts[g]), end - int(self.starts[g])))
                start, g = end, g + 1
        groups = {g: self._group(g) for g in dict.fromkeys(p[0] for p in pieces)}
        n = sum(stop - start for _, start, stop in pieces)
        floats = [c for c, k in self._kinds.items() if k == "float"]
        block = np.empty((len(floats), n), dtype=np.float64)
        at = 0
        for g, start, stop in pieces:
            for i, column in enumerate(floats):
                block[i, at : at + stop - start] = groups[g][column][start:stop]
            at += stop - start
        arrays: dict[str, Any] = {}
        for column, kind in self._kinds.items():
            if kind == "label":
                arrays[column] = self._labels(column, groups, pieces, None if categories is None else categories[column])
            elif kind == "text":
                text = pa.concat_arrays([groups[g][column].slice(s, e - s) for g, s, e in pieces])
                if text.null_count == n:
                    arrays[column] = np.full(n, (missing or {}).get(column), dtype=object)
                else:
                    arrays[column] = self._text_values(text)
        return _frame(self._columns, floats, block, arrays, n)

    def _labels(
        self, column: str, groups: dict[int, dict[str, Any]], pieces: list[tuple[int, int, int]], names: tuple[str, ...] | None
    ) -> pd.Categorical:
        """Return the categorical of *column* over *pieces*, its categories the values present
        (*names* where the manifest lists them), sorted.

        Raises:
            DataError: when *names* misses a value the rows hold, or names one the pack lacks.
        """
        used = tuple(groups)
        if len(used) == 1:
            cats, codes, nulls = groups[used[0]][column]
            # One piece is a view: the arrays made from it below are new.
            codes = codes[pieces[0][1] : pieces[0][2]] if len(pieces) == 1 else np.concatenate([codes[s:e] for _, s, e in pieces])
        else:  # rows from several row groups: their categories merged, still sorted
            key = (column, used)
            if key not in self._unions:
                first, *rest = (groups[g][column][0] for g in used)
                union = first.append(rest).unique().sort_values()
                small = _code_type(len(union))
                self._unions[key] = (union, [np.append(union.get_indexer(groups[g][column][0]), -1).astype(small) for g in used])
            cats, maps = self._unions[key]
            where = {g: i for i, g in enumerate(used)}
            codes = np.concatenate([maps[where[g]].take(groups[g][column][1][s:e]) for g, s, e in pieces])
            nulls = any(groups[g][column][2] for g in used)
        k = len(cats)
        if names is None:
            present = np.bincount(codes + 1, minlength=k + 1)[1:] > 0 if nulls else np.bincount(codes, minlength=k) > 0
            key = (column, used, present.tobytes())
        else:
            key = (column, used, names)
        known = self._dtypes.get(key)
        if known is None:
            if names is None:
                keep = np.flatnonzero(present)
            else:
                keep = np.sort(cats.get_indexer(pd.Index(list(names), dtype=cats.dtype)))
                if len(keep) and keep[0] < 0:
                    raise DataError(f"column {column} lists a category that the pack does not hold", path=self.path, field=column)
            small = _code_type(len(keep))
            lookup = None
            if len(keep) < k:  # absent categories answer -2, and the last slot code -1 (null)
                lookup = np.full(k + 1, -2, dtype=small)
                lookup[keep] = np.arange(len(keep), dtype=small)
                lookup[-1] = -1
            known = self._dtypes[key] = (pd.CategoricalDtype(cats[keep], ordered=False), small, lookup)
        dtype, small, lookup = known
        if lookup is None:
            codes = codes.astype(small)
        else:
            codes = lookup.take(codes)  # take, not [codes]: several times faster with small codes
            if len(codes) and codes.min() < -1:
                raise DataError(f"column {column} holds a value its manifest's categories lack", path=self.path, field=column)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _code_type(n: int) -> type[np.signedinteger]:
    """Return the integer type pandas gives the codes of *n* categories (-1 for null included)."""
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


def _frame(columns: pd.Index, floats: list[str], block: np.ndarray, arrays: dict[str, Any], n: int) -> pd.DataFrame:
    """Return a frame of *columns* from a 2-D block of the float columns and the other arrays."""
    index = pd.RangeIndex(n)
    try:
        from pandas.api.internals import create_dataframe_from_blocks
    except ImportError:  # pandas < 3: the plain constructor (it consolidates the floats itself)
        data = {c: block[i] for i, c in enumerate(floats)} | arrays
        return pd.DataFrame({c: data[c] for c in columns}, index=index, copy=False)
    position = {c: i for i, c in enumerate(columns)}
    blocks = [(block, np.array([position[c] for c in floats], dtype=np.intp))]
    blocks += [
        (values.reshape(1, -1) if isinstance(values, np.ndarray) else values, np.array([position[c]], dtype=np.intp))
        for c, values in arrays.items()
    ]  # numpy blocks are 2-D, extension arrays 1-D
    return create_dataframe_from_blocks(blocks, index=index, columns=columns)
