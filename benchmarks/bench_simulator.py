"""Simulator performance: events per wall second against a bare simpy loop, Online Boutique at
200 requests/s, random:1000 over 10 simulated minutes (time and peak memory), and how cost grows
with services and request rate.

    .venv/bin/python benchmarks/bench_simulator.py [--quick] [--before REV|FILE] [--events-only]

``--before`` measures an earlier simulator side by side with the current one in the same run,
interleaved, so the two are compared under the same load: with a git revision REV, the whole
``simulator/`` package as it was at REV (engine, telemetry, runner: the "before" figures are that
revision's own), loaded beside the current one; with a file, only that engine in the current
package.

"Events" are simpy events processed (timeouts, process starts and ends, queue hand-overs), read
from simpy's event counter. The bare loop is 100 processes each doing ``yield env.timeout(1)``:
the cheapest thing simpy can do per event. The rounds are interleaved (bare loop, engine, whole
simulation, bare loop again), because the machine may be shared: each line gives the best round
(the fastest a run went, the usual timing estimator where other load only ever slows a run down)
and the median and range of the per-round ratios. The ratio is also given in CPU seconds of the
simulating thread (``time.thread_time``: not counting the other threads numpy's BLAS may leave
spinning after the telemetry's matrix products, which ``time.process_time`` would add). "All
telemetry" is the whole ``simulate()``: engine plus metrics, logs, spans, events, alerts and the
Case.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import types

import numpy as np
import simpy

import aisre.simulator.runner as runner
from aisre.simulator import load_topology, resolve_faults, simulate
from aisre.simulator.engine import Engine
from aisre.simulator.workload import draw_arrivals


def bare_rate(events: int = 300_000, clock=time.perf_counter) -> float:
    """Simpy events per second (of *clock*) for the barest loop."""
    env = simpy.Environment()

    def loop(env: simpy.Environment):
        while True:
            yield env.timeout(1.0)

    for _ in range(100):
        env.process(loop(env))
    t = clock()
    env.run(until=events // 100)
    return events / (clock() - t)


def load_engine(ref: str) -> type:
    """Return the Engine class of simulator/engine.py at git revision *ref* (or in file *ref*)."""
    import importlib.util
    import tempfile
    from pathlib import Path

    path = Path(ref)
    if not path.is_file():
        src = subprocess.run(["git", "show", f"{ref}:simulator/engine.py"], check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1]).stdout  # fmt: skip
        path = Path(tempfile.mkdtemp()) / "engine_before.py"
        path.write_text(src)
    spec = importlib.util.spec_from_file_location("aisre.simulator._engine_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.Engine


def load_simulator(ref: str) -> types.SimpleNamespace:
    """Return the simulator package of git revision *ref*, loaded beside the current one as
    ``aisre._simulator_before`` (its modules as they were; ``aisre.case`` and the other layers
    below it are the current ones), as a namespace like :data:`CURRENT`."""
    import importlib
    import importlib.util
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:simulator"], check=True, capture_output=True, text=True,
                           cwd=root).stdout.split()  # fmt: skip
    pkg = Path(tempfile.mkdtemp()) / "_simulator_before"
    pkg.mkdir()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(["git", "show", f"{ref}:simulator/{name}"], check=True, capture_output=True, text=True,
                                 cwd=root).stdout  # fmt: skip
            (pkg / name).write_text(src)
    spec = importlib.util.spec_from_file_location("aisre._simulator_before", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])  # fmt: skip
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    eng = importlib.import_module("aisre._simulator_before.engine")
    wl = importlib.import_module("aisre._simulator_before.workload")
    run = importlib.import_module("aisre._simulator_before.runner")
    return types.SimpleNamespace(Engine=eng.Engine, simulate=run.simulate, runner=run, load_topology=mod.load_topology,
                                 resolve_faults=mod.resolve_faults, draw_arrivals=wl.draw_arrivals)  # fmt: skip


CURRENT = types.SimpleNamespace(Engine=Engine, simulate=simulate, runner=runner, load_topology=load_topology,
                                resolve_faults=resolve_faults, draw_arrivals=draw_arrivals)  # fmt: skip
"""The simulator being measured: the current package."""


def engine_only(topology: str, rate: float, duration: float, seed: int = 1, clock=time.perf_counter,
                engine: type | None = None, sim: types.SimpleNamespace = CURRENT) -> tuple[int, float]:
    """(events, seconds of *clock*) of the engine alone, no telemetry (``run()``, which hands back
    the record array)."""
    topo = sim.load_topology(topology)
    rng = np.random.default_rng(seed)
    arr = sim.draw_arrivals([w for _, _, w in topo.entry_endpoints()], rate, duration, rng, shape=topo.workload)
    eng = (engine or sim.Engine)(topo, sim.resolve_faults(["cpu:" + topo.services[1].name], topo, duration), arr, rng,
                                 duration=duration)  # fmt: skip
    t = clock()
    res = eng.run()
    return res.sim_events, clock() - t


def full(topology: str, rate: float, duration: float, faults=(), seed: int = 1, clock=time.perf_counter,
         engine: type | None = None, sim: types.SimpleNamespace = CURRENT) -> tuple[dict, float]:
    """(stats, seconds of *clock*) of a whole simulate() call of *sim* (with *engine* in place)."""
    saved = sim.runner.Engine
    sim.runner.Engine = engine or saved
    try:
        t = clock()
        case = sim.simulate(topology, list(faults), duration=duration, rate=rate, seed=seed)
        return case.meta["stats"], clock() - t
    finally:
        sim.runner.Engine = saved


def child_random(n: int, duration: float, rate: float, before: str = "") -> None:
    """Run random:N in this process (with the simulator of revision *before*, if given) and print
    wall time and peak RSS as JSON (for a subprocess)."""
    sim = load_simulator(before) if before else CURRENT
    t = time.perf_counter()
    case = sim.simulate(f"random:{n}", [f"cpu:svc-{n // 2}"], duration=duration, rate=rate, seed=1)
    wall = time.perf_counter() - t
    cpu = time.process_time()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": peak_kib / 1024, "stats": case.meta["stats"],
                      "metric_rows": len(case.metrics), "spans": len(case.spans), "logs": len(case.logs)}))


def in_subprocess(n: int, duration: float, rate: float, before: str = "") -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child-random", str(n), "--duration", str(duration), "--rate", str(rate),
         "--child-before", before],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats")
    ap.add_argument("--before", default="", help="also measure the engine at this git revision or file")
    ap.add_argument("--events-only", action="store_true", help="only the events-per-second comparison")
    ap.add_argument("--child-random", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=600.0, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=50.0, help=argparse.SUPPRESS)
    ap.add_argument("--child-before", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_random:
        child_random(args.child_random, args.duration, args.rate, args.child_before)
        return
    reps = 2 if args.quick else 5
    dur = 120.0 if args.quick else 600.0

    engines = [("current", CURRENT, None)]
    if args.before:
        from pathlib import Path

        if Path(args.before).is_file():
            engines.insert(0, (f"before ({Path(args.before).name[:12]})", CURRENT, load_engine(args.before)))
        else:
            engines.insert(0, (f"before ({args.before[:12]})", load_simulator(args.before), None))
    for label, clock in (("wall", time.perf_counter), ("thread CPU", time.thread_time)):
        print(f"== events per {label} second (Online Boutique, 50 req/s, cpu fault, {reps} interleaved rounds)")
        bare: list[float] = []  # every bare-loop measurement
        rounds: list[float] = []  # the bare rate of each round (the mean of the two around it)
        eng_r: dict[str, list[float]] = {n: [] for n, _, _ in engines}
        full_r: dict[str, list[float]] = {n: [] for n, _, _ in engines}
        for _ in range(reps):
            bare.append(bare_rate(clock=clock))
            for name, sim, E in engines:
                ev, sec = engine_only("online-boutique", 50, dur, clock=clock, engine=E, sim=sim)
                eng_r[name].append(ev / sec)
                stats, sec = full("online-boutique", 50, dur, ["cpu:cartservice@%d*0.9" % (dur / 2)], clock=clock, engine=E,
                                  sim=sim)  # fmt: skip
                full_r[name].append(stats["sim_events"] / sec)
            bare.append(bare_rate(clock=clock))
            rounds.append((bare[-2] + bare[-1]) / 2)
        best_bare = max(bare)
        print(f"bare simpy loop                      {best_bare:12,.0f} events/s (best; median {np.median(bare):,.0f})")
        for name, _, _ in engines:
            for what, rates in (("engine, no telemetry", eng_r[name]), ("simulate(), all tel.", full_r[name])):
                per_round = np.array(rates) / np.array(rounds)
                print(f"{name:<20} {what}  {max(rates):10,.0f} events/s = {max(rates) / best_bare:.0%} of the bare loop "
                      f"(best against best; per round median {np.median(per_round):.0%}, range {per_round.min():.0%}-{per_round.max():.0%})")
        print()
    if args.events_only:
        return

    print("== Online Boutique at 200 requests/s,", int(dur), "simulated s")
    for name, sim, E in engines:
        stats, wall = full("online-boutique", 200, dur, ["cpu:cartservice@%d*0.9" % (dur / 2)], engine=E, sim=sim)
        print(f"{name:<20} wall {wall:.1f} s; {stats['requests'] / wall:,.0f} simulated requests/s, {stats['calls'] / wall:,.0f} calls/s, "
              f"{stats['sim_events'] / wall:,.0f} events/s; {dur / wall:.0f}x faster than real time")

    print("\n== random:1000 over", int(dur), "simulated s at 50 requests/s (separate process)")
    for name, sim, E in engines:
        r = in_subprocess(1000, dur, 50, args.before if sim is not CURRENT else "")
        print(f"{name:<20} wall {r['wall']:.1f} s (process CPU {r['cpu']:.1f} s, incl. imports), peak RSS {r['peak_mib']:.0f} MiB; "
              f"{r['stats']['requests']:,} requests, {r['stats']['calls']:,} calls, {r['metric_rows']:,} metric rows, "
              f"{r['spans']:,} spans, {r['logs']:,} log lines")

    print("\n== cost against services (random:N, 50 requests/s, 120 simulated s)")
    print(f"{'services':>9} {'wall s':>8} {'calls':>9} {'metric rows':>12}")
    for n in (10, 100, 300, 1000):
        r = in_subprocess(n, 120, 50)
        print(f"{n:>9} {r['wall']:>8.2f} {r['stats']['calls']:>9,} {r['metric_rows']:>12,}")

    print("\n== cost against request rate (Online Boutique, 120 simulated s)")
    print(f"{'req/s':>7} {'wall s':>8} {'calls':>9} {'us/call':>8}")
    for rate in (10, 50, 100, 200, 400):
        stats, wall = full("online-boutique", rate, 120)
        print(f"{rate:>7} {wall:>8.2f} {stats['calls']:>9,} {1e6 * wall / max(stats['calls'], 1):>8.1f}")


if __name__ == "__main__":
    main()
