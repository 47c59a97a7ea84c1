"""Known-answer tests of the trace-and-log channel (:func:`aisre.rank.multimodal.trace_log_scores`).

Hand-built cases: a gateway calls a service that calls a leaf, one trace every few seconds for
four minutes; the fault starts at the detection time, two minutes in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisre.case import FAULT_KINDS, Case, Truth
from aisre.rank.multimodal import COLUMNS, trace_log_scores

T0 = 1_700_000_000.0
AT = T0 + 120.0


def chain_spans(n: int = 60, *, slow_leaf: float = 0.0, slow_edge: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Traces gateway -> api -> leaf (client spans in the caller); after AT the leaf's own work
    takes *slow_leaf* more seconds, and the network to api *slow_edge* more."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = T0 + i * 4.0
        late = t >= AT
        leaf_work = 0.004 + rng.uniform(0, 0.001) + (slow_leaf if late else 0.0)
        gap = 0.002 + rng.uniform(0, 0.0005)
        gap_api = gap + (slow_edge if late else 0.0)
        api_own = 0.003 + rng.uniform(0, 0.001)
        leaf_client = leaf_work + gap
        api_server = api_own + leaf_client
        api_client = api_server + gap_api
        gw = api_client + 0.001
        tid = f"t{i}"
        rows += [
            (tid, "a", None, "gateway", "/*", t, gw),
            (tid, "b", "a", "gateway", "HTTP GET", t + 0.0005, api_client),
            (tid, "c", "b", "api", "/api/get", t + 0.0005 + gap_api / 2, api_server),
            (tid, "d", "c", "api", "HTTP GET", t + 0.001 + gap_api / 2 + api_own, leaf_client),
            (tid, "e", "d", "leaf", "/leaf/get", t + 0.001 + gap_api / 2 + api_own + gap / 2, leaf_work),
        ]
    frame = pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_id", "service", "operation", "start", "duration"])
    frame["span_id"] = frame["trace_id"] + frame["span_id"]
    frame["parent_id"] = np.where(frame["parent_id"].isna(), None, frame["trace_id"] + frame["parent_id"].fillna(""))
    return frame.assign(status="unset", attributes="{}")


def make_case(spans: pd.DataFrame | None = None, logs: pd.DataFrame | None = None) -> Case:
    return Case(id="t", system="test", window=(T0, T0 + 240.0), detected_at=AT, spans=spans, logs=logs,
                truth=Truth(service="leaf"))


def info_logs(n: int = 60) -> list[tuple]:
    rows = []
    for i in range(n):
        t = T0 + i * 4.0
        for svc, tpl in (("api", "ApiController#10"), ("leaf", "LeafService#20"), ("gateway", "Gw#1")):
            rows.append((t + 0.001, svc, "INFO", tpl, f"{tpl} handled", f"t{i}"))
    return rows


def as_logs(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["time", "entity", "level", "template", "message", "trace_id"])


def test_no_spans_and_no_logs_give_an_empty_frame_with_the_columns():
    """A case without spans or logs: nothing to say, and the frame still has its columns."""
    out = trace_log_scores(make_case())
    assert out.empty
    assert tuple(out.columns) == COLUMNS


def test_a_slow_leaf_is_blamed_on_the_leaf_not_on_its_caller():
    """The leaf's own work slows by 200 ms: the callers' durations rise too, their self time does not."""
    out = trace_log_scores(make_case(chain_spans(slow_leaf=0.2)))
    assert out["entity"].iloc[0] == "leaf"
    scores = out.set_index("entity")["score"]
    assert scores["leaf"] > 10 * max(scores["api"], scores["gateway"], 1e-9)
    row = out.iloc[0]
    assert row["fault"] in ("cpu", "delay")
    assert AT - 5 <= row["onset"] <= AT + 10
    assert "/leaf/get" in row["evidence"]


def test_a_slow_network_into_a_service_is_blamed_on_that_service():
    """The calls into api gain 1 s of network gap while api's own work does not change."""
    out = trace_log_scores(make_case(chain_spans(slow_edge=1.0)))
    assert out["entity"].iloc[0] == "api"
    assert out["fault"].iloc[0] == "delay"
    assert "calls from gateway" in out["evidence"].iloc[0]


def test_an_exception_burst_after_the_inject_ranks_its_service_first():
    """A new ERROR template in leaf after the detection time, background ERRORs in api that were
    there before too: leaf is first, its fault is an error."""
    rows = info_logs()
    rows += [(T0 + 10.0 * k, "api", "ERROR", "ApiController#99", "timeout talking to db", "x") for k in range(24)]
    rows += [(AT + 5.0 + 6.0 * k, "leaf", "ERROR", "LeafService#42", "java.lang.IllegalStateException", "y")
             for k in range(15)]
    out = trace_log_scores(make_case(chain_spans(), as_logs(rows)))
    top = out.iloc[0]
    assert top["entity"] == "leaf"
    assert top["fault"] == "error"
    assert "LeafService#42" in top["evidence"]
    assert AT <= top["onset"] <= AT + 6
    assert out.set_index("entity").loc["api", "score"] < top["score"] / 4


def test_errors_a_callee_shows_too_are_explained_by_the_callee():
    """api and leaf both start logging errors: the callee (leaf) shows first, api passes them on."""
    rows = info_logs()
    rows += [(AT + 5.0 + 6.0 * k, "leaf", "ERROR", "LeafService#42", "failed", "y") for k in range(15)]
    rows += [(AT + 5.1 + 6.0 * k, "api", "ERROR", "ApiController#77", "callee failed", "y") for k in range(15)]
    out = trace_log_scores(make_case(chain_spans(), as_logs(rows)))
    assert out["entity"].iloc[0] == "leaf"


def test_logs_alone_work_without_spans():
    """Logs without spans: the frame names every logging service and ranks the new error first."""
    rows = info_logs() + [(AT + 3.0 * k, "leaf", "ERROR", "LeafService#42", "boom", "y") for k in range(10)]
    out = trace_log_scores(make_case(logs=as_logs(rows)))
    assert set(out["entity"]) == {"api", "leaf", "gateway"}
    assert out["entity"].iloc[0] == "leaf"


def test_a_quiet_case_scores_nothing():
    """Nothing changes: every score is 0 and no fault is guessed."""
    out = trace_log_scores(make_case(chain_spans(), as_logs(info_logs())))
    assert set(out["entity"]) == {"gateway", "api", "leaf"}
    assert (out["score"] == 0).all()
    assert out["fault"].isna().all()
    assert out["onset"].isna().all()


def test_the_frame_has_the_promised_columns_and_values():
    out = trace_log_scores(make_case(chain_spans(slow_leaf=0.1)))
    assert tuple(out.columns) == COLUMNS
    assert (out["score"] >= 0).all()
    assert out["score"].is_monotonic_decreasing
    assert all(f is None or f in FAULT_KINDS for f in out["fault"])
    assert out["evidence"].map(lambda s: isinstance(s, str) and len(s) > 0).all()


SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "datasets" / "nezha"


@pytest.mark.slow
def test_nezha_train_ticket_network_delays_are_found_from_call_gaps():
    """On the real TT network-delay cases the channel alone names the faulty service first in
    most cases, each within a second."""
    if not SHARED.is_dir():
        pytest.skip(f"shared Nezha data not found at {SHARED}")
    import time

    import aisre.datasets as ds

    hits = n = 0
    for case in ds.load(SHARED, format="nezha"):
        if case.system != "TT" or case.truth.meta.get("fault") != "network_delay":
            continue
        t = time.perf_counter()
        out = trace_log_scores(case)
        assert time.perf_counter() - t < 2.0
        n += 1
        hits += bool(len(out)) and out["entity"].iloc[0] == case.truth.service
    assert n >= 5
    assert hits / n >= 0.7


def fan_out_spans(n: int = 60, *, api_fails: bool = False) -> pd.DataFrame:
    """Traces gateway -> api -> leaf x3 (nine spans); with *api_fails*, after AT api returns its
    error at once, before calling leaf (three spans, shorter durations)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        t, tid = T0 + i * 4.0, f"t{i}"
        fails = api_fails and t >= AT
        api = 0.003 if fails else 0.02 + rng.uniform(0, 0.002)
        rows += [(tid, "a", None, "gateway", "/*", t, api + 0.002),
                 (tid, "b", "a", "gateway", "HTTP GET", t + 0.0005, api + 0.001),
                 (tid, "c", "b", "api", "/api/get", t + 0.001, api)]
        for k in range(0 if fails else 3):
            start = t + 0.002 + k * 0.006
            rows += [(tid, f"d{k}", "c", "api", "HTTP GET", start, 0.005),
                     (tid, f"e{k}", f"d{k}", "leaf", "/leaf/get", start + 0.0005, 0.004)]
    frame = pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_id", "service", "operation", "start", "duration"])
    frame["span_id"] = frame["trace_id"] + frame["span_id"]
    frame["parent_id"] = np.where(frame["parent_id"].isna(), None, frame["trace_id"] + frame["parent_id"].fillna(""))
    return frame.assign(status="unset", attributes="{}")


def test_traces_cut_short_point_at_the_service_where_they_stop() -> None:
    """After AT, api fails before calling leaf: its traces end in api with 3 of the usual 9 spans.
    api is blamed (fault error, evidence about the cut traces), not its caller or its callee."""
    out = trace_log_scores(make_case(fan_out_spans(api_fails=True))).set_index("entity")
    assert out["score"].idxmax() == "api"
    assert out.at["api", "fault"] == "error"
    assert "traces ended in it" in out.at["api", "evidence"]
    assert out.at["leaf", "score"] == 0.0 and out.at["gateway", "score"] == 0.0


def test_whole_traces_give_no_truncation_score() -> None:
    """The same traces without the failure: nothing scores (the channel sees no change)."""
    out = trace_log_scores(make_case(fan_out_spans())).set_index("entity")
    assert (out["score"] == 0.0).all()
