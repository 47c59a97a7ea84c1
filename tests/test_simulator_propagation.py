"""Known answers on a 4-service chain a -> b -> c -> d (plus e, called by a, off the path)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aisre.simulator import simulate

T0 = 1_700_000_000.0
INJECT = 120


def chain_with_sibling() -> dict:
    """a -> b -> c -> d in call order, and a -> e beside them."""
    def svc(name, calls=(), weight=0):
        return {"name": name, "endpoints": [{"name": "op", "weight": weight, "work": 0.002,
                                             "calls": [{"service": c, "endpoint": "op"} for c in calls]}]}
    return {"name": "chain", "hosts": [{"name": "node-1", "cores": 8}],
            "workload": {"burst_per_hour": 0},
            "services": [svc("a", ("b", "e"), 1), svc("b", ("c",)), svc("c", ("d",)), svc("d"), svc("e")]}


def onset(series: pd.Series, inject: int) -> int | None:
    """First second at or after *inject* where the value leaves its pre-fault band for good
    (three seconds in a row above the baseline's max plus a quarter of its range)."""
    base = series.iloc[10:inject]
    thr = base.max() + 0.25 * (base.max() - base.min()) + 1e-9
    above = (series > thr).to_numpy()
    for t in range(inject, len(series) - 2):
        if above[t] and above[t + 1] and above[t + 2]:
            return t
    return None


@pytest.fixture(scope="module")
def cpu_case():
    return simulate(chain_with_sibling(), [f"cpu:d@{INJECT}+120*0.8"], duration=240, rate=40, seed=3)


def test_leaf_saturates_first_then_callers_in_call_order(cpu_case):
    """A CPU hog at the leaf raises the leaf's CPU first, then c's, b's and a's latency in call order."""
    w = cpu_case.wide().reset_index(drop=True)
    sat = onset(w["d:cpu"], INJECT)
    lat = {s: onset(w[f"{s}:latency-90"], INJECT) for s in "dcba"}
    assert sat == INJECT
    assert None not in lat.values()
    assert sat <= lat["d"] <= lat["c"] <= lat["b"] <= lat["a"] <= INJECT + 10


def test_fault_leaves_the_off_path_service_alone(cpu_case):
    """The sibling e, not downstream of d, keeps its latency."""
    w = cpu_case.wide().reset_index(drop=True)
    before = w["e:latency-90"].iloc[20:INJECT].median()
    after = w["e:latency-90"].iloc[INJECT + 10 : 240].median()
    assert after < 1.5 * before
    assert w["d:latency-90"].iloc[INJECT + 10 : 240].median() > 5 * w["d:latency-90"].iloc[20:INJECT].median()


def test_latency_added_at_the_leaf_reaches_every_caller(cpu_case):
    """Each caller's latency grows by at least the leaf's growth (it waits for it), in call order."""
    w = cpu_case.wide().reset_index(drop=True)
    rise = {s: w[f"{s}:latency-50"].iloc[INJECT + 10 :].median() - w[f"{s}:latency-50"].iloc[20:INJECT].median() for s in "abcd"}
    assert rise["a"] >= rise["b"] * 0.9 and rise["b"] >= rise["c"] * 0.9 and rise["c"] >= rise["d"] * 0.9
    assert rise["d"] > 0.005


def test_truth_and_detection(cpu_case):
    """Ground truth names the leaf, the kind and the start; detection is an alert after it."""
    t = cpu_case.truth
    assert (t.service, t.fault, t.inject_time, t.entity) == ("d", "cpu", T0 + INJECT, "d-0")
    assert T0 + INJECT <= cpu_case.detected_at <= T0 + INJECT + 90
    assert cpu_case.meta["faults"][0]["kind"] == "cpu"


def test_crash_errors_upstream_and_restarts():
    """A crash of the leaf fails its callers (errors at c, b, a) and shows kill, back-off and restart events."""
    case = simulate(chain_with_sibling(), [f"crash:d@{INJECT}+60"], duration=240, rate=30, seed=4)
    w = case.wide().reset_index(drop=True)
    for s in "abc":
        assert w[f"{s}:error"].iloc[:INJECT].sum() == 0
        assert w[f"{s}:error"].iloc[INJECT : INJECT + 60].sum() > 10
    assert w["e:error"].sum() == 0
    ev = case.events
    reasons = ev[ev["entity"] == "d-0"].sort_values("time")["reason"].tolist()
    assert reasons[:3] == ["Killing", "Killed", "Started"]
    assert "BackOff" in reasons and reasons.count("Started") >= 2
    refused = case.logs[(case.logs["entity"] == "c") & case.logs["message"].str.contains("connection refused calling d/op")]
    assert len(refused) > 0
    assert (refused["time"] >= T0 + INJECT).all()


def test_bad_deploy_is_preceded_by_its_deploy_event():
    """The deploy event comes first; the new version's errors and slowness only after it."""
    case = simulate(chain_with_sibling(), [f"deploy:c@{INJECT}+100*0.8"], duration=240, rate=30, seed=5)
    ev = case.events
    deploy = ev[(ev["kind"] == "deploy") & (ev["entity"] == "c")].sort_values("time")
    assert deploy.iloc[0]["reason"] == "DeploymentUpdated"
    t_deploy = deploy.iloc[0]["time"]
    assert t_deploy == T0 + INJECT
    bad = case.logs[(case.logs["entity"] == "c") & case.logs["template"].str.contains("version <\\*>", regex=True)
                    & (case.logs["level"] == "ERROR")]
    assert len(bad) > 0 and bad["time"].min() > t_deploy
    assert case.changes and case.changes[0].time == t_deploy and case.changes[0].service == "c"
    w = case.wide().reset_index(drop=True)
    assert w["c:error"].iloc[:INJECT].sum() == 0 and w["c:error"].iloc[INJECT:].sum() > 0


def test_queue_builds_when_capacity_is_exceeded():
    """Offered load above a service's capacity queues requests: latency climbs, then timeouts fail them."""
    doc = chain_with_sibling()
    doc["services"][3]["capacity"] = 1
    doc["services"][3]["endpoints"][0]["work"] = 0.03
    case = simulate(doc, [], duration=60, rate=60, seed=1)
    w = case.wide()
    assert w["d:latency-90"].iloc[30:].median() > 0.3
    assert w["a:error"].iloc[30:].sum() > 0


def test_open_loop_rate():
    """Arrivals are open loop: the entry's workload averages the offered rate (daily shape ~1)."""
    case = simulate(chain_with_sibling(), [], duration=300, rate=20, seed=2, start_time=T0)
    w = case.wide()
    shape = 1 + 0.3 * np.cos(2 * np.pi * (((T0 / 3600) % 24) - 15) / 24)
    assert abs(w["a:workload"].mean() - 20 * shape) < 1.5


def test_autoscaler_adds_replicas_under_load():
    """CPU above the autoscaler's target adds a replica, with a scale event, and it takes traffic."""
    doc = chain_with_sibling()
    doc["services"][1].update(autoscale={"min": 1, "max": 3, "target_cpu": 0.5}, capacity=256)
    doc["services"][1]["endpoints"][0]["work"] = 0.03
    case = simulate(doc, [], duration=120, rate=30, seed=1)
    scale = case.events[case.events["kind"] == "scale"]
    assert len(scale) >= 1
    w = case.wide()
    assert "b-1:workload" in w.columns and w["b-1:workload"].iloc[-20:].sum() > 0


def test_parallel_calls_overlap_and_async_calls_do_not_block():
    """A parallel group's calls run at the same time; an async call's latency never reaches its caller."""
    doc = {"name": "fanout", "services": [
        {"name": "gw", "endpoints": [{"name": "op", "weight": 1, "work": 0.001, "calls": [
            {"parallel": [{"service": "x"}, {"service": "y"}]},
            {"service": "q", "async": True},
        ]}]},
        {"name": "x", "endpoints": [{"name": "op", "work": 0.05}]},
        {"name": "y", "endpoints": [{"name": "op", "work": 0.05}]},
        {"name": "q", "endpoints": [{"name": "op", "work": 0.5}]},
    ]}  # fmt: skip
    case = simulate(doc, [], duration=60, rate=5, seed=1, trace_sample=1.0)
    s = case.spans
    x = s[s["service"] == "x"].set_index("trace_id")["start"]
    y = s[s["service"] == "y"].set_index("trace_id")["start"]
    both = x.index.intersection(y.index)
    assert len(both) > 50
    assert (abs(x[both] - y[both]) < 0.01).mean() > 0.9
    w = case.wide()
    assert w["q:workload"].sum() > 50
    assert w["gw:latency-50"].iloc[10:].median() < 0.3 < w["q:latency-50"].iloc[10:].median()
