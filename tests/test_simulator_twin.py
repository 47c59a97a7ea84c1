"""The digital twin: remediation actions change the running model, and their effect is measured."""

from __future__ import annotations

import pandas as pd
import pytest

from aisre.case import Action, Step
from aisre.errors import ExecutorError, SpecError
from aisre.simulator import simulate
from aisre.simulator.twin import SimulatorTwin, time_to_mitigation

INJECT = 60.0
NODES = ["node-1", "node-2"]  # every pod starts on node-1 (replica 0)


def chain(**c_overrides) -> dict:
    """a -> b -> c, one replica each (on node-1, node-2 free); c does 10 ms of work per call."""
    def svc(name, calls=(), weight=0, work=0.002, **kw):
        return {"name": name, **kw, "endpoints": [{"name": "op", "weight": weight, "work": work, "timeout": 1.0, "slo": 0.25,
                                                   "calls": [{"service": x, "endpoint": "op", "timeout": 0.5} for x in calls]}]}
    return {"name": "chain", "hosts": [{"name": "node-1", "cores": 8}, {"name": "node-2", "cores": 8}],
            "workload": {"burst_per_hour": 0, "daily_amplitude": 0},
            "services": [svc("a", ("b",), 1, hosts=NODES), svc("b", ("c",), hosts=NODES),
                         svc("c", work=0.01, hosts=NODES, **c_overrides)]}


def step(name: str, target: str, **params) -> Step:
    return Step(id="s1", action=Action(name=name, target=target, params=params))


def twin_at(faults, t=INJECT + 40, seed=3, rate=60.0, **kw) -> SimulatorTwin:
    twin = SimulatorTwin(chain(**kw), faults, duration=400, rate=rate, seed=seed, observe=90)
    twin.run_until(t)
    return twin


def test_scaling_a_cpu_saturated_service_lowers_its_latency_and_the_entry_errors():
    """A CPU hog leaves c 30 % of its core at 60 requests/s of 10 ms: it saturates and the
    entry fails; four replicas (three healthy) bring c's latency and the entry errors down."""
    faults = [f"cpu:c@{INJECT:.0f}*0.7"]
    idle, scaled = twin_at(faults), twin_at(faults)
    assert scaled.sli()["error_ratio"] > 0.05 and not scaled.sli()["met"]
    out = scaled.execute(step("scale", "c", service="c", replicas=4))
    idle.run_until(scaled.now)
    assert out.executed and out.after["replicas"] == [1, 4]
    assert out.after["error_ratio"] < 0.2 * idle.sli()["error_ratio"]
    assert scaled.sli(service="c")["latency_p90"] < 0.5 * idle.sli(service="c")["latency_p90"]
    assert out.ok and out.after["burn"] < out.before["burn"]


def test_restarting_a_leaking_instance_resets_its_memory():
    """c-0 leaks towards its limit; a restart frees the heap, and the leak (process state)
    does not come back."""
    twin = twin_at([f"mem:c-0@{INJECT:.0f}*0.3"], t=INJECT + 100, rate=20.0)
    out = twin.execute(step("restart", "c-0", service="c", instance="c-0"))
    assert out.after["restarted"] == ["c-0"]
    twin.finish()
    mem = twin.case().wide()["c-0:mem"].reset_index(drop=True)
    acted = int(INJECT + 100)
    assert mem.iloc[acted - 2] > 1.5 * mem.iloc[: int(INJECT)].median()
    assert mem.iloc[acted + 10 :].max() < 1.1 * mem.iloc[: int(INJECT)].max()
    events = twin.case().events
    assert ((events["entity"] == "c-0") & (events["reason"] == "Killing")).any()


def test_rolling_back_a_bad_deploy_ends_its_errors():
    """A bad release of b fails a share of requests; rolling b back ends the errors, and the
    rollback event names aisre."""
    twin = twin_at([f"deploy:b@{INJECT:.0f}*0.8"], rate=20.0)
    assert twin.sli()["error_ratio"] > 0.05
    out = twin.execute(step("rollback", "b", service="b"))
    assert out.ok and out.after["error_ratio"] == 0.0
    assert out.after["ended_faults"] and out.after["recovered_after"] is not None
    ev = twin.case().events
    rb = ev[ev["reason"] == "RollbackCompleted"]
    assert len(rb) == 1 and '"author": "aisre"' in rb["attributes"].iloc[0]


def test_an_action_on_the_wrong_service_does_not_recover_the_slo():
    """Rolling back or scaling a, when b's release is the fault, leaves the SLO broken."""
    for action in (step("rollback", "a", service="a"), step("scale", "a", service="a", replicas=3)):
        twin = twin_at([f"deploy:b@{INJECT:.0f}*0.8"], rate=20.0)
        out = twin.execute(action)
        assert out.executed and not out.ok
        assert out.after["error_ratio"] > 0.05 and out.after["recovered_after"] is None


def test_a_feature_flag_ends_a_code_level_error():
    twin = twin_at([f"error:c/op@{INJECT:.0f}*0.5"], rate=20.0)
    assert twin.sli()["error_ratio"] > 0.2
    out = twin.execute(step("toggle_flag", "c", service="c", flag="new-path", enabled=False))
    assert out.ok and out.after["error_ratio"] == 0.0


def test_same_seed_same_actions_same_run_and_another_seed_differs():
    def run(seed):
        twin = twin_at([f"cpu:c@{INJECT:.0f}*0.7"], seed=seed)
        out = twin.execute(step("scale", "c", service="c", replicas=3))
        return out.before, out.after, twin.slo_series()

    a, b, c = run(5), run(5), run(6)
    assert a[0] == b[0] and a[1] == b[1]
    pd.testing.assert_frame_equal(a[2], b[2])
    assert a[1] != c[1]


def test_before_any_action_the_twin_is_the_simulated_run():
    """Run to its end without actions, the twin gives exactly the Case simulate() gives."""
    spec = chain()
    twin = SimulatorTwin(spec, [f"deploy:b@{INJECT:.0f}*0.8"], duration=150, rate=20, seed=2)
    twin.run_until(70)
    twin.finish()
    case = simulate(spec, [f"deploy:b@{INJECT:.0f}*0.8"], duration=150, rate=20, seed=2)
    pd.testing.assert_frame_equal(twin.case().metrics, case.metrics)
    pd.testing.assert_frame_equal(twin.case().spans, case.spans)
    assert twin.case().detected_at == case.detected_at


def test_dry_run_changes_nothing_and_bad_steps_raise_executor_error():
    twin = twin_at([f"deploy:b@{INJECT:.0f}*0.8"], rate=20.0)
    t, n_events = twin.now, len(twin.engine.events)
    out = twin.execute(step("rollback", "b", service="b"), dry_run=True)
    assert not out.executed and out.ok and out.dry_run and "roll b back" in out.message
    assert twin.now == t and len(twin.engine.events) == n_events and twin.actions == []
    with pytest.raises(ExecutorError):
        twin.execute(step("reboot", "b"), dry_run=True)
    with pytest.raises(ExecutorError):
        twin.execute(step("scale", "nope", service="nope", replicas=2), dry_run=False)
    with pytest.raises(ExecutorError):
        twin.execute(step("shift_traffic", "b", service="b", away_from="b", to="dr-site"), dry_run=False)


def test_draining_a_noisy_host_moves_the_pods_away():
    """A batch job on node-1 slows everything there; draining node-1 starts the pods on node-2."""
    twin = twin_at([f"neighbour:node-1@{INJECT:.0f}*1.0"], rate=40.0)
    out = twin.execute(step("shift_traffic", "node-1", away_from="node-1"))
    assert sorted(out.after["drained"]) == ["a-0", "b-0", "c-0"]
    eng = twin.engine
    for s in ("a", "b", "c"):
        assert all(eng.host_names[eng.inst_host[i]] == "node-2" for i in eng.routable[eng.svc_index[s]])
    assert out.after["latency_p90"] < out.before["latency_p90"]


def test_rate_limit_rejects_the_excess():
    twin = twin_at([], rate=40.0)
    out = twin.execute(step("rate_limit", "c", service="c", rps=10))
    assert out.after["rps"] == 10.0
    c = twin.sli(service="c")
    assert c["requests"] <= 12 * twin.window
    assert out.after["error_ratio"] > 0.5


def test_time_to_mitigation_is_shorter_with_the_right_action():
    m = time_to_mitigation(chain(), [f"deploy:b@{INJECT:.0f}*0.8"], Action("rollback", "b", {"service": "b"}),
                           duration=400, rate=20, seed=1)
    assert m.breached and m.ok
    assert m.ttm_with < 0.5 * m.ttm_without
    assert m.acted == pytest.approx(m.detected + 30.0)
    wrong = time_to_mitigation(chain(), [f"deploy:b@{INJECT:.0f}*0.8"], Action("rollback", "a", {"service": "a"}),
                               duration=400, rate=20, seed=1)
    assert not wrong.ok and wrong.ttm_with == wrong.ttm_without


def test_bad_settings_name_the_field():
    with pytest.raises(SpecError) as e:
        SimulatorTwin(chain(), [], window=0)
    assert e.value.field == "window"
