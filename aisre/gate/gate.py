"""The gate's decision: score a change, explain it, and say allow, canary, needs approval or block.

:func:`run_gate` reads BASE..HEAD from git (:mod:`aisre.gate.features`), maps the files to
services (:mod:`aisre.gate.owners`), measures the blast radius (:mod:`aisre.gate.blast`), reads
the services' incident history from the store (:mod:`aisre.gate.history`), and combines them
(:mod:`aisre.gate.model`) into a calibrated probability with its reasons.

**Decision** (thresholds on the final score, :data:`DEFAULT_THRESHOLDS`, overridable by policy):

======================  ==============================  ==========
score                   decision                        exit code
======================  ==============================  ==========
< 0.30                  ``allow``                       0
0.30 .. 0.60            ``canary`` (deploy to a slice)  1
>= 0.60                 ``needs_approval`` (a person)   1
any, inside a freeze    ``block`` (see below)           2
======================  ==============================  ==========

On the packaged ApacheJIT model these cut about 75 % / 15 % / 10 % of changes. ``block`` happens
only during a **change freeze**: a window that covers the change's time (*now*) and one of its
services (or all services) blocks every change that would not be ``allow``; a ``strict`` window
blocks everything. A policy file (YAML or JSON)::

    thresholds: {canary: 0.3, needs_approval: 0.6}
    freezes:
      - name: end-of-year
        start: 2024-12-20T00:00:00Z      # ISO 8601 (UTC when no offset) or unix seconds
        end: 2025-01-02T00:00:00Z
        services: [checkoutservice]      # optional: absent = every service
        strict: false                    # optional: true blocks even low-risk changes
"""

from __future__ import annotations

import json
import math
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aisre.case import Topology
from aisre.errors import SpecError
from aisre.gate.blast import BlastRadius, blast_radius
from aisre.gate.features import ChangeFeatures, change_features
from aisre.gate.history import PRIOR_FAILURES, PRIOR_SUCCESSES, HistoryFeatures, history_features
from aisre.gate.model import Adjustment, Contribution, JITModel, combine, load_model
from aisre.gate.owners import Ownership, find_ownership, load_ownership, services_by_path

__all__ = [
    "DECISIONS",
    "DEFAULT_THRESHOLDS",
    "EXIT_CODES",
    "FreezeWindow",
    "GatePolicy",
    "GateResult",
    "decide",
    "load_policy",
    "load_topology_file",
    "run_gate",
]

DECISIONS = ("allow", "canary", "needs_approval", "block")
"""Every decision, mildest first."""
EXIT_CODES = {"allow": 0, "canary": 1, "needs_approval": 1, "block": 2}
"""Exit code per decision (DESIGN.md); 3 is an error."""
DEFAULT_THRESHOLDS = {"canary": 0.3, "needs_approval": 0.6}
"""Lowest final score for a canary, and for needing a person's approval."""
MIN_CONTRIBUTION = 0.1
"""Smallest log-odds push that becomes a reason."""
MAX_REASONS = 5
"""At most this many risk reasons (freeze and out-of-range notes come on top)."""


# --------------------------------------------------------------------------- policy


def _instant(value: Any, field: str, path: str | None) -> float:
    if isinstance(value, bool):
        raise SpecError(f"expected a time, got {value!r}", field=field, path=path)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise SpecError(f"expected a finite time, got {value!r}", field=field, path=path)
        return float(value)
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise SpecError(f"expected ISO 8601 or unix seconds, got {value!r}", field=field, path=path) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True)
class FreezeWindow:
    """A change freeze from *start* to *end* (unix s) on *services* (None: all); *strict* blocks
    every change, otherwise only those that would not be allowed."""

    name: str
    start: float
    end: float
    services: tuple[str, ...] | None = None
    strict: bool = False

    def covers(self, when: float, services: Sequence[str]) -> bool:
        """Return True when the window is open at *when* and covers one of *services*."""
        if not self.start <= when < self.end:
            return False
        return self.services is None or bool(set(self.services) & set(services))


@dataclass(frozen=True)
class GatePolicy:
    """Decision thresholds and change-freeze windows."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    freezes: tuple[FreezeWindow, ...] = ()


def load_policy(source: str | Path | Mapping[str, Any] | Sequence[Any] | GatePolicy | None) -> GatePolicy:
    """Return the :class:`GatePolicy` of a YAML/JSON file, a mapping, or a bare list of freeze
    windows (None: the defaults, no freeze).

    Raises:
        SpecError: for an unreadable file, thresholds outside (0, 1] or out of order, or a freeze
            window without a valid start/end, naming the field.
    """
    if source is None:
        return GatePolicy()
    if isinstance(source, GatePolicy):
        return source
    path: str | None = None
    doc: Any = source
    if isinstance(source, (str, Path)):
        path = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
            doc = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SpecError(f"cannot read the gate policy: {str(exc).splitlines()[0]}", field="freeze", path=path) from exc
    if doc is None:
        return GatePolicy()
    if isinstance(doc, Sequence) and not isinstance(doc, str):
        doc = {"freezes": list(doc)}
    if not isinstance(doc, Mapping):
        raise SpecError("a gate policy is a mapping with 'thresholds' and 'freezes'", field="policy", path=path)
    thresholds = dict(DEFAULT_THRESHOLDS)
    raw_t = doc.get("thresholds") or {}
    if not isinstance(raw_t, Mapping):
        raise SpecError("must map canary/needs_approval to scores", field="thresholds", path=path)
    for key, value in raw_t.items():
        if key not in DEFAULT_THRESHOLDS:
            raise SpecError(f"unknown threshold {key!r}; known: canary, needs_approval", field="thresholds", path=path)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
            raise SpecError(f"must be a score in (0, 1], got {value!r}", field=f"thresholds.{key}", path=path)
        thresholds[key] = float(value)
    if thresholds["canary"] > thresholds["needs_approval"]:
        raise SpecError("canary must not exceed needs_approval", field="thresholds", path=path)
    raw_f = doc.get("freezes", doc.get("freeze", [])) or []
    if isinstance(raw_f, Mapping):
        raw_f = [raw_f]
    if not isinstance(raw_f, Sequence) or isinstance(raw_f, str):
        raise SpecError("must be a list of windows", field="freezes", path=path)
    windows = []
    for i, item in enumerate(raw_f):
        where = f"freezes[{i}]"
        if not isinstance(item, Mapping) or "start" not in item or "end" not in item:
            raise SpecError("a freeze window needs start and end", field=where, path=path)
        start, end = _instant(item["start"], f"{where}.start", path), _instant(item["end"], f"{where}.end", path)
        if end <= start:
            raise SpecError("end must be after start", field=f"{where}.end", path=path)
        svcs = item.get("services")
        if svcs is not None and (not isinstance(svcs, Sequence) or isinstance(svcs, str)):
            raise SpecError("must be a list of service names", field=f"{where}.services", path=path)
        windows.append(FreezeWindow(str(item.get("name", f"freeze {i + 1}")), start, end,
                                    tuple(str(s) for s in svcs) if svcs is not None else None,
                                    bool(item.get("strict", False))))  # fmt: skip
    return GatePolicy(thresholds, tuple(windows))


def decide(score: float, policy: GatePolicy, *, when: float, services: Sequence[str]) -> tuple[str, FreezeWindow | None]:
    """Return ``(decision, the freeze window that blocked or None)`` for a final *score*."""
    t = policy.thresholds
    decision = "allow" if score < t["canary"] else "canary" if score < t["needs_approval"] else "needs_approval"
    for window in policy.freezes:
        if window.covers(when, services) and (window.strict or decision != "allow"):
            return "block", window
    return decision, None


def load_topology_file(path: str | Path) -> Topology:
    """Read a topology in node-link form (``topology.json`` of a Case folder, or YAML with
    ``nodes`` and ``links``).

    Raises:
        SpecError: when the file cannot be read or is not node-link (a simulator topology YAML
            goes through ``aisre.simulator.load_topology(...).to_topology()`` first).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read topology: {str(exc).splitlines()[0]}", field="topology", path=str(p)) from exc
    if not isinstance(doc, Mapping) or "nodes" not in doc:
        raise SpecError("not a node-link topology (needs 'nodes' and 'links')", field="topology", path=str(p))
    return Topology.from_dict(doc, path=str(p))


# --------------------------------------------------------------------------- result


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value - round(value)) < 1e-9 or abs(value) >= 100 else f"{value:,.1f}"


_HIGH = {
    "la": "large change: {v} lines added",
    "ld": "many lines deleted: {v}",
    "churn": "{v} lines changed in all",
    "nf": "touches {v} files",
    "nd": "spread over {v} directories",
    "ns": "spans {v} subsystems",
    "ent": "changes spread evenly over many files (entropy {v} bits)",
    "ndev": "files changed before by {v} developers on average",
    "age": "long-untouched files: last changed {v} ago on average",
    "nuc": "frequently changed files: {v} earlier changes on average",
    "aexp": "a prolific author: {v} earlier commits",
    "arexp": "an author with much recent work: {v} recency-weighted commits",
    "asexp": "an author busy in these subsystems: {v} earlier commits there",
    "fix": "a bug fix (the messages name a fix or an issue key): fixes are often bug-inducing",
}
_LOW = {
    "la": "few lines added: {v}",
    "ld": "few lines deleted: {v}",
    "churn": "few lines changed: {v}",
    "nf": "touches only {v} files",
    "nd": "only {v} directories",
    "ns": "only {v} subsystems",
    "ent": "changes concentrated in few files (entropy {v} bits)",
    "ndev": "files changed before by few developers ({v} on average)",
    "age": "recently changed files: last changed {v} ago on average",
    "nuc": "files rarely changed before: {v} earlier changes on average",
    "aexp": "an inexperienced author: {v} earlier commits in this repository",
    "arexp": "an author with little recent work: {v} recency-weighted commits",
    "asexp": "an author new to these subsystems: {v} earlier commits there",
    "fix": "not a bug fix",
}


_SIZE = frozenset({"la", "ld", "churn"})


def _contribution_reason(c: Contribution, model: JITModel) -> str:
    coef = model.coef[model.features.index(c.feature)]
    high = (coef > 0) == (c.contribution > 0)
    shown = _n(c.value)
    if c.feature == "age":
        shown = "less than a day" if c.value < 1 else f"{shown} days"
    text = (_HIGH if high else _LOW)[c.feature].format(v=shown)
    if c.feature != "fix":
        text += f" (riskier than {c.riskier_than:.0f} % of changes)"
    return text


@dataclass
class GateResult:
    """The gate's verdict on one change.

    ``score``: the final calibrated probability; ``jit_score``: stage 1 alone; ``decision``: one
    of :data:`DECISIONS`; ``reasons``: plain-language reasons, strongest first; ``services``:
    ``{service: [files]}``; ``blast``: the :class:`BlastRadius`; ``features``: the
    :class:`ChangeFeatures`; ``contributions`` / ``adjustments``: the score's parts;
    ``freeze``: the window that blocked, if any.
    """

    score: float
    jit_score: float
    decision: str
    reasons: list[str]
    services: dict[str, list[str]]
    blast: BlastRadius
    features: ChangeFeatures
    contributions: list[Contribution] = field(default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)
    history: HistoryFeatures | None = None
    freeze: FreezeWindow | None = None
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 allow, 1 canary or needs approval, 2 block (DESIGN.md)."""
        return EXIT_CODES[self.decision]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract ``{"score", "decision", "reasons", "services", "blast_radius"}``
        plus the details: stage-1 score, base/head, features, contributions, adjustments, history."""
        f = self.features
        return {
            "score": round(self.score, 4),
            "decision": self.decision,
            "reasons": list(self.reasons),
            "services": sorted(self.services),
            "blast_radius": self.blast.to_dict(),
            "jit_score": round(self.jit_score, 4),
            "base": f.base,
            "head": f.head,
            "files": len(f.files),
            "features": {k: round(v, 4) for k, v in f.row().items()},
            "author": f.author,
            "thresholds": dict(self.thresholds),
            "freeze": None if self.freeze is None else {"name": self.freeze.name, "start": self.freeze.start,
                                                        "end": self.freeze.end, "strict": self.freeze.strict},
            "contributions": [c.to_dict() for c in self.contributions],
            "adjustments": [a.to_dict() for a in self.adjustments],
            "history": None if self.history is None else self.history.to_dict(),
            "seconds": round(self.seconds, 3),
        }  # fmt: skip

    def _headline(self) -> str:
        return f"{self.decision.replace('_', ' ')} (risk {100 * self.score:.0f} %)"

    def __str__(self) -> str:
        f = self.features
        lines = [
            f"gate: {self._headline()}",
            f"change {f.base[:10]}..{f.head[:10]}: {len(f.files)} files, +{_n(f.la)} -{_n(f.ld)}, author {f.author or '?'}",
            f"services: {', '.join(sorted(self.services)) or 'none mapped'}; blast radius {self.blast.weighted:.1f}"
            + (f" ({len(self.blast.affected)} services, critical: {', '.join(self.blast.critical)})" if self.blast.critical else ""),
        ]  # fmt: skip
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)

    def markdown(self) -> str:
        """Return a Markdown body for a pull-request comment (with a hidden ``aisre-gate`` marker
        so CI can update its earlier comment instead of adding another)."""
        f = self.features
        t = self.thresholds
        svcs = ", ".join(f"`{s}`" for s in sorted(self.services)) or "none mapped"
        crit = f", critical: {', '.join(f'`{c}`' for c in self.blast.critical)}" if self.blast.critical else ""
        out = [
            "<!-- aisre-gate -->",
            f"### aisre gate: **{self._headline()}**",
            "",
            f"`{f.base[:10]}..{f.head[:10]}` · {len(f.files)} files · +{_n(f.la)} / -{_n(f.ld)} lines · "
            f"services: {svcs} · blast radius {self.blast.weighted:.1f} ({len(self.blast.affected)} services{crit})",
            "",
            "**Why**",
            "",
            *[f"- {r}" for r in self.reasons],
            "",
            f"Decision rule: allow below {100 * t['canary']:.0f} %, canary below {100 * t['needs_approval']:.0f} %, "
            f"needs approval from {100 * t['needs_approval']:.0f} %; block only during a change freeze. "
            f"Change model alone: {100 * self.jit_score:.0f} %.",
            "",
            "<details><summary>Change features</summary>",
            "",
            "| feature | value | contribution (log-odds) |",
            "| --- | ---: | ---: |",
            *[f"| {c.feature} | {_n(c.value)} | {c.contribution:+.2f} |" for c in self.contributions],
            *[f"| × {a.name} | {a.factor:.2f} | {math.log(a.factor):+.2f} |" for a in self.adjustments],
            "",
            "</details>",
        ]  # fmt: skip
        return "\n".join(out) + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown()


# --------------------------------------------------------------------------- run


def _ownership(owners: str | Path | Ownership | None, repo: str | Path) -> Ownership | None:
    if isinstance(owners, Ownership):
        return owners
    if owners is not None:
        return load_ownership(owners)
    found = find_ownership(repo)
    return load_ownership(found) if found is not None else None


def run_gate(
    repo: str | Path,
    base: str,
    head: str,
    *,
    owners: str | Path | Ownership | None = None,
    topology: Topology | str | Path | None = None,
    freeze: str | Path | Mapping[str, Any] | Sequence[Any] | GatePolicy | None = None,
    now: float | None = None,
    model: JITModel | str | Path | None = None,
    history: int = 2000,
    use_store: bool = True,
    store_url: str | None = None,
) -> GateResult:
    """Score the change BASE..HEAD of *repo* and decide; return the :class:`GateResult`.

    *owners*: an ownership YAML/JSON or CODEOWNERS (default: the repository's CODEOWNERS; without
    one, paths are matched to topology service names). *topology*: a :class:`Topology` or a
    node-link file. *freeze*: a policy file/mapping (thresholds and freeze windows). *now*: the
    deploy time checked against freezes and the history (default: the current time). *model*:
    a :class:`JITModel` or its JSON (default :func:`aisre.gate.model.load_model`). *use_store*:
    read the incident history from the store (``store_url`` or the default store).

    Raises:
        GitError: for a path that is not a repository or a bad revision.
        SpecError: for a bad ownership, topology or policy file.
        DataError: for an unreadable model.
        StoreError: when the store cannot be read.
    """
    started = _time.perf_counter()
    when = float(now) if now is not None else _time.time()
    policy = load_policy(freeze)
    topo = load_topology_file(topology) if isinstance(topology, (str, Path)) else topology
    jit = model if isinstance(model, JITModel) else load_model(model)
    feats = change_features(repo, base, head, history=history)

    ownership = _ownership(owners, repo)
    if ownership is not None:
        services = ownership.services(feats.files, topo)
    elif topo is not None:
        services = services_by_path(feats.files, topo)
    else:
        services = {}
    blast = blast_radius(topo, services)

    p_jit, contribs = jit.explain(feats.row())
    hist = history_features(services, feats.files, now=when, url=store_url) if use_store and services else None
    prior = PRIOR_FAILURES / (PRIOR_FAILURES + PRIOR_SUCCESSES)
    score, adjustments = combine(
        p_jit,
        blast_weighted=blast.weighted if services else None,
        failure_rate=hist.max_failure_rate if hist is not None else None,
        prior_rate=prior,
        recent_incidents=hist.recent_incidents if hist is not None else 0,
        hot_share=(len(hist.hot_files) / max(len(feats.files), 1)) if hist is not None else 0.0,
    )
    decision, window = decide(score, policy, when=when, services=sorted(services))
    reasons = _reasons(jit, contribs, adjustments, blast, hist, feats)
    if window is not None:
        span = f"{_iso(window.start)} to {_iso(window.end)}"
        reasons.insert(0, f"change freeze '{window.name}' is in force ({span})"
                       + ("; strict: every change is blocked" if window.strict else ""))  # fmt: skip
    return GateResult(score, p_jit, decision, reasons, services, blast, feats, contribs, adjustments, hist, window,
                      dict(policy.thresholds), _time.perf_counter() - started)  # fmt: skip


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _reasons(
    model: JITModel,
    contribs: list[Contribution],
    adjustments: list[Adjustment],
    blast: BlastRadius,
    hist: HistoryFeatures | None,
    feats: ChangeFeatures,
) -> list[str]:
    ranked: list[tuple[float, str]] = []
    # la, ld and churn say one thing (the size): one reason with their summed push
    size = [c for c in contribs if c.feature in _SIZE]
    size_push = sum(c.contribution for c in size)
    if size_push >= MIN_CONTRIBUTION:
        churn = next((c for c in size if c.feature == "churn"), None)
        big = (model.coef[[model.features.index(c.feature) for c in size]].sum() > 0) == (size_push > 0)
        text = (f"{'large' if big else 'small'} change: {_n(feats.la)} lines added, {_n(feats.ld)} deleted"
                + (f" (riskier than {churn.riskier_than:.0f} % of changes)" if churn is not None else ""))  # fmt: skip
        ranked.append((size_push, text))
    for c in contribs:
        if c.feature not in _SIZE and c.contribution >= MIN_CONTRIBUTION:
            ranked.append((c.contribution, _contribution_reason(c, model)))
    for a in adjustments:
        effect = math.log(a.factor)
        if effect < MIN_CONTRIBUTION:
            continue
        if a.name == "failure_rate" and hist is not None:
            worst = max(hist.failure_rate, key=lambda s: hist.failure_rate[s])
            text = (f"{worst}: {hist.failures[worst]} of {hist.changes[worst]} earlier changes caused an incident "
                    f"(change-failure rate {hist.failure_rate[worst]:.0%})")  # fmt: skip
        elif a.name == "recent_incidents" and hist is not None:
            text = f"{hist.recent_incidents} incident(s) caused by changes to these services in the last 7 days"
        elif a.name == "hot_files" and hist is not None:
            shown = ", ".join(hist.hot_files[:3]) + (" ..." if len(hist.hot_files) > 3 else "")
            text = f"{len(hist.hot_files)} of {len(feats.files)} files were touched by earlier incident-causing changes ({shown})"
        elif a.name == "blast_radius":
            text = (f"blast radius: {len(blast.dependents)} service(s) depend on {', '.join(blast.services)}"
                    + (f", critical: {', '.join(blast.critical)}" if blast.critical else "")
                    + f" (weight {blast.weighted:.1f})")  # fmt: skip
        else:
            text = a.reason
        ranked.append((effect, text))
    ranked.sort(key=lambda r: -r[0])
    out = [text for _, text in ranked[:MAX_REASONS]]
    for c in contribs:
        hi = model.upper[model.features.index(c.feature)]
        if c.clipped_to is not None and c.value > hi:
            out.append(f"out of range: {c.feature} = {_n(c.value)} is beyond the training data (at most {_n(hi)}); "
                       f"scored as {_n(hi)}")  # fmt: skip
    if not ranked:
        out.insert(0, "no risk factor stands out: a small, routine change")
    return out

