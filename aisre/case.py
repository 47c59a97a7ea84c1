"""The shared model: every source produces :class:`Case` objects, every analysis consumes them.

Times are float unix seconds, UTC, everywhere; loaders convert on the way in and nothing
downstream converts again. Tables are pandas DataFrames with fixed columns (see the
``*_COLUMNS`` constants); a missing table is an empty frame with those columns, never ``None``.
Text columns hold strings, as plain or categorical dtype (a loaded Case folder gives
categoricals for the metrics' entity and metric); compare values, never dtypes.

A Case saves as a folder: ``manifest.json`` (schema ``aisre.case/1``) plus one Parquet file per
table and JSON for alerts, changes and the topology (node-link). See :func:`save_case` and
:func:`load_case`. The dataset cache saves many cases with one :class:`TablePack`: their
manifests (schema ``aisre.case/2``) name row ranges in the pack's files, where a run of rows that
several cases share is stored once; :func:`load_cases` reads such folders together.

The tables' column specs live in :mod:`aisre.case_tables` and table packs in
:mod:`aisre.case_pack`; this module re-exports their public names, so ``from aisre.case import
...`` is the one place to import the model from.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from aisre.case_pack import TablePack, _PackFile
from aisre.case_tables import (
    _LABEL_COLUMNS,
    _TABLES,
    EVENT_COLUMNS,
    LOG_COLUMNS,
    METRIC_COLUMNS,
    SPAN_COLUMNS,
    _conform,
    empty_table,
)
from aisre.errors import DataError, SchemaError, SpecError

__all__ = [
    "ALERT_STATUSES",
    "CASE_SCHEMA",
    "DECISIONS",
    "EDGE_KINDS",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "FAULT_KINDS",
    "LOG_COLUMNS",
    "METRIC_COLUMNS",
    "NODE_KINDS",
    "PACKED_SCHEMA",
    "SPAN_COLUMNS",
    "SUPPORTED_SCHEMAS",
    "TIERS",
    "Action",
    "Alert",
    "Case",
    "Change",
    "Decision",
    "Evidence",
    "Hypothesis",
    "Outcome",
    "Plan",
    "Ranking",
    "Step",
    "TablePack",
    "Topology",
    "Truth",
    "empty_table",
    "entities_of",
    "iter_case_folders",
    "load_case",
    "load_cases",
    "save_case",
    "topology_from_spans",
]

CASE_SCHEMA = "aisre.case/1"
"""The schema a Case folder is written with."""

PACKED_SCHEMA = "aisre.case/2"
"""The schema of a Case folder whose tables live in a :class:`TablePack` beside it (the dataset
cache writes these); an aisre that reads only ``aisre.case/1`` refuses them instead of finding
no tables."""

SUPPORTED_SCHEMAS = (CASE_SCHEMA, PACKED_SCHEMA)
"""Schemas :func:`load_case` reads."""

FAULT_KINDS = (
    "cpu", "mem", "disk", "delay", "loss", "socket",
    "crash", "error", "deploy", "config", "pool", "neighbour",
)  # fmt: skip
"""One vocabulary of fault kinds everywhere; the first six as RCAEval names them."""

NODE_KINDS = ("service", "instance", "host", "database", "cache", "queue", "endpoint")
"""Kinds of node in a :class:`Topology`."""

EDGE_KINDS = ("calls", "runs_on", "reads", "writes", "publishes")
"""Kinds of edge in a :class:`Topology`; ``calls`` points from caller to callee."""

TIERS = ("critical", "standard", "best-effort")
"""Service tiers, most important first."""

EVENT_KINDS = ("deploy", "config", "k8s", "scale", "remediation", "other")
"""Kinds of row in the events table."""

ALERT_STATUSES = ("firing", "resolved")
"""Statuses an :class:`Alert` may have."""

DECISIONS = ("allow", "deny", "needs_approval")
"""What policy may say of a remediation step."""


# --------------------------------------------------------------------------- topology


class Topology:
    """A typed dependency graph over networkx.

    Nodes carry ``kind`` (one of :data:`NODE_KINDS`), ``tier``, ``replicas`` and ``owner``;
    edges carry ``kind`` (one of :data:`EDGE_KINDS`). A pair of nodes may be joined by several
    kinds of edge (a service both ``calls`` and ``reads`` a database), so the graph is a
    ``MultiDiGraph`` keyed by edge kind. ``source`` says where the graph came from: given,
    spans, file or simulator.
    """

    def __init__(self, source: str = "given") -> None:
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()
        self.source = source

    # building
    def add_node(
        self,
        name: str,
        kind: str = "service",
        *,
        tier: str = "standard",
        replicas: int = 1,
        owner: str | None = None,
        **attrs: Any,
    ) -> None:
        """Add or update node *name*.

        Raises:
            SpecError: for an unknown kind or tier, an empty name or fewer than 0 replicas.
        """
        if not isinstance(name, str) or not name:
            raise SpecError("a node needs a non-empty name", field="name")
        if kind not in NODE_KINDS:
            raise SpecError(f"node {name!r} has unknown kind {kind!r}; known: {', '.join(NODE_KINDS)}", field="kind")
        if tier not in TIERS:
            raise SpecError(f"node {name!r} has unknown tier {tier!r}; known: {', '.join(TIERS)}", field="tier")
        if int(replicas) < 0:
            raise SpecError(f"node {name!r} has negative replicas {replicas}", field="replicas")
        self.graph.add_node(name, kind=kind, tier=tier, replicas=int(replicas), owner=owner, **attrs)

    def add_edge(self, source: str, target: str, kind: str = "calls", **attrs: Any) -> None:
        """Add an edge of *kind*; unknown end points are added as services.

        Raises:
            SpecError: for an unknown edge kind or a self-loop.
        """
        if kind not in EDGE_KINDS:
            raise SpecError(f"edge {source}->{target} has unknown kind {kind!r}; known: {', '.join(EDGE_KINDS)}", field="kind")
        if source == target:
            raise SpecError(f"edge {source}->{target} is a self-loop", field="edge")
        for node in (source, target):
            if node not in self.graph:
                self.add_node(node)
        self.graph.add_edge(source, target, key=kind, kind=kind, **attrs)

    # reading
    def __contains__(self, node: object) -> bool:
        return node in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topology) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Topology(source={self.source!r}, nodes={len(self)}, edges={self.graph.number_of_edges()})"

    def nodes(self, kind: str | None = None) -> list[str]:
        """Return node names, of one *kind* where given, in insertion order."""
        return [n for n, d in self.graph.nodes(data=True) if kind is None or d.get("kind") == kind]

    def node(self, name: str) -> dict[str, Any]:
        """Return the attributes of node *name*.

        Raises:
            KeyError: when the node is not in the graph.
        """
        return dict(self.graph.nodes[name])

    def edges(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        """Return ``(source, target, kind)`` triples, of one *kind* where given."""
        return [(u, v, k) for u, v, k in self.graph.edges(keys=True) if kind is None or k == kind]

    def services(self) -> list[str]:
        """Return the nodes that can be a root cause at service level (not hosts or endpoints)."""
        return [n for n, d in self.graph.nodes(data=True) if d.get("kind") in ("service", "database", "cache", "queue")]

    def call_graph(self) -> nx.DiGraph:
        """Return a plain DiGraph of the dependency edges (calls, reads, writes, publishes)."""
        g = nx.DiGraph()
        g.add_nodes_from(self.graph.nodes(data=True))
        g.add_edges_from((u, v) for u, v, k in self.graph.edges(keys=True) if k != "runs_on")
        return g

    def callers(self, node: str) -> list[str]:
        """Return the nodes that depend on *node* directly."""
        return sorted(self.call_graph().predecessors(node)) if node in self.graph else []

    def callees(self, node: str) -> list[str]:
        """Return the nodes *node* depends on directly."""
        return sorted(self.call_graph().successors(node)) if node in self.graph else []

    # serialising
    def to_dict(self) -> dict[str, Any]:
        """Return the node-link form written to ``topology.json``."""
        return {
            "source": self.source,
            "nodes": [{"id": n, **d} for n, d in self.graph.nodes(data=True)],
            "links": [{"source": u, "target": v, **d} for u, v, d in self.graph.edges(data=True)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str | None = None) -> Topology:
        """Build a topology from its node-link form.

        Raises:
            SpecError: for a malformed document, naming the field.
        """
        if not isinstance(data, Mapping):
            raise SpecError("a topology must be a JSON object", path=path)
        topo = cls(source=str(data.get("source", "file")))
        nodes = data.get("nodes", [])
        links = data.get("links", data.get("edges", []))
        if not isinstance(nodes, list) or not isinstance(links, list):
            raise SpecError("'nodes' and 'links' must be lists", field="nodes", path=path)
        for item in nodes:
            if not isinstance(item, Mapping) or "id" not in item:
                raise SpecError("every node needs an 'id'", field="nodes", path=path)
            attrs = {k: v for k, v in item.items() if k != "id"}
            topo.add_node(str(item["id"]), **attrs)
        for item in links:
            if not isinstance(item, Mapping) or "source" not in item or "target" not in item:
                raise SpecError("every link needs 'source' and 'target'", field="links", path=path)
            attrs = {k: v for k, v in item.items() if k not in ("source", "target", "key")}
            topo.add_edge(str(item["source"]), str(item["target"]), **attrs)
        return topo


# --------------------------------------------------------------------------- records


def _record_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


@dataclass
class Alert:
    """One alert as Alertmanager sends it, with times converted to unix seconds."""

    fingerprint: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    status: str = "firing"
    starts_at: float = 0.0
    ends_at: float | None = None
    service: str | None = None
    severity: str = "warning"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


@dataclass
class Change:
    """A change to a service: a deploy, a config push, a merged pull request."""

    id: str
    service: str | None = None
    time: float = 0.0
    author: str | None = None
    revision: str | None = None
    files: list[str] = field(default_factory=list)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


@dataclass
class Truth:
    """The known root cause of a case: service, fault kind (FAULT_KINDS) and inject time.

    ``meta`` keeps the source's own names (``{"fault": "cpu_contention"}``).
    """

    service: str
    fault: str | None = None
    inject_time: float | None = None
    entity: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


@dataclass
class Evidence:
    """One observation behind a hypothesis: a signal that moved, where and when."""

    signal: str
    entity: str
    onset: float | None = None
    magnitude: float = 0.0
    edge: tuple[str, str] | None = None
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = _record_dict(self)
        d["edge"] = list(self.edge) if self.edge else None
        return d


@dataclass
class Hypothesis:
    """A candidate root cause: an entity, perhaps a fault kind, a score and its evidence."""

    entity: str
    fault: str | None = None
    score: float = 0.0
    confidence: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "entity": self.entity,
            "fault": self.fault,
            "score": _finite(self.score),
            "confidence": _finite(self.confidence),
            "evidence": [e.to_dict() for e in self.evidence],
        }


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


@dataclass
class Ranking:
    """What a ranker says: hypotheses best first, or an abstention with its reason."""

    method: str
    hypotheses: list[Hypothesis] = field(default_factory=list)
    abstained: bool = False
    reason: str = ""
    seconds: float = 0.0

    def entities(self) -> list[str]:
        """Return the ranked entity names, best first, each once."""
        seen: dict[str, None] = {}
        for h in self.hypotheses:
            seen.setdefault(h.entity, None)
        return list(seen)

    def top(self, k: int = 1) -> list[Hypothesis]:
        """Return the first *k* hypotheses."""
        return self.hypotheses[:k]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "method": self.method,
            "abstained": self.abstained,
            "reason": self.reason,
            "seconds": self.seconds,
            "hypotheses": [h.to_dict() for h in self.hypotheses],
        }

    def _rows(self, k: int) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for i, h in enumerate(self.hypotheses[:k], 1):
            why = h.evidence[0].text if h.evidence else ""
            rows.append((str(i), h.entity, h.fault or "-", f"{h.confidence:.2f}", why))
        return rows

    def __str__(self) -> str:
        head = f"{self.method}: " + (f"abstained ({self.reason})" if self.abstained else f"{len(self.hypotheses)} hypotheses")
        lines = [head]
        for rank, entity, fault, conf, why in self._rows(10):
            lines.append(f"{rank:>3}  {entity:<28} {fault:<9} {conf:>5}  {why}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._rows(10)
        )
        note = f"<p>abstained: {html.escape(self.reason)}</p>" if self.abstained else ""
        return (
            f"<p><b>{html.escape(self.method)}</b></p>{note}<table><thead><tr><th>#</th><th>entity</th>"
            f"<th>fault</th><th>confidence</th><th>evidence</th></tr></thead><tbody>{cells}</tbody></table>"
        )


# --------------------------------------------------------------------------- remediation model


@dataclass
class Action:
    """A remediation the catalogue offers: what it does to which target, and how to undo it."""

    name: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    inverse: str | None = None
    reversible: bool = True
    blast_radius: int = 0
    expected_effect: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


@dataclass
class Decision:
    """What policy said of a step: allow, deny or needs_approval, with the deciding policies."""

    decision: str
    policies: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise SpecError(f"unknown decision {self.decision!r}; known: {', '.join(DECISIONS)}", field="decision")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


@dataclass
class Step:
    """One step of a plan: an action, why it is proposed, and what policy said of it."""

    id: str
    action: Action
    rationale: str = ""
    hypothesis: str | None = None
    decision: Decision | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "id": self.id,
            "action": self.action.to_dict(),
            "rationale": self.rationale,
            "hypothesis": self.hypothesis,
            "decision": self.decision.to_dict() if self.decision else None,
        }


@dataclass
class Plan:
    """An ordered remediation plan for one case."""

    case_id: str
    steps: list[Step] = field(default_factory=list)
    dry_run: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"case_id": self.case_id, "dry_run": self.dry_run, "steps": [s.to_dict() for s in self.steps]}

    def __str__(self) -> str:
        lines = [f"plan for {self.case_id}" + (" (dry run)" if self.dry_run else "")]
        for s in self.steps:
            verdict = s.decision.decision if s.decision else "undecided"
            lines.append(f"  {s.id}  {s.action.name:<16} {s.action.target:<24} {verdict:<15} {s.rationale}")
        return "\n".join(lines)


@dataclass
class Outcome:
    """What happened when a step was carried out (or dry-run)."""

    step_id: str
    executed: bool
    ok: bool
    dry_run: bool = True
    message: str = ""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return _record_dict(self)


# --------------------------------------------------------------------------- the case


@dataclass
class Case:
    """One incident (or one benchmark case) with every signal aisre has for it.

    ``window`` is ``(start, end)`` in unix seconds; ``detected_at`` is when the incident was
    noticed (an alert fired, or the dataset's inject time), used by rankers to split normal
    from abnormal data. ``truth`` is the known root cause or ``None``.
    """

    id: str
    system: str = ""
    window: tuple[float, float] = (0.0, 0.0)
    detected_at: float | None = None
    topology: Topology | None = None
    metrics: pd.DataFrame = field(default_factory=lambda: empty_table("metrics"))
    logs: pd.DataFrame = field(default_factory=lambda: empty_table("logs"))
    spans: pd.DataFrame = field(default_factory=lambda: empty_table("spans"))
    events: pd.DataFrame = field(default_factory=lambda: empty_table("events"))
    alerts: list[Alert] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    truth: Truth | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise DataError("a case needs a non-empty id", field="id", value=self.id)
        for name in _TABLES:
            setattr(self, name, _conform(name, getattr(self, name)))
        start, end = (float(self.window[0]), float(self.window[1]))
        if end < start:
            raise DataError("window ends before it starts", field="window", value=(start, end))
        self.window = (start, end)
        if self.detected_at is not None:
            self.detected_at = float(self.detected_at)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={len(getattr(self, n))}" for n in _TABLES)
        return f"Case(id={self.id!r}, system={self.system!r}, {counts}, alerts={len(self.alerts)}, truth={self.truth})"

    def wide(self) -> pd.DataFrame:
        """Return the metrics pivoted to one column per ``entity:metric``, indexed by time.

        Duplicate (time, entity, metric) samples are averaged; columns are sorted by name.
        """
        m = self.metrics
        if m.empty:
            return pd.DataFrame(index=pd.Index([], name="time", dtype="float64"))
        key = m["entity"].astype(str) + ":" + m["metric"].astype(str)
        frame = pd.DataFrame({"time": m["time"].to_numpy(), "key": key.to_numpy(), "value": m["value"].to_numpy()})
        wide = frame.pivot_table(index="time", columns="key", values="value", aggfunc="mean", sort=True)
        wide.columns.name = None
        return wide

    def entities(self) -> list[str]:
        """Return every entity named in any table or in the topology, sorted."""
        names: set[str] = set()
        names.update(self.metrics["entity"].dropna().astype(str).unique())
        names.update(self.logs["entity"].dropna().astype(str).unique())
        names.update(self.spans["service"].dropna().astype(str).unique())
        if self.topology is not None:
            names.update(self.topology.services())
        return sorted(names)


# --------------------------------------------------------------------------- folders

_JSON_FILES = ("alerts.json", "changes.json", "topology.json")


def save_case(case: Case, path: str | Path, *, pack: TablePack | None = None) -> Path:
    """Write *case* as a folder at *path* (created if absent) and return the path.

    The folder holds ``manifest.json`` plus ``<table>.parquet`` for each table and
    ``alerts.json``, ``changes.json``, ``topology.json`` where present. Files are written to
    temporary names first and renamed, so an interrupted save never leaves a half-written file
    under a real name.

    With a *pack* (the dataset cache passes one) the rows of the tables go into the pack, which
    stores a run of rows that an earlier case already holds only once; the manifest (schema
    :data:`PACKED_SCHEMA`) lists the rows' ranges in it, and empty alerts and changes are not
    written. A table whose values do not fit the pack's column types is written in the folder.

    Raises:
        OSError: when the folder cannot be written.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    refs: dict[str, dict[str, Any]] = {}
    for name in _TABLES:
        frame = getattr(case, name)
        target = folder / f"{name}.parquet"
        if pack is not None:
            ref = pack.add(name, frame) if len(frame) else {}
            if ref is not None:
                if ref:
                    refs[name] = {"file": os.path.relpath(pack.file(name), folder), **ref}
                target.unlink(missing_ok=True)
                continue
        tmp = folder / f".{name}.parquet.tmp"
        _categorised(name, frame).to_parquet(tmp, index=False)
        tmp.replace(target)
        files.append(target.name)
    documents: dict[str, Any] = {
        "alerts.json": [a.to_dict() for a in case.alerts],
        "changes.json": [c.to_dict() for c in case.changes],
    }
    if case.topology is not None:
        documents["topology.json"] = case.topology.to_dict()
    for name in _JSON_FILES:
        if name not in documents or (pack is not None and not documents[name]):
            (folder / name).unlink(missing_ok=True)
            continue
        _write_json(folder / name, documents[name])
        files.append(name)
    manifest = {
        "schema": CASE_SCHEMA if pack is None else PACKED_SCHEMA,
        "id": case.id,
        "system": case.system,
        "window": list(case.window),
        "detected_at": case.detected_at,
        "truth": case.truth.to_dict() if case.truth else None,
        "meta": case.meta,
        "source": case.source,
        "files": files,
        "rows": {name: len(getattr(case, name)) for name in _TABLES}
        | {"alerts": len(case.alerts), "changes": len(case.changes)},
    }
    if pack is not None:
        manifest["tables"] = refs
    _write_json(folder / "manifest.json", manifest)
    return folder


def _categorised(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return *frame* with its label columns as categoricals (a shallow copy when any changes)."""
    todo = [c for c in _LABEL_COLUMNS[name] if c in frame and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not todo or frame.empty:
        return frame
    return frame.assign(**{c: frame[c].astype("category") for c in todo})


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default, allow_nan=False) + "\n")
    tmp.replace(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno})", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8 text", path=path) from exc
    except OSError as exc:
        raise DataError(f"unreadable: {exc.strerror or exc}", path=path) from exc


def _build(cls: type, data: Any, path: Path) -> Any:
    if not isinstance(data, Mapping):
        raise DataError(f"expected an object for {cls.__name__}", path=path, value=data)
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise DataError(f"bad {cls.__name__}: {exc}", path=path) from exc


def load_case(path: str | Path) -> Case:
    """Read a Case folder written by :func:`save_case` (with or without a pack).

    Raises:
        DataError: when the folder, its manifest, or a file it names is missing or malformed.
        SchemaError: when the manifest names an unknown or newer schema.
    """
    reader = _FolderReader()
    return reader.build(reader.open(Path(path)))


def load_cases(paths: Iterable[str | Path], *, check_first: bool = False) -> Iterator[Case]:
    """Yield the Case of each folder in *paths*, in order, reading what they share once.

    Folders that reference one table pack (a dataset cache entry) read each of its row groups
    once, and identical ``topology.json`` files are parsed once (every case still gets its own
    objects). With *check_first*, every manifest and the files they name are checked before the
    first case is yielded, so a damaged set of folders fails before any case is handed out.

    Raises:
        DataError: when a folder, its manifest, or a file it names is missing or malformed.
        SchemaError: when a manifest names an unknown or newer schema.
    """
    reader = _FolderReader()
    if check_first:
        opened = [reader.open(Path(p)) for p in paths]
        for item in opened:
            yield reader.build(item)
        return
    for p in paths:
        yield reader.build(reader.open(Path(p)))


@dataclass
class _Opened:
    """A Case folder whose manifest has been read and checked, and whose files have been found."""

    folder: Path
    manifest_path: Path
    manifest: Mapping[str, Any]
    rows: Mapping[str, Any]
    packed: dict[str, tuple[_PackFile, list[tuple[int, int]], dict[str, Any]]]


class _FolderReader:
    """Reads Case folders, keeping what several of them share: open packs and parsed topologies."""

    def __init__(self) -> None:
        self._packs: dict[str, _PackFile] = {}
        self._topologies: dict[bytes, bytes] = {}

    def open(self, folder: Path) -> _Opened:
        """Read and check the manifest of *folder*, and open the packs it names."""
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise DataError("not a Case folder: manifest.json is missing", path=folder)
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, Mapping):
            raise DataError("manifest must be a JSON object", path=manifest_path)
        schema = manifest.get("schema")
        if schema not in SUPPORTED_SCHEMAS:
            raise SchemaError(
                f"Case folder schema {schema!r} is not supported; this aisre reads {', '.join(SUPPORTED_SCHEMAS)}"
                " (a newer aisre may have written it)",
                path=manifest_path,
                field="schema",
            )
        rows = manifest.get("rows") if isinstance(manifest.get("rows"), Mapping) else {}
        packed: dict[str, tuple[_PackFile, list[tuple[int, int]], dict[str, Any]]] = {}
        if schema == PACKED_SCHEMA:
            tables = manifest.get("tables")
            if not isinstance(tables, Mapping) or not set(tables) <= set(_TABLES):
                raise DataError("'tables' must map table names to packed rows", path=manifest_path, field="tables")
            for name, ref in tables.items():
                if not isinstance(ref, Mapping) or not isinstance(ref.get("file"), str) or os.path.isabs(ref["file"]):
                    raise DataError(f"table {name} needs a relative 'file'", path=manifest_path, field="tables")
                pack = self._pack(os.path.normpath(os.path.join(folder, ref["file"])), name)
                packed[name] = (pack, *pack.check(ref, manifest_path))
        return _Opened(folder, manifest_path, manifest, rows, packed)

    def _pack(self, path: str, name: str) -> _PackFile:
        pack = self._packs.get(path)
        if pack is None:
            pack = self._packs[path] = _PackFile(Path(path), name)
        elif pack.name != name:
            raise DataError(f"holds the {pack.name} table, not {name}", path=path)
        return pack

    def build(self, item: _Opened) -> Case:
        """Return the Case of an opened folder."""
        folder, manifest, rows = item.folder, item.manifest, item.rows
        tables: dict[str, pd.DataFrame] = {}
        for name in _TABLES:
            if name in item.packed:
                pack, ranges, extra = item.packed[name]
                tables[name] = pack.take(ranges, **extra)
                continue
            file = folder / f"{name}.parquet"
            if rows.get(name) == 0 or not file.exists():
                continue  # the manifest says it is empty: skipping the read is most of a fast reload
            try:
                # One thread and a memory map: these files are small, and thread start-up costs more
                # than it saves on them.
                tables[name] = pd.read_parquet(file, use_threads=False, memory_map=True)
            except Exception as exc:  # pyarrow raises several unrelated types on a bad file
                raise DataError(f"unreadable Parquet: {exc}", path=file) from exc
        alerts = [] if rows.get("alerts") == 0 else [_build(Alert, a, folder / "alerts.json") for a in _list(folder / "alerts.json")]
        changes = [] if rows.get("changes") == 0 else [_build(Change, c, folder / "changes.json") for c in _list(folder / "changes.json")]
        topology = self._topology(folder / "topology.json")
        truth = manifest.get("truth")
        window = manifest.get("window") or (0.0, 0.0)
        manifest_path = item.manifest_path
        if not isinstance(window, Sequence) or len(window) != 2:
            raise DataError("window must be [start, end]", path=manifest_path, field="window", value=window)
        try:
            fields: dict[str, Any] = {
                "id": str(manifest.get("id") or folder.name),
                "system": str(manifest.get("system", "")),
                "topology": topology,
                "alerts": alerts,
                "changes": changes,
                "truth": _build(Truth, truth, manifest_path) if truth else None,
                "meta": dict(manifest.get("meta") or {}),
                "source": str(manifest.get("source", "")),
            }
            window = (float(window[0]), float(window[1]))
            detected = manifest.get("detected_at")
            if not item.packed:
                return Case(window=window, detected_at=detected, **fields, **tables)
            # A packed folder's tables come from the pack's fixed column types, so they conform as
            # they are: Case's checks of every table (which cost more than building a small case)
            # run only on the tables the folder holds itself. The cheap checks stay.
            if window[1] < window[0]:
                raise DataError("window ends before it starts", path=manifest_path, field="window", value=window)
            for name in _TABLES:
                if name not in tables:
                    tables[name] = empty_table(name)
                elif name not in item.packed:
                    tables[name] = _conform(name, tables[name])
            return _assemble(**fields, window=window, detected_at=None if detected is None else float(detected), **tables)
        except (TypeError, ValueError) as exc:
            raise DataError(f"bad manifest: {exc}", path=manifest_path) from exc

    def _topology(self, path: Path) -> Topology | None:
        """Return a fresh Topology read from *path*, or None when there is no such file.

        Identical files (every case of a scenario carries its graph) are parsed and checked once;
        each case then gets its own deep copy, unpickled from memory, which is several times
        faster than building the graph again.
        """
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataError(f"unreadable: {exc.strerror or exc}", path=path) from exc
        blob = self._topologies.get(text)
        if blob is None:
            try:
                doc = json.loads(text)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"not valid JSON: {exc}", path=path) from exc
            topo = Topology.from_dict(doc, path=str(path))
            blob = self._topologies[text] = pickle.dumps(topo, protocol=pickle.HIGHEST_PROTOCOL)
            return topo
        return pickle.loads(blob)  # our own bytes from this process, never a file: safe to unpickle


_CASE_FIELDS = tuple(f.name for f in dataclasses.fields(Case))


def _assemble(**fields: Any) -> Case:
    """Return a Case from fields that already satisfy its checks (see ``Case.__post_init__``)."""
    if set(fields) != set(_CASE_FIELDS):
        raise TypeError(f"a Case needs exactly {_CASE_FIELDS}")
    if not isinstance(fields["id"], str) or not fields["id"]:
        raise DataError("a case needs a non-empty id", field="id", value=fields["id"])
    case = object.__new__(Case)
    case.__dict__.update(fields)
    return case


def _list(path: Path) -> list[Any]:
    if not path.exists():
        return []
    doc = _read_json(path)
    if not isinstance(doc, list):
        raise DataError("expected a JSON list", path=path)
    return doc


def iter_case_folders(root: str | Path) -> Iterator[Path]:
    """Yield every Case folder (a folder with ``manifest.json``) at or below *root*, sorted."""
    root = Path(root)
    if (root / "manifest.json").is_file():
        yield root
        return
    for manifest in sorted(root.rglob("manifest.json")):
        yield manifest.parent


def entities_of(names: Iterable[str]) -> list[str]:
    """Return the distinct entity parts of ``entity:metric`` column names, in first-seen order."""
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(str(n).split(":", 1)[0], None)
    return list(seen)


def topology_from_spans(spans: pd.DataFrame, *, min_calls: int = 1) -> Topology | None:
    """Recover the service call graph from spans: an edge caller -> callee wherever a span's
    parent belongs to another service. Returns ``None`` when the spans show no such call
    (no graph is ever invented).

    Edges carry ``count``, the number of parent/child span pairs seen.
    """
    if spans is None or spans.empty:
        return None
    s = spans[["trace_id", "span_id", "parent_id", "service"]].dropna(subset=["span_id", "service"])
    parents = s[["trace_id", "span_id", "service"]].drop_duplicates(["trace_id", "span_id"])
    parents = parents.rename(columns={"span_id": "parent_id", "service": "caller"})
    children = s.dropna(subset=["parent_id"])
    pairs = children.merge(parents, on=["trace_id", "parent_id"], how="inner")
    pairs = pairs[pairs["caller"] != pairs["service"]]
    if pairs.empty:
        return None
    counts = pairs.groupby(["caller", "service"]).size()
    topo = Topology(source="spans")
    for svc in sorted(s["service"].astype(str).unique()):
        topo.add_node(svc)
    for (caller, callee), n in counts.items():
        if n >= min_calls:
            topo.add_edge(str(caller), str(callee), "calls", count=int(n))
    return topo
