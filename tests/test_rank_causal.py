"""Known-answer tests of the causal ranker ("aisre") on hand-built cases.

Each case is a few services with noisy normal metrics; a fault at one service raises its own
saturation (CPU) and its latency, and the latency of its callers a little later, the way a real
fault propagates from callee to caller.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from aisre.case import Case, Topology
from aisre.rank import get_ranker
from aisre.rank.causal import CausalRanker, service_of

T0 = 1_700_000_000.0
FAULT_AT = T0 + 600.0


def chain_topology(edges: list[tuple[str, str]]) -> Topology:
    topo = Topology(source="given")
    for u, v in edges:
        topo.add_edge(u, v, "calls")
    return topo


def make_case(
    services: list[str],
    *,
    cpu: dict[str, float] | None = None,
    latency: dict[str, tuple[float, float]] | None = None,
    edges: list[tuple[str, str]] | None = None,
    n: int = 900,
    step: float = 1.0,
    seed: int = 0,
    detected_at: float = FAULT_AT,
) -> Case:
    """A case with ``cpu`` (percent) and ``latency`` (seconds) per service.

    *cpu* maps a service to the CPU level it jumps to at FAULT_AT; *latency* maps a service to
    (factor, delay in seconds after FAULT_AT) for its latency.
    """
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(n) * step
    rows = []
    for s in services:
        c = 20 + rng.normal(0, 1.0, n)
        lat = 0.05 + rng.normal(0, 0.002, n)
        if cpu and s in cpu:
            c = np.where(t >= FAULT_AT, cpu[s] + rng.normal(0, 1.0, n), c)
        if latency and s in latency:
            factor, lag = latency[s]
            lat = np.where(t >= FAULT_AT + lag, lat * factor, lat)
        rows.append(pd.DataFrame({"time": t, "entity": s, "metric": "cpu", "value": c}))
        rows.append(pd.DataFrame({"time": t, "entity": s, "metric": "latency", "value": lat}))
    return Case(
        id="toy", system="toy", window=(t[0], t[-1]), detected_at=detected_at,
        metrics=pd.concat(rows, ignore_index=True),
        topology=chain_topology(edges) if edges else None,
    )


def top(case: Case, k: int = 1) -> list[str]:
    return CausalRanker().rank(case).entities()[:k]


def test_registry_builds_the_causal_ranker() -> None:
    """"aisre" in the registry is this ranker, built with defaults."""
    r = get_ranker("aisre")
    assert isinstance(r, CausalRanker) and r.name == "aisre"


def test_root_at_a_leaf() -> None:
    """A CPU hog at the leaf of a -> b -> c: c saturates, b and a only get slower later."""
    case = make_case(["a", "b", "c"], cpu={"c": 95.0},
                     latency={"c": (6.0, 0.0), "b": (5.0, 20.0), "a": (4.0, 40.0)},
                     edges=[("a", "b"), ("b", "c")])
    r = CausalRanker().rank(case)
    assert not r.abstained
    assert r.entities()[0] == "c"
    assert r.hypotheses[0].fault == "cpu"


def test_root_in_the_middle_of_a_chain() -> None:
    """A slow b in a -> b -> c: b and its caller a are slow, its callee c is clean."""
    case = make_case(["a", "b", "c"], latency={"b": (8.0, 0.0), "a": (7.0, 15.0)},
                     edges=[("a", "b"), ("b", "c")])
    r = CausalRanker().rank(case)
    assert r.entities()[0] == "b"
    assert r.hypotheses[0].fault == "delay"


def test_two_simultaneous_roots_are_both_on_top() -> None:
    """Two independent CPU hogs under one caller are the top two, the caller after them."""
    case = make_case(["fe", "x", "y", "z"], cpu={"x": 90.0, "y": 92.0},
                     latency={"x": (5.0, 0.0), "y": (5.0, 0.0), "fe": (4.0, 20.0)},
                     edges=[("fe", "x"), ("fe", "y"), ("fe", "z")])
    assert set(top(case, 2)) == {"x", "y"}


def test_no_anomaly_abstains() -> None:
    """Noise only: the ranker says it does not know, with a reason."""
    case = make_case(["a", "b", "c"], edges=[("a", "b"), ("b", "c")])
    r = CausalRanker().rank(case)
    assert r.abstained
    assert "anomalous" in r.reason
    assert r.hypotheses == []


def test_case_without_metrics_abstains() -> None:
    r = CausalRanker().rank(Case(id="empty"))
    assert r.abstained and r.reason


@pytest.mark.parametrize("shift", [-60.0, 60.0, 300.0])
def test_detection_time_shift_keeps_the_answer(shift: float) -> None:
    """An alert a minute early, a minute or five late, still finds the leaf root."""
    case = make_case(["a", "b", "c"], cpu={"c": 95.0},
                     latency={"c": (6.0, 0.0), "b": (5.0, 20.0), "a": (4.0, 40.0)},
                     edges=[("a", "b"), ("b", "c")], n=1500, detected_at=FAULT_AT + shift)
    assert top(case) == ["c"]


def test_without_a_graph_the_scores_decide() -> None:
    """No topology at all: the saturated service still ranks first."""
    case = make_case(["a", "b", "c"], cpu={"b": 97.0}, latency={"b": (5.0, 0.0), "a": (3.0, 20.0)})
    assert case.topology is None
    assert top(case) == ["b"]


def test_evidence_and_confidence() -> None:
    """The top hypothesis names the signals that moved, with an onset near the fault, and the
    confidences are a distribution."""
    case = make_case(["a", "b"], cpu={"b": 95.0}, latency={"b": (5.0, 0.0)}, edges=[("a", "b")])
    r = CausalRanker().rank(case)
    h = r.hypotheses[0]
    assert h.entity == "b" and h.evidence
    onsets = [e.onset for e in h.evidence if e.onset is not None]
    assert onsets and abs(min(onsets) - FAULT_AT) <= 30
    assert all(0.0 <= x.confidence <= 1.0 for x in r.hypotheses)
    assert sum(x.confidence for x in r.hypotheses) == pytest.approx(1.0)
    assert h.confidence > r.hypotheses[1].confidence
    assert r.seconds > 0


def test_inbound_call_latency_points_at_the_callee() -> None:
    """A network delay at c shows only in its callers' per-edge latency: c is blamed."""
    rng = np.random.default_rng(3)
    t = T0 + np.arange(900.0)
    rows = []
    for caller, callee in [("a", "c"), ("b", "c"), ("a", "d"), ("b", "e"), ("a", "e")]:
        v = 0.01 + rng.normal(0, 0.0005, len(t))
        if callee == "c":
            v = np.where(t >= FAULT_AT, v + 0.2, v)
        rows.append(pd.DataFrame({"time": t, "entity": caller, "metric": f"edge_latency->{callee}", "value": v}))
    for s in "abcde":
        rows.append(pd.DataFrame({"time": t, "entity": s, "metric": "cpu", "value": 20 + rng.normal(0, 1, len(t))}))
    case = Case(id="net", window=(t[0], t[-1]), detected_at=FAULT_AT, metrics=pd.concat(rows, ignore_index=True),
                topology=chain_topology([("a", "c"), ("b", "c"), ("a", "d"), ("b", "e"), ("a", "e")]))
    r = CausalRanker().rank(case)
    assert r.entities()[0] == "c"
    assert r.hypotheses[0].fault == "delay"


def test_pod_names_fold_into_services() -> None:
    assert service_of("cartservice-7d4f8b9c6d-x2kq9") == "cartservice"
    assert service_of("carts-db") == "carts-db"
    assert service_of("cartservice-7d4f8b9c6d-x2kq9", {"cartservice-7d4f8b9c6d-x2kq9"}) == "cartservice-7d4f8b9c6d-x2kq9"


def test_deploy_event_before_onset_names_the_fault() -> None:
    """A deploy of b just before its latency rises makes it a deploy fault."""
    case = make_case(["a", "b"], latency={"b": (6.0, 0.0), "a": (4.0, 10.0)}, edges=[("a", "b")])
    ev = pd.DataFrame({"time": [FAULT_AT - 30], "entity": ["b"], "kind": ["deploy"], "reason": ["rollout"],
                       "message": ["v2"], "attributes": ["{}"]})
    case = replace(case, events=ev)
    r = CausalRanker().rank(case)
    assert r.entities()[0] == "b" and r.hypotheses[0].fault == "deploy"


def test_rcaeval_sized_case_ranks_within_a_second() -> None:
    """1,200 rows x 70 metrics (RCAEval RE2 size), detection included, under 1 s."""
    services = [f"s{i}" for i in range(35)]
    case = make_case(services, cpu={"s7": 90.0}, latency={"s7": (5.0, 0.0)}, n=1200,
                     edges=[("s0", f"s{i}") for i in range(1, 35)])
    CausalRanker().rank(case)  # warm imports
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        t = time.perf_counter()
        r = CausalRanker().rank(case)
        best = min(best, time.perf_counter() - t)
    assert best < 1.0
    assert r.entities()[0] == "s7"


def test_a_slower_callee_does_not_explain_its_callers_errors() -> None:
    """api starts failing (error rate 0 -> 5 %) while its callee db only gets a little slower and
    busier (more retries): the failing service is the root, not the slower callee. fe's other
    callees stay quiet."""
    case = make_case(["fe", "api", "db", "b", "c", "d"], latency={"db": (2.0, 0.0), "fe": (1.5, 5.0)},
                     edges=[("fe", "api"), ("api", "db"), ("fe", "b"), ("fe", "c"), ("fe", "d")])
    rng = np.random.default_rng(1)
    t = np.sort(case.metrics["time"].unique())
    errors = []
    for s in ("fe", "api", "db", "b", "c", "d"):
        v = np.abs(rng.normal(0.0, 0.001, len(t)))
        if s in ("api", "fe"):
            v = np.where(t >= FAULT_AT, 0.05 + np.abs(rng.normal(0.0, 0.002, len(t))), v)
        errors.append(pd.DataFrame({"time": t, "entity": s, "metric": "error_rate", "value": v}))
    case = replace(case, metrics=pd.concat([case.metrics, *errors], ignore_index=True))
    assert top(case) == ["api"]


def test_a_crash_loop_outweighs_a_sibling_that_only_looks_slow() -> None:
    """cart's pod is killed and backs off again and again (Kubernetes events) while calls to its
    sibling cur merely look much slower (callers held up by the failing cart): the crash loop is
    the root. One restart alone would not outweigh a latency jump that large."""
    services = ["fe", "cart", "cur", "x", "y"]
    case = make_case(services, latency={"cur": (12.0, 0.0), "fe": (3.0, 5.0)},
                     edges=[("fe", "cart"), ("fe", "cur"), ("fe", "x"), ("fe", "y")])
    times = FAULT_AT + np.array([0.0, 0.0, 5.0, 5.0, 19.0, 19.0])
    reasons = ["Killing", "Killed", "Error", "BackOff", "Error", "BackOff"]
    ev = pd.DataFrame({"time": times, "entity": "cart-6d4f9c7b8d-x2k4q", "kind": "k8s", "reason": reasons,
                       "message": "container cart exited", "attributes": "{}"})
    case = replace(case, events=ev)
    r = CausalRanker().rank(case)
    assert r.entities()[0] == "cart" and r.hypotheses[0].fault == "crash"
