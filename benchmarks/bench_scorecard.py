"""Run the open AI SRE scorecard and print its figures, the wall time and the regressions.

    .venv/bin/python benchmarks/bench_scorecard.py [--quick] [--seeds 0,1,2] [--workers N | --scheduler ADDR]
        [--json FILE] [--html FILE] [--baseline FILE] [--write-baseline]

``--write-baseline`` stores the run as benchmarks/scorecard_baseline.json (made with ``--quick``:
the suite CI runs). Exit 1 when a figure dropped beyond noise against ``--baseline``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from aisre.bench import compare_scorecard, run_scorecard, save_scorecard, scorecard_text, write_scorecard_html

BASELINE = Path(__file__).resolve().parent / "scorecard_baseline.json"
"""The stored quick-suite baseline the regression check compares with."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the CI suite (< 2 min)")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the suite's)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--json", dest="json_file", default=None)
    ap.add_argument("--html", dest="html_file", default=None)
    ap.add_argument("--baseline", default=None, help="compare with this earlier --json result")
    ap.add_argument("--write-baseline", action="store_true", help=f"store this run as {BASELINE.name}")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    t0 = time.perf_counter()
    result = run_scorecard(quick=args.quick, seeds=seeds, workers=args.workers, scheduler=args.scheduler,
                           progress=sys.stderr.isatty())  # fmt: skip
    wall = time.perf_counter() - t0
    print(scorecard_text(result))
    r = result["resolution"]
    print("\nAC@1 / AC@3 per fault kind (n):")
    for kind, v in r["by_fault"].items():
        ttm = f"  TTM {v['ttm_without_median']} -> {v['ttm_with_median']} s" if v["breached"] else ""
        print(f"  {kind:<10} {v['ac1']:.2f} / {v['ac3']:.2f}  ({v['n']}){ttm}")
    print(f"\nwall {wall:.0f} s; task seconds {result['task_seconds']}")
    if args.json_file:
        save_scorecard(result, args.json_file)
    if args.html_file:
        write_scorecard_html(result, args.html_file)
    if args.write_baseline:
        save_scorecard(result, BASELINE)
        print(f"baseline written to {BASELINE}")
    if args.baseline:
        regressions = compare_scorecard(result, args.baseline)
        for line in regressions:
            print(f"regression: {line}", file=sys.stderr)
        return 1 if regressions else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
