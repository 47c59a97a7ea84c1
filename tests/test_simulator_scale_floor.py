"""A scale-up by hand on an autoscaled service holds: the replica count becomes the autoscaler's
floor, as patching a HorizontalPodAutoscaler's minReplicas does, so a quiet service is not scaled
back down under the engineer (or aisre) who scaled it up."""

from __future__ import annotations

from aisre.simulator.engine import AUTOSCALE_PERIOD
from aisre.simulator.twin import SimulatorTwin

from aisre.case import Action

NODES = ["node-1", "node-2"]


def autoscaled_chain() -> dict:
    """a -> b; b autoscales between 1 and 4 replicas and is nearly idle at 5 req/s."""
    def svc(name, calls=(), weight=0, **extra):
        return {"name": name, "hosts": NODES, **extra,
                "endpoints": [{"name": "op", "weight": weight, "work": 0.002, "timeout": 1.0, "slo": 0.25,
                               "calls": [{"service": x, "endpoint": "op", "timeout": 0.5} for x in calls]}]}  # fmt: skip
    return {"name": "chain", "hosts": [{"name": "node-1", "cores": 8}, {"name": "node-2", "cores": 8}],
            "workload": {"burst_per_hour": 0, "daily_amplitude": 0},
            "services": [svc("a", ("b",), 1), svc("b", autoscale={"min": 1, "max": 4, "target_cpu": 0.8})]}


def serving_after_scale(replicas: int) -> int:
    twin = SimulatorTwin(autoscaled_chain(), [], duration=400, rate=5.0, seed=1)
    twin.run_until(60)
    twin.apply(Action(name="scale", target="b", params={"replicas": replicas}))
    twin.run_until(60 + 12 * AUTOSCALE_PERIOD)  # well past the scale-down stabilisation window
    eng = twin.engine
    return len(eng.serving(eng.svc_index["b"]))


def test_a_scale_up_by_hand_is_not_undone_by_the_autoscaler() -> None:
    assert serving_after_scale(3) == 3


def test_a_scale_above_the_autoscaler_maximum_holds_too() -> None:
    assert serving_after_scale(6) == 6
