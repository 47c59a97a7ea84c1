"""Print load time and peak memory of the Nezha loader, per date folder (day and system).

Each day is loaded in a fresh child process so its peak RSS is its own:

    .venv/bin/python benchmarks/bench_nezha_load.py [NEZHA_ROOT] [--scale N]

``--scale 8`` multiplies TT traces and logs back to about their unsampled volume (upstream
keeps them all; this sample keeps 1 trace in 8) in a temporary copy.

NEZHA_ROOT defaults to ``$AISRE_SHARED/datasets/nezha`` (``../shared`` beside the project).
Peak memory is the child's ``ru_maxrss`` (the interpreter and imports included) and the peak of
Python allocations traced by ``tracemalloc`` while loading.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _measure(folder: str) -> dict:
    from aisre.datasets import nezha  # imported here so the import is outside the timing

    wall, cpu = time.perf_counter(), time.process_time()
    cases = list(nezha.load(folder))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del cases
    tracemalloc.start()  # a second, slower pass: the peak of Python allocations while loading
    cases = list(nezha.load(folder))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "day": Path(folder).name,
        "system": ",".join(sorted({c.system for c in cases})),
        "cases": len(cases),
        "metrics": sum(len(c.metrics) for c in cases),
        "spans": sum(len(c.spans) for c in cases),
        "logs": sum(len(c.logs) for c in cases),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "traced_peak_mib": round(traced_peak / 2**20, 1),
        "peak_rss_mib": round(rss, 1),
    }


def _scaled_copy(root: Path, scale: int, out: Path) -> Path:
    """Copy *root* to *out* with every trace and log file holding *scale* copies of each trace
    (TraceIDs made distinct), to approach the unsampled volume (the sample keeps 1 trace in 8
    for TT, 1 in 48 for OB)."""
    for src in sorted(root.rglob("*")):
        dst = out / src.relative_to(root)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
            continue
        kind = src.parent.name
        if kind not in ("trace", "log") or scale == 1:
            shutil.copyfile(src, dst)
            continue
        head, *rows = src.read_text().splitlines()
        col = 0 if kind == "trace" else 5  # TraceID's field
        lines = [head]
        for k in range(scale):  # a benchmark fixture, not the loader's hot path
            for row in rows:
                parts = row.split(",", col + 1)
                parts[col] = f"{k:02x}" + parts[col][2:]
                lines.append(",".join(parts))
        dst.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    """Load every date folder in its own process and print one row per day.

    ``--scale N`` first writes a temporary copy with N times the traces and logs.
    """
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(_measure(sys.argv[2])))
        return
    args = sys.argv[1:]
    scale = 1
    if "--scale" in args:
        i = args.index("--scale")
        scale = int(args[i + 1])
        del args[i : i + 2]
    default = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets" / "nezha"
    root = Path(args[0]) if args else default
    if scale > 1:
        tmp = tempfile.TemporaryDirectory(prefix="nezha-x")
        root = _scaled_copy(root, scale, Path(tmp.name))
        print(f"traces and logs scaled x{scale} in {root}")
    from aisre.datasets.nezha import case_paths

    days = case_paths(root)
    if not days:
        sys.exit(f"no Nezha date folders under {root}")
    head = f"{'day':<12}{'sys':<5}{'cases':>6}{'metrics':>9}{'spans':>8}{'logs':>7}{'wall s':>8}{'cpu s':>7}{'traced MiB':>11}{'peak RSS MiB':>13}"
    print(head)
    for day in days:
        out = subprocess.run([sys.executable, __file__, "--one", str(day)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['day']:<12}{r['system']:<5}{r['cases']:>6}{r['metrics']:>9}{r['spans']:>8}{r['logs']:>7}"
              f"{r['wall_s']:>8}{r['cpu_s']:>7}{r['traced_peak_mib']:>11}{r['peak_rss_mib']:>13}")  # fmt: skip


if __name__ == "__main__":
    main()
