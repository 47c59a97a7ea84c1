"""Incident fingerprints: what an investigation saw, as a fixed-length vector plus its parts.

A fingerprint is built from a :class:`~aisre.case.Case` and the :class:`~aisre.case.Ranking` of
its investigation. Its structured *parts* (JSON) are:

- ``system``: the system the case came from;
- ``suspects``: the top ranked services (entities mapped to their service) with fault kind and
  score relative to the first;
- ``signals``: per suspect service, the kinds of signal that moved and how much (``log1p`` of
  the robust z), read from the ranking's evidence;
- ``order``: the suspect services in order of their earliest onset;
- ``shapes``: per evidence signal, its direction and shape after the onset (step, ramp, spike),
  read from the case's metrics;
- ``neighbourhood``: the callers and callees of the top three suspects in the topology;
- ``alerts``: ``alertname@service`` of the alerts that fired (noise and Watchdog left out).

The *vector* (:data:`DIM` float32, unit length) hashes those parts into fixed blocks, one per
part, so that a cosine similarity between two vectors approximates how alike two incidents are;
:func:`structured_similarity` then compares the parts exactly and says why in words.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.case import Case, Ranking
from aisre.errors import DataError

__all__ = [
    "BLOCKS",
    "DIM",
    "FINGERPRINT_VERSION",
    "Fingerprint",
    "fingerprint",
    "parts_from_json",
    "service_names",
    "structured_similarity",
]

FINGERPRINT_VERSION = 1
"""Version of the fingerprint layout; vectors of another version are not comparable."""

BLOCKS: dict[str, tuple[int, int, float]] = {
    "signals": (0, 40, 1.0),
    "order": (40, 60, 0.7),
    "shapes": (60, 76, 0.5),
    "suspects": (76, 96, 1.0),
    "neighbourhood": (96, 112, 0.5),
    "alerts": (112, 128, 0.8),
}
"""Part -> (first column, end column, weight) of the vector; each block is unit length times its
weight before the whole vector is normalised."""

DIM = max(end for _, end, _ in BLOCKS.values())
"""Length of every fingerprint vector."""

SUSPECTS = 5
"""Suspect services kept in a fingerprint."""

_STRUCT_WEIGHTS = {"suspects": 0.3, "signals": 0.2, "order": 0.1, "shapes": 0.1, "neighbourhood": 0.1, "alerts": 0.2}
"""Weights of the parts in :func:`structured_similarity` (sum 1)."""

_POD = re.compile(r"^(?P<svc>.+?)-(?:[0-9a-f]{8,10}-[a-z0-9]{5}|[a-z0-9]{9,10}-[a-z0-9]{5}|\d+)$")


@dataclass
class Fingerprint:
    """An incident's fingerprint: ``vector`` (float32, :data:`DIM`, unit length or zero) and
    ``parts`` (the structured JSON-ready description it was hashed from)."""

    vector: np.ndarray
    parts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the vector as a list of floats)."""
        return {"vector": [float(x) for x in self.vector], "parts": self.parts}


# --------------------------------------------------------------------------- names


def service_names(case: Case | None) -> dict[str, str]:
    """Return ``{entity: service}`` for instances the case's topology maps to a service (an
    instance node's ``service`` attribute); other entities are mapped by :func:`_service`."""
    out: dict[str, str] = {}
    topo = case.topology if case is not None else None
    if topo is not None:
        for name, attrs in topo.graph.nodes(data=True):
            svc = attrs.get("service")
            if isinstance(svc, str) and svc and svc != name:
                out[str(name)] = svc
    return out


def _service(entity: str, mapping: Mapping[str, str], known: set[str]) -> str:
    """The service *entity* belongs to: the topology's word, itself when it is a known service,
    else a pod or instance name without its suffix."""
    if entity in mapping:
        return mapping[entity]
    if entity in known:
        return entity
    m = _POD.match(entity)
    if m and (not known or m.group("svc") in known):
        return m.group("svc")
    return entity


# --------------------------------------------------------------------------- hashing


def _hash(token: str) -> tuple[int, float]:
    """A stable (process-independent) bucket seed and sign for *token*."""
    h = int.from_bytes(hashlib.blake2b(token.encode("utf-8", "replace"), digest_size=8).digest(), "little")
    return h >> 1, 1.0 if h & 1 else -1.0


def _block(features: Iterable[tuple[str, float]], width: int) -> np.ndarray:
    out = np.zeros(width, dtype=np.float64)
    for token, weight in features:
        if weight and math.isfinite(weight):
            bucket, sign = _hash(token)
            out[bucket % width] += sign * weight
    n = np.linalg.norm(out)
    return out / n if n > 0 else out


def _vector(parts: Mapping[str, Any]) -> np.ndarray:
    """Hash *parts* into the blocks of :data:`BLOCKS` and return a unit float32 vector."""
    system = str(parts.get("system") or "")
    feats: dict[str, list[tuple[str, float]]] = {k: [] for k in BLOCKS}
    for svc, kinds in (parts.get("signals") or {}).items():
        for kind, mag in kinds.items():
            feats["signals"].append((f"{svc}|{kind}", float(mag)))
        feats["signals"].append((f"{svc}", 0.5 * max(kinds.values(), default=0.0)))
    order = list(parts.get("order") or [])
    for i, svc in enumerate(order):
        feats["order"].append((f"at{min(i, 3)}|{svc}", 1.0 / (1 + i)))
    for a, b in zip(order[:4], order[1:5], strict=False):
        feats["order"].append((f"{a}>{b}", 0.5))
    for key, shape in (parts.get("shapes") or {}).items():
        feats["shapes"].append((f"{key}|{shape}", 1.0))
    for i, s in enumerate(parts.get("suspects") or []):
        w = 1.0 / (1 + i)
        feats["suspects"].append((f"s|{s.get('service')}", w * (1.0 + float(s.get("score") or 0.0))))
        feats["suspects"].append((f"sf|{s.get('service')}|{s.get('fault')}", 0.5 * w))
        if i == 0:
            feats["suspects"].append((f"f|{s.get('fault')}", 0.5))
    feats["suspects"].append((f"sys|{system}", 0.3))
    for svc, nbrs in (parts.get("neighbourhood") or {}).items():
        for n in nbrs:
            feats["neighbourhood"].append((f"n|{n}", 1.0))
        feats["neighbourhood"].append((f"c|{svc}", 1.0))
    feats["neighbourhood"].append((f"sys|{system}", 0.5))
    for a in parts.get("alerts") or []:
        feats["alerts"].append((f"a|{a}", 1.0))
        feats["alerts"].append((f"n|{str(a).split('@', 1)[0]}", 0.5))
    vec = np.zeros(DIM, dtype=np.float64)
    for name, (lo, hi, weight) in BLOCKS.items():
        vec[lo:hi] = weight * _block(feats[name], hi - lo)
    n = np.linalg.norm(vec)
    return (vec / n if n > 0 else vec).astype(np.float32)


# --------------------------------------------------------------------------- building


def fingerprint(case: Case, ranking: Ranking | None = None) -> Fingerprint:
    """Return the fingerprint of *case* as investigated by *ranking* (default: the ``aisre``
    ranker run now).

    Raises:
        DataError: when *case* is not a Case or *ranking* not a Ranking.
    """
    if not isinstance(case, Case):
        raise DataError("a fingerprint needs a Case", value=type(case).__name__)
    if ranking is None:
        from aisre.rank import get_ranker

        ranking = get_ranker("aisre").rank(case)
    if not isinstance(ranking, Ranking):
        raise DataError("a fingerprint needs a Ranking", value=type(ranking).__name__)
    mapping = service_names(case)
    known = set(case.topology.services()) if case.topology is not None else set()
    parts: dict[str, Any] = {"v": FINGERPRINT_VERSION, "system": case.system or ""}
    suspects: list[dict[str, Any]] = []
    signals: dict[str, dict[str, float]] = {}
    onsets: dict[str, float] = {}
    evidence_series: list[tuple[str, str, float]] = []
    hyps = [] if ranking.abstained else ranking.hypotheses
    top = max((abs(h.score) for h in hyps[:SUSPECTS] if math.isfinite(h.score)), default=0.0) or 1.0
    for h in hyps:
        svc = _service(str(h.entity), mapping, known)
        if len(suspects) < SUSPECTS and svc not in {s["service"] for s in suspects}:
            score = float(h.score) / top if math.isfinite(h.score) else 0.0
            suspects.append({"service": svc, "fault": h.fault, "score": round(score, 4)})
        if svc not in {s["service"] for s in suspects}:
            continue
        for e in h.evidence:
            if e.signal in ("graph", "memory"):
                continue
            kind = _signal_kind(e.signal)
            mag = float(np.log1p(max(float(e.magnitude or 0.0), 0.0)))
            mine = signals.setdefault(svc, {})
            mine[kind] = round(max(mine.get(kind, 0.0), mag), 4)
            if e.onset is not None and math.isfinite(e.onset):
                onsets[svc] = min(onsets.get(svc, math.inf), float(e.onset))
            if str(e.signal).startswith("metric:") and len(evidence_series) < 12:
                evidence_series.append((str(e.entity), str(e.signal).split(":", 1)[1], float(e.onset or np.nan)))
    parts["suspects"] = suspects
    parts["signals"] = signals
    parts["order"] = [s for s, _ in sorted(onsets.items(), key=lambda kv: (kv[1], kv[0]))]
    parts["shapes"] = _shapes(case, evidence_series, mapping, known)
    parts["neighbourhood"] = _neighbourhood(case, [s["service"] for s in suspects[:3]])
    parts["alerts"] = _alerts(case)
    return Fingerprint(vector=_vector(parts), parts=parts)


def _signal_kind(signal: str) -> str:
    """A signal name without instance detail: ``metric:latency-99`` -> ``metric:latency``."""
    name = str(signal)
    return re.sub(r"[-_]?(p?\d+)$", "", name)


def _shapes(case: Case, series: list[tuple[str, str, float]], mapping: Mapping[str, str],
            known: set[str]) -> dict[str, str]:
    """Per ``service|metric`` of the evidence: ``up``/``down`` and ``step``/``ramp``/``spike``."""
    if not series or case.metrics.empty:
        return {}
    m = case.metrics
    wanted = {(e, n) for e, n, _ in series}
    sel = m[m["entity"].astype(str).isin({e for e, _ in wanted}) & m["metric"].astype(str).isin({n for _, n in wanted})]
    out: dict[str, str] = {}
    groups = dict(tuple(sel.groupby([sel["entity"].astype(str), sel["metric"].astype(str)], sort=False, observed=True)))
    for entity, name, onset in series:
        g = groups.get((entity, name))
        if g is None or len(g) < 4 or not math.isfinite(onset):
            continue
        g = g.sort_values("time")
        t, v = g["time"].to_numpy(dtype="float64"), g["value"].to_numpy(dtype="float64")
        before, after = v[t < onset], v[t >= onset]
        if len(before) < 2 or len(after) < 3:
            continue
        base = float(np.nanmedian(before))
        direction = "up" if float(np.nanmedian(after)) >= base else "down"
        dev = np.abs(after - base)
        peak = float(np.nanmax(dev)) or 1.0
        held = float(np.mean(dev >= 0.5 * peak))
        ta = t[t >= onset]
        corr = float(np.corrcoef(ta, after)[0, 1]) if np.nanstd(after) > 0 else 0.0
        shape = "ramp" if abs(corr) >= 0.8 and held < 0.7 else ("step" if held >= 0.5 else "spike")
        key = f"{_service(entity, mapping, known)}|{_signal_kind('metric:' + name)}"
        out.setdefault(key, f"{direction}-{shape}")
    return out


def _neighbourhood(case: Case, suspects: list[str]) -> dict[str, list[str]]:
    topo = case.topology
    if topo is None:
        return {}
    g = topo.call_graph()
    out: dict[str, list[str]] = {}
    for s in suspects:
        if s in g:
            out[s] = sorted({*g.predecessors(s), *g.successors(s)})
    return out


def _alerts(case: Case) -> list[str]:
    noise = set((case.meta or {}).get("noise_alerts") or [])
    names: set[str] = set()
    for a in case.alerts:
        name = a.labels.get("alertname", "") if isinstance(a.labels, Mapping) else ""
        if a.fingerprint in noise or name in ("Watchdog", "") or a.severity == "none":
            continue
        names.add(f"{name}@{a.service or a.labels.get('service', '')}")
    return sorted(names)


# --------------------------------------------------------------------------- comparing


def _wjaccard(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    keys = set(a) | set(b)
    if not keys:
        return 1.0
    num = sum(min(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    den = sum(max(a.get(k, 0.0), b.get(k, 0.0)) for k in keys)
    return num / den if den > 0 else 1.0


def _flat_signals(parts: Mapping[str, Any]) -> dict[str, float]:
    return {f"{s}|{k}": float(v) for s, kinds in (parts.get("signals") or {}).items() for k, v in kinds.items()}


def _suspect_weights(parts: Mapping[str, Any]) -> dict[str, float]:
    return {str(s.get("service")): 1.0 / (1 + i) for i, s in enumerate(parts.get("suspects") or [])}


def structured_similarity(a: Mapping[str, Any], b: Mapping[str, Any], *, explain: bool = True) -> tuple[float, list[str]]:
    """Return how alike two fingerprints' parts are (0..1) and, with *explain*, the reasons in
    words: shared suspects (weighted by rank), signals, onset order, shapes, neighbourhood and
    alerts, times one half when the systems differ.

    Raises:
        DataError: when a part has the wrong type (a corrupt record).
    """
    try:
        sa, sb = _suspect_weights(a), _suspect_weights(b)
        comp = {
            "suspects": _wjaccard(sa, sb),
            "signals": _wjaccard(_flat_signals(a), _flat_signals(b)),
            "shapes": _jaccard(set((a.get("shapes") or {}).items()), set((b.get("shapes") or {}).items())),
            "neighbourhood": _jaccard({(k, x) for k, v in (a.get("neighbourhood") or {}).items() for x in v},
                                      {(k, x) for k, v in (b.get("neighbourhood") or {}).items() for x in v}),
            "alerts": _jaccard(set(a.get("alerts") or []), set(b.get("alerts") or [])),
            "order": _order_agreement(list(a.get("order") or []), list(b.get("order") or [])),
        }
        score = sum(_STRUCT_WEIGHTS[k] * v for k, v in comp.items())
        same_system = str(a.get("system") or "") == str(b.get("system") or "")
        if not same_system:
            score *= 0.5
        why = _why(a, b, same_system) if explain else []
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"corrupt fingerprint parts: {exc}", field="fingerprint") from exc
    return float(min(max(score, 0.0), 1.0)), why


def _jaccard(a: set[Any], b: set[Any]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _order_agreement(a: list[str], b: list[str]) -> float:
    """1 when both start with the same service and order the shared services alike."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    first = 1.0 if a[0] == b[0] else 0.0
    common = [x for x in a if x in set(b)]
    pos = {x: i for i, x in enumerate(b)}
    pairs = [(x, y) for i, x in enumerate(common) for y in common[i + 1:]]
    agree = sum(pos[x] < pos[y] for x, y in pairs) / len(pairs) if pairs else float(bool(common))
    return 0.6 * first + 0.4 * agree


def _why(a: Mapping[str, Any], b: Mapping[str, Any], same_system: bool) -> list[str]:
    out: list[str] = []
    sa, sb = a.get("suspects") or [], b.get("suspects") or []
    if sa and sb and sa[0].get("service") == sb[0].get("service"):
        fault = sa[0].get("fault") if sa[0].get("fault") == sb[0].get("fault") else None
        out.append(f"same top suspect {sa[0].get('service')}" + (f" ({fault})" if fault else ""))
    shared = [s["service"] for s in sa if s.get("service") in {x.get("service") for x in sb}]
    if len(shared) > 1:
        out.append("shares suspects " + ", ".join(shared[:4]))
    oa, ob = a.get("order") or [], b.get("order") or []
    if oa and ob and oa[0] == ob[0]:
        out.append(f"{oa[0]} moved first in both")
    common_alerts = sorted(set(a.get("alerts") or []) & set(b.get("alerts") or []))
    if common_alerts:
        out.append("same alerts " + ", ".join(common_alerts[:3]) + ("..." if len(common_alerts) > 3 else ""))
    shapes = sorted(set((a.get("shapes") or {}).items()) & set((b.get("shapes") or {}).items()))
    if shapes:
        out.append("same shapes " + ", ".join(f"{k.replace('|metric:', ' ')} {v}" for k, v in shapes[:3]))
    if same_system:
        out.append(f"same system {a.get('system') or '-'}")
    else:
        out.append(f"different systems ({a.get('system') or '-'} vs {b.get('system') or '-'})")
    return out


def parts_from_json(text: str | bytes | None) -> dict[str, Any]:
    """Return the parts stored as JSON *text*.

    Raises:
        DataError: when the text is not a JSON object.
    """
    try:
        doc = json.loads(text or "")
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(f"fingerprint is not valid JSON: {exc}", field="fingerprint") from exc
    if not isinstance(doc, dict):
        raise DataError("fingerprint must be a JSON object", field="fingerprint")
    return doc

