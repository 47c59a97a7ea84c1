"""Root-cause accuracy on every shared dataset, every method side by side: prints the table.

    .venv/bin/python benchmarks/bench_rca.py                      # aisre, nsigma, baro
    .venv/bin/python benchmarks/bench_rca.py --methods aisre,baro,circa --delay 60 --workers 2
    .venv/bin/python benchmarks/bench_rca.py --json reports/bench_rca.json --datasets rcd,petshop

Datasets are read from $AISRE_SHARED/datasets (default: ../shared/datasets beside the repo).
The method (what each figure means) is docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aisre.bench import run_benchmark
from aisre.errors import AisreError

DATASETS = ("rcd", "nezha", "petshop", "rcaeval")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit code (3 on an error)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="aisre,nsigma,baro")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--topology", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--json", default=None, help="write the JSON contract here")
    args = p.parse_args(argv)
    shared = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"
    paths = [shared / d for d in args.datasets.split(",") if d]
    missing = [str(x) for x in paths if not x.exists()]
    if missing:
        print(f"bench_rca: datasets not found: {', '.join(missing)}", file=sys.stderr)
        return 3
    try:
        result = run_benchmark(
            paths,
            [m for m in args.methods.split(",") if m],
            delay=args.delay,
            topology=args.topology,
            workers=args.workers,
            scheduler=args.scheduler,
        )
    except AisreError as exc:
        print(f"bench_rca: error: {exc}", file=sys.stderr)
        return 3
    print(result.table())
    print()
    print("AC@1 per fault kind")
    print(result.fault_table())
    if args.json:
        result.to_json(args.json)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
