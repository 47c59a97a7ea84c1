"""Episodes to incidents: bursts per service and time (step 3), linked by topology to the
burst that explains each (step 4), with shared bursts split by :mod:`aisre.triage.hub` (step 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from aisre.triage.hub import _attribute, _episode_candidates, _split_bursts
from aisre.triage.propagation import _fit_propagation, _Propagation


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


def _group(live: pd.DataFrame, pairs: pd.DataFrame, window: float) -> tuple[pd.DataFrame, pd.DataFrame, _Propagation | None]:
    """Group the bursts of *live* into incidents (steps 4 and 5 of :mod:`aisre.triage`).

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
