"""The root-cause accuracy benchmark: every method on every case, scored at service level.

:func:`run_benchmark` loads the sources (dataset paths through the loader registry, or Case
objects), hands each method a copy of each case without its ground truth (detection time
shifted by ``delay``), times ``rank()``, and scores the ranking against ``truth.service``:

- a ranked entity counts as the service it belongs to: itself, the service ``meta["pods"]``
  assigns it to, or the service its topology node names (an ``instance`` node's ``service``
  attribute or its ``runs_on`` edge to a service);
- AC@k is the share of cases whose true service is among the first k distinct services;
  Avg@5 is the mean of AC@1..AC@5;
- an abstention is a miss, counted in ``abstained``; a ranker that raises is a miss too and
  is listed in ``failures``; a case that fails to load is listed in ``failures`` only.

Rows group cases by (dataset, system, method). The JSON form (:meth:`BenchResult.to_dict`) is
the contract of DESIGN.md: ``{"config": ..., "rows": [...], "failures": [...]}``.
docs/benchmark.md states the method in full.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Topology, iter_case_folders, load_case, topology_from_spans
from aisre.detect import sampling_step
from aisre.errors import AisreError, DataError, SpecError, UsageError
from aisre.rank import get_ranker
from aisre.rank.base import Ranker

__all__ = [
    "BY_FAULT_KEYS",
    "DATASETS",
    "FAILURE_KEYS",
    "ROW_KEYS",
    "BenchResult",
    "compare",
    "load_result",
    "resolve_topology",
    "run_benchmark",
    "service_map",
]

DATASETS = ("rcaeval", "rcd", "nezha", "petshop", "simulator", "case")
"""Dataset names a row may carry (DESIGN.md)."""

ROW_KEYS = (
    "dataset", "system", "method", "topology", "delay", "n", "ac1", "ac3", "ac5", "avg5",
    "abstained", "median_seconds", "p95_seconds",
)  # fmt: skip
"""Keys of one row of the JSON contract, in order."""

BY_FAULT_KEYS = ("dataset", "system", "method", "fault", "n", "ac1")
"""Keys of one per-fault-kind row."""

FAILURE_KEYS = ("id", "method", "error", "dataset", "system")
"""Keys of one failure: the case id (or the source path), the method (``None`` for a load
failure), the one-line error, and the dataset and system where known."""

_KS = (1, 2, 3, 4, 5)

MethodSpec = str | Ranker
Source = str | Path | Case


# --------------------------------------------------------------------------- result


@dataclass
class BenchResult:
    """The outcome of :func:`run_benchmark`.

    ``rows`` and ``failures`` are the JSON contract; ``cases`` keeps one record per (case,
    method) for the views (confusion by fault kind, time per case): ``dataset, system,
    method, id, topology, truth, fault, predicted, predicted_fault, rank, abstained, failed,
    reason, seconds`` (``rank`` is the 1-based position of the true service among the ranked
    distinct services, ``None`` when absent).
    """

    config: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract: exactly ``config``, ``rows`` and ``failures``."""
        return {"config": dict(self.config), "rows": [dict(r) for r in self.rows], "failures": [dict(f) for f in self.failures]}

    def to_json(self, path: str | Path | None = None) -> str:
        """Return the contract as JSON text, and write it to *path* when given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    def frame(self) -> pd.DataFrame:
        """Return the rows as a DataFrame with the columns of :data:`ROW_KEYS`."""
        return pd.DataFrame(self.rows, columns=list(ROW_KEYS))

    def cases_frame(self) -> pd.DataFrame:
        """Return one row per (case, method) (see the class docstring)."""
        cols = [
            "dataset", "system", "method", "id", "topology", "truth", "fault", "predicted",
            "predicted_fault", "rank", "abstained", "failed", "reason", "seconds",
        ]  # fmt: skip
        return pd.DataFrame(self.cases, columns=cols)

    def by_fault(self) -> list[dict[str, Any]]:
        """Return AC@1 per fault kind: rows of :data:`BY_FAULT_KEYS`, sorted like ``rows``.

        Cases whose truth names no fault kind count under ``unknown``.
        """
        groups: dict[tuple[str, str, str, str], list[bool]] = {}
        for c in self.cases:
            key = (c["dataset"], c["system"], c["method"], c["fault"] or "unknown")
            groups.setdefault(key, []).append(_hit(c, 1))
        order = _method_order(self.config)
        out = [
            {"dataset": d, "system": s, "method": m, "fault": f, "n": len(h), "ac1": _ratio(sum(h), len(h))}
            for (d, s, m, f), h in groups.items()
        ]
        return sorted(out, key=lambda r: (r["dataset"], r["system"], order(r["method"]), r["fault"]))

    def table(self) -> str:
        """Return the rows as a fixed-width table for a terminal."""
        head = ("dataset", "system", "method", "topology", "delay", "n", "AC@1", "AC@3", "AC@5", "Avg@5", "abst", "med s", "p95 s")
        body = [
            (
                r["dataset"], r["system"], r["method"], _short(r["topology"]), f"{r['delay']:g}", str(r["n"]),
                f"{r['ac1']:.2f}", f"{r['ac3']:.2f}", f"{r['ac5']:.2f}", f"{r['avg5']:.2f}",
                str(r["abstained"]), _secs(r["median_seconds"]), _secs(r["p95_seconds"]),
            )
            for r in self.rows
        ]  # fmt: skip
        lines = _grid(head, body, right=set(range(4, 13)))
        if self.failures:
            lines.append(f"{len(self.failures)} failure(s):")
            lines.extend(f"  {f['id']} [{f['method'] or 'load'}] {f['error']}" for f in self.failures[:20])
            if len(self.failures) > 20:
                lines.append(f"  ... and {len(self.failures) - 20} more")
        return "\n".join(lines)

    def fault_table(self) -> str:
        """Return AC@1 per fault kind as a fixed-width table."""
        rows = [(r["dataset"], r["system"], r["method"], r["fault"], str(r["n"]), f"{r['ac1']:.2f}") for r in self.by_fault()]
        return "\n".join(_grid(("dataset", "system", "method", "fault", "n", "AC@1"), rows, right={4, 5}))

    def outcomes(self) -> pd.DataFrame:
        """Return, per (method, fault kind), how many cases were: ``top1``, ``top5`` (2nd-5th),
        ``missed`` (ranked lower or absent), ``abstained``, ``failed``."""
        cf = self.cases_frame()
        kinds = ["top1", "top5", "missed", "abstained", "failed"]
        if cf.empty:
            return pd.DataFrame(columns=["method", "fault", *kinds])
        rank = cf["rank"].astype("float64")
        outcome = np.select(
            [cf["failed"].astype(bool), cf["abstained"].astype(bool), rank == 1, rank <= 5],
            ["failed", "abstained", "top1", "top5"],
            "missed",
        )
        table = pd.crosstab([cf["method"], cf["fault"].fillna("unknown")], pd.Series(outcome, name="outcome"))
        return table.reindex(columns=kinds, fill_value=0).reset_index().rename_axis(columns=None)

    def figures(self) -> dict[str, Any]:
        """Return plotly figures: ``accuracy`` (AC@1/3/5 and Avg@5 bars per method, one panel
        per dataset/system), ``confusion`` (true fault kind against outcome, per method) and
        ``time`` (seconds per case, per method)."""
        import plotly.express as px

        rows = self.frame()
        rows["data"] = rows["dataset"] + "/" + rows["system"]
        long = rows.melt(id_vars=["data", "method"], value_vars=["ac1", "ac3", "ac5", "avg5"], var_name="measure", value_name="share")
        acc = px.bar(long, x="measure", y="share", color="method", barmode="group", facet_col="data", facet_col_wrap=3, range_y=[0, 1], title="Accuracy per method")
        out = self.outcomes().melt(id_vars=["method", "fault"], var_name="outcome", value_name="cases")
        conf = px.density_heatmap(
            out, x="outcome", y="fault", z="cases", facet_col="method", histfunc="sum", text_auto=True,
            category_orders={"outcome": ["top1", "top5", "missed", "abstained", "failed"]},
            title="Outcome by true fault kind",
        )  # fmt: skip
        cf = self.cases_frame()
        cf["data"] = cf["dataset"] + "/" + cf["system"]
        secs = px.box(cf, x="method", y="seconds", color="data", points="all", title="Seconds per case (rank only)")
        return {"accuracy": acc, "confusion": conf, "time": secs}

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.frame().to_html(index=False, float_format=lambda x: f"{x:.3f}")


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _grid(head: Sequence[str], body: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in body]


def _ratio(a: float, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _hit(record: Mapping[str, Any], k: int) -> bool:
    rank = record["rank"]
    return not record["abstained"] and not record["failed"] and rank is not None and rank <= k


def _method_order(config: Mapping[str, Any]) -> Callable[[str], tuple[int, str]]:
    methods = list(config.get("methods", []))
    return lambda m: (methods.index(m) if m in methods else len(methods), m)


# --------------------------------------------------------------------------- mapping to services


def service_map(case: Case) -> dict[str, str]:
    """Return ``{entity: service}`` for the entities of *case* that belong to another service.

    Read from ``case.meta["pods"]`` (``{pod: service}`` or ``{service: [pods]}``) and from the
    topology (a node's ``service`` attribute; an ``instance`` node's ``runs_on`` edge to a
    service-level node). Entities not in the map are their own service.
    """
    out: dict[str, str] = {}
    pods = case.meta.get("pods") if isinstance(case.meta, Mapping) else None
    if isinstance(pods, Mapping):
        for key, value in pods.items():
            if isinstance(value, str):
                out[str(key)] = value
            elif isinstance(value, Iterable):
                out.update({str(p): str(key) for p in value})
    topo = case.topology
    if topo is not None:
        service_like = set(topo.services())
        for name, attrs in topo.graph.nodes(data=True):
            svc = attrs.get("service")
            if isinstance(svc, str) and svc and svc != name:
                out.setdefault(str(name), svc)
        for u, v, kind in topo.edges("runs_on"):
            if topo.node(u).get("kind") == "instance" and v in service_like:
                out.setdefault(u, v)
            elif topo.node(v).get("kind") == "instance" and u in service_like:
                out.setdefault(v, u)
    return out


def _services(entities: Iterable[str], mapping: Mapping[str, str]) -> list[str]:
    seen: dict[str, None] = {}
    for e in entities:
        seen.setdefault(mapping.get(e, e), None)
    return list(seen)


# --------------------------------------------------------------------------- topology option


def resolve_topology(spec: str | Path | Topology | None) -> tuple[Topology | None, str]:
    """Return ``(topology, label)`` for the ``--topology`` option.

    *spec* is a :class:`Topology`, a JSON node-link file, or anything the simulator's
    ``load_topology`` reads (``online-boutique``, ``sock-shop``, ``train-ticket``, ``random:N``,
    a YAML/JSON spec file); the label
    is the file's path or the model's name, ``none`` for ``None``.

    Raises:
        SpecError: for a name that is neither a file nor a simulator model, or a malformed file.
        UsageError: when no simulator models are available.
    """
    if spec is None:
        return None, "none"
    if isinstance(spec, Topology):
        return spec, spec.source
    path = Path(spec)
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SpecError(f"topology file is not valid JSON: {exc}", path=str(path)) from exc
        if isinstance(data, Mapping) and "nodes" in data:
            topo = Topology.from_dict(data, path=str(path))
            topo.source = "file"
            return topo, str(path)
    return _simulator_topology(str(spec)), str(spec)


def _simulator_topology(spec: str) -> Topology:
    try:
        from aisre import simulator
    except ImportError as exc:  # pragma: no cover - the simulator ships with aisre
        raise UsageError(f"cannot load topology {spec!r}: {exc}") from exc
    loader = getattr(simulator, "load_topology", None)
    if loader is None:
        raise UsageError(f"topology {spec!r} is not a JSON node-link file, and this aisre has no simulator models")
    model = loader(spec)
    if isinstance(model, Topology):
        topo = model
    elif callable(getattr(model, "to_topology", None)):
        topo = model.to_topology()
    else:
        raise UsageError(f"topology {spec!r} did not give a dependency graph")
    topo.source = "file"
    return topo


# --------------------------------------------------------------------------- loading


@dataclass
class _Item:
    """One case ready to rank: the copy rankers see, its truth, and how to report it."""

    case: Case
    truth_service: str
    fault: str | None
    dataset: str
    system: str
    topology: str
    services: dict[str, str]


def _dataset_name(case: Case, loader: str | None) -> str:
    name = case.meta.get("dataset") if isinstance(case.meta, Mapping) else None
    if isinstance(name, str) and name:
        return name
    if loader and loader != "case":
        return loader
    src = str(case.source or "").split(":", 1)[0].strip().lower()
    return src if src in DATASETS else "case"


def _iter_source(source: Source | Iterable[Case]) -> Iterator[tuple[Case | None, str | None, dict[str, Any] | None]]:
    """Yield ``(case, loader_name, None)`` or ``(None, None, failure)`` for one source."""
    if isinstance(source, Case):
        yield source, None, None
        return
    if not isinstance(source, (str, Path)):
        if isinstance(source, Iterable):
            for c in source:
                if not isinstance(c, Case):
                    raise UsageError(f"a benchmark source must be a path or a Case, not {type(c).__name__}")
                yield c, None, None
            return
        raise UsageError(f"a benchmark source must be a path or a Case, not {type(source).__name__}")
    from aisre import datasets  # layer 2: the bench may import sources

    path = Path(source)
    try:
        loader = datasets.detect(path)
    except AisreError as exc:
        yield None, None, _failure(str(path), None, exc)
        return
    if loader.name == "case":
        # one folder at a time, so a broken folder is one failure, not the end of the source
        for folder in iter_case_folders(path):
            try:
                yield load_case(folder), "case", None
            except AisreError as exc:
                yield None, None, _failure(str(folder), None, exc)
        return
    load_failures: list[Any] = []
    try:
        for c in _load_cases(path, loader.name, load_failures):
            yield c, loader.name, None
    except Exception as exc:  # a loader bug must not stop the other sources
        yield None, None, _failure(str(path), None, exc, loader.name)
    for f in load_failures:
        where = getattr(f, "path", None) or str(path)
        yield None, None, {"id": str(where), "method": None, "error": str(getattr(f, "message", f)), "dataset": loader.name, "system": None}


def _load_cases(path: Path, fmt: str, failures: list[Any]) -> Iterator[Case]:
    """Yield the cases of *path* through the dataset cache (``cached_load``), collecting the
    cases that fail to load in *failures* instead of stopping."""
    try:
        from aisre.datasets.cache import cached_load
    except ImportError:  # an aisre without the cache: the registry, all or nothing
        from aisre import datasets

        yield from datasets.load(path, fmt)
        return
    yield from cached_load(path, fmt, failures=failures)


def _prepare(
    case: Case, loader: str | None, delay: float, topo: Topology | None, topo_label: str
) -> _Item:
    """Return the copy rankers see (no truth, detection time + delay, a topology where one can be
    had) and the reporting fields.

    Raises:
        DataError: when the case has no ground truth.
    """
    if case.truth is None or not case.truth.service:
        raise DataError("the case has no ground truth to score against", field="truth")
    own = case.topology
    if own is not None:
        graph, label = own, own.source or "given"
    elif topo is not None:
        graph, label = topo, topo_label
    else:
        graph = topology_from_spans(case.spans) if not case.spans.empty else None
        label = "spans" if graph is not None else "none"
    detected = None if case.detected_at is None else case.detected_at + float(delay)
    meta = copy.deepcopy(case.meta)
    if delay:
        _shift_windows(meta, case.metrics["time"].to_numpy(dtype="float64"), float(delay))
    seen = dataclasses.replace(case, truth=None, detected_at=detected, topology=graph, meta=meta)
    return _Item(
        case=seen,
        truth_service=str(case.truth.service),
        fault=case.truth.fault,
        dataset=_dataset_name(case, loader),
        system=str(case.system or "-"),
        topology=label,
        services=service_map(seen),
    )


def _is_window(w: Any) -> bool:
    return isinstance(w, Sequence) and not isinstance(w, str) and len(w) == 2 and all(isinstance(x, (int, float)) for x in w)


def _shift_windows(meta: dict[str, Any], times: np.ndarray, delay: float) -> None:
    """Move the start of ``meta["anomalous_window"]`` by *delay* seconds, as a late (or early)
    alert would, in place.

    The new start is the row whose sampling period holds the shifted time (so a 60-s delay on
    300-s rows keeps the trigger row). Where the normal window runs right up to the anomalous
    one (no row between them), the rows a late alert leaves out become normal, and an early
    alert takes rows from the normal window; a separately recorded baseline is left alone.
    """
    aw, nw = meta.get("anomalous_window"), meta.get("normal_window")
    if not _is_window(aw) or times.size == 0:
        return
    times = np.unique(times)
    a0, a1 = float(aw[0]), float(aw[1])
    # contiguous: the normal rows run into the anomalous ones (no row and no more than two
    # sampling periods between them); RCD's baseline, recorded days apart, is not
    step = sampling_step(times)
    contiguous = (_is_window(nw) and float(nw[1]) < a0 <= float(nw[1]) + 2.0 * step
                  and not np.any((times > float(nw[1])) & (times < a0)))
    floor = float(nw[0]) if contiguous else a0
    pool = times[(times >= floor) & (times <= a1)]
    if pool.size == 0:
        return
    i = int(np.searchsorted(pool, a0 + delay, side="right")) - 1
    start = float(pool[min(max(i, 0), pool.size - 1)])
    meta["anomalous_window"] = [start, a1]
    if contiguous:
        before = pool[pool < start]
        meta["normal_window"] = [float(nw[0]), float(before[-1])] if before.size and before[-1] >= float(nw[0]) else None


def _failure(case_id: str, method: str | None, exc: BaseException, dataset: str | None = None, system: str | None = None) -> dict[str, Any]:
    msg = str(exc) if isinstance(exc, AisreError) else f"{type(exc).__name__}: {exc}"
    return {"id": case_id, "method": method, "error": " ".join(msg.split()), "dataset": dataset, "system": system}


# --------------------------------------------------------------------------- ranking (runs on workers)

_RANKERS: dict[str, Ranker] = {}


def _ranker(spec: MethodSpec) -> Ranker:
    """Return the ranker for *spec*; names are built once per process (a worker's cache)."""
    if not isinstance(spec, str):
        return spec
    if spec not in _RANKERS:
        _RANKERS[spec] = get_ranker(spec)
    return _RANKERS[spec]


def _method_name(spec: MethodSpec) -> str:
    return spec if isinstance(spec, str) else str(getattr(spec, "name", type(spec).__name__))


def _rank_one(case: Case, spec: MethodSpec) -> dict[str, Any]:
    """Rank *case* with *spec* and return what scoring needs; never raises.

    Time is measured around ``rank()`` only (a ranker's detection is inside it).
    """
    ranker = _ranker(spec)
    start = time.perf_counter()
    try:
        ranking = ranker.rank(case)
    except Exception as exc:  # a failing ranker is a reported miss, never the end of the run
        return {"error": _failure(case.id, _method_name(spec), exc)["error"], "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    first = ranking.hypotheses[0] if ranking.hypotheses else None
    return {
        "error": None,
        "seconds": seconds,
        "abstained": bool(ranking.abstained),
        "reason": ranking.reason,
        "entities": ranking.entities(),
        "fault": None if first is None else first.fault,
    }


# --------------------------------------------------------------------------- the harness


def run_benchmark(
    sources: Iterable[Source] | Source,
    methods: Sequence[MethodSpec] = ("aisre", "nsigma", "baro"),
    *,
    delay: float = 0.0,
    topology: str | Path | Topology | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool | None = None,
    limit: int | None = None,
) -> BenchResult:
    """Rank every case of *sources* with every method and return the scored :class:`BenchResult`.

    *sources* are dataset paths (loaded with the detected layout) or Case objects. *delay*
    shifts each case's detection time by that many seconds (a late alert). *topology* (a JSON
    node-link file or a built-in simulator model) is given to cases that have none. With
    ``workers > 1`` or a *scheduler* address the cases run on dask.distributed; the rows are
    the same as a serial run's. *progress* shows a tqdm bar on stderr (default: when stderr is
    a terminal). *limit* keeps at most that many cases per source (a quick run).

    Raises:
        UsageError: for an unknown method, an optional one whose extra is missing, or a bad
            option.
        SpecError: for a topology that is neither a node-link file nor a simulator model.
    """
    if isinstance(sources, (str, Path, Case)):
        sources = [sources]
    methods = list(methods)
    if not methods:
        raise UsageError("no method to benchmark")
    names = [_method_name(m) for m in methods]
    if len(set(names)) != len(names):
        raise UsageError(f"a method is named twice: {', '.join(names)}")
    # built here, before any work: an unknown or uninstalled method is a usage error
    built = [get_ranker(m) if isinstance(m, str) else m for m in methods]
    if not math.isfinite(float(delay)):
        raise UsageError(f"delay must be a finite number of seconds, not {delay!r}")
    if limit is not None and int(limit) < 1:
        raise UsageError(f"limit must be at least 1, not {limit!r}")
    if int(workers) < 1:
        raise UsageError(f"workers must be at least 1, not {workers!r}")
    topo, topo_label = resolve_topology(topology)
    sources = list(sources)
    config: dict[str, Any] = {
        "methods": names,
        "delay": float(delay),
        "topology": topo_label,
        "workers": int(workers),
        "scheduler": scheduler,
        "limit": limit,
        "sources": [str(s) if isinstance(s, (str, Path)) else getattr(s, "id", "<cases>") for s in sources],
        "python": platform.python_version(),
        "aisre": _version("aisre"),
        "rcaeval": _version("rcaeval"),
        "started": time.time(),
    }
    show = sys.stderr.isatty() if progress is None else bool(progress)
    items: list[_Item] = []
    failures: list[dict[str, Any]] = []

    def cases() -> Iterator[_Item]:
        for source in sources:
            taken = 0
            for case, loader, failure in _iter_source(source):
                if limit is not None and taken >= int(limit):
                    break
                if failure is not None:
                    failures.append(failure)
                    continue
                assert case is not None
                try:
                    item = _prepare(case, loader, float(delay), topo, topo_label)
                except AisreError as exc:
                    failures.append(_failure(case.id, None, exc, _dataset_name(case, loader), case.system or "-"))
                    continue
                items.append(item)
                taken += 1
                yield item

    if int(workers) > 1 or scheduler:
        outcomes = _run_dask(cases(), methods, int(workers), scheduler, show)
    else:
        outcomes = _run_serial(cases(), built, show)
    records = []
    for (index, m), out in sorted(outcomes.items()):
        item = items[index]
        records.append(_score(item, names[m], out))
        if out["error"] is not None:
            failures.append({"id": item.case.id, "method": names[m], "error": out["error"], "dataset": item.dataset, "system": item.system})
    order = _method_order(config)
    records.sort(key=lambda r: (r["dataset"], r["system"], r["id"], order(r["method"])))
    failures.sort(key=lambda f: (f["dataset"] or "", f["system"] or "", str(f["id"]), f["method"] or ""))
    config["finished"] = time.time()
    return BenchResult(config=config, rows=_rows(records, float(delay), order), failures=failures, cases=records)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _tqdm(show: bool, total: int | None = None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, file=sys.stderr, desc="benchmark", unit="run", leave=False)


def _run_serial(items: Iterator[_Item], rankers: list[Ranker], show: bool) -> dict[tuple[int, int], dict[str, Any]]:
    """Return ``{(case index, method index): outcome}``."""
    out: dict[tuple[int, int], dict[str, Any]] = {}
    with _tqdm(show) as bar:
        for index, item in enumerate(items):
            for m, ranker in enumerate(rankers):
                out[(index, m)] = _rank_one(item.case, ranker)
                bar.update(1)
    return out


def _run_dask(
    items: Iterator[_Item], methods: list[MethodSpec], workers: int, scheduler: str | None, show: bool
) -> dict[tuple[int, int], dict[str, Any]]:
    """Return ``{(case index, method index): outcome}``, ranked on dask.distributed workers.

    Methods go by name (each worker builds its ranker once) or as the pickled ranker object.
    """
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR,
            )  # fmt: skip
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot start or reach the dask scheduler {scheduler or ''}: {exc}") from exc
    out: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        futures = {}
        for index, item in enumerate(items):
            [case_future] = client.scatter([item.case], hash=False)
            for m, spec in enumerate(methods):
                fut = client.submit(_rank_one, case_future, spec, pure=False)
                futures[fut] = (index, m)
        with _tqdm(show, total=len(futures)) as bar:
            for fut in as_completed(futures):
                try:
                    out[futures[fut]] = fut.result()
                except Exception as exc:  # a worker lost mid-task: that case is a reported miss
                    out[futures[fut]] = {"error": f"worker failed: {type(exc).__name__}: {exc}", "seconds": float("nan")}
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return out


def _score(item: _Item, method: str, out: Mapping[str, Any]) -> dict[str, Any]:
    failed = out["error"] is not None
    services = [] if failed else _services(out["entities"], item.services)
    rank = services.index(item.truth_service) + 1 if item.truth_service in services else None
    seconds = float(out["seconds"])
    return {
        "dataset": item.dataset,
        "system": item.system,
        "method": method,
        "id": item.case.id,
        "topology": item.topology,
        "truth": item.truth_service,
        "fault": item.fault,
        "predicted": services[0] if services else None,
        "predicted_fault": None if failed else out["fault"],
        "rank": rank,
        "abstained": False if failed else bool(out["abstained"]),
        "failed": failed,
        "reason": out["error"] if failed else out["reason"],
        "seconds": seconds if math.isfinite(seconds) else None,
    }


def _rows(records: list[dict[str, Any]], delay: float, order: Callable[[str], Any]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["system"], r["method"]), []).append(r)
    rows = []
    for (dataset, system, method), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], order(kv[0][2]))):
        n = len(rs)
        ac = {k: _ratio(sum(_hit(r, k) for r in rs), n) for k in _KS}
        secs = np.array([r["seconds"] for r in rs if r["seconds"] is not None], dtype=float)
        rows.append(
            {
                "dataset": dataset,
                "system": system,
                "method": method,
                "topology": ",".join(sorted({r["topology"] for r in rs})),
                "delay": delay,
                "n": n,
                "ac1": ac[1],
                "ac3": ac[3],
                "ac5": ac[5],
                "avg5": round(sum(ac.values()) / len(_KS), 4),
                "abstained": sum(bool(r["abstained"]) for r in rs),
                "median_seconds": round(float(np.median(secs)), 6) if secs.size else None,
                "p95_seconds": round(float(np.percentile(secs, 95)), 6) if secs.size else None,
            }
        )
    return rows


# --------------------------------------------------------------------------- regression check


def load_result(path: str | Path) -> dict[str, Any]:
    """Return a benchmark JSON document read from *path*.

    Raises:
        DataError: when the file is missing, not JSON, or lacks ``rows``.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise DataError("no such baseline file", path=p) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"baseline is not valid JSON: {exc}", path=p) from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rows"), list):
        raise DataError("baseline lacks a 'rows' list", path=p, field="rows")
    return dict(doc)


def compare(
    result: BenchResult | Mapping[str, Any],
    baseline: BenchResult | Mapping[str, Any] | str | Path,
    tolerance: float = 0.05,
) -> list[str]:
    """Return one line per regression of *result* against *baseline* (empty: none).

    Rows match on (dataset, system, method, topology, delay). A regression is a baseline row
    missing from the result, or an AC@1, AC@3, AC@5 or Avg@5 lower than the baseline's by more
    than *tolerance* (absolute; the noise allowed).

    Raises:
        DataError: for a baseline file that cannot be read.
    """
    cur = result.to_dict() if isinstance(result, BenchResult) else dict(result)
    if isinstance(baseline, BenchResult):
        base = baseline.to_dict()
    elif isinstance(baseline, (str, Path)):
        base = load_result(baseline)
    else:
        base = dict(baseline)

    def key(r: Mapping[str, Any]) -> tuple[Any, ...]:
        return (r.get("dataset"), r.get("system"), r.get("method"), r.get("topology"), float(r.get("delay") or 0.0))

    now = {key(r): r for r in cur.get("rows", [])}
    out = []
    for b in base.get("rows", []):
        k = key(b)
        label = f"{k[0]}/{k[1]} {k[2]} (topology {k[3]}, delay {k[4]:g})"
        r = now.get(k)
        if r is None:
            out.append(f"{label}: missing from this run")
            continue
        for metric in ("ac1", "ac3", "ac5", "avg5"):
            was, is_ = float(b.get(metric, 0.0)), float(r.get(metric, 0.0))
            if was - is_ > tolerance + 1e-9:
                out.append(f"{label}: {metric} {was:.3f} -> {is_:.3f} ({is_ - was:+.3f})")
    return out
