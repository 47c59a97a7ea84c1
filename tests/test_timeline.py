"""Timeline: every source in one ordered table, repeats collapsed, each row linked to its data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aisre.case import Alert, Case, Change, Evidence, Hypothesis, Ranking
from aisre.errors import UsageError
from aisre.timeline import COLUMNS, Timeline, timeline

T0 = 1_700_000_000.0


def incident_case() -> Case:
    """cart's CPU steps up at T0+600 (detected at T0+700); cart logs errors, its spans slow and
    fail; a deploy precedes it, a pod restarts, an alert fires and resolves, a rollback follows."""
    times = T0 + np.arange(0, 1200, 10.0)
    cpu = np.where(times >= T0 + 600, 0.9, 0.2) + 0.01 * np.sin(np.arange(times.size))
    mem = 0.5 + 0.01 * np.cos(np.arange(times.size))
    metrics = pd.concat(
        [
            pd.DataFrame({"time": times, "entity": "cart", "metric": "cpu", "value": cpu}),
            pd.DataFrame({"time": times, "entity": "redis", "metric": "mem", "value": mem}),
        ]
    )
    err_t = T0 + 610 + np.arange(20) * 2.0
    logs = pd.DataFrame(
        {
            "time": np.r_[err_t, T0 + 100],
            "entity": "cart",
            "level": ["ERROR"] * 20 + ["INFO"],
            "template": ["timeout talking to <*>"] * 20 + ["started"],
            "message": ["timeout talking to redis"] * 20 + ["started"],
            "trace_id": None,
        }
    )
    st = T0 + np.arange(0, 1200, 2.0)
    slow = st >= T0 + 600
    spans = pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(st.size)], "span_id": [f"s{i}" for i in range(st.size)],
            "parent_id": None, "service": "cart", "operation": "get",
            "start": st, "duration": np.where(slow, 0.5, 0.05) + 0.001 * (np.arange(st.size) % 5),
            "status": np.where(slow & (np.arange(st.size) % 2 == 0), "error", "ok"), "attributes": None,
        }
    )  # fmt: skip
    events = pd.DataFrame(
        {
            "time": [T0 + 500, T0 + 620, T0 + 625, T0 + 900],
            "entity": ["cart", "cart-0", "cart-0", "cart"],
            "kind": ["deploy", "k8s", "k8s", "remediation"],
            "reason": ["rollout v2", "BackOff", "BackOff", "rollback"],
            "message": ["image cart:v2", "restarting container", "restarting container", "rolled back to v1"],
            "attributes": None,
        }
    )
    alerts = [Alert("fp1", {"alertname": "HighCPU"}, {}, "firing", T0 + 700, None, "cart", "critical")] * 3
    alerts.append(Alert("fp1", {"alertname": "HighCPU"}, {}, "resolved", T0 + 700, T0 + 1000, "cart", "critical"))
    changes = [Change("pr-7", "cart", T0 + 450, "ana", "abc123def456", ["cart.py"], "raise pool size")]
    return Case(
        id="toy", window=(T0, T0 + 1200), detected_at=T0 + 700, metrics=metrics, logs=logs, spans=spans,
        events=events, alerts=alerts, changes=changes,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tl() -> Timeline:
    return timeline(incident_case())


def test_columns_and_order(tl: Timeline) -> None:
    assert list(tl.table.columns) == COLUMNS
    assert tl.table["time"].is_monotonic_increasing


def test_every_source_is_present_with_a_link(tl: Timeline) -> None:
    t = tl.table
    assert {"metric", "log", "trace", "deploy", "k8s", "alert", "remediation", "change"} <= set(t["source"])
    assert t["link"].notna().all() and (t["link"].str.len() > 0).all()
    assert "metrics:cart:cpu" in set(t["link"])
    assert "alert:fp1" in set(t["link"])
    assert "spans:cart" in set(t["link"])
    assert "changes:pr-7" in set(t["link"])
    assert any(link.startswith("events:") for link in t["link"])
    assert any(link.startswith("logs:cart:timeout") for link in t["link"])


def test_metric_onset_found_where_it_happened_and_quiet_series_ignored(tl: Timeline) -> None:
    m = tl.table[tl.table["source"] == "metric"]
    assert list(m["entity"]) == ["cart"]
    assert T0 + 600 <= m["time"].iloc[0] <= T0 + 620
    assert "rose" in m["summary"].iloc[0]


def test_trace_shifts(tl: Timeline) -> None:
    tr = tl.table[tl.table["source"] == "trace"]
    assert set(tr["kind"]) == {"latency shift", "error shift"}
    assert (tr["time"] >= T0 + 600).all() and (tr["time"] < T0 + 660).all()


def test_repeats_are_collapsed(tl: Timeline) -> None:
    """20 error logs of one template are one row of count 20; two BackOffs 5 s apart are one row;
    repeated alert notifications are one firing row."""
    log = tl.table[tl.table["source"] == "log"]
    assert len(log) == 1 and log["count"].iloc[0] == 20
    assert log["last"].iloc[0] == T0 + 610 + 38
    assert "timeout" in log["summary"].iloc[0]
    k8s = tl.table[tl.table["source"] == "k8s"]
    assert len(k8s) == 1 and k8s["count"].iloc[0] == 2
    alerts = tl.table[tl.table["source"] == "alert"]
    assert list(alerts["kind"]) == ["HighCPU firing", "HighCPU resolved"]


def test_order_follows_the_story(tl: Timeline) -> None:
    t = tl.table
    first = {s: t.loc[t["source"] == s, "time"].min() for s in set(t["source"])}
    assert first["change"] < first["deploy"] < first["metric"] < first["alert"] < first["remediation"]


def test_collapse_gap_zero_keeps_repeats() -> None:
    assert (timeline(incident_case(), collapse_gap=0).table["source"] == "log").sum() == 20


def test_views(tl: Timeline) -> None:
    text = str(tl)
    assert text.splitlines()[0] == f"timeline of toy: {len(tl)} rows"
    assert "<table" in tl._repr_html_()
    doc = json.loads(json.dumps(tl.to_dict()))
    assert doc["case"] == "toy" and len(doc["rows"]) == len(tl)


def test_figure_has_a_trace_per_source_and_ranking_orders_rows() -> None:
    ranking = Ranking("aisre", [Hypothesis("redis", None, 1.0, 0.9, [Evidence("x", "redis")])])
    tl = timeline(incident_case(), ranking=ranking)
    fig = tl.figure()
    assert {tr.name for tr in fig.data} == set(tl.table["source"])
    assert all(len(tr.x) > 0 and tr.hovertemplate for tr in fig.data)
    assert tl.entities()[0] == "redis" or "redis" not in set(tl.table["entity"])
    assert list(fig.layout.yaxis.categoryarray)[-1] == tl.entities()[0]


def test_empty_case_gives_an_empty_table() -> None:
    tl = timeline(Case(id="empty"))
    assert len(tl) == 0 and list(tl.table.columns) == COLUMNS
    assert "0 rows" in str(tl)
    assert len(tl.figure().data) == 0


def test_bad_argument() -> None:
    with pytest.raises(UsageError):
        timeline("not a case")  # type: ignore[arg-type]
