"""Accuracy and speed of the trace-and-log channel alone (:func:`aisre.rank.multimodal.trace_log_scores`).

Prints, per Nezha system and per original fault kind: n, AC@1, AC@3 (service level; a case where
the channel scores nothing counts as a miss) and the median and 95th-percentile seconds per case.

    .venv/bin/python benchmarks/bench_multimodal.py [--path DIR] [--cases FILE.pkl] [--verbose]

``--cases`` reads (or, when missing, writes) a pickle of the loaded cases to skip the 20 s load
on repeated runs; it is a local cache, never committed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aisre.rank.multimodal import trace_log_scores

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"


def load(path: Path, cache: Path | None) -> list:
    """Return the Nezha cases at *path* (through the pickle *cache* when given)."""
    if cache is not None and cache.is_file():
        return pickle.loads(cache.read_bytes())
    import aisre.datasets as ds

    cases = list(ds.load(path, format="nezha"))
    if cache is not None:
        cache.write_bytes(pickle.dumps(cases))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", type=Path, default=SHARED / "nezha")
    ap.add_argument("--cases", type=Path, default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    cases = [c for c in load(args.path, args.cases) if c.truth is not None]
    rows = []
    for c in cases:
        t0 = time.perf_counter()
        out = trace_log_scores(c)
        seconds = time.perf_counter() - t0
        ranked = out.loc[out["score"] > 0, "entity"].tolist()
        truth = c.truth.service
        rank = ranked.index(truth) + 1 if truth in ranked else None
        top = out.iloc[0] if len(out) and out["score"].iloc[0] > 0 else None
        second = float(out["score"].iloc[1]) if len(out) > 1 else 0.0
        margin = float(out["score"].iloc[0]) / max(second, 1e-9) if top is not None else 0.0
        rows.append({
            "id": c.id, "system": c.system, "fault": c.truth.meta.get("fault", c.truth.fault),
            "truth": truth, "rank": rank, "ac1": rank == 1, "ac3": rank is not None and rank <= 3,
            "guess": None if top is None else top["entity"], "kind": None if top is None else top["fault"],
            "seconds": seconds, "margin": margin, "evidence": None if top is None else top["evidence"],
        })  # fmt: skip
        if args.verbose:
            r = rows[-1]
            print(f"{c.id:28s} {r['fault']:15s} {truth:30s} rank={rank} top={r['guess']} ({r['kind']}) {r['evidence']}")
    df = pd.DataFrame(rows)
    print(f"\n{'system':8s} {'fault':16s} {'n':>3s} {'AC@1':>5s} {'AC@3':>5s}")
    for system, g in df.groupby("system"):
        for fault, h in g.groupby("fault"):
            print(f"{system:8s} {fault:16s} {len(h):3d} {h['ac1'].mean():5.2f} {h['ac3'].mean():5.2f}")
        print(f"{system:8s} {'ALL':16s} {len(g):3d} {g['ac1'].mean():5.2f} {g['ac3'].mean():5.2f}")
    # how far the channel can be trusted when it speaks, and when its top is clear of the second
    print(f"\n{'system':8s} {'when':26s} {'n':>3s} {'AC@1':>5s}")
    for system, g in df.groupby("system"):
        spoke = g[g["guess"].notna()]
        clear = g[g["margin"] >= 3.0]
        print(f"{system:8s} {'top score > 0':26s} {len(spoke):3d} {spoke['ac1'].mean():5.2f}")
        print(f"{system:8s} {'top >= 3 x second':26s} {len(clear):3d} {clear['ac1'].mean():5.2f}")
    print(f"seconds per case: median {np.median(df['seconds']):.3f}, p95 {np.percentile(df['seconds'], 95):.3f},"
          f" max {df['seconds'].max():.3f}")


if __name__ == "__main__":
    main()
