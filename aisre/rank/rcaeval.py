"""Adapters to the published RCAEval implementations (BARO, N-Sigma, CIRCA) from ``rcaeval``.

The comparison is with the real code, called as RCAEval's ``main.py`` calls it, on the
case's metrics turned into RCAEval's wide frame (a ``time`` column plus one
``<entity>_<metric>`` column per series). Three deliberate differences from calling
``RCAEval.e2e`` naively, each for a documented trap:

- ``dataset`` is never ``None``: with ``None`` RCAEval's ``preprocess`` keeps (and ranks)
  the ``time`` column and leaves memory in bytes.
- The ``@rca`` wrapper is bypassed: it turns any failure into the unranked column order,
  which looks like a ranking. Here a failure is an abstained :class:`Ranking` whose reason
  is the error, and the benchmark counts it as a miss.
- CIRCA splits column names on ``_`` to find (entity, metric); entity names with ``_`` (and
  metric names such as ``lat_90``) break that, so CIRCA sees opaque aliases ``e<i>_<metric>``.

``rcaeval`` is imported only when a ranker is built, so the core never needs it; without it
the constructor raises :class:`UsageError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Evidence, Hypothesis, Ranking
from aisre.errors import UsageError

__all__ = [
    "BaroRanker",
    "CircaRanker",
    "RcaevalNSigmaRanker",
    "entity_of",
    "ranks_to_entities",
    "to_rcaeval_frame",
]

_INSTALL_HINT = "pip install 'aisre[baselines]'"

_DATASET = "aisre"
"""What the adapters pass as RCAEval's ``dataset``: any non-None name makes ``preprocess`` drop
``time`` and constant columns and convert ``*_mem`` to MB, as for RCAEval's own datasets."""


def _import_method(module: str, attr: str) -> Callable[..., Any]:
    """Return the RCAEval function *module.attr* with any ``@rca`` wrapper removed.

    Raises:
        UsageError: when rcaeval (or one of its undeclared dependencies) is not installed.
    """
    try:
        func = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise UsageError(f"the RCAEval baselines need an optional extra ({_INSTALL_HINT}): {exc}") from exc
    return _unwrap(func)


def _unwrap(func: Callable[..., Any]) -> Callable[..., Any]:
    """Return the function inside RCAEval's ``@rca`` wrapper (or ``__wrapped__``), else *func*.

    RCAEval 1.8.1's ``rca`` does not use ``functools.wraps``, so the inner function is read
    from the wrapper's closure cell ``func``.
    """
    inner = getattr(func, "__wrapped__", None)
    if inner is not None:
        return _unwrap(inner)
    code = getattr(func, "__code__", None)
    closure = getattr(func, "__closure__", None)
    if code is not None and closure and func.__qualname__ == "rca.<locals>.wrapper" and "func" in code.co_freevars:
        return _unwrap(closure[code.co_freevars.index("func")].cell_contents)
    return func


def to_rcaeval_frame(case: Case, *, aliases: bool = False) -> tuple[pd.DataFrame, dict[str, str]]:
    """Return ``(frame, entity_of_column)``: the case's metrics as RCAEval's wide frame.

    The frame has a ``time`` column (float unix seconds, sorted) and one ``<entity>_<metric>``
    column per series, built from the long table (never by splitting ``entity:metric``, since
    entity names may contain ``:``). Duplicate samples are averaged; gaps are forward-filled
    then filled with 0 and infinities treated as gaps, and ``latency-50`` series dropped, as
    RCAEval's ``main.py`` does before calling any method (with both p50 and p90 kept, PC in
    CIRCA meets a singular correlation matrix on RE2 data). With
    *aliases* (or when two series would get the same name) columns are named
    ``e<i>_<metric>`` with ``_`` in the metric replaced by ``-``. The mapping gives each
    column's entity.
    """
    m = case.metrics.dropna(subset=["entity", "metric", "time"])
    m = m[m["metric"].astype(str) != "latency-50"]
    if m.empty:
        return pd.DataFrame({"time": pd.Series(dtype="float64")}), {}
    wide = m.groupby(["time", "entity", "metric"], sort=True)["value"].mean().unstack(["entity", "metric"])
    wide = wide.sort_index().sort_index(axis=1)
    pairs = [(str(e), str(mt)) for e, mt in wide.columns]
    names = [f"{e}_{mt}" for e, mt in pairs]
    if aliases or len(set(names)) != len(names) or "time" in names:
        index = {e: i for i, e in enumerate(dict.fromkeys(e for e, _ in pairs))}
        names = [f"e{index[e]}_{mt.replace('_', '-')}" for e, mt in pairs]
    values = wide.to_numpy(dtype="float64", copy=True)
    values[~np.isfinite(values)] = np.nan
    frame = pd.DataFrame(values, columns=names).ffill().fillna(0.0)
    frame.insert(0, "time", wide.index.to_numpy(dtype="float64"))
    return frame, {n: e for n, (e, _) in zip(names, pairs)}


def _window(w: Any) -> tuple[float, float] | None:
    if isinstance(w, Sequence) and not isinstance(w, str) and len(w) == 2:
        try:
            return float(w[0]), float(w[1])
        except (TypeError, ValueError):
            return None
    return None


def _split_frame(frame: pd.DataFrame, case: Case) -> tuple[pd.DataFrame, float]:
    """Return ``(frame, inject_time)`` laid out as RCAEval expects: normal rows, then abnormal
    rows from ``inject_time`` on.

    Normal and abnormal rows are those of ``case.meta["normal_window"]`` and
    ``meta["anomalous_window"]`` (inclusive ``[start, end]``, as the loaders of RCD, PetShop
    and RCAEval give them) where the case has them, else the rows before and from
    ``detected_at``. A baseline recorded apart (days before, or after, the fault) is re-timed
    to end one sampling step before the abnormal rows, since RCAEval splits on time only.

    Raises:
        _Abstain: when there is no detection time or one side has no row.
    """
    times = frame["time"]
    aw, nw = _window(case.meta.get("anomalous_window")), _window(case.meta.get("normal_window"))
    if aw is not None:
        abnormal = times.between(aw[0], aw[1]).to_numpy()
        normal = (times.between(nw[0], nw[1]).to_numpy() if nw is not None else (times < aw[0]).to_numpy()) & ~abnormal
    elif case.detected_at is not None:
        normal = (times < case.detected_at).to_numpy()
        abnormal = ~normal
    else:
        raise _Abstain("the case has no detection time to split normal from abnormal data")
    if not normal.any() or not abnormal.any():
        side = "normal" if not normal.any() else "abnormal"
        raise _Abstain(f"no {side} metric rows to compare")
    before, after = frame[normal], frame[abnormal]
    start = float(after["time"].iloc[0])
    steps = np.diff(after["time"].to_numpy())
    step = float(np.median(steps)) if steps.size else 1.0
    last = float(before["time"].iloc[-1])
    if last >= start or start - last > 2 * step:
        before = before.assign(time=start - step * np.arange(len(before), 0, -1, dtype="float64"))
    return pd.concat([before, after], ignore_index=True), start


def entity_of(column: str, entities: Sequence[str]) -> str | None:
    """Return the entity of an ``<entity>_<metric>`` column name, or ``None``.

    Entity names may contain ``_`` and ``-``, so the name is matched against the known
    *entities*: the longest entity ``e`` such that the column starts with ``e + "_"``.
    """
    best: str | None = None
    for e in entities:
        if column.startswith(f"{e}_") and (best is None or len(e) > len(best)):
            best = e
    return best


def ranks_to_entities(
    ranks: Sequence[str], columns: Mapping[str, str], entities: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Return ``(entity, column)`` pairs for RCAEval's ranked column names, best first, each
    entity once (at its best column).

    A column is mapped through *columns* (built with the frame), else by :func:`entity_of`
    against *entities*; names that map to no entity (e.g. ``time``) are skipped.
    """
    seen: dict[str, str] = {}
    for col in ranks:
        col = str(col)
        entity = columns.get(col) or entity_of(col, entities)
        if entity is not None and entity not in seen:
            seen[entity] = col
    return list(seen.items())


class _RcaevalRanker:
    """A published RCAEval method behind the :class:`aisre.rank.base.Ranker` seam."""

    name = ""
    label = ""
    _module = ""
    _attr = ""
    _aliases = False

    def __init__(self, *, length: int | None = None, seed: int = 0, dataset: str = _DATASET) -> None:
        """Build the adapter; *length* (minutes) keeps ``length*30`` rows each side of the
        detection time as RCAEval's ``--length`` does (``None``: the whole window); *seed* seeds
        NumPy's global generator around the call (CIRCA draws its SLI at random).

        Raises:
            UsageError: when the ``baselines`` extra is not installed, or *length* is not positive.
        """
        if length is not None and int(length) <= 0:
            raise UsageError(f"length must be a positive number of minutes, not {length!r}")
        self.length = None if length is None else int(length)
        self.seed = int(seed)
        self.dataset = str(dataset)
        _import_method(self._module, self._attr)  # fail now, with the install hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length}, seed={self.seed})"

    def rank(self, case: Case) -> Ranking:
        """Return RCAEval's ranking mapped to the case's entities, best first.

        Normal and abnormal rows are chosen by :func:`_split_frame`. Abstains (never guesses)
        when the case has no metrics, no way to split them, no rows on one side, or when the
        method raises; the reason names the cause.
        """
        start = time.perf_counter()
        try:
            hypotheses = self._rank(case)
        except _Abstain as why:
            return Ranking(self.name, abstained=True, reason=str(why), seconds=time.perf_counter() - start)
        return Ranking(self.name, hypotheses, seconds=time.perf_counter() - start)

    def _rank(self, case: Case) -> list[Hypothesis]:
        frame, columns = to_rcaeval_frame(case, aliases=self._aliases)
        if not columns:
            raise _Abstain("the case has no metrics")
        frame, t = _split_frame(frame, case)
        normal = int((frame["time"] < t).sum())
        if self.length is not None:
            half = self.length * 60 // 2
            frame = frame.iloc[max(0, normal - half) : normal + half].reset_index(drop=True)
        func = _import_method(self._module, self._attr)
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            out = func(frame, t, dataset=self.dataset, anomalies=None, dk_select_useful=False, sli=None, verbose=False)
        except Exception as exc:  # the published code raises anything; that is a miss, said so
            raise _Abstain(f"{self.label} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            np.random.set_state(state)
        ranks = out.get("ranks") if isinstance(out, Mapping) else None
        ranks = [] if ranks is None else [str(r) for r in ranks]
        if not ranks:
            raise _Abstain(f"{self.label} returned no ranking")
        pairs = ranks_to_entities(ranks, columns, sorted(set(columns.values())))
        if not pairs:
            raise _Abstain(f"{self.label} ranked no column of the case")
        n = len(pairs)
        return [
            Hypothesis(
                entity=entity,
                score=float(n - i),
                evidence=[
                    Evidence(
                        signal=f"metric:{column}",
                        entity=entity,
                        text=f"{self.label} ranks {column} #{i + 1}",
                    )
                ],
            )
            for i, (entity, column) in enumerate(pairs)
        ]


class _Abstain(Exception):
    """Internal: carries an abstention reason out of ``_rank``."""


class BaroRanker(_RcaevalRanker):
    """BARO (RCAEval ``RCAEval.e2e.baro.baro``): robust z-score (median/IQR of the normal rows)
    of every metric, scored by its maximum over the abnormal rows."""

    name = "baro"
    label = "BARO"
    _module = "RCAEval.e2e.baro"
    _attr = "baro"


class RcaevalNSigmaRanker(_RcaevalRanker):
    """N-Sigma as published in RCAEval (``RCAEval.e2e.nsigma``): BARO with mean/std scaling."""

    name = "rcaeval-nsigma"
    label = "RCAEval N-Sigma"
    _module = "RCAEval.e2e"
    _attr = "nsigma"


class CircaRanker(_RcaevalRanker):
    """CIRCA (RCAEval ``RCAEval.e2e.circa.circa``): a PC graph over the metrics, then
    regression-based hypothesis testing scored 300 s after the detection time."""

    name = "circa"
    label = "CIRCA"
    _module = "RCAEval.e2e.circa"
    _attr = "circa"
    _aliases = True
