"""Development benchmark of the root-cause rankers on the shared datasets.

Prints, per dataset and method: n, AC@1, AC@3, AC@5 (service level), abstentions and the median
seconds per case. The official harness is ``aisre benchmark``; this script is for quick
iterations while developing :mod:`aisre.rank.causal`.

    .venv/bin/python benchmarks/bench_rank_dev.py [--methods aisre,nsigma] [--delay S] [DATASET...]

DATASET is one of rcd, nezha-ob, nezha-tt, petshop, rcaeval, simulator (default: all that load);
``--big`` also times a ``random:1000`` simulated case and the shared RCAEval (RE2-sized) cases.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from aisre.case import Case
from aisre.rank import get_ranker

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets"

DATASETS: dict[str, tuple[str, str, Callable[[Case], bool]]] = {
    "rcd": ("rcd", "rcd", lambda c: True),
    "nezha-ob": ("nezha", "nezha", lambda c: c.system == "OB"),
    "nezha-tt": ("nezha", "nezha", lambda c: c.system == "TT"),
    "petshop": ("petshop", "petshop", lambda c: True),
    "rcaeval": ("rcaeval", "rcaeval", lambda c: True),
    "simulator": ("", "", lambda c: True),
}


SIM_TOPOLOGIES = ("online-boutique", "sock-shop")


def simulated_cases(per_kind: int = 2) -> list[Case]:
    """Return simulator cases with a known answer: every fault kind, *per_kind* targets per
    built-in topology (targets and seeds chosen by position, not by result)."""
    import aisre.simulator as sim

    cases = []
    for topo in SIM_TOPOLOGIES:
        services = [s for s in sim.load_topology(topo).service_names() if s not in ("frontend", "front-end")]
        for k, kind in enumerate(sim.FAULT_KINDS):
            for j in range(per_kind):
                target = services[(k * per_kind + j) % len(services)]
                cases.append(sim.simulate(topo, [f"{kind}:{target}@300+240"], duration=600, seed=100 * k + j))
    return cases


def load_cases(name: str) -> list[Case]:
    """Return the cases of development dataset *name* through the registered loader."""
    import aisre.datasets as ds

    if name == "simulator":
        return simulated_cases()

    folder, fmt, keep = DATASETS[name]
    return [c for c in ds.load(SHARED / folder, format=fmt) if keep(c)]


def hit(ranking, truth: str, k: int) -> bool:
    """True when *truth* is among the first *k* distinct entities of *ranking*."""
    return (not ranking.abstained) and truth in ranking.entities()[:k]


def evaluate(name: str, cases: Iterable[Case], methods: list[str], delay: float = 0.0, verbose: bool = False) -> None:
    """Rank every case with every method and print one line per method."""
    cases = [c for c in cases if c.truth is not None]
    if delay:
        cases = [replace(c, detected_at=(c.detected_at or 0.0) + delay) for c in cases]
    for m in methods:
        ranker = get_ranker(m)
        acc = {1: 0, 3: 0, 5: 0}
        secs, abst, misses = [], 0, []
        for c in cases:
            t = time.perf_counter()
            r = ranker.rank(c)
            secs.append(time.perf_counter() - t)
            abst += r.abstained
            for k in acc:
                acc[k] += hit(r, c.truth.service, k)
            if not hit(r, c.truth.service, 1):
                misses.append((c.id, c.truth.service, c.truth.fault, r.entities()[:3]))
        n = len(cases) or 1
        if name == "simulator":
            kinds: dict[str, list[bool]] = {}
            for c in cases:
                r = ranker.rank(c)
                kinds.setdefault(str(c.truth.fault), []).append(hit(r, c.truth.service, 1))
            print("   AC@1 per kind:", " ".join(f"{k}={sum(v)/len(v):.2f}" for k, v in kinds.items()))
        print(f"{name:<9} {m:<7} n={len(cases):<3} AC@1={acc[1]/n:.2f} AC@3={acc[3]/n:.2f} AC@5={acc[5]/n:.2f} "
              f"abst={abst} median={statistics.median(secs) if secs else 0:.3f}s", flush=True)
        if verbose:
            for miss in misses:
                print("   miss", *miss)


def time_re2_sized(methods: list[str], repeat: int = 5) -> None:
    """Print the median seconds per ranking (detection included) of the shared RCAEval cases, an
    RCAEval RE2-sized case (about 1,200 rows of 70-odd metrics); no ground truth is needed."""
    import aisre.datasets as ds

    try:
        cases = list(ds.load(SHARED / "rcaeval", format="rcaeval"))
    except Exception as exc:  # noqa: BLE001  (absent data must not stop the other figures)
        print(f"rcaeval-sized timing skipped: {exc}", file=sys.stderr)
        return
    for c in cases:
        series = len(c.metrics[['entity', 'metric']].drop_duplicates())
        shape = f"{c.metrics['time'].nunique()} rows x {series} series"
        for m in methods:
            ranker = get_ranker(m)
            secs = []
            for _ in range(repeat):
                t = time.perf_counter()
                ranker.rank(c)
                secs.append(time.perf_counter() - t)
            print(f"{c.id} ({shape}) {m:<7} median {statistics.median(secs):.3f}s per case", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="*", default=list(DATASETS))
    p.add_argument("--methods", default="aisre,nsigma")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--big", action="store_true",
                   help="time one random:1000 simulated case and the RE2-sized shared RCAEval cases")
    a = p.parse_args(argv)
    if a.big:
        import aisre.simulator as sim

        t = time.perf_counter()
        case = sim.simulate("random:1000", ["cpu:svc-500@300+240"], duration=600, seed=7)
        made = time.perf_counter() - t
        for m in a.methods.split(","):
            t = time.perf_counter()
            r = get_ranker(m).rank(case)
            print(f"random:1000 {m:<7} rank {time.perf_counter() - t:.1f}s (simulate {made:.1f}s) "
                  f"top {r.entities()[:3]} truth {case.truth.service if case.truth else None}", flush=True)
        time_re2_sized(a.methods.split(","))
    for name in a.datasets:
        try:
            cases = load_cases(name)
        except Exception as exc:  # noqa: BLE001  (a missing loader must not stop the other datasets)
            print(f"{name:<9} skipped: {exc}", file=sys.stderr)
            continue
        evaluate(name, cases, a.methods.split(","), a.delay, a.verbose)


if __name__ == "__main__":
    main()
