"""A Case taken mid-run (the digital twin's snapshot) while faults are still under way: the
telemetry stops at the snapshot's time, and every fault kind's signal is there up to it."""

from __future__ import annotations

import pytest
from aisre.simulator import export_case
from aisre.simulator.twin import SimulatorTwin

from aisre.case import FAULT_KINDS, load_case

START, SNAP, DURATION = 40.0, 70.5, 200.0
NODES = ["node-1", "node-2"]

FAULTS = {
    "cpu": "cpu:c", "mem": "mem:c", "disk": "disk:c", "delay": "delay:c", "loss": "loss:c", "socket": "socket:c",
    "crash": "crash:c", "error": "error:c/op", "deploy": "deploy:c", "config": "config:c", "pool": "pool:db",
    "neighbour": "neighbour:node-2",
}  # fmt: skip


def chain() -> dict:
    """a -> b -> c -> db (c's pool of 4 connections to db); c and db on node-2."""
    def svc(name, calls=(), weight=0, hosts=("node-1",), **kw):
        return {"name": name, "hosts": list(hosts), **kw,
                "endpoints": [{"name": "op", "weight": weight, "work": 0.003, "timeout": 1.0, "slo": 0.25,
                               "calls": [{"service": x, "endpoint": "op", "timeout": 0.5, **({"pool": 4} if x == "db" else {})}
                                         for x in calls]}]}  # fmt: skip
    return {"name": "chain", "hosts": [{"name": n, "cores": 4} for n in NODES],
            "workload": {"burst_per_hour": 0, "daily_amplitude": 0},
            "services": [svc("a", ("b",), 1), svc("b", ("c",)), svc("c", ("db",), hosts=["node-2"]),
                         svc("db", kind="database", hosts=["node-2"])]}  # fmt: skip


def snapshot(spec: str, **kw):
    twin = SimulatorTwin(chain(), [f"{spec}@{START:.0f}"], duration=DURATION, rate=30.0, seed=5, **kw)
    twin.run_until(SNAP)
    return twin, twin.case()


def test_every_fault_kind_is_covered():
    assert sorted(FAULTS) == sorted(FAULT_KINDS)


def test_a_snapshot_while_a_disk_fault_is_active_shows_the_disk_load_until_the_snapshot(tmp_path):
    """The disk fault lasts to the end of the run, past the snapshot: the snapshot's c-0 disk
    I/O is at the fault's level (about 64 MB/s at intensity 0.8) from the fault's start until
    the snapshot, near zero before, and no row lies beyond the snapshot. The Case saves and
    loads back with the same metrics."""
    twin, case = snapshot("disk:c")
    assert twin.now == SNAP
    wide = case.wide()
    t = wide.index.to_numpy() - case.window[0]
    disk = wide["c-0:diskio"].to_numpy()
    assert t.max() < SNAP and t.max() >= SNAP - 1.5
    during = disk[(t >= START) & (t < SNAP - 1)]
    before = disk[t < START]
    assert during.min() > 40e6 and before.max() < 1e6
    assert case.window[1] - case.window[0] == pytest.approx(SNAP)
    back = load_case(export_case(case, tmp_path))
    assert back.metrics["value"].sum() == pytest.approx(case.metrics["value"].sum())
    assert len(back.metrics) == len(case.metrics)


def test_a_snapshot_does_not_change_the_rest_of_the_run():
    """Taking the snapshot mid-fault draws from a generator of its own: the finished run is
    the one a twin without the snapshot makes."""
    twin, _ = snapshot("disk:c")
    twin.finish()
    other = SimulatorTwin(chain(), [f"disk:c@{START:.0f}"], duration=DURATION, rate=30.0, seed=5)
    other.finish()
    a, b = twin.case(), other.case()
    assert a.metrics.equals(b.metrics) and a.spans.equals(b.spans) and a.logs.equals(b.logs)


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_snapshot_while_any_fault_is_active_builds_every_table(kind):
    """Whatever the fault, a snapshot during it has metrics for every entity up to the snapshot
    and the fault's target among the entities, and its truth names the fault."""
    _, case = snapshot(FAULTS[kind])
    t = case.metrics["time"].to_numpy() - case.window[0]
    assert 0.0 <= t.min() and t.max() < SNAP
    assert case.truth is not None and case.truth.fault == kind
    entities = set(case.metrics["entity"].astype(str))
    assert {"a", "b", "c", "db", "c-0"} <= entities
    assert len(case.spans) > 0 and len(case.logs) >= 0
