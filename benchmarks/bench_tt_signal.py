"""How much signal the Nezha Train Ticket code-level faults leave, per case: why AC@1 there is low.

    .venv/bin/python benchmarks/bench_tt_signal.py [--kind error]

For every TT case of the fault kind (default ``error``: Nezha's ``return`` and ``exception``
code faults) it prints:

* per metric, the rank of the root-cause service among all services by the size of the relative
  change of that metric (mean over the 3 minutes after the inject time against the 5 minutes
  before; 1 = the root changed most);
* the root's own ERROR log lines and its sampled spans, before and after the inject time;
* what the trace-and-log channel (:func:`aisre.rank.multimodal.trace_log_scores`) ranks first.

It reads ground truth, so it is an analysis of the development data, not a ranker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

import aisre.datasets as ds
from aisre.rank.causal import service_of
from aisre.rank.multimodal import trace_log_scores

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"
METRICS = ("CpuUsage(m)", "MemoryUsage(Mi)", "NetworkTransmitBytes", "NetworkReceiveBytes", "PodWorkload(Ops)",
           "PodServerLatencyP90(s)", "PodClientLatencyP90(s)", "SyscallRead", "SyscallWrite")


def metric_ranks(case, root: str) -> dict[str, int | None]:
    """Return, per metric, the root service's rank by |log relative change| (None: no data)."""
    t = case.truth.inject_time
    m = case.metrics[case.metrics["metric"].isin(METRICS)]
    m = m.assign(svc=[service_of(str(e)) for e in m["entity"].astype(str)])
    pre = m[(m["time"] < t) & (m["time"] >= t - 300)].groupby(["svc", "metric"], observed=True)["value"].mean()
    post = m[(m["time"] >= t) & (m["time"] < t + 180)].groupby(["svc", "metric"], observed=True)["value"].mean()
    change = np.log((post.abs() + 1e-3) / (pre.abs() + 1e-3)).abs().dropna()
    out: dict[str, int | None] = {}
    for name in METRICS:
        x = change.xs(name, level="metric") if name in change.index.get_level_values("metric") else pd.Series(dtype=float)
        out[name] = int((x > x[root]).sum()) + 1 if root in x.index else None
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the table described in the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kind", default="error")
    a = p.parse_args(argv)
    cases = [c for c in ds.load(SHARED / "nezha", format="nezha") if c.system == "TT" and c.truth and c.truth.fault == a.kind]
    print("case                 root                 " + " ".join(f"{n[:8]:>8}" for n in METRICS)
          + "  err-logs b/a  spans b/a  channel top")
    firsts = {n: 0 for n in METRICS}
    channel_hits = 0
    for c in cases:
        root, t = c.truth.service, c.truth.inject_time
        ranks = metric_ranks(c, root)
        for n, r in ranks.items():
            firsts[n] += r == 1
        logs = c.logs[c.logs["entity"].astype(str) == root]
        err = logs[logs["level"].astype(str).str.upper().eq("ERROR")]
        spans = c.spans[c.spans["service"].astype(str) == root]
        ch = trace_log_scores(c)
        top = str(ch["entity"].iloc[0]) if len(ch) and ch["score"].iloc[0] > 0 else "-"
        channel_hits += top == root
        print(f"{c.id.split('/', 1)[1]:<20} {root[:20]:<20} " + " ".join(f"{'-' if r is None else r:>8}" for r in ranks.values())
              + f"  {int((err['time'] < t).sum()):>5}/{int((err['time'] >= t).sum()):<5} {int((spans['start'] < t).sum()):>5}/{int((spans['start'] >= t).sum()):<5}"
              + f" {top}")
    print(f"\n{len(cases)} cases; root ranked first by the metric: "
          + ", ".join(f"{n} {k}" for n, k in firsts.items()) + f"; channel names the root first in {channel_hits}")


if __name__ == "__main__":
    main()
