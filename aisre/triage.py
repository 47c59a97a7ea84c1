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
4. **Group by topology.** Faults spread from a dependency to its callers, so a burst is
   explained by a burst on a service it depends on (a pure path of ``calls``/``reads``/
   ``writes``/``publishes``/``runs_on`` edges, at most ``max_hops`` long) that is active within
   ``window`` of its onset. A burst nothing explains opens an incident (a *root*); a burst with
   saturation, resource or crash alerts of its own is a root unless its dependency started
   alerting within ``window`` before it. Unexplained bursts of symptoms on the direct callers of
   one quiet dependency, started as close together as two callers one hop from one cause do,
   share that *silent cause*. Without a topology, only step 3 groups.
5. **Attribute alerts on shared services.** A service that several simultaneous faults reach
   (a hub calling everything) fires one burst that no single explanation fits, so each of its
   alerts goes with one incident, chosen by timing. The stream's own propagation is measured on
   the alerts only one incident could explain: the delay from a dependency's first alert to a
   caller's alert per hop (the first hop from a fault's origin apart), how tightly one fault's
   alerts on one service fire together, how often trouble shows one hop up, and how long an
   SLO burn lags its fault (each leaning on a prior while the measurements are few). A fault
   reaches a service once: each candidate incident arrives at most once, as likely as the hop
   delay from its nearest alerting dependency says, and its other alerts there follow soon
   after; a later fault on a service already alerting is masked (its alerts already fire). The
   arrivals that explain the burst best win (every configuration for small bursts, coordinate
   ascent for large). A caller's error alert looks only at dependencies whose alerts fail
   requests; services are visited from the deepest dependency up; an SLO alert goes with the
   incident whose arrival on the service best explains it by the SLO lag. Siblings that only
   share a caller are never connected, so unrelated simultaneous faults stay apart.
6. **Suppress symptoms**: a latency or error-rate alert on a service whose dependency in the
   same incident has a saturation, resource or crash alert. SLO-burn alerts are never
   suppressed: they are the user impact.
7. **Rank** incidents by user impact (:func:`impact_score`) and explain every grouping and
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
    "PRIOR_HOP_DELAY",
    "PRIOR_HOP_SPREAD",
    "PRIOR_SLO_LAG",
    "PRIOR_WAVE",
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

PRIOR_HOP_DELAY = 60.0
"""Seconds a fault is assumed to take to show one hop up (dependency alert to caller alert)
before the alert stream itself says: one evaluation interval plus a typical ``for: 1m``."""

PRIOR_HOP_SPREAD = 30.0
"""Spread (seconds) assumed around :data:`PRIOR_HOP_DELAY` before the stream says."""

PRIOR_SLO_LAG = 60.0
"""Seconds an SLO burn-rate alert is assumed to fire after the first alert of the fault burning
it on the same service (a burn-rate rule looks back further than a latency rule) before the
stream says."""

PRIOR_WAVE = 15.0
"""Seconds within which one fault's alerts on one service are assumed to fire together (about
one rule evaluation interval) before the stream says."""

_PRIOR_WEIGHT = 5.0
"""How many measurements a prior counts as: with few unambiguous alerts the priors dominate,
with dozens the stream's own figures do."""


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
            )
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


def _components(links: pd.DataFrame, nb: int) -> np.ndarray:
    """Component id of each of *nb* bursts, joined by *links* (``burst``, ``parent``)."""
    if nb == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix(
        (np.ones(len(links)), (links["burst"].to_numpy(dtype=np.int64), links["parent"].to_numpy(dtype=np.int64))),
        shape=(nb, nb),
    )
    return connected_components(graph, directed=True, connection="weak")[1]


def _silent_causes(
    bursts: pd.DataFrame, links: pd.DataFrame, pairs: pd.DataFrame, together: float
) -> pd.DataFrame:
    """Links between unexplained bursts on the direct callers of one silent dependency.

    A fault on a service with no alert of its own still makes its callers alert, and those
    callers share no alerting dependency, so nothing else links them. Unexplained bursts with
    only symptoms (no cause alert) join when they are direct callers of one dependency, started
    within *together* seconds of each other (as two callers one hop from one cause do), and make
    up at least half of its callers; each picks the dependency most of them share. Returns ``burst, parent, hops, silent`` rows.
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
    new = np.r_[True, dep_codes[1:] != dep_codes[:-1]] | (np.r_[-np.inf, t0[:-1]] + together < t0)
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
    b = bursts[["burst", "service", "t0", "t1", "weak", "has_cause"]]
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
         "bucket": bucket, "bweak": b["weak"].to_numpy(), "bcause": b["has_cause"].to_numpy()}
    )  # fmt: skip
    left = left.merge(pairs, on="service", how="inner")
    m = left.merge(cand, on=["bucket", "dep"], how="inner")
    m = m[(m["p0"] <= m["t0"] + window) & (m["p1"] + window >= m["t0"]) & (m["parent"] != m["burst"])]
    # an unclassified alert (a certificate expiring) does not explain a latency, error or
    # saturation alert on a caller; it may still explain another unclassified one
    m = m[~m["weak"] | m["bweak"]]
    # a service saturating or crashing on its own is a root of its own, unless what it depends
    # on started alerting about when it did (then it may be a pool or a queue filling up)
    m = m[~m["bcause"] | (m["p0"] >= m["t0"] - window)]
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


def _episode_candidates(live: pd.DataFrame, candidates: pd.DataFrame, window: float) -> pd.DataFrame:
    """Every pair of an episode ``e`` and an episode ``q`` on a dependency that could explain it
    (``q`` active within *window* of ``e``'s start): ``e, burst, t, parent, hops, q, qt`` rows.

    A caller's error alert is explained only by dependency alerts that fail requests, where
    there are any: a dependency that is only slow does not make its callers fail.
    """
    cols = ["e", "burst", "t", "parent", "hops", "q", "qt"]
    if candidates.empty or live.empty:
        ints, floats = np.zeros(0, dtype=np.int64), np.zeros(0)
        return pd.DataFrame({c: floats if c in ("t", "qt") else ints for c in cols})
    n = len(live)
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    e = pd.DataFrame({"e": np.arange(n), "burst": burst, "t": t})
    q = pd.DataFrame({"q": np.arange(n), "parent": burst, "qt": t, "qend": live["active_end"].to_numpy()})
    cand = candidates.astype({"burst": np.int64, "parent": np.int64, "hops": np.int64})
    j = e.merge(cand, on="burst").merge(q, on="parent")
    j = j[(j["qend"] + window >= j["t"]) & (j["qt"] <= j["t"] + window)]
    fails = live["alertname"].map({a: bool(ERROR_PATTERN.search(str(a).lower())) for a in live["alertname"].unique()})
    fails = fails.to_numpy(dtype=bool)
    mismatch = (fails[j["e"].to_numpy()] & ~fails[j["q"].to_numpy()]).astype(np.int8)
    j = j[mismatch <= pd.Series(mismatch, index=j.index).groupby(j["e"]).transform("min")]
    return j[cols].reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class _Propagation:
    """How faults travel in this alert stream, measured on its unambiguous alerts (those only
    one incident could explain), each figure leaning on a prior while the measurements are few.

    *mu*, *sigma*: median and robust spread of the seconds from a dependency's first alert to a
    caller's alert one hop up; *mu_origin*, *sigma_origin*: the same for the first hop from the
    service where a fault showed first (its own alerts have a delay of their own); *wave*: how
    tightly one fault's alerts on one service fire together; *log_hop*: log share of alerts whose
    nearest alerting dependency is h hops away (index h); *log_arrive*, *log_absent*: log odds
    that trouble on a dependency shows on a direct caller at all; *slo_mu*, *slo_sigma*: seconds
    from a fault's first alert on a service to the SLO burn alert there.
    """

    mu: float
    sigma: float
    mu_origin: float
    sigma_origin: float
    wave: float
    log_hop: np.ndarray
    log_arrive: float
    log_absent: float
    slo_mu: float
    slo_sigma: float

    @property
    def together(self) -> float:
        """Seconds within which two callers one hop from one cause start alerting (the spread
        of the difference of two hop delays, two standard deviations)."""
        return 2.0 * math.sqrt(2.0) * self.sigma

    def expected(self, h: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the seconds from a dependency's first alert to a caller's alert
        *h* hops up: the first hop from the fault's *origin* (its own alerts have their own
        delay) or from a service it reached, then a hop delay per hop."""
        mu1 = np.where(origin, self.mu_origin, self.mu)
        var1 = np.where(origin, self.sigma_origin**2, self.sigma**2)
        return mu1 + (h - 1) * self.mu, var1 + (h - 1) * self.sigma**2

    def delay_score(self, delta: np.ndarray, h: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """Log-likelihood of a caller alerting *delta* seconds after a dependency *h* hops away
        first did (see :meth:`expected`), times the share of alerts that far."""
        mean, var = self.expected(h, origin)
        hop = self.log_hop[np.minimum(h.astype(np.int64), self.log_hop.size - 1)]
        return -0.5 * (delta - mean) ** 2 / var - 0.5 * np.log(var) + hop

    def wave_score(self, dt: np.ndarray) -> np.ndarray:
        """Log-likelihood of an alert *dt* seconds after the first one its fault raised on the
        same service (half-normal; -inf before it)."""
        with np.errstate(invalid="ignore"):
            s = math.log(2.0 / (self.wave * math.sqrt(2.0 * math.pi))) - 0.5 * (dt / self.wave) ** 2
        return np.where(dt >= 0, s, -np.inf)


def _fit_propagation(
    live: pd.DataFrame, j: pd.DataFrame, lab: np.ndarray, bursts: pd.DataFrame, pairs: pd.DataFrame, window: float
) -> _Propagation:
    """Measure :class:`_Propagation` on the episodes only one incident (*lab*) could explain."""
    is_slo = live["kind"].eq("slo").to_numpy()
    slo_lag = _slo_lags(live, j, lab, window)
    # SLO alerts burn later than the alerts that measure propagation
    j = j[~is_slo[j["e"].to_numpy()]]
    one = j.assign(lab=lab[j["q"].to_numpy()])
    one = _nearest_evidence(one[one.groupby("e")["lab"].transform("nunique") == 1])
    # hop delay: a caller alerting long after its dependency's alert opened is a late alert
    hop1 = one[one["hops"].to_numpy() == 1]
    d = (hop1["t"] - hop1["qt"]).to_numpy()
    near = np.abs(d) <= window
    d, from_origin = d[near], hop1["origin"].to_numpy()[near]
    mu, sigma = _location_spread(d, PRIOR_HOP_DELAY, PRIOR_HOP_SPREAD)
    # the first hop from a fault's origin, whose own alerts have a delay of their own
    mu_o, sigma_o = _location_spread(d[from_origin], mu, sigma)
    mu, sigma = _location_spread(d[~from_origin], mu, sigma)
    # wave: seconds from a burst's first alert to each later one, where one incident explains it
    first = one.drop_duplicates("e")
    off = (first["t"] - first.groupby("burst")["t"].transform("min")).to_numpy()
    off = off[(off > 0) & (off <= window)]
    # the median of a half-normal is 0.674 of its scale, and ignores a stray late alert
    wave = _shrink(float(np.median(off)) / 0.674 if off.size else PRIOR_WAVE, off.size, PRIOR_WAVE)
    max_hops = max(int(pairs["hops"].max()) if len(pairs) else 1, 1)
    counts = np.bincount(np.clip(first["hops"].to_numpy(dtype=np.int64), 1, max_hops), minlength=max_hops + 1)
    counts = counts.astype(np.float64) + 1.0
    counts[0] = 0.0
    with np.errstate(divide="ignore"):
        log_hop = np.log(counts / counts.sum())
    p = _arrival_rate(bursts, pairs, window)
    slo_mu, slo_sigma = _location_spread(slo_lag, PRIOR_SLO_LAG, PRIOR_HOP_SPREAD)
    return _Propagation(
        mu=mu, sigma=sigma, mu_origin=mu_o, sigma_origin=sigma_o, wave=max(wave, 1.0), log_hop=log_hop,
        log_arrive=math.log(p), log_absent=math.log1p(-p), slo_mu=slo_mu, slo_sigma=slo_sigma,
    )


def _location_spread(d: np.ndarray, mu0: float, sigma0: float) -> tuple[float, float]:
    """Median and robust spread (1.4826 MAD, at least 1 s) of *d*, each pulled toward the prior
    *mu0*, *sigma0* as if measured on :data:`_PRIOR_WEIGHT` more items."""
    if d.size == 0:
        return mu0, max(sigma0, 1.0)
    med = float(np.median(d))
    sd = float(1.4826 * np.median(np.abs(d - med)))
    return _shrink(med, d.size, mu0), max(math.sqrt(_shrink(sd**2, d.size, sigma0**2)), 1.0)


def _slo_lags(live: pd.DataFrame, j: pd.DataFrame, lab: np.ndarray, window: float) -> np.ndarray:
    """Seconds from the first other alert on a service to its SLO alert, in the bursts only one
    incident explains (or none: the incident's origin)."""
    is_slo = live["kind"].eq("slo").to_numpy()
    if not is_slo.any():
        return np.zeros(0)
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    n_labs = pd.Series(lab[j["q"].to_numpy()]).groupby(burst[j["e"].to_numpy()]).nunique()
    single = ~np.isin(burst, n_labs[n_labs > 1].index.to_numpy())
    first = pd.Series(t[~is_slo]).groupby(burst[~is_slo]).min()
    rows = np.flatnonzero(is_slo & single & np.isin(burst, first.index.to_numpy()))
    lag = t[rows] - first.reindex(burst[rows]).to_numpy()
    return lag[np.abs(lag) <= window]


def _shrink(value: float, n: int, prior: float) -> float:
    """*value* measured on *n* items, pulled toward *prior* as if it were measured on
    :data:`_PRIOR_WEIGHT` more."""
    return (n * value + _PRIOR_WEIGHT * prior) / (n + _PRIOR_WEIGHT)


def _arrival_rate(bursts: pd.DataFrame, pairs: pd.DataFrame, window: float) -> float:
    """Share (add-one smoothed) of the direct callers of an alerting service that alert within
    *window* of it: how often trouble shows one hop up in this stream."""
    direct = pairs[pairs["hops"] == 1]
    if direct.empty or bursts.empty:
        return 0.5
    strong = bursts.loc[~bursts["weak"].astype(bool), ["burst", "service", "t0"]]
    up = strong.rename(columns={"service": "dep", "t0": "d0", "burst": "db"}).merge(direct, on="dep")
    m = up.merge(strong, on="service", how="left")
    hit = (m["t0"] - m["d0"]).abs() <= window
    seen = m.assign(hit=hit).groupby(["db", "service"])["hit"].any()
    return float((seen.sum() + 1.0) / (len(seen) + 2.0))


def _nearest_evidence(sel: pd.DataFrame) -> pd.DataFrame:
    """Keep, per episode and incident (``lab``), the first alert of that incident on each of its
    nearest alerting dependencies (fewest hops): nearer evidence dates the arrival best."""
    sel = sel[sel["hops"] == sel.groupby(["e", "lab"])["hops"].transform("min")]
    sel = sel.sort_values(["e", "lab", "parent", "qt", "q"], kind="stable")
    return sel.drop_duplicates(["e", "lab", "parent"])


def _attribute(
    live: pd.DataFrame, j: pd.DataFrame, follows: np.ndarray, model: _Propagation, pairs: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attribute every alert episode to one incident, so a shared caller's alerts can split.

    A service that several simultaneous faults reach (the frontend calling everything) fires one
    burst of alerts that no single explanation fits: each of its alerts was raised by the fault
    that reached it. Each incident alerting on the service's dependencies is a candidate; a
    fault reaches a service once, so each candidate arrives at most once (its first alert
    there), that arrival is as likely as the hop delay from the incident's first alert on its
    nearest alerting dependency says, and its other alerts on the service follow soon after
    (:func:`_split_burst` finds the arrivals that explain the burst best). Services are visited
    from the deepest dependency up, so a shared dependency is split before its callers look at
    it. An SLO alert goes with the incident whose arrival on the service explains it best by
    the SLO lag (:func:`_slo_labels`); an episode no dependency alert explains in time
    (*follows*) goes with the sibling on its service that started last before it.

    Returns ``(label, choice, hops)`` per row of *live*: the incident label (a base component),
    the row of the chosen explaining episode (-1 for none) and its distance in hops.
    """
    n = len(live)
    lab = live["comp"].to_numpy().copy()
    choice = np.full(n, -1, dtype=np.int64)
    hops = np.zeros(n, dtype=np.int64)
    if j.empty or n == 0:
        return lab, choice, hops
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    lvl = live["service"].map(_service_levels(pairs)).fillna(0).to_numpy(dtype=np.int64)
    is_slo = live["kind"].eq("slo").to_numpy()
    in_explained_burst = np.isin(burst, j["burst"].to_numpy()) | follows
    in_explained_burst |= is_slo & np.isin(burst, burst[in_explained_burst])
    j_lvl = lvl[j["e"].to_numpy()]
    for level in np.unique(lvl[in_explained_burst]):
        at_level = j_lvl == level
        sel = j[at_level & ~is_slo[j["e"].to_numpy()]]
        if len(sel):
            sel = _nearest_evidence(sel.assign(lab=lab[sel["q"].to_numpy()]))
            delay = model.delay_score(
                (sel["t"] - sel["qt"]).to_numpy(), sel["hops"].to_numpy(dtype=np.float64), sel["origin"].to_numpy()
            )
            sel = sel.assign(score=delay).sort_values(["e", "score", "q"], ascending=[True, False, True], kind="stable")
            best = _waves(sel.drop_duplicates(["e", "lab"]), model)
            b_e = best["e"].to_numpy()
            lab[b_e] = best["lab"].to_numpy()
            choice[b_e] = best["q"].to_numpy()
            hops[b_e] = best["hops"].to_numpy()
        fol = np.flatnonzero(follows & (lvl == level))
        if fol.size:
            _follow_siblings(fol, burst, t, lab, choice, hops)
        slo = np.flatnonzero(is_slo & in_explained_burst & (lvl == level))
        if slo.size:
            _slo_labels(slo, j[at_level], live, lab, choice, hops, model)
    return lab, choice, hops


def _showing_odds(cfg: np.ndarray, t_or_never: np.ndarray, due: np.ndarray, model: _Propagation) -> np.ndarray:
    """Log odds of each configuration's incidents showing on the service or not (m x k arrival
    indices into *t_or_never*; *due*: when each incident is expected there).

    A service already alerting for another incident masks a later one: its alerts are already
    firing, so the later fault adds no new alert there or only a few. Only an incident that is
    first on the service pays the odds of showing (or of staying quiet though due first).
    """
    arr = t_or_never[cfg]
    when = np.where(np.isfinite(arr), arr, due[None, :])
    k = cfg.shape[1]
    if k > 1:
        order = np.sort(arr, axis=1)
        lowest = np.argmin(arr, axis=1)
        others = np.where(np.arange(k)[None, :] == lowest[:, None], order[:, 1:2], order[:, 0:1])
    else:
        others = np.full_like(arr, np.inf)
    first = when <= others
    odds = np.where(np.isfinite(arr), model.log_arrive, model.log_absent)
    return np.where(first, odds, 0.0).sum(axis=1)


def _slo_labels(
    rows: np.ndarray,
    j: pd.DataFrame,
    live: pd.DataFrame,
    lab: np.ndarray,
    choice: np.ndarray,
    hops: np.ndarray,
    model: _Propagation,
) -> None:
    """Label the SLO alerts *rows* in place. An SLO burn follows the fault burning it by a lag of
    its own: each SLO alert goes with the incident whose arrival on the service best explains
    it: the incident's first other alert there, or, for an incident with no other alert there,
    its arrival expected from its dependency alerts (first alert plus a hop delay per hop).
    An SLO alert with neither stays with its own incident."""
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    is_slo = live["kind"].eq("slo").to_numpy()
    sib = np.flatnonzero(~is_slo & np.isin(burst, burst[rows]))
    seen = pd.DataFrame({"burst": burst[sib], "lab": lab[sib], "a": t[sib], "var": 0.0, "q": choice[sib], "hops": hops[sib]})
    seen = seen.sort_values("a", kind="stable").drop_duplicates(["burst", "lab"])
    want = pd.DataFrame({"e": rows, "burst": burst[rows], "t": t[rows]})
    cand = want.merge(seen, on="burst")
    ev = j[j["e"].isin(rows)]
    if len(ev):
        ev = _nearest_evidence(ev.assign(lab=lab[ev["q"].to_numpy()]))
        mean, var = model.expected(ev["hops"].to_numpy(dtype=np.float64), ev["origin"].to_numpy())
        ev = ev.assign(a=ev["qt"] + mean, var=var)
        cand = pd.concat([cand, ev[["e", "burst", "t", "lab", "a", "var", "q", "hops"]]], ignore_index=True)
    if len(cand):
        # an incident seen on the service is dated by its own alert there, not by its dependencies
        cand = cand.sort_values(["e", "lab", "var", "a"], kind="stable").drop_duplicates(["e", "lab"])
        var = model.slo_sigma**2 + cand["var"].to_numpy(dtype=np.float64)
        lag = cand["t"].to_numpy() - cand["a"].to_numpy(dtype=np.float64) - model.slo_mu
        cand = cand.assign(score=-0.5 * lag * lag / var - 0.5 * np.log(var))
        best = cand.sort_values(["e", "score"], ascending=[True, False], kind="stable").drop_duplicates("e")
        e = best["e"].to_numpy(dtype=np.int64)
        lab[e] = best["lab"].to_numpy().astype(lab.dtype)
        choice[e] = best["q"].to_numpy(dtype=np.int64)
        hops[e] = best["hops"].to_numpy(dtype=np.int64)


def _waves(sel: pd.DataFrame, model: _Propagation) -> pd.DataFrame:
    """The chosen row per episode of *sel* (candidate incidents, best evidence first): the only
    candidate where a burst has one, else the joint choice of :func:`_split_burst`."""
    many = sel.groupby("burst")["lab"].transform("nunique").to_numpy() > 1
    simple = sel[~many].drop_duplicates("e")
    hard = sel[many]
    if hard.empty:
        return simple
    keep: list[int] = []
    for _, g in hard.groupby("burst", sort=False):
        keep.extend(_split_burst(g, model))
    return pd.concat([simple, hard.loc[keep]])


_UNEXPLAINED = -1e6
"""Log-likelihood of an alert no arrived incident explains: never chosen while one can."""

_EXHAUSTIVE = 20_000
"""Most arrival configurations of one burst searched exhaustively; beyond, coordinate ascent."""


def _split_burst(g: pd.DataFrame, model: _Propagation) -> list[int]:
    """Split one burst between the incidents that could explain it; return one row label of *g*
    per episode (its incident and evidence).

    Each candidate incident either arrives at the service at one of its episodes or never shows
    there. A configuration of arrivals scores the log-likelihood of each arrival (hop delay from
    the incident's evidence, times the odds of showing at all) or of its absence, plus each
    episode's likelihood under the arrived incident that explains it best (how soon after that
    arrival it fired). Small bursts try every configuration; large ones start from reading the
    alerts in time order and move one or two arrivals at a time while the score rises.
    """
    eps, e_idx = np.unique(g["e"].to_numpy(), return_inverse=True)
    f_idx = np.unique(g["lab"].to_numpy(), return_inverse=True)[1]
    n, k = eps.size, int(f_idx.max()) + 1
    t = np.zeros(n)
    t[e_idx] = g["t"].to_numpy()
    member = np.zeros((k, n), dtype=bool)
    member[f_idx, e_idx] = True
    row_of = np.full((k, n), -1, dtype=np.int64)
    row_of[f_idx, e_idx] = g.index.to_numpy()
    qt = g["qt"].to_numpy()
    h = g["hops"].to_numpy(dtype=np.float64)
    origin = g["origin"].to_numpy()
    # arrive[f, a]: incident f arriving at episode a's start; column n: f never showing here
    arrive = np.zeros((k, n + 1))
    due = np.zeros(k)
    mean, _ = model.expected(h, origin)
    for f in range(k):
        r = f_idx == f
        arrive[f, :n] = np.max(model.delay_score(t[None, :] - qt[r][:, None], h[r][:, None], origin[r][:, None]), axis=0)
        arrive[f, :n] = np.where(member[f], arrive[f, :n], -np.inf)
        due[f] = np.min(qt[r] + mean[r])
    t_or_never = np.r_[t, np.inf]
    # waves[f, a, e]: episode e under incident f arrived at episode a
    waves = np.full((k, n + 1, n), -np.inf)
    wt = model.wave_score(t[None, :] - t[:, None])
    # the arriving alert is dated by the arrival itself: no wave term of its own
    wt[np.arange(n), np.arange(n)] = 0.0
    waves[:, :n, :] = np.where(member[:, None, :], wt[None, :, :], -np.inf)
    options = [np.r_[np.flatnonzero(member[f]), n] for f in range(k)]
    fs = np.arange(k)[None, :]

    def score(cfg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = waves[fs, cfg]  # configurations x incidents x episodes
        best = w.max(axis=1)
        total = arrive[fs, cfg].sum(axis=1) + np.maximum(best, _UNEXPLAINED).sum(axis=1)
        return total + _showing_odds(cfg, t_or_never, due, model), np.where(best > _UNEXPLAINED, w.argmax(axis=1), -1)

    if math.prod(len(o) for o in options) <= _EXHAUSTIVE:
        grid = np.stack(np.meshgrid(*options, indexing="ij"), axis=-1).reshape(-1, k)
        total, who_all = score(grid)
        who = who_all[int(np.argmax(total))]
    else:
        cfg = np.full(k, n)
        for e in np.argsort(t, kind="stable"):
            arrived = cfg < n
            now = np.where(arrived, waves[np.arange(k), cfg, e], arrive[:, e] + model.log_arrive)
            f = int(np.argmax(now))
            if not arrived[f]:
                cfg[f] = e
        total, who_all = score(cfg[None, :])
        cur, who = float(total[0]), who_all[0]
        for _ in range(10):
            moved = False
            for f in range(k):
                for f2 in range(f + 1, k):
                    a, b = options[f], options[f2]
                    trials = np.repeat(cfg[None, :], len(a) * len(b), axis=0)
                    trials[:, f] = np.repeat(a, len(b))
                    trials[:, f2] = np.tile(b, len(a))
                    total, whos = score(trials)
                    i = int(np.argmax(total))
                    if total[i] > cur + 1e-9:
                        cur, who, cfg, moved = float(total[i]), whos[i], trials[i], True
            if not moved:
                break
    # every episode is someone's candidate, so an arrival at it always beats _UNEXPLAINED
    who = np.where(who >= 0, who, np.argmax(member, axis=0))
    return [int(row_of[who[e], e]) for e in range(n)]


def _follow_siblings(
    rows: np.ndarray, burst: np.ndarray, t: np.ndarray, lab: np.ndarray, choice: np.ndarray, hops: np.ndarray
) -> None:
    """Give each of *rows* (in place) the incident and evidence of a sibling on its burst that
    a dependency explains: the latest started before it, else the earliest after; a row with
    no such sibling keeps its own."""
    leaders = np.flatnonzero(choice >= 0)
    if leaders.size == 0:
        return
    lead = pd.DataFrame({"burst": burst[leaders], "t": t[leaders], "row": leaders}).sort_values("t", kind="stable")
    want = pd.DataFrame({"burst": burst[rows], "t": t[rows], "k": np.arange(rows.size)}).sort_values("t", kind="stable")
    got = np.zeros(rows.size, dtype=bool)
    for direction in ("backward", "forward"):
        m = pd.merge_asof(want, lead, on="t", by="burst", direction=direction)
        hit = m["row"].notna().to_numpy() & ~got[m["k"].to_numpy()]
        k = m["k"].to_numpy()[hit]
        src = m["row"].to_numpy()[hit].astype(np.int64)
        lab[rows[k]], choice[rows[k]], hops[rows[k]] = lab[src], choice[src], hops[src]
        got[k] = True


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
    frame = pd.DataFrame(
        {"sub": sub, "burst": old, "lab": label, "t": live["start"].to_numpy(),
         "t1": live["active_end"].to_numpy(), "choice": choice, "hops": hops}
    )  # fmt: skip
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
    )
    # links of unexplained bursts (silent causes, cycles) carry over to their sub-bursts, to the
    # part of the parent that went to the same incident
    part = table.set_index(["orig", "comp"])["burst"]
    rest = links.merge(table[["orig", "burst", "comp"]].rename(columns={"orig": "old", "burst": "sub"}), left_on="burst", right_on="old")
    rest = rest[~rest["sub"].isin(new_links["burst"])]
    keys = pd.MultiIndex.from_arrays([rest["parent"].to_numpy(), rest["comp"].to_numpy()])
    parent = part.reindex(keys).to_numpy()
    ok = ~pd.isna(parent)
    carried = pd.DataFrame(
        {"burst": rest["sub"].to_numpy()[ok], "parent": parent[ok].astype(np.int64),
         "hops": rest["hops"].to_numpy()[ok], "silent": rest["silent"].to_numpy()[ok]}
    )
    all_links = pd.concat([new_links, carried], ignore_index=True)
    comp = table.set_index("burst")["comp"]
    same = comp.reindex(all_links["burst"]).to_numpy() == comp.reindex(all_links["parent"]).to_numpy()
    all_links = all_links[same & (all_links["burst"] != all_links["parent"]).to_numpy()]
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
    live["svc_code"] = pd.factorize(live["service"])[0]
    live["burst"] = _bursts(live, float(window)) if len(live) else np.zeros(0, dtype=np.int64)
    pairs = _dependency_pairs(topology, int(max_hops)) if topology is not None and max_hops > 0 else pd.DataFrame(columns=["service", "dep", "hops"])
    bursts, links, model = _group(live, pairs, float(window))

    symptom_of = _symptoms(live, pairs)
    incidents, ids = _build_incidents(live, bursts, links, symptom_of, topology, float(window), model)
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


def _group(live: pd.DataFrame, pairs: pd.DataFrame, window: float) -> tuple[pd.DataFrame, pd.DataFrame, _Propagation | None]:
    """Group the bursts of *live* into incidents (steps 4 and 5 of the module docstring).

    Sets ``live["burst"]`` (bursts split between incidents) and ``live["comp"]`` (the incident
    of each episode) in place; returns the burst table (``burst, service, t0, t1, n, weak,
    has_cause, comp`` and ``split``), the links saying what explains each burst, and the
    propagation measured on the stream (None when no burst has a dependency alerting).
    """
    bursts = (
        live.groupby("burst", sort=True)
        .agg(service=("service", "first"), t0=("start", "min"), t1=("active_end", "max"), n=("start", "size"))
        .reset_index()
    )
    # a burst of only "other" alerts (a certificate expiring) explains a caller's pain poorly
    weak = np.ones(len(bursts), dtype=bool)
    weak[live.loc[~live["kind"].eq("other"), "burst"].to_numpy()] = False
    has_cause = np.zeros(len(bursts), dtype=bool)
    has_cause[live.loc[live["kind"].eq("cause"), "burst"].to_numpy()] = True
    bursts["weak"], bursts["has_cause"] = weak, has_cause
    links, candidates = _explanations(bursts, pairs, window)
    links = links.assign(silent=None)
    comp = _components(links, len(bursts))
    live["comp"] = comp[live["burst"].to_numpy()]
    bursts["comp"] = comp
    if pairs.empty or bursts.empty:
        return bursts, links, None
    j = _episode_candidates(live, candidates, window)
    # a dependency burst nothing explains is where its fault showed first
    j["origin"] = ~j["parent"].isin(links["burst"]).to_numpy()
    model = _fit_propagation(live, j, comp[live["burst"].to_numpy()], bursts, pairs, window)
    silent = _silent_causes(bursts, links, pairs, model.together)
    if len(silent):
        links = pd.concat([links, silent], ignore_index=True)
        comp = _components(links, len(bursts))
        live["comp"] = comp[live["burst"].to_numpy()]
        bursts["comp"] = comp
    if candidates.empty:
        return bursts, links, model
    # an alert no dependency alert explains in time follows its siblings
    explained = np.zeros(len(live), dtype=bool)
    explained[j["e"].to_numpy()] = True
    is_slo = live["kind"].eq("slo").to_numpy()
    follows = np.isin(live["burst"].to_numpy(), candidates["burst"].to_numpy()) & ~explained & ~is_slo
    label, choice, hops = _attribute(live, j, follows, model, pairs)
    sub, bursts, links = _split_bursts(live, bursts, links, label, choice, hops)
    live["burst"] = sub
    codes = pd.factorize(bursts["comp"], sort=True)[0]
    bursts["comp"] = codes
    live["comp"] = codes[sub]
    return bursts, links, model


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
        )
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
    model: _Propagation | None,
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

    words = _Words(
        parent_of=dict(zip(links["burst"].tolist(), links["parent"].tolist(), strict=True)),
        hops_of=dict(zip(links["burst"].tolist(), links["hops"].tolist(), strict=True)),
        silent_of={b: d for b, d in zip(links["burst"].tolist(), links["silent"].tolist(), strict=True) if d is not None},
        service=bursts["service"].tolist(),
        t0=bursts["t0"].tolist(),
        n=bursts["n"].tolist(),
        split=bursts["split"].tolist() if "split" in bursts else [False] * len(bursts),
        names=live.drop_duplicates(["burst", "alertname"]).groupby("burst", sort=True)["alertname"].agg(list).to_dict(),
        topology=topology,
        nodes=set(topology.graph.nodes) if topology is not None else set(),
        window=window,
        model=model,
    )
    by_comp = bursts.sort_values(["comp", "t0"], kind="stable").groupby("comp", sort=True)["burst"].agg(list).tolist()

    incidents: list[Incident] = []
    for comp, blist in enumerate(by_comp):
        a = agg.iloc[comp]
        opened = float(a["opened"])
        resolved = bool(a["resolved"])
        roots = [b for b in blist if b not in words.parent_of] or blist[:1]
        root = roots[0]
        services = list(dict.fromkeys([words.service[root], *(words.service[b] for b in blist)]))
        reasons = [_burst_reason(b, root, opened, words) for b in blist]
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
        digest = hashlib.sha1(f"{a['first_fp']}|{opened!r}|{words.service[root]}".encode()).hexdigest()[:8]
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


@dataclass(frozen=True)
class _Words:
    """What the sentences about bursts need: their links, services, starts, sizes and alert
    names, the topology, the window and the propagation measured on the stream (if any)."""

    parent_of: dict[int, int]
    hops_of: dict[int, int]
    silent_of: dict[int, str]
    service: list[str]
    t0: list[float]
    n: list[int]
    split: list[bool]
    names: dict[int, list[str]]
    topology: Topology | None
    nodes: set[str]
    window: float
    model: _Propagation | None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _burst_reason(b: int, root: int, opened: float, w: _Words) -> str:
    """One sentence saying why burst *b* belongs to its incident."""
    svc = w.service[b]
    what = f"{_plural(w.n[b], 'alert')} on {svc} ({_names(w.names.get(b, []))})"
    if b == root:
        text = f"{what} opened the incident at {_when(w.t0[b])}"
        if w.topology is None:
            text += "; no topology, so alerts group by service and time only"
        elif svc not in w.nodes:
            text += f"; {svc} is not in the topology, so only service and time group it"
    elif b in w.silent_of:
        together = " of each other, as two callers one hop from one cause do here" if w.model else ""
        text = (
            f"{what} joined: {svc} and {w.service[w.parent_of[b]]} both depend on {w.silent_of[b]}, which has no "
            f"alert of its own but may be the silent cause; their alerts started within "
            f"{w.model.together if w.model else w.window:.0f} s{together}"
        )
    elif b in w.parent_of:
        p = w.parent_of[b]
        h = int(w.hops_of[b])
        text = (
            f"{what} joined: {svc} depends on {w.service[p]} ({_plural(h, 'hop')} in the "
            f"dependency graph), whose alerts were active within {w.window:.0f} s of {_when(w.t0[b])}"
        )
        if w.split[b] and w.model is not None:
            m = w.model
            mean, var = m.expected(np.array([float(h)]), np.array([p not in w.parent_of]))
            text += (
                f"; {svc} alerted for several incidents at once, and a fault reaches a service once, its "
                f"alerts there firing together (within about {m.wave:.0f} s here), so each of its alerts went "
                f"with the incident whose arrival explains it best: these started {w.t0[b] - w.t0[p]:.0f} s "
                f"after this incident's first alert on {w.service[p]}, where {_plural(h, 'hop')} take{'s' if h == 1 else ''} "
                f"{mean[0]:.0f} ± {math.sqrt(var[0]):.0f} s in these alerts"
            )
            if any(SLO_PATTERN.search(str(a).lower()) for a in w.names.get(b, [])):
                text += f", and an SLO burn follows its fault by {m.slo_mu:.0f} ± {m.slo_sigma:.0f} s"
    else:
        text = f"{what} joined through a dependency cycle at {_when(w.t0[b])}"
    if w.n[b] > 1:
        text += f"; they fired on {svc} within {w.window:.0f} s of each other or while one was still firing"
    if w.t0[b] - opened > w.window:
        text += f"; a late alert, {(w.t0[b] - opened) / 60:.0f} min after the incident opened, joined it while open"
    return text
