"""Incident memory figures: AC@1 and time to mitigation with and without memory on recurring and
novel incidents (the ``aisre benchmark memory`` harness), and retrieval latency over 100,000
stored incidents.

    .venv/bin/python benchmarks/bench_memory.py [--quick] [--workers N] [--n 100000] [--json FILE]
    .venv/bin/python benchmarks/bench_memory.py --retrieval-only

Retrieval: *n* synthetic incidents (fingerprints hashed from random but realistic parts: 60
services over 6 systems, 12 fault kinds, alerts, onset orders) are written to a fresh SQLite
store; the first ``similar()`` pays the one-time load of the vector matrix; then 200 queries
(half of them near-copies of stored incidents) are timed, each a full ``similar(k=5)`` call:
index freshness check, cosine over all rows, argpartition, reading the 64 candidates' rows and
their exact structured re-ranking.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from aisre.bench.memory import run_memory_benchmark
from aisre.case import FAULT_KINDS
from aisre.memory import COUNTER, DIM, INCIDENTS, Memory
from aisre.memory_fingerprint import Fingerprint, _vector


def synthetic_parts(rng: np.random.Generator) -> dict:
    """A plausible fingerprint's parts: a system, five suspects, signals, order, alerts."""
    system = f"sys{int(rng.integers(6))}"
    services = [f"{system}-svc{int(i)}" for i in rng.choice(10, size=5, replace=False)]
    faults = [str(f) for f in rng.choice(FAULT_KINDS, size=5)]
    scores = np.sort(rng.uniform(0.05, 1.0, size=5))[::-1]
    scores[0] = 1.0
    return {
        "v": 1, "system": system,
        "suspects": [{"service": s, "fault": f, "score": round(float(x), 4)} for s, f, x in zip(services, faults, scores, strict=True)],
        "signals": {s: {"metric:cpu": round(float(rng.uniform(0, 5)), 3), "metric:latency": round(float(rng.uniform(0, 4)), 3)} for s in services[:3]},
        "order": list(rng.permutation(services[:3])),
        "shapes": {f"{services[0]}|metric:cpu": str(rng.choice(["up-step", "up-ramp", "up-spike"]))},
        "neighbourhood": {services[0]: sorted(services[1:3])},
        "alerts": [f"{rng.choice(['CPUSaturation', 'HighLatency', 'HighErrorRatio'])}@{services[0]}"],
    }  # fmt: skip


def fill(url: str, n: int, seed: int = 0) -> tuple[float, list[dict]]:
    """Write *n* synthetic incidents to the memory at *url*; return (seconds, some stored parts)."""
    rng = np.random.default_rng(seed)
    Memory(url)  # creates the tables
    mem = Memory(url)
    t = time.perf_counter()
    kept: list[dict] = []
    chunk = 5000
    for lo in range(0, n, chunk):
        rows = []
        for i in range(lo, min(n, lo + chunk)):
            parts = synthetic_parts(rng)
            if len(kept) < 100:
                kept.append(parts)
            top = parts["suspects"][0]
            rows.append({
                "id": f"INC-{i:012x}", "case_id": f"synthetic-{i}", "system": parts["system"], "created": 1.7e9 + i,
                "version": 1, "dim": DIM, "vector": _vector(parts).astype("<f4").tobytes(),
                "fingerprint": json.dumps(parts), "suspect": top["service"], "suspect_fault": top["fault"],
                "cause": top["service"], "cause_fault": top["fault"], "status": "confirmed", "confirmed_by": "bench",
                "confirmed_at": 1.7e9 + i, "actions": json.dumps([{"name": "scale", "target": top["service"], "ok": True}]),
                "outcome": "mitigated", "postmortem": None,
            })  # fmt: skip
        with mem.engine.begin() as conn:
            conn.execute(insert(INCIDENTS), rows)
            conn.execute(COUNTER.update().where(COUNTER.c.key == "incidents").values(value=COUNTER.c.value + len(rows)))
    return time.perf_counter() - t, kept


def retrieval(n: int, queries: int = 200, seed: int = 0) -> dict:
    """Latency figures of ``similar(k=5)`` over *n* stored incidents."""
    with tempfile.TemporaryDirectory(prefix="aisre-memlat-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'memory.db'}"
        fill_s, kept = fill(url, n, seed)
        mem = Memory(url)
        rng = np.random.default_rng(seed + 1)
        qs = []
        for i in range(queries):
            parts = dict(kept[i % len(kept)]) if i % 2 == 0 else synthetic_parts(rng)
            qs.append(Fingerprint(_vector(parts), parts))
        t = time.perf_counter()
        mem.similar(qs[0], k=5)
        load_s = time.perf_counter() - t
        lat = []
        hits = 0
        for i, q in enumerate(qs):
            t = time.perf_counter()
            got = mem.similar(q, k=5)
            lat.append(time.perf_counter() - t)
            if i % 2 == 0 and got and got[0].similarity > 0.99:
                hits += 1
        ms = np.array(lat) * 1000
        mem.engine.dispose()
        return {
            "n": n, "fill_seconds": round(fill_s, 2), "first_query_seconds (loads the matrix)": round(load_s, 3),
            "median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2), "stored_copy_found_first": f"{hits}/{(queries + 1) // 2}",
            "matrix_mb": round(n * DIM * 4 / 1e6, 1),
        }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 incidents instead of 206")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n", type=int, default=100_000, help="stored incidents for the retrieval latency")
    ap.add_argument("--retrieval-only", action="store_true")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    out: dict = {}
    if not args.retrieval_only:
        t = time.perf_counter()
        res = run_memory_benchmark(quick=args.quick, seed=args.seed, workers=args.workers, progress=sys.stderr.isatty())
        res.pop("rows", None)
        out["benchmark"] = res
        print(f"memory benchmark: {res['config']['incidents']} incidents, wall {time.perf_counter() - t:.0f} s"
              f" ({args.workers} worker{'s' if args.workers > 1 else ''}), failures {len(res['failures'])}")
        print(f"{'':<10} {'n':>4} {'AC@1 without':>13} {'AC@1 with':>10} {'(bounded only)':>15} {'MTTM without':>13} {'MTTM with':>10}")
        for g in ("recurring", "novel"):
            r = res[g]
            print(f"{g:<10} {r['n']:>4} {r['ac1_without']:>13.3f} {r['ac1_with']:>10.3f} {r['ac1_bounded_only']:>15.3f}"
                  f" {r['mttm_without']:>12.0f}s {r['mttm_with']:>9.0f}s")
        print(f"retrieval during the run: median {res['retrieval_ms'].get('median')} ms, p95 {res['retrieval_ms'].get('p95')} ms")
    lat = retrieval(args.n, seed=args.seed)
    out["retrieval"] = lat
    print(f"retrieval over {lat['n']:,} stored incidents: median {lat['median_ms']} ms, p95 {lat['p95_ms']} ms,"
          f" max {lat['max_ms']} ms (first query loads the matrix: {lat['first_query_seconds (loads the matrix)']} s;"
          f" filling took {lat['fill_seconds']} s; matrix {lat['matrix_mb']} MB; stored copies found first"
          f" {lat['stored_copy_found_first']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
