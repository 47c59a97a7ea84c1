"""Print the triage benchmark's figures: reduction, grouping precision and recall on generated
alert storms, and the time to triage 100,000 alerts (see aisre/bench/triage.py for the method).

Usage: .venv/bin/python benchmarks/bench_triage.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import time

from aisre.bench.triage import run_triage_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer storms")
    parser.add_argument("--seed", type=int, default=0)
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


if __name__ == "__main__":
    main()
