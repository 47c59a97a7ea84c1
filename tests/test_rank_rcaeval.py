"""The adapter to RCAEval's published BARO, N-Sigma and CIRCA."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from aisre.case import Case, Truth
from aisre.errors import UsageError
from aisre.rank import get_ranker
from aisre.rank import rcaeval as adapter
from aisre.rank.rcaeval import entity_of, ranks_to_entities, to_rcaeval_frame

ENTITIES = ("front-end", "carts", "carts-db", "ts_auth_service", "ts_auth_service-mongo", "PGSQL Query_remote")


def needs_rcaeval() -> None:
    pytest.importorskip("RCAEval.e2e.baro", reason="rcaeval not installed (pip install 'aisre[baselines]')")


def synthetic(root: str = "ts_auth_service-mongo", *, metric: str = "cpu", n: int = 120, seed: int = 1) -> Case:
    """Noisy cpu/mem/latency for every entity; *root*'s *metric* triples from t=1060."""
    rng = np.random.default_rng(seed)
    t = np.arange(1000.0, 1000.0 + n)
    rows = []
    for e in ENTITIES:
        for m, base in (("cpu", 5.0), ("mem", 2e8), ("lat_90", 0.05)):
            v = base * (1 + 0.05 * rng.standard_normal(n))
            if e == root and m == metric:
                v[t >= 1060] *= 3
            rows.append(pd.DataFrame({"time": t, "entity": e, "metric": m, "value": v}))
    return Case(
        id="syn",
        window=(t[0], t[-1]),
        detected_at=1060.0,
        metrics=pd.concat(rows, ignore_index=True),
        truth=Truth(root, "cpu"),
    )


# --------------------------------------------------------------------------- mapping names


def test_entity_of_takes_the_longest_known_entity():
    """Names holding '_' and '-' map back to the right entity, never to a shorter prefix."""
    assert entity_of("carts-db_cpu", ENTITIES) == "carts-db"
    assert entity_of("carts_cpu", ENTITIES) == "carts"
    assert entity_of("ts_auth_service_lat_90", ENTITIES) == "ts_auth_service"
    assert entity_of("ts_auth_service-mongo_mem", ENTITIES) == "ts_auth_service-mongo"
    assert entity_of("PGSQL Query_remote_latency", ENTITIES) == "PGSQL Query_remote"
    assert entity_of("time", ENTITIES) is None
    assert entity_of("cart_cpu", ENTITIES) is None


def test_ranks_to_entities_dedupes_best_first():
    columns = {"a_b_cpu": "a_b", "a_b_mem": "a_b"}
    ranks = ["a_b_mem", "time", "c-d_cpu", "a_b_cpu", "c-d_mem"]
    assert ranks_to_entities(ranks, columns, ["a_b", "c-d"]) == [("a_b", "a_b_mem"), ("c-d", "c-d_cpu")]


def test_frame_has_time_and_entity_metric_columns():
    """Built from the long table: entity names with ':' and '_' survive, gaps are filled."""
    m = pd.DataFrame(
        {
            "time": [1.0, 1.0, 2.0, 3.0, 3.0, 3.0],
            "entity": ["a:b_c", "x", "a:b_c", "a:b_c", "x", "x"],
            "metric": ["lat_90", "cpu", "lat_90", "lat_90", "cpu", "latency-50"],
            "value": [1.0, 5.0, np.inf, 3.0, 7.0, 9.0],
        }
    )
    case = Case("c", metrics=m)
    frame, cols = to_rcaeval_frame(case)
    assert list(frame.columns) == ["time", "a:b_c_lat_90", "x_cpu"]  # latency-50 dropped as main.py does
    assert frame["time"].tolist() == [1.0, 2.0, 3.0]
    assert frame["a:b_c_lat_90"].tolist() == [1.0, 1.0, 3.0]  # inf is a gap, forward-filled
    assert frame["x_cpu"].tolist() == [5.0, 5.0, 7.0]
    assert cols == {"a:b_c_lat_90": "a:b_c", "x_cpu": "x"}
    frame, cols = to_rcaeval_frame(case, aliases=True)
    assert list(frame.columns) == ["time", "e0_lat-90", "e1_cpu"]
    assert cols == {"e0_lat-90": "a:b_c", "e1_cpu": "x"}


def test_colliding_names_fall_back_to_aliases():
    """('a_b', 'c') and ('a', 'b_c') would both be 'a_b_c': aliases keep them apart."""
    m = pd.DataFrame({"time": [1.0, 1.0], "entity": ["a_b", "a"], "metric": ["c", "b_c"], "value": [1.0, 2.0]})
    frame, cols = to_rcaeval_frame(Case("c", metrics=m))
    assert sorted(cols.values()) == ["a", "a_b"] and len(set(frame.columns)) == 3


# --------------------------------------------------------------------------- the published methods


def test_baro_ranks_the_injected_entity_first():
    """A cpu tripling on an entity named with '_' and '-' is BARO's first answer, mapped back."""
    needs_rcaeval()
    r = get_ranker("baro").rank(synthetic())
    assert not r.abstained, r.reason
    assert r.method == "baro"
    assert r.entities()[0] == "ts_auth_service-mongo"
    assert len(r.entities()) == len(ENTITIES)
    assert r.hypotheses[0].evidence[0].text == "BARO ranks ts_auth_service-mongo_cpu #1"


@pytest.mark.parametrize("root", ["carts", "carts-db", "PGSQL Query_remote"])
def test_rcaeval_nsigma_finds_the_root(root):
    needs_rcaeval()
    r = get_ranker("rcaeval-nsigma").rank(synthetic(root))
    assert r.entities()[0] == root


def test_circa_runs_and_names_an_entity_of_the_case():
    """CIRCA sees aliases (it splits names on '_'); its answers map back to real entities."""
    needs_rcaeval()
    pytest.importorskip("causallearn", reason="causal-learn not installed")
    case = synthetic("carts", n=80)
    r = get_ranker("circa").rank(case)
    assert not r.abstained, r.reason
    assert set(r.entities()) <= set(ENTITIES) and r.entities()
    assert r.entities() == get_ranker("circa").rank(case).entities()  # seeded: the same twice


def test_circa_failure_is_an_abstention_not_the_column_order():
    """Two identical series make PC's correlation matrix singular. RCAEval's @rca wrapper would
    return the unranked columns as if ranked; the adapter abstains with the error instead."""
    needs_rcaeval()
    pytest.importorskip("causallearn", reason="causal-learn not installed")
    case = synthetic("carts", n=80)
    dup = case.metrics[case.metrics["metric"] == "cpu"].assign(metric="cpu2")
    case.metrics = pd.concat([case.metrics, dup], ignore_index=True)
    r = get_ranker("circa").rank(case)
    assert r.abstained and r.hypotheses == []
    assert r.reason.startswith("CIRCA failed: ") and "singular" in r.reason

    from RCAEval.e2e.circa import circa as wrapped

    frame, _ = to_rcaeval_frame(case, aliases=True)
    out = wrapped(frame, 1060.0, dataset="aisre")  # the wrapper swallows the error...
    assert out["ranks"] == [c for c in frame.columns if c != "time"]  # ...and fakes a ranking


def test_unwrap_reaches_the_function_inside_rca():
    needs_rcaeval()
    from RCAEval.e2e import rca

    def inner(data, inject_time=None, **kw):
        raise ValueError("bad data")

    assert adapter._unwrap(rca(inner)) is inner
    assert adapter._unwrap(inner) is inner


def test_any_exception_of_the_method_is_a_miss(monkeypatch):
    """Whatever the published code raises, the ranking abstains with the error as reason."""
    needs_rcaeval()
    ranker = get_ranker("baro")

    def broken(*a, **kw):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(adapter, "_import_method", lambda module, attr: broken)
    r = ranker.rank(synthetic())
    assert r.abstained and r.reason == "BARO failed: ZeroDivisionError: division by zero"


def test_abstains_without_a_split():
    needs_rcaeval()
    ranker = get_ranker("baro")
    c = synthetic()
    c.detected_at = None
    assert ranker.rank(c).abstained and "detection time" in ranker.rank(c).reason
    c.detected_at = 500.0
    r = ranker.rank(c)
    assert r.abstained and r.reason == "no normal metric rows to compare"
    c.detected_at = 1060.0
    c.meta["anomalous_window"] = [1060.0, 1119.0]
    c.meta["normal_window"] = None
    assert ranker.rank(c).entities()[0] == "ts_auth_service-mongo"  # rows before the window
    c.meta["normal_window"] = [5000.0, 6000.0]
    assert ranker.rank(c).reason == "no normal metric rows to compare"
    assert get_ranker("baro").rank(Case("empty", detected_at=1.0)).reason == "the case has no metrics"


def test_windows_from_meta_choose_the_rows_even_reversed():
    """RCD-style: the baseline was recorded after the fault. The meta windows say which rows are
    normal; splitting on detected_at alone would take the fault rows as the baseline."""
    needs_rcaeval()
    c = synthetic()
    late = c.metrics["time"] < 1060  # the quiet rows, moved to a day after the fault
    c.metrics.loc[late, "time"] += 86_400 + 60
    c.meta.update(normal_window=[87_460.0, 87_519.0], anomalous_window=[1060.0, 1119.0])
    r = get_ranker("baro").rank(c)
    assert not r.abstained and r.entities()[0] == "ts_auth_service-mongo"
    frame, _ = to_rcaeval_frame(c)
    laid, t = adapter._split_frame(frame, c)
    assert t == 1060.0 and laid["time"].is_monotonic_increasing
    assert laid["time"].iloc[59] == 1059.0 and len(laid) == 120


def test_length_keeps_rows_each_side():
    """length=1 keeps 30 rows before and 30 from the detection time, like RCAEval's --length."""
    needs_rcaeval()
    r = get_ranker("baro", length=1).rank(synthetic())
    assert r.entities()[0] == "ts_auth_service-mongo"
    with pytest.raises(UsageError):
        get_ranker("baro", length=0)


def test_global_random_state_is_left_as_found():
    needs_rcaeval()
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    get_ranker("rcaeval-nsigma").rank(synthetic())
    assert np.random.random() == expected


def test_missing_extra_is_a_usage_error(monkeypatch):
    """Without rcaeval, building the ranker says which extra to install."""
    monkeypatch.setitem(sys.modules, "RCAEval.e2e.baro", None)  # makes the import fail
    with pytest.raises(UsageError, match=r"aisre\[baselines\]"):
        get_ranker("baro")
