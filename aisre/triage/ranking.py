"""Incidents from grouped episodes, scored and ranked by user impact (step 7), each with its
reasons in words."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from aisre.case import Topology
from aisre.triage.explain import _burst_reason, _names, _Words
from aisre.triage.model import Incident
from aisre.triage.propagation import _Propagation
from aisre.triage.topology import _entry_services


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
