"""The engine's speed-ups change nothing the model does: its event loop processes the events
simpy's would, leaf calls served inline record what the general path records, and a run
leaves no reference cycles behind (so pausing the cyclic collector during it costs no memory)."""

from __future__ import annotations

import gc
import struct
import types

import numpy as np
import pytest
import simpy
from aisre.simulator import load_topology, resolve_faults
from aisre.simulator.engine import RECORD_FIELDS, Engine
from aisre.simulator.workload import draw_arrivals

DURATION = 90.0


def topology() -> dict:
    """A gateway calling two services in parallel (one twice, one optional), a database through
    a pool of 3 with retries, and a queue asynchronously: every kind of call the engine has."""
    return {"name": "mix", "hosts": [{"name": "node-1", "cores": 4}, {"name": "node-2", "cores": 4}],
            "services": [
                {"name": "gw", "hosts": ["node-1"], "capacity": 8, "endpoints": [{
                    "name": "op", "weight": 1, "work": 0.002, "timeout": 2.0, "calls": [
                        {"parallel": [{"service": "a", "endpoint": "op", "count": 2}, {"service": "b", "endpoint": "op", "optional": True}]},
                        {"service": "db", "endpoint": "q", "pool": 3, "retries": 2, "timeout": 0.3},
                        {"service": "q", "endpoint": "push", "async": True}]}]},
                {"name": "a", "hosts": ["node-1"], "capacity": 4, "endpoints": [{"name": "op", "work": 0.004,
                                                                                 "calls": [{"service": "db", "endpoint": "q", "pool": 2}]}]},
                {"name": "b", "hosts": ["node-2"], "replicas": 2, "endpoints": [{"name": "op", "work": 0.003}]},
                {"name": "db", "kind": "database", "hosts": ["node-2"], "endpoints": [{"name": "q", "work": 0.002}]},
                {"name": "q", "kind": "queue", "hosts": ["node-2"], "endpoints": [{"name": "push", "work": 0.001}]},
            ]}  # fmt: skip


FAULTS = {
    "none": [],
    "loss and config": ["loss:a@30*0.5", "config:db@60*0.9"],
    "crash and leak": ["crash:b@20+40", "mem:a@10*0.9"],
    "pool and delay": ["pool:db@20*0.9", "delay:b@50*0.3"],
    "overload": ["cpu:db@30*0.95"],
}


def engine(faults: list[str], rate: float = 60.0, seed: int = 6) -> Engine:
    topo = load_topology(topology())
    rng = np.random.default_rng(seed)
    arr = draw_arrivals([w for _, _, w in topo.entry_endpoints()], rate, DURATION, rng, shape=topo.workload)
    return Engine(topo, resolve_faults(faults, topo, DURATION), arr, rng, duration=DURATION)


def same(a, b) -> None:
    assert a.sim_events == b.sim_events
    assert np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.records, b.records)
    assert a.events == b.events and a.logs == b.logs and a.down == b.down


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_the_engine_loop_processes_the_events_simpys_own_loop_would(name):
    """Run once with the engine's loop and once with simpy's ``Environment.run``, advancing in
    three steps as the twin does: the records, events and event count are the same."""
    ours, theirs = engine(FAULTS[name]), engine(FAULTS[name])
    theirs.env.run = types.MethodType(simpy.Environment.run, theirs.env)
    for t in (33.3, 80.0, DURATION):
        ours.advance(t)
        theirs.advance(t)
    same(ours.result(), theirs.result())


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_leaf_calls_served_inline_record_what_the_general_path_records(name):
    """With the inline leaf path switched off every call goes through ``_serve``: the run is
    the same, record for record."""
    fast, slow = engine(FAULTS[name]), engine(FAULTS[name])
    slow._compile_calls(inline=False)
    a, b = fast.run(), slow.run()
    assert len(a.records) > 5000
    same(a, b)


def test_a_run_leaves_no_reference_cycles_and_the_collector_as_it_found_it():
    """Everything a run allocates is freed by reference counting (nothing for the cyclic
    collector to find afterwards), and the collector is back on after the run."""
    eng = engine(FAULTS["crash and leak"] + ["pool:db@70*0.9"])
    gc.collect()
    assert gc.isenabled()
    res = eng.run()
    assert gc.isenabled()
    assert len(res.records) > 5000
    assert gc.collect() == 0


def test_a_run_keeps_the_collector_off_when_it_was_off():
    gc.disable()
    try:
        engine([]).run()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_record_array_holds_every_finished_attempt_exactly_in_id_order():
    """``result()`` holds each finished attempt once (in-flight ones left out), in id order,
    with the values the engine packed: ints whole, times with every bit."""
    eng = engine(FAULTS["overload"], rate=150.0)
    eng.advance(60.0)
    res = eng.result()
    raw = bytes(eng.out)
    size = len(raw) // eng.n_finished()
    rows = sorted(struct.unpack("=qddqqqqqqdqqqdq", raw[k : k + size]) for k in range(0, len(raw), size))
    ids = [r[0] for r in rows]
    assert res.ids.tolist() == ids and len(set(ids)) == len(ids)
    assert ids[-1] + 1 > len(ids)  # some requests are in flight at second 60: their ids are gaps
    assert np.array_equal(res.records, np.array([r[1:] for r in rows], dtype=np.float64))
    later = eng.n_finished()
    eng.advance(61.0)
    assert eng.n_finished() > later and eng.finished(later)["end"].min() >= 60.0


def test_a_request_keeps_its_own_attempt_number_when_its_call_is_retried():
    """gw's only call goes to b with retries; b-0 crashes, so some calls are refused and retried
    on b-1. The retries carry attempt 1; every gw request (an entry, never retried) attempt 0."""
    topo = load_topology({
        "name": "retry", "hosts": [{"name": "node-1", "cores": 4}],
        "services": [
            {"name": "gw", "endpoints": [{"name": "op", "weight": 1, "work": 0.001,
                                         "calls": [{"service": "b", "endpoint": "op", "retries": 2}]}]},
            {"name": "b", "replicas": 2, "endpoints": [{"name": "op", "work": 0.001}]},
        ]})  # fmt: skip
    rng = np.random.default_rng(3)
    arr = draw_arrivals([w for _, _, w in topo.entry_endpoints()], 40.0, 60.0, rng, shape=topo.workload)
    eng = Engine(topo, resolve_faults(["crash:b-0@20+30"], topo, 60.0), arr, rng, duration=60.0)
    rows = eng.run().records
    svc = rows[:, RECORD_FIELDS.index("service")]
    attempt = rows[:, RECORD_FIELDS.index("attempt")]
    gw, b = eng.svc_index["gw"], eng.svc_index["b"]
    assert (attempt[svc == b] >= 1).sum() >= 5  # retried calls happened
    assert (attempt[svc == gw] == 0).all()


@pytest.mark.parametrize("loop", ["engine", "simpy"])
def test_a_timer_wakes_a_request_process_as_a_timeout_would(loop):
    """A process yielding wake-up times and one yielding ``env.timeout()`` interleave as if
    both used timeouts: the same wake-up order (ties by scheduling order), the value None, the
    same number of events; a process waiting on the timer process sees it end."""
    from aisre.simulator.engine import _Env, _spawn

    def run(timers: bool) -> tuple[list, int]:
        env = _Env()
        if loop == "simpy":
            env.run = types.MethodType(simpy.Environment.run, env)
        seen: list = []

        def sleeper(name: str, gaps: list[float], timer: bool):
            for gap in gaps:
                got = yield (env.now + gap) if timer else env.timeout(gap)
                seen.append((env.now, name, got))
            return name

        def waiter(p):
            value = yield p
            seen.append((env.now, "waiter", value))

        a = _spawn(env, sleeper("a", [1.0, 0.5, 0.5, 2.0], timers))
        _spawn(env, sleeper("b", [0.5, 1.0, 0.5, 0.25], False))
        _spawn(env, sleeper("c", [1.5, 0.5, 0.5], timers))
        env.process(waiter(a))
        env.run(until=3.5)
        env.run(until=10)
        return seen, next(env._eid) - len(env._queue)

    assert run(timers=True) == run(timers=False)
    seen, _ = run(timers=True)
    assert [n for t, n, _ in seen if t == 1.5] == ["c", "b", "a"]  # a tie: in scheduling order
    assert seen[-1] == (4.0, "waiter", "a") and all(v is None for _, n, v in seen if n != "waiter")
