"""The change-risk gate benchmark (``aisre benchmark gate``): three measurements.

1. **ApacheJIT, temporal split** (when the shared data is present): fit on the earliest 70 % of
   commits by ``author_date``, score the latest 30 %: AUC, recall of buggy commits in the riskiest
   10 % and 20 %, Brier; the same without ``fix`` (the partly post-hoc feature).

2. **A simulated stream of changes** to the services of a built-in topology (Online Boutique),
   scored by the gate in shadow mode (every change deploys; its score is logged; its outcome is
   recorded in a private store so later changes see the history). Generative model, seeded:

   * each change goes to a service drawn from per-service change rates ``Dirichlet(2)``, one
     change every ~3 h;
   * its JIT features and defect label are one ApacheJIT commit drawn from the **later 30 %**
     (never seen by the model, which is fitted on the earliest 70 %); without the shared data,
     features come from log-normal shapes and the label from a fixed logistic of size, spread,
     experience and fix (:func:`_synthetic_commits`);
   * its files are ``nf`` files of the service's 60, drawn with Zipf weights; 3 of them are
     hidden *fragile* files;
   * hidden truth: a defect-inducing change causes an incident when its defect escapes to
     production and hurts, with probability ``sigmoid(logit(0.4) + frailty + 0.3 * log((1 + blast)
     / 2) + log 2 * fragile)``: ``frailty`` is a hidden per-service ``Normal(0, 0.8)`` (how well the
     service's tests and rollout catch defects), ``blast`` the tier-weighted blast radius (more
     dependants, more ways to hurt), ``fragile`` whether it touches a hidden fragile file. A change
     not labelled defect-inducing causes one with probability 0.01 (SZZ misses, surprises). The gate
     sees neither frailty nor fragility, only the history the store accumulates.

   Report: gating the riskiest 10 % of changes (by final score), the share of change-caused
   incidents prevented and the **false-block rate** (gated changes that would have been harmless,
   as a share of gated changes; also as a share of all harmless changes); the same for the JIT
   score alone and for a random 10 % (expected 10 %).

3. **End to end**: a handful of the stream's incident-causing changes run through
   :func:`aisre.simulator.simulate` as a ``deploy`` fault on their service (the bad version's
   error rate); the entry service's error ratio against its 99 % SLO shows the breach that
   deploying it causes, and a run without the change (gated) shows none.

4. **Scoring time** of a 1,000-file diff on a generated git repository (a few hundred commits
   written with ``git fast-import``).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Topology
from aisre.errors import AisreError, UsageError
from aisre.gate.blast import blast_radius
from aisre.gate.features import change_features
from aisre.gate.gate import run_gate
from aisre.gate.history import PRIOR_FAILURES, PRIOR_SUCCESSES, history_features, record_outcome
from aisre.gate.model import combine, default_data_path, evaluate, fit_jit, ranking_metrics, read_jit_csv

__all__ = ["build_repo", "gate_outcome", "pool_outcomes", "run_gate_benchmark", "simulate_stream", "slo_breach",
           "time_scoring"]

SLO_TARGET = 0.99
"""Availability objective of the entry services in the end-to-end runs."""
GATE_SHARE = 0.10
"""Share of the riskiest changes the benchmark gates."""
ESCAPE = 0.4
"""Chance that a defect-inducing change to a standard service of average frailty causes an incident."""
CLEAN_INCIDENT = 0.01
"""Chance that a change not labelled defect-inducing causes an incident (SZZ label noise, surprises)."""
_FILES_PER_SERVICE = 60
_FRAGILE_PER_SERVICE = 3


def _sigmoid(x: float | np.ndarray) -> Any:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# --------------------------------------------------------------------------- data


def _synthetic_commits(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Commits with ApacheJIT-like shapes (log-normal) and a label from a fixed logistic."""
    la = np.floor(rng.lognormal(3.5, 1.8, n))
    ld = np.floor(rng.lognormal(2.5, 1.8, n))
    nf = 1 + np.floor(rng.lognormal(0.8, 1.0, n)).clip(0, 99)
    nd = np.minimum(nf, 1 + np.floor(rng.lognormal(0.3, 0.8, n)))
    ns = np.minimum(nd, 1 + np.floor(rng.lognormal(-0.5, 0.7, n)))
    ent = np.log2(nf) * rng.uniform(0.3, 1.0, n)
    aexp = np.floor(rng.lognormal(5.0, 2.0, n))
    fix = rng.random(n) < 0.1
    z = lambda v: (np.log1p(v) - np.log1p(v).mean()) / np.log1p(v).std()  # noqa: E731
    logit = -1.8 + 0.8 * z(la + ld) + 0.3 * z(nf) - 0.4 * z(aexp) + 1.2 * fix
    return pd.DataFrame({
        "author_date": np.sort(rng.uniform(1.5e9, 1.56e9, n)), "la": la, "ld": ld, "nf": nf, "nd": nd, "ns": ns,
        "ent": ent, "ndev": np.floor(rng.lognormal(1.2, 1.0, n)), "age": rng.lognormal(3.0, 1.5, n),
        "nuc": rng.lognormal(2.5, 1.5, n), "aexp": aexp, "arexp": aexp * rng.uniform(0.3, 0.9, n),
        "asexp": aexp * rng.uniform(0.0, 0.5, n), "fix": fix, "buggy": rng.random(n) < _sigmoid(logit),
    })  # fmt: skip


def _jit_data(seed: int) -> tuple[pd.DataFrame, str]:
    try:
        return read_jit_csv(default_data_path()), "apachejit"
    except AisreError:
        return _synthetic_commits(6000, np.random.default_rng(seed + 17)), "synthetic"


def _topology(name: str) -> Topology:
    from aisre.simulator import load_topology

    return load_topology(name).to_topology()


# --------------------------------------------------------------------------- the stream


def simulate_stream(
    *,
    n: int = 600,
    seed: int = 0,
    topology: str = "online-boutique",
    store_url: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the shadow-mode change stream of the module docstring; return ``(changes, info)``.

    ``changes`` has one row per change: ``id, time, service, files, p_jit, score, defect,
    incident, p_incident`` (the hidden truth); ``info`` names the data source and the model's fit.

    Raises:
        UsageError: for fewer than 50 changes.
    """
    if n < 50:
        raise UsageError(f"a change stream needs at least 50 changes, got {n}")
    rng = np.random.default_rng(seed)
    data, source = _jit_data(seed)
    cut = int(len(data) * 0.7)
    model = fit_jit(data.iloc[:cut])
    pool = data.iloc[cut:].reset_index(drop=True)
    topo = _topology(topology)
    services = [s for s in topo.services() if topo.node(s).get("kind") == "service"]
    rates = rng.dirichlet(np.full(len(services), 2.0))
    frailty = dict(zip(services, rng.normal(0.0, 0.8, len(services)), strict=True))
    blast = {s: blast_radius(topo, [s]).weighted for s in services}
    zipf = 1.0 / np.arange(1, _FILES_PER_SERVICE + 1)
    zipf /= zipf.sum()
    fragile = {s: set(rng.choice(_FILES_PER_SERVICE, _FRAGILE_PER_SERVICE, replace=False).tolist()) for s in services}

    rows = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    p_jit = model.predict(rows)
    svc_idx = rng.choice(len(services), n, p=rates)
    t0 = 1_700_000_000.0
    times = t0 + np.cumsum(rng.exponential(3 * 3600.0, n))
    prior = PRIOR_FAILURES / (PRIOR_FAILURES + PRIOR_SUCCESSES)
    own_store = store_url is None
    tmp = tempfile.TemporaryDirectory(prefix="aisre-gate-bench-") if own_store else None
    url = store_url or f"sqlite:///{Path(tmp.name) / 'gate.db'}"  # type: ignore[union-attr]
    out = []
    try:
        for i in range(n):
            s = services[svc_idx[i]]
            k = int(min(rows.at[i, "nf"], _FILES_PER_SERVICE))
            picked = rng.choice(_FILES_PER_SERVICE, k, replace=False, p=zipf)
            files = [f"src/{s}/f{j:02d}.go" for j in sorted(picked)]
            touches_fragile = bool(fragile[s] & set(picked.tolist()))
            if bool(rows.at[i, "buggy"]):
                p_inc = float(_sigmoid(_logit(ESCAPE) + frailty[s] + 0.3 * math.log((1 + blast[s]) / 2)
                                       + math.log(2) * touches_fragile))  # fmt: skip
            else:
                p_inc = CLEAN_INCIDENT
            incident = bool(rng.random() < p_inc)
            hist = history_features([s], files, now=float(times[i]), url=url)
            score, _ = combine(float(p_jit[i]), blast_weighted=blast[s], failure_rate=hist.max_failure_rate,
                               prior_rate=prior, recent_incidents=hist.recent_incidents,
                               hot_share=len(hist.hot_files) / max(len(files), 1))  # fmt: skip
            record_outcome(f"c{i:05d}", [s], files, incident, float(times[i]), url=url)
            out.append({"id": f"c{i:05d}", "time": float(times[i]), "service": s, "files": files,
                        "p_jit": float(p_jit[i]), "score": score, "defect": bool(rows.at[i, "buggy"]),
                        "incident": incident, "p_incident": p_inc})  # fmt: skip
    finally:
        if tmp is not None:
            tmp.cleanup()
    info = {"source": source, "topology": topology, "model_rows": cut, "pool_rows": len(pool)}
    return pd.DataFrame(out), info


def gate_outcome(changes: pd.DataFrame, column: str | None, rng: np.random.Generator | None = None) -> dict[str, float]:
    """Return what gating the riskiest :data:`GATE_SHARE` of *changes* by *column* (at random
    with *rng* when *column* is None) achieves: ``gated``, ``prevented_share`` (of the changes
    with ``incident``), ``false_block_rate`` and ``harmless_blocked_share``."""
    k = int(math.ceil(GATE_SHARE * len(changes)))
    if column is None:
        gated = np.zeros(len(changes), bool)
        gated[(rng or np.random.default_rng(0)).choice(len(changes), k, replace=False)] = True
    else:
        order = np.argsort(-changes[column].to_numpy(), kind="stable")
        gated = np.zeros(len(changes), bool)
        gated[order[:k]] = True
    inc = changes["incident"].to_numpy(bool)
    return {
        "gated": int(gated.sum()),
        "prevented_share": float((gated & inc).sum() / max(inc.sum(), 1)),
        "false_block_rate": float((gated & ~inc).sum() / max(gated.sum(), 1)),
        "harmless_blocked_share": float((gated & ~inc).sum() / max((~inc).sum(), 1)),
    }


def pool_outcomes(outcomes: list[dict[str, float]], incidents: list[int], n: int) -> dict[str, float]:
    """Return per-seed gate outcomes (:func:`gate_outcome`) pooled over *n* changes per seed:
    shares weighted by incidents, gated changes and harmless changes."""
    inc = np.asarray(incidents, float)
    gated = np.asarray([o["gated"] for o in outcomes], float)
    prevented = sum(o["prevented_share"] * i for o, i in zip(outcomes, inc, strict=True))
    false_blocks = sum(o["false_block_rate"] * g for o, g in zip(outcomes, gated, strict=True))
    return {
        "prevented_share": round(float(prevented / max(inc.sum(), 1)), 4),
        "false_block_rate": round(float(false_blocks / max(gated.sum(), 1)), 4),
        "harmless_blocked_share": round(float(false_blocks / max(n * len(outcomes) - inc.sum(), 1)), 4),
    }


# --------------------------------------------------------------------------- end to end


def slo_breach(case: Any, entry_services: list[str]) -> dict[str, float | bool]:
    """Return the entry services' error ratio over *case* and whether it breaks the 99 % SLO."""
    m = case.metrics
    ent = m[m["entity"].isin(entry_services)]
    errors = float(ent.loc[ent["metric"] == "error", "value"].sum())
    requests = float(ent.loc[ent["metric"] == "workload", "value"].sum())
    ratio = errors / requests if requests > 0 else 0.0
    return {"error_ratio": round(ratio, 4), "breach": ratio > 1.0 - SLO_TARGET}


def _end_to_end(changes: pd.DataFrame, topology: str, k: int, seed: int) -> list[dict[str, Any]]:
    from aisre.simulator import load_topology, simulate

    sim = load_topology(topology)
    entry = sorted({s for s, _, _ in sim.entry_endpoints()})
    picked = changes[changes["incident"]].sort_values("score", ascending=False).drop_duplicates("service").head(k)
    out = []
    baseline = simulate(sim, [], duration=300, rate=20, seed=seed)
    gated_slo = slo_breach(baseline, entry)
    for _, ch in picked.iterrows():
        intensity = round(float(np.clip(0.4 + ch["p_incident"], 0.4, 1.0)), 2)
        spec = f"deploy:{ch['service']}@60+120*{intensity}"
        case = simulate(sim, [spec], duration=300, rate=20, seed=seed)
        deploys = case.events[case.events["kind"] == "deploy"]
        out.append({
            "change": ch["id"], "service": ch["service"], "score": round(float(ch["score"]), 4),
            "gated": bool(ch["score"] >= changes["score"].quantile(1 - GATE_SHARE)), "fault": spec,
            "deploy_events": int(len(deploys)), "deployed": slo_breach(case, entry), "not_deployed": gated_slo,
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- timing


def build_repo(path: str | Path, *, commits: int = 300, files: int = 1200, change_files: int = 1000,
               authors: int = 12, seed: int = 0) -> dict[str, str]:  # fmt: skip
    """Write a git repository at *path* with *commits* commits over *files* files in 8 top-level
    subsystems (``git fast-import``), plus a branch ``change`` whose one commit, by a new author,
    modifies *change_files* files; return ``{"path", "base", "head"}``.

    Raises:
        UsageError: when git fails or the counts do not fit (change_files > files).
    """
    if change_files > files or commits < 1:
        raise UsageError("build_repo needs 1+ commits and change_files <= files")
    rng = np.random.default_rng(seed)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"sub{i % 8}/pkg{i % 40}/file{i:05d}.go" for i in range(files)]
    chunks: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        chunks.append(f"data {len(raw)}\n".encode() + raw + b"\n")

    t = 1_600_000_000
    for c in range(commits):
        who = int(rng.integers(0, authors))
        t += int(rng.integers(600, 86400))
        chunks.append(f"commit refs/heads/main\nmark :{c + 1}\n".encode())
        chunks.append(f"author Dev{who} <dev{who}@example.com> {t} +0000\ncommitter CI <ci@example.com> {t} +0000\n".encode())
        data(f"change {c}" + (" fixes #%d" % c if rng.random() < 0.1 else ""))
        if c:
            chunks.append(f"from :{c}\n".encode())
        touched = range(files) if c == 0 else rng.choice(files, int(rng.integers(1, 12)), replace=False)
        for i in touched:
            chunks.append(f"M 100644 inline {names[i]}\n".encode())
            data("".join(f"line {i} {c} {k}\n" for k in range(int(rng.integers(5, 40)))))
    t += 3600
    chunks.append(f"commit refs/heads/change\nmark :{commits + 1}\n".encode())
    chunks.append(f"author Newcomer <new@example.com> {t} +0000\ncommitter CI <ci@example.com> {t} +0000\n".encode())
    data("rework every module")
    chunks.append(f"from :{commits}\n".encode())
    for i in rng.choice(files, change_files, replace=False):
        chunks.append(f"M 100644 inline {names[i]}\n".encode())
        data("".join(f"new {i} {k}\n" for k in range(int(rng.integers(3, 30)))))
    try:
        subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True)
        subprocess.run(["git", "-C", str(root), "fast-import", "--quiet"], input=b"".join(chunks), check=True,
                       capture_output=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UsageError(f"cannot build the benchmark repository: {exc}") from exc
    return {"path": str(root), "base": "main", "head": "change"}


def time_scoring(*, commits: int = 300, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """Build a repository with a 1,000-file change and time :func:`change_features` and the whole
    :func:`run_gate` (no store); return the best of *repeats* in seconds and the change's size."""
    with tempfile.TemporaryDirectory(prefix="aisre-gate-repo-") as tmp:
        repo = build_repo(Path(tmp) / "repo", commits=commits, seed=seed)
        feats_s, gate_s = [], []
        feats = None
        for _ in range(repeats):
            t = time.perf_counter()
            feats = change_features(repo["path"], repo["base"], repo["head"])
            feats_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = run_gate(repo["path"], repo["base"], repo["head"], use_store=False, now=0)
            gate_s.append(time.perf_counter() - t)
    assert feats is not None
    return {"commits": commits, "files_changed": int(feats.nf), "lines_changed": int(feats.la + feats.ld),
            "features_seconds": round(min(feats_s), 3), "gate_seconds": round(min(gate_s), 3),
            "decision": result.decision, "score": round(result.score, 4)}  # fmt: skip


# --------------------------------------------------------------------------- harness


def run_gate_benchmark(*, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Run the four measurements of the module docstring; return a JSON-ready dict with keys
    ``apachejit`` (None without the shared data), ``stream``, ``end_to_end``, ``timing``,
    ``failures`` (a failing part is recorded there and the rest goes on)."""
    result: dict[str, Any] = {"config": {"quick": quick, "seed": seed, "gate_share": GATE_SHARE}, "failures": []}
    try:
        data_path = default_data_path()
        with_fix = evaluate(data_path)
        without_fix = evaluate(data_path, use_fix=False)
        result["apachejit"] = {**with_fix, "without_fix": without_fix}
    except UsageError as exc:
        result["apachejit"] = None
        result["failures"].append({"part": "apachejit", "error": str(exc)})
    n, seeds = (500, [seed]) if quick else (1000, [seed, seed + 1, seed + 2])
    try:
        runs = []
        for sd in seeds:
            changes, info = simulate_stream(n=n, seed=sd)
            inc = changes["incident"].to_numpy(bool)
            runs.append({
                "seed": sd, "changes": n, "incidents": int(inc.sum()), "defects": int(changes["defect"].sum()),
                "gate": gate_outcome(changes, "score"), "jit_only": gate_outcome(changes, "p_jit"),
                "random": gate_outcome(changes, None, np.random.default_rng(sd)),
                "auc_incident": round(ranking_metrics(inc.astype(int), changes["score"].to_numpy())["auc"], 4),
                "auc_incident_jit_only": round(ranking_metrics(inc.astype(int), changes["p_jit"].to_numpy())["auc"], 4),
            })  # fmt: skip
        result["stream"] = {**info, "runs": runs, "pooled": {
            name: pool_outcomes([r[name] for r in runs], [r["incidents"] for r in runs], n) for name in ("gate", "jit_only", "random")}}
        result["end_to_end"] = _end_to_end(changes, info["topology"], 2 if quick else 5, seed)
    except AisreError as exc:
        result["failures"].append({"part": "stream", "error": str(exc)})
    try:
        result["timing"] = time_scoring(commits=200 if quick else 500, repeats=1 if quick else 3, seed=seed)
    except AisreError as exc:
        result["failures"].append({"part": "timing", "error": str(exc)})
    return result
