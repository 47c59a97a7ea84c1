"""Print the triage benchmark's figures: reduction, grouping precision and recall on generated
alert storms, and the time to triage 100,000 alerts (see aisre/bench/triage.py for the method).

Usage: .venv/bin/python benchmarks/bench_triage.py [--quick] [--seed N] [--seeds A-B]

``--seeds A-B`` also prints the figures of each seed from A to B (without the timing run) and
their spread, so a change is judged on more than the default storms.
"""

from __future__ import annotations

import argparse
import time

from aisre.bench.triage import run_triage_benchmark


def _seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer storms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=_seed_range, default=None, help="also sweep seeds A-B (e.g. 0-11)")
    args = parser.parse_args()
    t = time.perf_counter()
    r = run_triage_benchmark(quick=args.quick, seed=args.seed)
    wall = time.perf_counter() - t
    print(f"storms                      {len(r['storms'])} ({r['alerts']} alerts, {r['episodes']} after dedup)")
    print(f"incidents                   {r['incidents']}")
    print(f"reduction                   {r['reduction']:.1f}x alerts per incident")
    print(f"precision (pairwise)        {r['precision']:.3f}   (unshared services: {r['precision_unshared']:.3f})")
    print(f"recall (pairwise)           {r['recall']:.3f}   (unshared services: {r['recall_unshared']:.3f})")
    print(f"seconds per 100k alerts     {r['seconds_per_100k']:.2f}")
    tm = r["timing"]
    print(f"100,000 alerts triage time  {tm['seconds']:.2f} s ({tm['episodes']} episodes, {tm['incidents']} incidents, "
          f"precision {tm['precision']:.3f}, recall {tm['recall']:.3f})")
    print(f"benchmark wall time         {wall:.1f} s")
    if args.seeds:
        rows = [(s, run_triage_benchmark(quick=args.quick, seed=s, timing=False)) for s in args.seeds]
        print("\nseed  alerts  incidents  reduction  precision  recall  worst storm P/R")
        for s, x in rows:
            worst_p = min(st["precision"] for st in x["storms"])
            worst_r = min(st["recall"] for st in x["storms"])
            print(f"{s:>4}  {x['alerts']:>6}  {x['incidents']:>9}  {x['reduction']:>9.1f}  {x['precision']:>9.3f}  "
                  f"{x['recall']:>6.3f}  {worst_p:.2f}/{worst_r:.2f}")
        ps = [x["precision"] for _, x in rows]
        rs = [x["recall"] for _, x in rows]
        print(f"precision mean {sum(ps) / len(ps):.3f} (min {min(ps):.3f}, max {max(ps):.3f}); "
              f"recall mean {sum(rs) / len(rs):.3f} (min {min(rs):.3f}, max {max(rs):.3f})")


if __name__ == "__main__":
    main()
