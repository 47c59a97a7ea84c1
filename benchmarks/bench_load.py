"""Print load time, peak memory and the cache speed-up for every shared dataset.

    .venv/bin/python benchmarks/bench_load.py [--repeat N] [--json FILE] [NAME ...]

NAME is any of ``rcd petshop rcaeval nezha`` (default: all whose data is present; ``nezha``
only where ``aisre.datasets.nezha`` exists). Data comes from ``$AISRE_SHARED/datasets``
(default ``../shared`` beside the project).

For each dataset three child processes run one after the other, so each peak RSS is its own:

* **parse**: :func:`aisre.datasets.batch.load_all` over the dataset root (the CSVs);
* **build**: :func:`aisre.datasets.cache.cached_load` into a fresh temporary cache (parse + save);
  ``disk`` is the size of the cache it wrote;
* **reload**: ``cached_load`` again from that cache (every case complete, every table
  materialised).

Times are the best of ``--repeat`` runs (wall and CPU seconds; CPU time is the fairer figure on
a shared machine). Peak memory is the child's ``ru_maxrss`` (interpreter and imports included).
The speed-up is parse time / reload time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AISRE_SHARED", ROOT.parent / "shared")) / "datasets"
NAMES = ("rcd", "petshop", "rcaeval", "nezha")


def _child(name: str, mode: str, cache_root: str, repeat: int) -> dict:
    from aisre.datasets.batch import load_all  # imports stay outside the timing
    from aisre.datasets.cache import cached_load

    path = SHARED / name
    best_wall = best_cpu = float("inf")
    n = failures = rows = 0
    for _ in range(repeat if mode != "build" else 1):
        wall, cpu = time.perf_counter(), time.process_time()
        if mode == "parse":
            cases, bad = load_all(path, name)
            failures = len(bad)
        else:
            bad_list: list = []
            cases = list(cached_load(path, name, cache_root, failures=bad_list))
            failures = len(bad_list)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        n = len(cases)
        rows = sum(len(c.metrics) + len(c.logs) + len(c.spans) for c in cases)
        del cases
    return {
        "cases": n,
        "failures": failures,
        "rows": rows,
        "wall": best_wall,
        "cpu": best_cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _disk_mib(root: str) -> float:
    return sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file()) / 2**20


def _run(name: str, mode: str, cache_root: str, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--child", name, mode, cache_root, str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark and print one table (and a JSON file with ``--json``)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        name, mode, cache_root, repeat = sys.argv[2:6]
        print(json.dumps(_child(name, mode, cache_root, int(repeat))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NAMES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    head = (
        f"{'dataset':<9} {'cases':>5} {'rows':>10} | {'parse s':>8} {'cpu':>6} {'MiB':>6} | {'build s':>8} {'MiB':>6} {'disk':>6} |"
        f" {'reload s':>8} {'cpu':>6} {'MiB':>6} | {'x wall':>6} {'x cpu':>6}"
    )
    print(head)
    print("-" * len(head))
    for name in args.names:
        if not (SHARED / name).is_dir():
            print(f"{name:<9} skipped: no data at {SHARED / name}")
            continue
        if name == "nezha" and importlib.util.find_spec("aisre.datasets.nezha") is None:
            print(f"{name:<9} skipped: aisre.datasets.nezha is not installed")
            continue
        with tempfile.TemporaryDirectory(prefix="aisre-bench-cache-") as cache_root:
            parse = _run(name, "parse", cache_root, args.repeat)
            build = _run(name, "build", cache_root, 1)
            build["disk_mib"] = _disk_mib(cache_root)
            reload = _run(name, "reload", cache_root, args.repeat)
        row = {
            "dataset": name,
            "parse": parse,
            "build": build,
            "reload": reload,
            "speedup_wall": parse["wall"] / reload["wall"],
            "speedup_cpu": parse["cpu"] / reload["cpu"],
        }
        rows.append(row)
        print(
            f"{name:<9} {parse['cases']:>5} {parse['rows']:>10} | {parse['wall']:>8.3f} {parse['cpu']:>6.3f} {parse['peak_mib']:>6.0f} |"
            f" {build['wall']:>8.3f} {build['peak_mib']:>6.0f} {build['disk_mib']:>6.1f} |"
            f" {reload['wall']:>8.3f} {reload['cpu']:>6.3f} {reload['peak_mib']:>6.0f} |"
            f" {row['speedup_wall']:>6.1f} {row['speedup_cpu']:>6.1f}"
            + (f"   ({parse['failures']} failed)" if parse["failures"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
