"""Alerts on shared hub services: each alert of a burst that several simultaneous faults reach
goes with the incident whose arrival explains it best by timing (step 5 of :mod:`aisre.triage`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from aisre.triage.kinds import ERROR_PATTERN
from aisre.triage.propagation import _nearest_evidence, _Propagation
from aisre.triage.topology import _service_levels


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
