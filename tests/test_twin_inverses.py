"""The digital twin's feature flags and inverse actions: a fault behind a flag announces the flag
change and ends when that flag is switched off; a rate limit is lifted, a drained pod comes back,
a cordoned host is uncordoned; recovery can mean "back for good"."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aisre.simulator.faults import parse_fault
from aisre.simulator.twin import MITIGATION_FAULTS, SimulatorTwin, scenario_fault

from aisre.case import Action, Step
from aisre.errors import ExecutorError, SpecError

INJECT = 60.0
NODES = ["node-1", "node-2"]


def chain() -> dict:
    """a -> b -> c, one replica each (on node-1, node-2 free); c does 10 ms of work per call."""
    def svc(name, calls=(), weight=0, work=0.002):
        return {"name": name, "hosts": NODES, "endpoints": [{"name": "op", "weight": weight, "work": work, "timeout": 1.0,
                "slo": 0.25, "calls": [{"service": x, "endpoint": "op", "timeout": 0.5} for x in calls]}]}  # fmt: skip
    return {"name": "chain", "hosts": [{"name": "node-1", "cores": 8}, {"name": "node-2", "cores": 8}],
            "workload": {"burst_per_hour": 0, "daily_amplitude": 0},
            "services": [svc("a", ("b",), 1), svc("b", ("c",)), svc("c", work=0.01)]}  # fmt: skip


def step(name: str, target: str, **params) -> Step:
    return Step(id="s1", action=Action(name=name, target=target, params=params))


def twin_at(faults, t=INJECT + 40, rate=20.0, seed=3) -> SimulatorTwin:
    twin = SimulatorTwin(chain(), faults, duration=400, rate=rate, seed=seed, observe=60)
    twin.run_until(t)
    return twin


def test_a_flag_in_the_spec_round_trips_and_only_code_faults_take_one():
    f = parse_fault("error:c/op@60+300*0.5#new-path")
    assert (f.kind, f.target, f.flag) == ("error", "c/op", "new-path") and str(f) == "error:c/op@60+300*0.5#new-path"
    assert parse_fault("deploy:b#canary.v2").flag == "canary.v2" and parse_fault("cpu:c").flag is None
    for bad in ("cpu:c#hot", "error:c/op#", "error:c/op#two words"):
        with pytest.raises(SpecError) as e:
            parse_fault(bad)
        assert e.value.field == "flag"


def test_a_fault_behind_a_flag_announces_the_flag_change_at_its_start():
    twin = twin_at([f"error:c/op@{INJECT:.0f}*0.5#new-path"])
    ev = twin.case().events
    row = ev[ev["reason"] == "FeatureFlagChanged"]
    assert len(row) == 1 and row["entity"].iloc[0] == "c" and row["kind"].iloc[0] == "config"
    assert row["time"].iloc[0] == pytest.approx(twin.start_time + INJECT)
    assert json.loads(row["attributes"].iloc[0])["flag"] == "new-path"
    assert json.loads(row["attributes"].iloc[0])["enabled"] is True
    assert twin.case().meta["faults"][0]["flag"] == "new-path"


def test_switching_the_faults_own_flag_off_ends_it_and_another_flag_does_not():
    twin = twin_at([f"error:c/op@{INJECT:.0f}*0.5#new-path"])
    assert twin.sli()["error_ratio"] > 0.2
    other = twin.execute(step("toggle_flag", "c", service="c", flag="dark-mode", enabled=False))
    assert other.after["ended_faults"] == [] and not other.ok and other.after["error_ratio"] > 0.2
    on = twin.execute(step("toggle_flag", "c", service="c", flag="new-path", enabled=True))
    assert on.after["ended_faults"] == []
    off = twin.execute(step("toggle_flag", "c", service="c", flag="new-path", enabled=False))
    assert off.after["ended_faults"] and off.ok and off.after["error_ratio"] == 0.0


def test_a_rollback_does_not_end_a_flagged_error_and_a_roll_forward_ends_nothing():
    twin = twin_at([f"error:c/op@{INJECT:.0f}*0.5#new-path"])
    out = twin.execute(step("rollback", "c", service="c"))
    assert out.after["ended_faults"] == [] and not out.ok
    twin = twin_at([f"deploy:b@{INJECT:.0f}*0.8"])
    out = twin.execute(step("rollback", "b", service="b", roll_forward=True))
    assert out.after["ended_faults"] == [] and not out.ok


def test_a_rate_limit_is_lifted_by_its_inverse():
    twin = twin_at([], rate=40.0)
    limited = twin.execute(step("rate_limit", "c", service="c", rps=10))
    assert limited.after["error_ratio"] > 0.5
    lifted = twin.execute(step("rate_limit", "c", service="c", remove=True, rps=10**9))
    assert lifted.after["rps"] is None and lifted.after["error_ratio"] == 0.0
    assert not twin.engine.limited[twin.engine.svc_index["c"]]


def test_a_drained_pod_goes_back_into_the_load_balancer():
    """c runs three pods; draining c-0 takes it out of c's routing, restoring it puts it back and
    it serves requests again."""
    twin = twin_at([])
    twin.execute(step("scale", "c", service="c", replicas=3))
    eng = twin.engine
    s, c0 = eng.svc_index["c"], eng.inst_index["c-0"]
    twin.execute(step("shift_traffic", "c-0", service="c", away_from="c-0"))
    assert c0 not in eng.routable[s]
    served_before = int((eng.finished()["instance"] == c0).sum())
    out = twin.execute(step("shift_traffic", "c-0", service="c", restore="c-0"))
    assert out.after["restored"] == ["c-0"] and c0 in eng.routable[s] and c0 not in eng.drained
    assert (eng.finished()["instance"] == c0).sum() > served_before + 100
    with pytest.raises(ExecutorError):
        twin.execute(step("shift_traffic", "x", service="c", restore="nowhere-7"))


def test_a_cordoned_host_is_uncordoned():
    twin = twin_at([])
    twin.execute(step("shift_traffic", "node-1", away_from="node-1"))
    h = twin.engine.host_names.index("node-1")
    assert h in twin.engine.cordoned
    out = twin.execute(step("shift_traffic", "node-1", restore="node-1"))
    assert out.after["uncordoned"] == "node-1" and h not in twin.engine.cordoned


def test_recovery_for_good_waits_for_the_last_breach():
    """A pod OOM-killed again and again breaks the SLO in bouts: the first quiet half minute comes
    long before the SLO is back for good (c's leak reaches the limit every two minutes)."""
    twin = SimulatorTwin(chain(), ["mem:c@60+240*0.5"], duration=400, rate=20, seed=1)
    twin.finish()
    first, broke = twin.recovery(60)
    back, _ = twin.recovery(60, lasting=True)
    met = twin.slo_series()["met"].to_numpy()
    assert broke and first is not None and back is not None
    assert first + 60 < back
    assert met[int(back):].all() and not met[int(back) - 1]
    assert not met[int(first): int(back)].all()


def test_scenario_faults_keep_intensity_and_flag():
    assert scenario_fault("cpu:frontend*1.0", 300, 900) == "cpu:frontend@300+900*1"
    assert scenario_fault("error:paymentservice/Charge#charge-v2", 300, 900) == "error:paymentservice/Charge@300+900#charge-v2"
    specs = [parse_fault(s) for s in MITIGATION_FAULTS]
    assert len({s.kind for s in specs}) == len(specs)  # one incident per fault kind
    assert np.all([s.start is None and s.duration is None for s in specs])
