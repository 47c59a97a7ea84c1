"""Alerts to incidents: deduplicate, suppress noise, group by time and topology, rank by impact.

The pipeline, vectorised with pandas/numpy so 100,000 alerts take a few seconds:

1. **Deduplicate.** An alert's identity is its fingerprint plus its label set (two different
   label sets that share a fingerprint stay apart). Notifications of one identity with the same
   ``starts_at`` are one *episode* (Alertmanager repeats a firing alert with an unchanged start
   and sends a resolved copy at the end); the episode is resolved when any copy is.
2. **Suppress noise** before grouping, so noise never glues incidents together: alerts labelled
   severity ``info``/``none``, and *flapping* identities (at least ``flap_count`` episodes that
   fired and resolved within ``flap_window`` seconds).
3. **Group by service and time.** Episodes on one service form a *burst* while each starts
   within ``window`` seconds of the end of an earlier one (an unresolved alert stays open until
   ``now``, so a late alert joins the open burst).
4. **Group by topology.** Faults spread from a dependency to its callers, so each burst is
   explained by at most one burst on a service it depends on (a pure path of ``calls``/
   ``reads``/``writes``/``publishes``/``runs_on`` edges, at most ``max_hops`` long) that is active
   within ``window`` of its onset: the nearest dependency, then the one that started first. A
   burst picks one explanation, never all, so a shared caller (the frontend) never fuses two
   unrelated faults; siblings that only share a caller are not connected. Incidents are the
   connected components of these links. Without a topology, only step 3 groups.
5. **Suppress symptoms**: a latency or error-rate alert on a service whose dependency in the
   same incident has a saturation, resource or crash alert. SLO-burn alerts are never
   suppressed: they are the user impact.
6. **Rank** incidents by user impact (:func:`impact_score`) and explain every grouping and
   suppression in words.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aisre.case import Alert, Topology
from aisre.errors import DataError, UsageError

__all__ = [
    "CAUSE_PATTERN",
    "ERROR_PATTERN",
    "SEVERITY_RANK",
    "SLO_PATTERN",
    "SYMPTOM_PATTERN",
    "Incident",
    "Suppressed",
    "TriageResult",
    "alert_kind",
    "impact_score",
    "triage",
]

SEVERITY_RANK = {
    "none": 0, "info": 1, "informational": 1, "low": 2, "warning": 2, "warn": 2, "minor": 2,
    "medium": 2, "error": 3, "high": 3, "major": 3, "critical": 4, "page": 4, "emergency": 4,
}  # fmt: skip
"""Order of severities, most severe highest; an unknown severity counts as warning."""

_NOISE_SEVERITIES = ("none", "info", "informational")

SLO_PATTERN = re.compile(r"slo|burn|error_?budget|errorbudget")
"""Alert names that report user impact (an SLO burning); never suppressed as symptoms."""

CAUSE_PATTERN = re.compile(
    r"cpu|memory|mem(?!ber)|oom|disk|saturat|pool|exhaust|throttl|crash|restart|down|unavailable|"
    r"unreachable|backoff|evict|filesystem|inode|swap|load|full|killed|thread|connections?_?limit"
)
"""Alert names that describe a cause: saturation, a resource running out, a crash."""

SYMPTOM_PATTERN = re.compile(r"latenc|slow|duration|response_?time|p9[059]|error|5xx|fail|timeout|apdex")
"""Alert names that describe a symptom a caller sees: latency or errors."""

ERROR_PATTERN = re.compile(
    r"error|5xx|fail|crash|down|unavailable|unreachable|exhaust|pool|oom|killed|backoff|refused|reset"
)
"""Alert names that mean requests fail (not only slow down): errors, crashes, exhausted pools."""

_GAP = float(np.finfo(np.float64).max)


def alert_kind(alertname: str) -> str:
    """Return ``"slo"``, ``"cause"``, ``"symptom"`` or ``"other"`` for an alert name.

    The name is matched lower-cased, CamelCase split by nothing: ``HighCPUUsage`` is a cause,
    ``HighLatency`` a symptom, ``SLOBurnRate`` an SLO alert.
    """
    name = str(alertname).lower()
    if SLO_PATTERN.search(name):
        return "slo"
    if CAUSE_PATTERN.search(name):
        return "cause"
    if SYMPTOM_PATTERN.search(name):
        return "symptom"
    return "other"


# --------------------------------------------------------------------------- results


def _when(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass
class Suppressed:
    """An alert kept out of the incidents, and why (in words)."""

    fingerprint: str
    reason: str
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"fingerprint", "reason"}``."""
        return {"fingerprint": self.fingerprint, "reason": self.reason}


@dataclass
class Incident:
    """Alerts that belong together, with the words that say why.

    ``services`` starts with the likely origin (the service every link leads to), ``alerts``
    lists fingerprints (symptoms suppressed in favour of their cause are in ``symptoms``),
    ``closed`` is ``None`` while any alert is firing, ``impact`` orders incidents.
    """

    id: str
    services: list[str]
    alerts: list[str]
    severity: str
    opened: float
    closed: float | None
    reasons: list[str]
    impact: float = 0.0
    symptoms: list[str] = field(default_factory=list)
    episodes: int = 0
    notifications: int = 0

    @property
    def origin(self) -> str:
        """The likely origin service: the first of ``services``."""
        return self.services[0] if self.services else ""

    @property
    def is_open(self) -> bool:
        """True while any of the incident's alerts is firing."""
        return self.closed is None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON contract: id, services, alerts, severity, opened, closed, reasons."""
        return {
            "id": self.id,
            "services": list(self.services),
            "alerts": list(self.alerts),
            "severity": self.severity,
            "opened": self.opened,
            "closed": self.closed,
            "reasons": list(self.reasons),
        }

    def _headline(self) -> str:
        state = "open" if self.closed is None else f"closed {_when(self.closed)}"
        return (
            f"{self.id}  {self.severity:<8} impact {self.impact:>5.0f}  opened {_when(self.opened)}  {state}\n"
            f"    services: {', '.join(self.services)}\n"
            f"    {len(self.alerts)} alerts ({len(self.symptoms)} symptoms suppressed, "
            f"{self.notifications} notifications)"
        )

    def __str__(self) -> str:
        return "\n".join([self._headline(), *(f"    - {r}" for r in self.reasons[:8])]) + (
            f"\n    - ... and {len(self.reasons) - 8} more" if len(self.reasons) > 8 else ""
        )

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        state = "open" if self.closed is None else f"closed {_when(self.closed)}"
        return (
            f"<p><b>{html.escape(self.id)}</b> · {html.escape(self.severity)} · impact {self.impact:.0f} · "
            f"opened {_when(self.opened)} · {state}<br>services: {html.escape(', '.join(self.services))}"
            f"<br>{len(self.alerts)} alerts, {len(self.symptoms)} symptoms suppressed</p><ul>{items}</ul>"
        )


@dataclass
class TriageResult:
    """Incidents ranked by user impact (highest first), the suppressed alerts, and the episode
    table (one row per deduplicated alert episode: ``fingerprint, start, end, resolved,
    service, alertname, severity, kind, notifications, incident, suppressed``)."""

    incidents: list[Incident]
    suppressed: list[Suppressed]
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    alerts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"incidents": [...], "suppressed": [{"fingerprint", "reason"}]}``."""
        return {
            "incidents": [i.to_dict() for i in self.incidents],
            "suppressed": [s.to_dict() for s in self.suppressed],
        }

    def incident(self, incident_id: str) -> Incident:
        """Return the incident with *incident_id*.

        Raises:
            UsageError: when no incident has that id.
        """
        for inc in self.incidents:
            if inc.id == incident_id:
                return inc
        raise UsageError(f"no incident {incident_id!r}; known: {', '.join(i.id for i in self.incidents[:10])}")

    def __len__(self) -> int:
        return len(self.incidents)

    def __str__(self) -> str:
        head = (
            f"{len(self.incidents)} incidents from {self.alerts} alerts "
            f"({len(self.episodes)} after deduplication, {len(self.suppressed)} suppressed)"
        )
        parts = [head, *(str(i) for i in self.incidents[:20])]
        if len(self.incidents) > 20:
            parts.append(f"... and {len(self.incidents) - 20} more incidents")
        if self.suppressed:
            parts.append("suppressed:")
            parts.extend(f"    {s.fingerprint}  {s.reason}" for s in self.suppressed[:10])
            if len(self.suppressed) > 10:
                parts.append(f"    ... and {len(self.suppressed) - 10} more")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(c))}</td>"
                for c in (
                    i.id, i.severity, f"{i.impact:.0f}", _when(i.opened),
                    "open" if i.closed is None else _when(i.closed),
                    ", ".join(i.services), len(i.alerts), i.reasons[0] if i.reasons else "",
                )
            )  # fmt: skip
            + "</tr>"
            for i in self.incidents[:50]
        )
        supp = "".join(
            f"<tr><td>{html.escape(s.fingerprint)}</td><td>{html.escape(s.reason)}</td></tr>"
            for s in self.suppressed[:50]
        )
        return (
            f"<p><b>{len(self.incidents)} incidents</b> from {self.alerts} alerts, "
            f"{len(self.suppressed)} suppressed</p>"
            "<table><thead><tr><th>id</th><th>severity</th><th>impact</th><th>opened</th><th>closed</th>"
            f"<th>services</th><th>alerts</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
            + (
                f"<details><summary>suppressed</summary><table><tbody>{supp}</tbody></table></details>"
                if supp
                else ""
            )
        )


# --------------------------------------------------------------------------- input


def _service_of(alert: Alert) -> str:
    if alert.service:
        return str(alert.service)
    labels = alert.labels or {}
    for key in ("service", "app", "app_kubernetes_io_name", "job", "deployment", "container", "instance"):
        if labels.get(key):
            return str(labels[key])
    return "(unknown)"


def _frame(alerts: Sequence[Alert]) -> pd.DataFrame:
    """One row per notification, validated.

    Raises:
        DataError: for an item that is not an Alert or carries a non-numeric or non-finite time.
    """
    rows = []
    for i, a in enumerate(alerts):
        if not isinstance(a, Alert):
            raise DataError("triage takes aisre.case.Alert objects", field="alerts", row=i, value=type(a).__name__)
        labels = a.labels if isinstance(a.labels, dict) else {}
        rows.append(
            (
                str(a.fingerprint or ""),
                # labels as text: a label set, in one comparable value
                "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items())),
                str(labels.get("alertname", "") or ""),
                _service_of(a),
                str(a.severity or labels.get("severity") or "warning").lower(),
                str(a.status),
                a.starts_at,
                a.ends_at,
                labels.get("tier"),
            )
        )
    cols = ["fingerprint", "labelset", "alertname", "service", "severity", "status", "start", "end", "tier"]
    df = pd.DataFrame.from_records(rows, columns=cols)
    for col in ("start", "end"):
        try:
            df[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            bad = next(i for i, v in enumerate(df[col]) if not _numeric(v))
            raise DataError("alert time is not a number", field=f"alerts[{bad}].{col}", value=df[col][bad]) from exc
    bad_start = ~np.isfinite(df["start"].to_numpy())
    if bad_start.any():
        i = int(np.flatnonzero(bad_start)[0])
        raise DataError("alert has no finite start time", field=f"alerts[{i}].starts_at", value=df["start"][i])
    bad_status = ~df["status"].isin(("firing", "resolved"))
    if bad_status.any():
        i = int(np.flatnonzero(bad_status.to_numpy())[0])
        raise DataError("alert status must be firing or resolved", field=f"alerts[{i}].status", value=df["status"][i])
    missing = df["fingerprint"] == ""
    if missing.any():
        df.loc[missing, "fingerprint"] = [
            hashlib.sha1(s.encode()).hexdigest()[:16] for s in df.loc[missing, "labelset"]
        ]
    return df


def _numeric(v: Any) -> bool:
    if v is None:
        return True
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _episodes(df: pd.DataFrame) -> pd.DataFrame:
    """Collapse notifications into episodes: one per (identity, start)."""
    identity = pd.factorize(df["fingerprint"] + "\x1d" + df["labelset"])[0]
    df = df.assign(identity=identity, resolved=df["status"].eq("resolved"))
    end_if_resolved = df["end"].where(df["resolved"])
    df = df.assign(end_r=end_if_resolved, sev_rank=df["severity"].map(SEVERITY_RANK).fillna(2).astype(int))
    g = df.groupby(["identity", "start"], sort=False)
    ep = g.agg(
        fingerprint=("fingerprint", "first"),
        alertname=("alertname", "first"),
        service=("service", "first"),
        tier=("tier", "first"),
        sev_rank=("sev_rank", "max"),
        severity=("severity", "first"),
        resolved=("resolved", "any"),
        end=("end_r", "max"),
        notifications=("status", "size"),
    ).reset_index()
    # a resolved copy without an end time resolved no later than we heard of it
    no_end = ep["resolved"] & ep["end"].isna()
    ep.loc[no_end, "end"] = ep.loc[no_end, "start"]
    ep["end"] = np.maximum(ep["end"].to_numpy(), ep["start"].to_numpy(), where=ep["resolved"].to_numpy(), out=ep["end"].to_numpy().copy())
    sev_names = {4: "critical", 3: "error", 2: "warning", 1: "info", 0: "none"}
    ep["severity"] = np.where(
        ep["severity"].isin(_NOISE_SEVERITIES), ep["severity"], ep["sev_rank"].map(sev_names)
    )
    ep = ep.sort_values(["start", "identity"], kind="stable").reset_index(drop=True)
    return ep


# --------------------------------------------------------------------------- noise


def _flapping(ep: pd.DataFrame, flap_count: int, flap_window: float) -> np.ndarray:
    """Mask of episodes that belong to a flapping run of their identity."""
    res = ep[ep["resolved"]]
    if len(res) < flap_count:
        return np.zeros(len(ep), dtype=bool)
    t0 = float(ep["start"].min())
    span = float(ep["start"].max()) - t0 + 4 * flap_window + 1.0
    # one sorted key per identity band, so searchsorted works on all identities at once
    rkey = np.sort(res["identity"].to_numpy() * span + (res["start"].to_numpy() - t0))
    lo = np.searchsorted(rkey, rkey - flap_window, side="left")
    flagged = rkey[(np.arange(len(rkey)) - lo + 1) >= flap_count]
    if flagged.size == 0:
        return np.zeros(len(ep), dtype=bool)
    key = ep["identity"].to_numpy() * span + (ep["start"].to_numpy() - t0)
    idx = np.searchsorted(flagged, key)
    after = flagged[np.minimum(idx, flagged.size - 1)]
    before = flagged[np.maximum(idx - 1, 0)]
    near_after = (idx < flagged.size) & (after - key <= flap_window)
    near_before = (idx > 0) & (key - before <= flap_window)
    return near_after | near_before


# --------------------------------------------------------------------------- topology


def _dependency_pairs(topology: Topology, max_hops: int) -> pd.DataFrame:
    """``(service, dep, hops)`` for every dependency reachable by a pure path of <= max_hops."""
    g = nx.DiGraph()
    g.add_nodes_from(topology.graph.nodes)
    g.add_edges_from((u, v) for u, v in topology.graph.edges())
    rows = [
        (src, dst, d)
        for src in g.nodes
        for dst, d in nx.single_source_shortest_path_length(g, src, cutoff=max_hops).items()
        if d > 0
    ]
    return pd.DataFrame(rows, columns=["service", "dep", "hops"])


def _entry_services(topology: Topology | None) -> set[str]:
    if topology is None:
        return set()
    g = topology.call_graph()
    marked = {n for n, d in g.nodes(data=True) if d.get("entry")}
    if marked:
        return marked
    services = [n for n, d in g.nodes(data=True) if d.get("kind", "service") == "service"]
    return {n for n in services if g.in_degree(n) == 0 and g.out_degree(n) > 0}


def _resolve_names(services: pd.Series, topology: Topology | None) -> pd.Series:
    """Map alert service names onto topology node names (exact, then case-insensitive)."""
    if topology is None:
        return services
    nodes = set(topology.graph.nodes)
    lower = {str(n).lower(): n for n in nodes}
    uniq = services.unique()
    mapping = {s: (s if s in nodes else lower.get(str(s).lower(), s)) for s in uniq}
    return services.map(mapping)


# --------------------------------------------------------------------------- grouping


def _bursts(ep: pd.DataFrame, window: float) -> np.ndarray:
    """Burst id per episode: same service, each starting within *window* of an earlier end."""
    order = np.lexsort((ep["start"].to_numpy(), ep["svc_code"].to_numpy()))
    svc = ep["svc_code"].to_numpy()[order]
    start = ep["start"].to_numpy()[order]
    active = ep["active_end"].to_numpy()[order]
    s = pd.Series(active)
    run_max = s.groupby(svc).cummax().to_numpy()
    prev_max = np.r_[-np.inf, run_max[:-1]]
    new = np.r_[True, svc[1:] != svc[:-1]] | (start > prev_max + window)
    burst_sorted = np.cumsum(new) - 1
    out = np.empty(len(ep), dtype=np.int64)
    out[order] = burst_sorted
    return out


def _silent_causes(
    bursts: pd.DataFrame, links: pd.DataFrame, pairs: pd.DataFrame, window: float
) -> pd.DataFrame:
    """Links between unexplained bursts on the direct callers of one silent dependency.

    A fault on a service with no alert of its own still makes its callers alert, and those
    callers share no alerting dependency, so nothing else links them. Unexplained bursts with
    only symptoms (no cause alert), starting within *window* of each other, join when they are
    direct callers of one dependency and make up at least half of its callers; each picks the
    dependency most of them share. Returns ``burst, parent, hops, silent`` rows.
    """
    cols = ["burst", "parent", "hops", "silent"]
    if pairs.empty or bursts.empty:
        return pd.DataFrame(columns=cols)
    roots = bursts[~bursts["burst"].isin(links["burst"]) & ~bursts["has_cause"].astype(bool)]
    direct = pairs[pairs["hops"] == 1]
    if len(roots) < 2 or direct.empty:
        return pd.DataFrame(columns=cols)
    n_callers = direct.groupby("dep")["service"].nunique()
    cand = roots[["burst", "service", "t0"]].merge(direct, on="service")
    if cand.empty:
        return pd.DataFrame(columns=cols)
    cand = cand.sort_values(["dep", "t0"], kind="stable").reset_index(drop=True)
    dep_codes = pd.factorize(cand["dep"])[0]
    t0 = cand["t0"].to_numpy()
    new = np.r_[True, dep_codes[1:] != dep_codes[:-1]] | (np.r_[-np.inf, t0[:-1]] + window < t0)
    cand["cluster"] = np.cumsum(new) - 1
    cand["size"] = cand.groupby("cluster")["service"].transform("nunique")
    cand = cand[(cand["size"] >= 2) & (cand["size"] * 2 >= cand["dep"].map(n_callers))]
    if cand.empty:
        return pd.DataFrame(columns=cols)
    best = cand.sort_values(["burst", "size", "dep"], ascending=[True, False, True], kind="stable")
    best = best.drop_duplicates("burst")
    best = best[best.groupby("cluster")["service"].transform("nunique") >= 2]
    if best.empty:
        return pd.DataFrame(columns=cols)
    first = best.sort_values(["cluster", "t0", "burst"], kind="stable").drop_duplicates("cluster")
    best = best.assign(parent=best["cluster"].map(first.set_index("cluster")["burst"]))
    best = best[best["parent"] != best["burst"]]
    return pd.DataFrame(
        {"burst": best["burst"].to_numpy(), "parent": best["parent"].to_numpy(),
         "hops": best["hops"].to_numpy(), "silent": best["dep"].to_numpy()}
    )  # fmt: skip


def _explanations(bursts: pd.DataFrame, pairs: pd.DataFrame, window: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each burst, the one burst on a dependency that explains it (if any), and every
    candidate that could.

    Returns ``(best, candidates)``, both ``burst, parent, hops`` rows. Candidates are found by a
    join on (time bucket, dependency) so the work grows with the candidates, not with the square
    of the bursts.
    """
    none = pd.DataFrame(columns=["burst", "parent", "hops"])
    if bursts.empty or pairs.empty:
        return none, none
    b = bursts[["burst", "service", "t0", "t1", "weak"]]
    bucket = np.floor(b["t0"].to_numpy() / window).astype(np.int64)
    keys = np.unique(bucket)
    # each candidate is expanded over the start-buckets its active span can explain
    lo = np.searchsorted(keys, np.floor((b["t0"].to_numpy() - window) / window).astype(np.int64), side="left")
    hi = np.searchsorted(keys, np.floor((b["t1"].to_numpy() + window) / window).astype(np.int64), side="right")
    n = np.maximum(hi - lo, 0)
    rep = np.repeat(np.arange(len(b)), n)
    offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    cand = pd.DataFrame(
        {
            "bucket": keys[np.repeat(lo, n) + offs],
            "dep": b["service"].to_numpy()[rep],
            "parent": b["burst"].to_numpy()[rep],
            "p0": b["t0"].to_numpy()[rep],
            "p1": b["t1"].to_numpy()[rep],
            "weak": b["weak"].to_numpy()[rep],
        }
    )
    left = pd.DataFrame(
        {"burst": b["burst"].to_numpy(), "service": b["service"].to_numpy(), "t0": b["t0"].to_numpy(),
         "bucket": bucket, "bweak": b["weak"].to_numpy()}
    )  # fmt: skip
    left = left.merge(pairs, on="service", how="inner")
    m = left.merge(cand, on=["bucket", "dep"], how="inner")
    m = m[(m["p0"] <= m["t0"] + window) & (m["p1"] + window >= m["t0"]) & (m["parent"] != m["burst"])]
    # an unclassified alert (a certificate expiring) does not explain a latency, error or
    # saturation alert on a caller; it may still explain another unclassified one
    m = m[~m["weak"] | m["bweak"]]
    if m.empty:
        return none, none
    # the nearest dependency; then one already alerting
    # before, the earliest (the fault that reached this service first); else the soonest after
    m = m.assign(after=(m["p0"] > m["t0"]).astype(np.int8))
    m = m.sort_values(["burst", "hops", "after", "p0", "parent"], kind="stable")
    best = m.drop_duplicates("burst", keep="first")
    every = m.drop_duplicates(["burst", "parent"])[["burst", "parent", "hops"]].reset_index(drop=True)
    return best[["burst", "parent", "hops"]].reset_index(drop=True), every


def _service_levels(pairs: pd.DataFrame) -> dict[str, int]:
    """Depth of each service in the dependency graph: 0 for services that depend on nothing,
    else one more than their deepest dependency (a dependency cycle shares one level)."""
    direct = pairs[pairs["hops"] == 1]
    g = nx.DiGraph()
    g.add_edges_from(zip(direct["service"], direct["dep"], strict=True))
    cond = nx.condensation(g)
    level: dict[int, int] = {}
    for c in reversed(list(nx.topological_sort(cond))):
        level[c] = 1 + max((level[d] for d in cond.successors(c)), default=-1)
    return {n: level[c] for n, c in cond.graph["mapping"].items()}


def _attribute(
    live: pd.DataFrame, candidates: pd.DataFrame, links: pd.DataFrame, bursts: pd.DataFrame, pairs: pd.DataFrame, window: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attribute every alert episode to one incident, so a shared caller's alerts can split.

    A service that several simultaneous faults reach (the frontend calling everything) fires one
    burst of alerts that no single explanation fits: each of its alerts was raised by the fault
    that reached it. So each episode of an explained burst weighs the incidents alerting on its
    dependencies: an incident is expected to reach the service one propagation lag per hop after
    it alerted on a dependency (the lag is the median one of this alert stream's links), and the
    episode goes to the incident expected to arrive last before it started (the one that had
    just reached the service), else to the first expected after it. A caller's error alert
    looks only at dependencies whose alerts fail requests, where there are any. Services are visited from
    the deepest dependency up, so a shared dependency is split before its callers look at it.
    An SLO alert burns the service's whole error budget: it goes with the first incident that
    alerted on the service before it. An episode no dependency alert explains in time follows
    the sibling on its service that started last before it.

    Returns ``(label, choice, hops)`` per row of *live*: the incident label (a base component),
    the row of the chosen explaining episode (-1 for none) and its distance in hops.
    """
    n = len(live)
    lab = live["comp"].to_numpy().copy()
    choice = np.full(n, -1, dtype=np.int64)
    hops = np.zeros(n, dtype=np.int64)
    if candidates.empty or n == 0:
        return lab, choice, hops
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    end = live["active_end"].to_numpy()
    lag = _propagation_lag(links, bursts)
    e = pd.DataFrame({"e": np.arange(n), "burst": burst, "t": t})
    q = pd.DataFrame({"q": np.arange(n), "parent": burst, "qt": t, "qend": end})
    cand = candidates.astype({"burst": np.int64, "parent": np.int64, "hops": np.int64})
    j = e.merge(cand, on="burst").merge(q, on="parent")
    j = j[(j["qend"] + window >= j["t"]) & (j["qt"] <= j["t"] + window)]
    # a caller's errors come from a dependency that fails requests, not one that is only slow
    fails = live["alertname"].map({a: bool(ERROR_PATTERN.search(str(a).lower())) for a in live["alertname"].unique()})
    fails = fails.to_numpy(dtype=bool)
    j = j.assign(
        arrival=j["qt"] + lag * j["hops"],
        mismatch=(fails[j["e"].to_numpy()] & ~fails[j["q"].to_numpy()]).astype(np.int8),
    )
    j = j.sort_values(["e", "arrival", "hops", "q"], kind="stable")
    # only where a matching explanation exists: otherwise any dependency explains it
    j = j[j["mismatch"] <= j.groupby("e")["mismatch"].transform("min")]
    levels = _service_levels(pairs)
    lvl = live["service"].map(levels).fillna(0).to_numpy(dtype=np.int64)
    explained = np.zeros(n, dtype=bool)
    explained[j["e"].to_numpy()] = True
    in_explained_burst = np.isin(burst, cand["burst"].to_numpy())
    is_slo = live["kind"].eq("slo").to_numpy()
    follows = in_explained_burst & (is_slo | ~explained)
    j = j[~follows[j["e"].to_numpy()]]
    j_lvl = lvl[j["e"].to_numpy()]
    for level in np.unique(lvl[in_explained_burst]):
        sel = j[j_lvl == level]
        if len(sel):
            # each incident's earliest expected arrival, then the one closest to the episode
            sel = sel.assign(lab=lab[sel["q"].to_numpy()]).drop_duplicates(["e", "lab"])
            # the incident expected to arrive last before the episode started raised it
            d = sel["t"] - sel["arrival"]
            sel = sel.assign(after=d < 0, dist=d.abs()).sort_values(["e", "after", "dist", "q"], kind="stable")
            best = sel.drop_duplicates("e")
            b_e = best["e"].to_numpy()
            lab[b_e] = best["lab"].to_numpy()
            choice[b_e] = best["q"].to_numpy()
            hops[b_e] = best["hops"].to_numpy()
        fol = np.flatnonzero(follows & (lvl == level))
        if fol.size:
            lab[fol] = _sibling_labels(fol, burst, t, lab, choice, first=is_slo[fol])
    return lab, choice, hops


def _propagation_lag(links: pd.DataFrame, bursts: pd.DataFrame) -> float:
    """Median seconds per hop between a dependency's first alert and its caller's, over the
    links of this alert stream (0 when there are none)."""
    if links.empty:
        return 0.0
    t0 = bursts.set_index("burst")["t0"]
    b = links["burst"].to_numpy(dtype=np.int64)
    p = links["parent"].to_numpy(dtype=np.int64)
    h = links["hops"].to_numpy(dtype=np.float64)
    per_hop = (t0.reindex(b).to_numpy() - t0.reindex(p).to_numpy()) / np.maximum(h, 1.0)
    per_hop = per_hop[np.isfinite(per_hop) & (per_hop >= 0)]
    return float(np.median(per_hop)) if per_hop.size else 0.0


def _sibling_labels(
    rows: np.ndarray, burst: np.ndarray, t: np.ndarray, lab: np.ndarray, choice: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Label of a sibling (same burst, explained by a dependency) for each of *rows*: the first
    started before it where *first*, else the latest before; failing that the earliest after;
    failing that the row's own label."""
    leaders = np.flatnonzero(choice >= 0)
    out = lab[rows].copy()
    if leaders.size == 0:
        return out
    lead = pd.DataFrame({"burst": burst[leaders], "t": t[leaders], "lab": lab[leaders]}).sort_values("t", kind="stable")
    want = pd.DataFrame({"burst": burst[rows], "t": t[rows], "k": np.arange(rows.size)}).sort_values("t", kind="stable")
    got = np.zeros(rows.size, dtype=bool)
    earliest = lead.drop_duplicates("burst").rename(columns={"t": "t_first", "lab": "lab_first"})
    w = want.merge(earliest, on="burst", how="left")
    take = first[w["k"].to_numpy()] & (w["t_first"] <= w["t"]).to_numpy()
    k = w["k"].to_numpy()[take]
    out[k] = w["lab_first"].to_numpy()[take].astype(out.dtype)
    got[k] = True
    for direction in ("backward", "forward"):
        m = pd.merge_asof(want, lead, on="t", by="burst", direction=direction)
        hit = m["lab"].notna().to_numpy() & ~got[m["k"].to_numpy()]
        k = m["k"].to_numpy()[hit]
        out[k] = m["lab"].to_numpy()[hit].astype(out.dtype)
        got[k] = True
    return out


def _split_bursts(
    live: pd.DataFrame, bursts: pd.DataFrame, links: pd.DataFrame, label: np.ndarray, choice: np.ndarray, hops: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Split each burst by incident label into sub-bursts and link each to what explains it.

    Returns ``(sub-burst per row of live, sub-burst table, links between sub-bursts)``; a
    sub-burst of a burst that went to several incidents says so in ``split``.
    """
    old = live["burst"].to_numpy()
    sub, _ = pd.factorize(pd.Series(old) * (int(label.max()) + 1 if len(label) else 1) + label)
    sub = sub.astype(np.int64)
    frame = pd.DataFrame({"sub": sub, "burst": old, "lab": label, "t": live["start"].to_numpy(),
                          "t1": live["active_end"].to_numpy(), "choice": choice, "hops": hops})  # fmt: skip
    table = frame.groupby("sub", sort=True).agg(
        burst=("burst", "first"), comp=("lab", "first"), t0=("t", "min"), t1=("t1", "max"), n=("t", "size")
    )
    parts = table.groupby("burst")["comp"].transform("size")
    table = table.assign(split=parts.to_numpy() > 1)
    first = bursts.set_index("burst").reindex(table["burst"].to_numpy())
    table = table.assign(
        service=first["service"].to_numpy(), weak=first["weak"].to_numpy(), has_cause=first["has_cause"].to_numpy()
    ).reset_index().rename(columns={"sub": "burst", "burst": "orig"})
    # a sub-burst's link: the choice of its earliest episode explained by a dependency
    chosen = frame[frame["choice"] >= 0].sort_values(["sub", "t"], kind="stable").drop_duplicates("sub")
    new_links = pd.DataFrame(
        {"burst": chosen["sub"].to_numpy(), "parent": sub[chosen["choice"].to_numpy()],
         "hops": chosen["hops"].to_numpy(), "silent": None}
    )  # fmt: skip
    # links of unexplained bursts (silent causes, cycles) carry over to their one sub-burst
    by_orig = table.drop_duplicates("orig").set_index("orig")
    rest = links[~links["burst"].isin(table.loc[table["burst"].isin(new_links["burst"]), "orig"])]
    rest = rest[rest["burst"].isin(by_orig.index) & rest["parent"].isin(by_orig.index)]
    carried = pd.DataFrame(
        {"burst": by_orig.loc[rest["burst"], "burst"].to_numpy(), "parent": by_orig.loc[rest["parent"], "burst"].to_numpy(),
         "hops": rest["hops"].to_numpy(), "silent": rest["silent"].to_numpy()}
    )  # fmt: skip
    carried = carried[~carried["burst"].isin(new_links["burst"])]
    all_links = pd.concat([new_links, carried], ignore_index=True)
    all_links = all_links[all_links["burst"] != all_links["parent"]]
    return sub, table, all_links.reset_index(drop=True)


# --------------------------------------------------------------------------- impact


def impact_score(
    *,
    slo_on_entry: bool,
    slo_anywhere: bool,
    critical_tier: bool,
    entry_touched: bool,
    severity_rank: int,
    is_open: bool,
    n_services: int,
) -> float:
    """Return the user-impact score that orders incidents (higher first).

    SLO burn on an entry service dominates (100), then SLO burn elsewhere (40), a critical-tier
    service affected (30), an entry service alerting (20), severity (5 per step, critical 20),
    still open (5), and log2(1 + services) to break ties toward wider incidents.
    """
    return (
        100.0 * slo_on_entry
        + 40.0 * slo_anywhere
        + 30.0 * critical_tier
        + 20.0 * entry_touched
        + 5.0 * severity_rank
        + 5.0 * is_open
        + math.log2(1 + n_services)
    )


# --------------------------------------------------------------------------- entry point


def triage(
    alerts: Sequence[Alert],
    topology: Topology | None = None,
    *,
    window: float = 300.0,
    now: float | None = None,
    max_hops: int = 3,
    flap_count: int = 3,
    flap_window: float = 1800.0,
) -> TriageResult:
    """Return the incidents *alerts* make, ranked by user impact, and the alerts suppressed.

    *window* (seconds) is how close in time alerts must be to group; *now* (unix seconds,
    default the latest time in the alerts) is when still-firing alerts are judged open;
    *max_hops* bounds the dependency path between grouped services; an identity that fired and
    resolved *flap_count* times within *flap_window* seconds is flapping.

    Raises:
        UsageError: for a non-positive window, max_hops < 0 or flap_count < 2.
        DataError: for an item that is not an Alert, or a bad time or status.
    """
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise UsageError(f"window must be a positive number of seconds, not {window!r}")
    if int(max_hops) < 0 or int(flap_count) < 2 or not flap_window > 0:
        raise UsageError("max_hops must be >= 0, flap_count >= 2 and flap_window > 0")
    if topology is not None and not isinstance(topology, Topology):
        raise UsageError(f"topology must be an aisre.case.Topology, not {type(topology).__name__}")
    alerts = list(alerts)
    if not alerts:
        return TriageResult([], [], _empty_episodes(), 0)
    df = _frame(alerts)
    ep = _episodes(df)
    ep["service"] = _resolve_names(ep["service"], topology)
    latest = float(np.nanmax(np.r_[ep["start"].to_numpy(), ep["end"].to_numpy()]))
    now_t = latest if now is None else float(now)
    ep["kind"] = ep["alertname"].map({n: alert_kind(n) for n in ep["alertname"].unique()})
    ep["suppressed"] = pd.Series([None] * len(ep), dtype=object)
    ep["incident"] = pd.Series([None] * len(ep), dtype=object)

    suppressed: list[Suppressed] = []
    info = ep["severity"].isin(_NOISE_SEVERITIES).to_numpy()
    flap = _flapping(ep, int(flap_count), float(flap_window)) & ~info
    ep.loc[info, "suppressed"] = "info"
    ep.loc[flap, "suppressed"] = "flapping"
    suppressed += _noise_records(ep, info, flap, flap_window)

    live = ep[~(info | flap)].copy()
    live["active_end"] = np.where(live["resolved"], live["end"], max(now_t, float(live["start"].max()) if len(live) else now_t))
    codes, uniques = pd.factorize(live["service"])
    live["svc_code"] = codes
    live["burst"] = _bursts(live, float(window)) if len(live) else np.zeros(0, dtype=np.int64)

    bursts = (
        live.groupby("burst", sort=True)
        .agg(service=("service", "first"), t0=("start", "min"), t1=("active_end", "max"), n=("start", "size"))
        .reset_index()
    )
    pairs = _dependency_pairs(topology, int(max_hops)) if topology is not None and max_hops > 0 else pd.DataFrame(columns=["service", "dep", "hops"])
    # a burst of only "other" alerts (a certificate expiring) explains a caller's pain poorly
    weak = np.ones(len(bursts), dtype=bool)
    weak[live.loc[~live["kind"].eq("other"), "burst"].to_numpy()] = False
    bursts["weak"] = weak
    links, candidates = _explanations(bursts, pairs, float(window))
    has_cause = np.zeros(len(bursts), dtype=bool)
    has_cause[live.loc[live["kind"].eq("cause"), "burst"].to_numpy()] = True
    bursts["has_cause"] = has_cause
    silent = _silent_causes(bursts, links, pairs, float(window))
    links = pd.concat([links.assign(silent=None), silent], ignore_index=True) if len(silent) else links.assign(silent=None)
    nb = len(bursts)
    if nb:
        graph = coo_matrix(
            (np.ones(len(links)), (links["burst"].to_numpy(dtype=np.int64), links["parent"].to_numpy(dtype=np.int64))),
            shape=(nb, nb),
        )
        _, comp = connected_components(graph, directed=True, connection="weak")
    else:
        comp = np.zeros(0, dtype=np.int64)
    bursts["comp"] = comp
    live["comp"] = comp[live["burst"].to_numpy()]
    if len(candidates):
        label, choice, hop = _attribute(live, candidates, links, bursts, pairs, float(window))
        sub, bursts, links = _split_bursts(live, bursts, links, label, choice, hop)
        live["burst"] = sub
        codes = pd.factorize(bursts["comp"], sort=True)[0]
        bursts["comp"] = codes
        live["comp"] = codes[sub]

    symptom_of = _symptoms(live, pairs)
    incidents, ids = _build_incidents(live, bursts, links, symptom_of, topology, float(window), now_t)
    live["incident"] = ids[live["comp"].to_numpy()]
    sym_mask = live.index.isin(symptom_of.index)
    live.loc[sym_mask, "suppressed"] = "symptom"
    ep.loc[live.index, "incident"] = live["incident"]
    ep.loc[live.index, "suppressed"] = live["suppressed"]
    suppressed += _symptom_records(live, symptom_of)

    order = {inc.id: k for k, inc in enumerate(incidents)}
    suppressed.sort(key=lambda s: (order.get(s.incident or "", len(order)), s.reason, s.fingerprint))
    keep = ["fingerprint", "start", "end", "resolved", "service", "alertname", "severity", "kind", "notifications", "incident", "suppressed"]
    return TriageResult(incidents, suppressed, ep[keep].reset_index(drop=True), len(alerts))


def _empty_episodes() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["fingerprint", "start", "end", "resolved", "service", "alertname", "severity", "kind", "notifications", "incident", "suppressed"]
    )


def _noise_records(ep: pd.DataFrame, info: np.ndarray, flap: np.ndarray, flap_window: float) -> list[Suppressed]:
    out: list[Suppressed] = []
    if info.any():
        sub = ep[info].drop_duplicates("fingerprint")
        out += [
            Suppressed(fp, f"informational: {name or 'alert'} on {svc} is labelled severity {sev}, not a problem to page on")
            for fp, name, svc, sev in zip(sub["fingerprint"], sub["alertname"], sub["service"], sub["severity"], strict=True)
        ]
    if flap.any():
        sub = ep[flap]
        stats = sub.groupby("fingerprint", sort=False).agg(
            alertname=("alertname", "first"), svc=("service", "first"), n=("start", "size"),
            first=("start", "min"), last=("start", "max"),
        )  # fmt: skip
        out += [
            Suppressed(
                fp,
                f"flapping: {name or 'alert'} on {svc} fired and resolved {n} times between "
                f"{_when(first)} and {_when(last)}, too often to page on",
            )
            for fp, name, svc, n, first, last in zip(
                stats.index, stats["alertname"], stats["svc"], stats["n"], stats["first"], stats["last"], strict=True
            )
        ]
    return out


def _symptoms(live: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Symptom episodes whose cause sits on a dependency in the same incident.

    Returns a frame indexed like *live* with the cause's ``dep``, ``cause_name`` and ``hops``.
    """
    empty = pd.DataFrame(columns=["dep", "cause_name", "hops"])
    if pairs.empty or live.empty:
        return empty
    causes = live.loc[live["kind"].eq("cause"), ["comp", "service", "alertname"]]
    sym = live.loc[live["kind"].eq("symptom"), ["comp", "service"]]
    if causes.empty or sym.empty:
        return empty
    causes = causes.drop_duplicates(["comp", "service"]).rename(columns={"service": "dep", "alertname": "cause_name"})
    sym_keys = sym.drop_duplicates()
    m = sym_keys.merge(pairs, on="service").merge(causes, on=["comp", "dep"])
    if m.empty:
        return empty
    m = m.sort_values(["comp", "service", "hops"], kind="stable").drop_duplicates(["comp", "service"])
    joined = sym.reset_index().merge(m, on=["comp", "service"], how="inner").set_index("index")
    return joined[["dep", "cause_name", "hops"]]


def _symptom_records(live: pd.DataFrame, symptom_of: pd.DataFrame) -> list[Suppressed]:
    if symptom_of.empty:
        return []
    sub = live.loc[symptom_of.index, ["fingerprint", "alertname", "service", "incident"]].join(symptom_of)
    sub = sub.drop_duplicates("fingerprint")
    return [
        Suppressed(
            fp,
            f"symptom: {name or 'alert'} on {svc} is explained by {cause} on {dep}, which it depends on "
            f"({int(hops)} hop{'s' if hops != 1 else ''}), in the same incident {inc}",
            inc,
        )
        for fp, name, svc, inc, dep, cause, hops in zip(
            sub["fingerprint"], sub["alertname"], sub["service"], sub["incident"],
            sub["dep"], sub["cause_name"], sub["hops"], strict=True,
        )  # fmt: skip
    ]


def _names(values: Sequence[str], k: int = 3) -> str:
    uniq = list(dict.fromkeys(v for v in values if v))
    shown = ", ".join(uniq[:k])
    return shown + (f" and {len(uniq) - k} more" if len(uniq) > k else "")


def _build_incidents(
    live: pd.DataFrame,
    bursts: pd.DataFrame,
    links: pd.DataFrame,
    symptom_of: pd.DataFrame,
    topology: Topology | None,
    window: float,
    now: float,
) -> tuple[list[Incident], np.ndarray]:
    """Incident objects, ranked, and the incident id of each component (index = component).

    Aggregates are computed per component with groupby; the loop only formats words.
    """
    ncomp = int(bursts["comp"].max()) + 1 if len(bursts) else 0
    if ncomp == 0:
        return [], np.array([], dtype=object)
    entry = _entry_services(topology)
    tiers: dict[str, str] = {}
    if topology is not None:
        tiers = {n: d.get("tier", "standard") for n, d in topology.graph.nodes(data=True)}
    live = live.assign(
        is_symptom=live.index.isin(symptom_of.index),
        is_entry=live["service"].isin(entry),
        is_crit=live["service"].map(tiers).eq("critical") | live["tier"].eq("critical"),
        is_slo=live["kind"].eq("slo"),
    )
    live = live.assign(slo_entry=live["is_slo"] & live["is_entry"])
    live = live.sort_values(["comp", "start"], kind="stable")
    g = live.groupby("comp", sort=True)
    agg = g.agg(
        opened=("start", "min"),
        resolved=("resolved", "all"),
        closed=("end", "max"),
        sev_rank=("sev_rank", "max"),
        notifications=("notifications", "sum"),
        episodes=("start", "size"),
        entry=("is_entry", "any"),
        crit=("is_crit", "any"),
        slo=("is_slo", "any"),
        slo_entry=("slo_entry", "any"),
        first_fp=("fingerprint", "first"),
    )
    top_sev = live.loc[live.groupby("comp", sort=True)["sev_rank"].idxmax(), "severity"].to_numpy()
    n_services = g["service"].nunique().to_numpy()
    fps = live.drop_duplicates(["comp", "fingerprint", "is_symptom"])
    alerts_of = fps[~fps["is_symptom"]].groupby("comp")["fingerprint"].agg(list)
    symptoms_of = fps[fps["is_symptom"]].groupby("comp")["fingerprint"].agg(list)
    slo_svcs = live[live["is_slo"]].groupby("comp")["service"].agg(lambda s: sorted(set(s)))
    entry_svcs = live[live["is_entry"]].groupby("comp")["service"].agg(lambda s: sorted(set(s)))
    crit_svcs = live[live["is_crit"]].groupby("comp")["service"].agg(lambda s: sorted(set(s)))

    parent_of = dict(zip(links["burst"].tolist(), links["parent"].tolist(), strict=True))
    hops_of = dict(zip(links["burst"].tolist(), links["hops"].tolist(), strict=True))
    silent_of = {b: d for b, d in zip(links["burst"].tolist(), links["silent"].tolist(), strict=True) if d is not None}
    b_service = bursts["service"].tolist()
    b_t0 = bursts["t0"].tolist()
    b_n = bursts["n"].tolist()
    b_split = bursts["split"].tolist() if "split" in bursts else [False] * len(bursts)
    names_by_burst = (
        live.drop_duplicates(["burst", "alertname"]).groupby("burst", sort=True)["alertname"].agg(list).to_dict()
    )
    by_comp = bursts.sort_values(["comp", "t0"], kind="stable").groupby("comp", sort=True)["burst"].agg(list).tolist()
    topo_nodes = set(topology.graph.nodes) if topology is not None else set()

    incidents: list[Incident] = []
    for comp, blist in enumerate(by_comp):
        a = agg.iloc[comp]
        opened = float(a["opened"])
        resolved = bool(a["resolved"])
        roots = [b for b in blist if b not in parent_of] or blist[:1]
        root = roots[0]
        services = list(dict.fromkeys([b_service[root], *(b_service[b] for b in blist)]))
        reasons = [
            _burst_reason(b, root, parent_of, hops_of, silent_of, b_service, b_t0, b_n, names_by_burst, topology, topo_nodes, window, opened)
            + (f"; {b_service[b]} alerted for several incidents at once, so each of its alerts went with the "
               "incident whose dependency alerts had reached it last before the alert started" if b_split[b] else "")
            for b in blist
        ]
        facts = {
            "slo_on_entry": bool(a["slo_entry"]),
            "slo_anywhere": bool(a["slo"]),
            "critical_tier": bool(a["crit"]),
            "entry_touched": bool(a["entry"]),
            "severity_rank": int(a["sev_rank"]),
            "is_open": not resolved,
            "n_services": int(n_services[comp]),
        }
        score = impact_score(**facts)
        why = []
        if facts["slo_on_entry"]:
            why.append(f"SLO burning on entry service {_names([s for s in slo_svcs[comp] if s in entry])}")
        elif facts["slo_anywhere"]:
            why.append(f"SLO burning on {_names(slo_svcs[comp])}")
        if facts["critical_tier"]:
            why.append(f"critical tier: {_names(crit_svcs[comp])}")
        if facts["entry_touched"] and not facts["slo_on_entry"]:
            why.append(f"entry service alerting: {_names(entry_svcs[comp])}")
        why.append(f"severity {top_sev[comp]}")
        reasons.append(f"impact {score:.0f}: " + "; ".join(why))
        digest = hashlib.sha1(f"{a['first_fp']}|{opened!r}|{b_service[root]}".encode()).hexdigest()[:8]
        incidents.append(
            Incident(
                id=f"INC-{digest}",
                services=services,
                alerts=list(alerts_of.get(comp, [])),
                severity=str(top_sev[comp]),
                opened=opened,
                closed=float(a["closed"]) if resolved else None,
                reasons=reasons,
                impact=score,
                symptoms=list(symptoms_of.get(comp, [])),
                episodes=int(a["episodes"]),
                notifications=int(a["notifications"]),
            )
        )
    ids = np.array([inc.id for inc in incidents], dtype=object)
    seen: set[str] = set()
    for k, inc in enumerate(incidents):
        if inc.id in seen:  # a hash collision: keep ids unique
            inc.id = f"{inc.id}-{k}"
            ids[k] = inc.id
        seen.add(inc.id)
    ranked = sorted(incidents, key=lambda i: (-i.impact, i.opened, i.id))
    return ranked, ids


def _burst_reason(
    b: int,
    root: int,
    parent_of: dict[int, int],
    hops_of: dict[int, int],
    silent_of: dict[int, str],
    b_service: list[str],
    b_t0: list[float],
    b_n: list[int],
    names_by_burst: dict[int, list[str]],
    topology: Topology | None,
    topo_nodes: set[str],
    window: float,
    opened: float,
) -> str:
    """One sentence saying why burst *b* belongs to its incident."""
    svc = b_service[b]
    what = f"{b_n[b]} alert{'s' if b_n[b] != 1 else ''} on {svc} ({_names(names_by_burst.get(b, []))})"
    if b == root:
        text = f"{what} opened the incident at {_when(b_t0[b])}"
        if topology is None:
            text += "; no topology, so alerts group by service and time only"
        elif svc not in topo_nodes:
            text += f"; {svc} is not in the topology, so only service and time group it"
    elif b in silent_of:
        text = (
            f"{what} joined: {svc} and {b_service[parent_of[b]]} both depend on {silent_of[b]}, which has no "
            f"alert of its own but may be the silent cause; their alerts started within {window:.0f} s"
        )
    elif b in parent_of:
        p = parent_of[b]
        h = int(hops_of[b])
        text = (
            f"{what} joined: {svc} depends on {b_service[p]} ({h} hop{'s' if h != 1 else ''} in the "
            f"dependency graph), whose alerts were active within {window:.0f} s of {_when(b_t0[b])}"
        )
    else:
        text = f"{what} joined through a dependency cycle at {_when(b_t0[b])}"
    if b_n[b] > 1:
        text += f"; they fired on {svc} within {window:.0f} s of each other or while one was still firing"
    if b_t0[b] - opened > window:
        text += f"; a late alert, {(b_t0[b] - opened) / 60:.0f} min after the incident opened, joined it while open"
    return text
