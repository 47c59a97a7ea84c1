"""Print the change-risk gate's figures: ApacheJIT temporal-split AUC, recall of buggy commits in
the riskiest 10 % and 20 %, Brier; the simulated change stream (incidents prevented by gating the
riskiest 10 %, false-block rate); the end-to-end simulator runs; and the time to score a 1,000-file
diff on a generated git repository (see aisre/bench/gate.py for the method).

Usage: .venv/bin/python benchmarks/bench_gate.py [--quick] [--seed N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

from aisre.bench.gate import run_gate_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 500-change stream, 2 simulator runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    args = parser.parse_args()
    t = time.perf_counter()
    r = run_gate_benchmark(quick=args.quick, seed=args.seed)
    wall = time.perf_counter() - t
    a = r.get("apachejit")
    if a:
        nf = a["without_fix"]
        print(f"ApacheJIT temporal split    fit on earliest 70 %, scored {a['n']} later commits")
        print(f"  AUC                       {a['auc']:.3f}   (without fix: {nf['auc']:.3f})")
        print(f"  recall@10 % / @20 %       {a['recall_at_10']:.3f} / {a['recall_at_20']:.3f}   "
              f"(without fix: {nf['recall_at_10']:.3f} / {nf['recall_at_20']:.3f})")
        print(f"  Brier                     {a['brier']:.4f}   (without fix: {nf['brier']:.4f})")
    s = r.get("stream")
    if s:
        runs = s["runs"]
        print(f"change stream               {len(runs)} x {runs[0]['changes']} changes on {s['topology']} "
              f"(features: {s['source']}), {sum(x['incidents'] for x in runs)} change-caused incidents")
        for name, label in (("gate", "gate (final score)"), ("jit_only", "JIT score alone"), ("random", "random 10 %")):
            p = s["pooled"][name]
            per = ", ".join(f"{x[name]['prevented_share']:.2f}" for x in runs)
            print(f"  {label:<24}  prevented {p['prevented_share']:.1%} (per seed {per}); false-block rate "
                  f"{p['false_block_rate']:.1%} of gated, {p['harmless_blocked_share']:.1%} of harmless changes")
        print(f"  incident AUC              gate {sum(x['auc_incident'] for x in runs) / len(runs):.3f}, "
              f"JIT alone {sum(x['auc_incident_jit_only'] for x in runs) / len(runs):.3f}")
    for e in r.get("end_to_end", []):
        d, g = e["deployed"], e["not_deployed"]
        print(f"  end to end {e['change']} {e['service']:<22} score {e['score']:.2f}: deployed -> entry error ratio "
              f"{d['error_ratio']:.2%} (SLO breach {d['breach']}); gated -> {g['error_ratio']:.2%} (breach {g['breach']})")
    tm = r.get("timing")
    if tm:
        print(f"1,000-file diff             {tm['files_changed']} files, {tm['lines_changed']:,} lines, {tm['commits']} commits of "
              f"history: features {tm['features_seconds']:.2f} s, whole gate {tm['gate_seconds']:.2f} s")
    for f in r["failures"]:
        print(f"failure                     {f['part']}: {f['error']}")
    print(f"wall time                   {wall:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(r, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
