"""Per-signal anomaly detection: robust scores, onsets, periods, spans and logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aisre.case import Case
from aisre.detect import (
    SIGNAL_COLUMNS,
    aligned_wide,
    detect,
    edge_of,
    log_anomalies,
    metric_anomalies,
    metric_kind,
    robust_z,
    span_anomalies,
    split_periods,
)

T0 = 1_700_000_000.0


def metrics_case(columns: dict[tuple[str, str], np.ndarray], *, detected_at: float, step: float = 1.0,
                 meta: dict | None = None) -> Case:
    n = len(next(iter(columns.values())))
    t = T0 + np.arange(n) * step
    rows = [pd.DataFrame({"time": t, "entity": e, "metric": m, "value": v}) for (e, m), v in columns.items()]
    return Case(id="d", window=(t[0], t[-1]), detected_at=detected_at, metrics=pd.concat(rows, ignore_index=True),
                meta=meta or {})


def test_robust_z_floors_constant_columns() -> None:
    """A column constant in the normal period gets a finite score; float noise does not explode."""
    normal = np.array([[5.0, 0.0046], [5.0, 0.004600000000000001], [5.0, 0.0046]])
    values = np.array([[5.0, 0.0046], [9.0, 0.004600000000000001]])
    z, _med, _scale = robust_z(values, normal)
    assert np.all(np.isfinite(z))
    assert z[1, 0] > 3  # a real move of a constant column is still an anomaly
    assert abs(z[1, 1]) < 1e-6  # float noise is not


def test_step_gets_a_score_and_an_onset_near_the_change() -> None:
    rng = np.random.default_rng(0)
    n = 900
    x = 10 + rng.normal(0, 0.5, n)
    x[600:] += 10
    quiet = 10 + rng.normal(0, 0.5, n)
    case = metrics_case({("svc", "cpu"): x, ("other", "cpu"): quiet}, detected_at=T0 + 600)
    table = metric_anomalies(case)
    assert list(table.columns) == SIGNAL_COLUMNS
    hot = table.set_index("entity").loc["svc"]
    assert hot["score"] > 10 and hot["kind"] == "resource"
    assert abs(hot["onset"] - (T0 + 600)) <= 15
    assert table.set_index("entity").loc["other", "score"] < 4


def test_late_detection_still_finds_the_onset() -> None:
    """The alert fires 5 minutes late: the onset is still the true change point."""
    rng = np.random.default_rng(1)
    x = 10 + rng.normal(0, 0.5, 1500)
    x[600:] += 10
    case = metrics_case({("svc", "cpu"): x}, detected_at=T0 + 900)
    row = metric_anomalies(case).iloc[0]
    assert row["score"] > 10
    assert abs(row["onset"] - (T0 + 600)) <= 15


def test_direction_counts() -> None:
    """Latency down and availability up are not anomalies; availability down is."""
    n = 600
    base = np.full(n, 100.0)
    down = base.copy()
    down[400:] = 90.0
    lat = np.full(n, 0.1)
    lat[400:] = 0.01
    case = metrics_case({("a", "availability"): down, ("b", "latency_p90"): lat}, detected_at=T0 + 400)
    scores = metric_anomalies(case).set_index("entity")["score"]
    assert scores["a"] > 5
    assert scores["b"] == 0


def test_meta_windows_days_apart_are_used_as_given() -> None:
    """Normal and anomalous windows recorded days apart (RCD): each window is used as is."""
    rng = np.random.default_rng(2)
    t_norm = T0 + np.arange(300.0)
    t_abn = T0 + 86_400 * 3 + np.arange(300.0)
    rows = [pd.DataFrame({"time": t_norm, "entity": "c", "metric": "cpu", "value": 5 + rng.normal(0, 0.2, 300)}),
            pd.DataFrame({"time": t_abn, "entity": "c", "metric": "cpu", "value": 95 + rng.normal(0, 0.2, 300)})]
    case = Case(id="r", window=(t_norm[0], t_abn[-1]), detected_at=t_abn[0], metrics=pd.concat(rows),
                meta={"normal_window": [t_norm[0], t_norm[-1]], "anomalous_window": [t_abn[0], t_abn[-1]]})
    p = split_periods(case)
    assert p.normal == (t_norm[0], t_norm[-1]) and p.abnormal == (t_abn[0], t_abn[-1])
    assert metric_anomalies(case).iloc[0]["score"] > 50


def test_split_keeps_a_baseline_with_coarse_samples() -> None:
    """Four one-minute samples before detection: the guard shrinks, three stay normal."""
    t = T0 + 60.0 * np.arange(9)
    case = Case(id="c", window=(t[0], t[-1]), detected_at=t[4] + 10,
                metrics=pd.DataFrame({"time": t, "entity": "a", "metric": "cpu", "value": 1.0}))
    p = split_periods(case)
    assert p.normal_mask(t).sum() >= 3
    assert p.abnormal_mask(t)[5:].all()


def test_aligned_wide_snaps_per_pod_scrapes_to_one_grid() -> None:
    t = T0 + 60.0 * np.arange(5)
    m = pd.concat([pd.DataFrame({"time": t + 0.3, "entity": "a", "metric": "cpu", "value": 1.0}),
                   pd.DataFrame({"time": t + 0.9, "entity": "b:x", "metric": "cpu", "value": 2.0})])
    wide = aligned_wide(Case(id="w", metrics=m))
    assert wide.shape == (5, 2)
    assert list(wide.columns) == [("a", "cpu"), ("b:x", "cpu")]  # entity names with ':' survive
    assert not wide.isna().any().any()


def test_metric_kinds_and_edges() -> None:
    assert metric_kind("CpuUsageRate(%)") == "resource"
    assert metric_kind("latency.p90") == "latency"
    assert metric_kind("availability.Average") == "error"
    assert metric_kind("PodClientLatencyP90(s)") == "client_latency"
    assert metric_kind("source_50->recommendationservice") == "client_latency"
    assert metric_kind("destination_50<-frontend") == "latency"
    assert edge_of("frontend", "source_50->cart") == ("frontend", "cart", "source_50")
    assert edge_of("cart", "destination_50<-frontend") == ("frontend", "cart", "destination_50")
    assert edge_of("cart", "cpu") is None


def _spans(slow_wire: bool) -> pd.DataFrame:
    """Traces fe -> be: fe's server span, fe's client span, be's server span. After T0+300 be's
    own work (slow_wire False) or the wire between them (slow_wire True) takes 0.5 s more."""
    rows = []
    for i in range(600):
        start = T0 + i
        late = start >= T0 + 300
        be = 0.01 + (0.5 if late and not slow_wire else 0.0)
        wire = 0.002 + (0.5 if late and slow_wire else 0.0)
        tid = f"t{i}"
        rows += [
            {"trace_id": tid, "span_id": f"{tid}a", "parent_id": None, "service": "fe", "operation": "GET /", "start": start,
                 "duration": be + wire + 0.003, "status": "ok"},
            {"trace_id": tid, "span_id": f"{tid}b", "parent_id": f"{tid}a", "service": "fe", "operation": "call be",
                 "start": start, "duration": be + wire, "status": "ok"},
            {"trace_id": tid, "span_id": f"{tid}c", "parent_id": f"{tid}b", "service": "be", "operation": "serve",
                 "start": start, "duration": be, "status": "error" if late and not slow_wire else "ok"},
        ]
    return pd.DataFrame(rows)


def test_slow_callee_is_not_blamed_on_its_caller() -> None:
    """Self time: be's own work got slower, fe's self time did not."""
    case = Case(id="s", window=(T0, T0 + 600), detected_at=T0 + 300, spans=_spans(slow_wire=False))
    table = span_anomalies(case)
    own = table[table["signal"] == "span:self"].set_index("entity")["score"]
    assert own["be"] > 10 and own["fe"] < 3
    err = table[table["signal"] == "span:error"].set_index("entity")["score"]
    assert err["be"] > 10


def test_slow_wire_shows_on_the_edge() -> None:
    case = Case(id="w", window=(T0, T0 + 600), detected_at=T0 + 300, spans=_spans(slow_wire=True))
    table = span_anomalies(case)
    edge = table[table["signal"] == "span:edge"].iloc[0]
    assert (edge["caller"], edge["callee"]) == ("fe", "be") and edge["score"] > 10
    own = table[table["signal"] == "span:self"].set_index("entity")["score"]
    assert own["be"] < 3


def test_new_error_template_and_error_share() -> None:
    t = T0 + np.arange(600.0)
    late = t >= T0 + 300
    logs = pd.DataFrame({
        "time": np.concatenate([t, t[late]]),
        "entity": ["api"] * len(t) + ["db"] * int(late.sum()),
        "level": ["INFO"] * len(t) + ["ERROR"] * int(late.sum()),
        "template": None,
        "message": [f"served request {i}" for i in range(len(t))] + [f"query {i} failed: timeout" for i in range(int(late.sum()))],
        "trace_id": None,
    })
    # db also logs INFO before the fault, so its error share rises from 0
    calm = pd.DataFrame({"time": t[:300], "entity": "db", "level": "INFO", "template": None,
                         "message": "query ok", "trace_id": None})
    case = Case(id="l", window=(T0, T0 + 600), detected_at=T0 + 300, logs=pd.concat([logs, calm], ignore_index=True))
    table = log_anomalies(case)
    by = table.set_index(["entity", "signal"])["score"]
    assert by[("db", "log:error")] > 10 and by[("db", "log:template")] > 3
    assert by[("api", "log:error")] == 0


def test_detect_concatenates_every_source() -> None:
    case = Case(id="all", window=(T0, T0 + 600), detected_at=T0 + 300, spans=_spans(slow_wire=False))
    table, periods = detect(case)
    assert set(table["signal"]) >= {"span:self", "span:edge", "span:error"}
    assert periods.split <= T0 + 300


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs_do_not_crash(n: int) -> None:
    t = T0 + np.arange(n, dtype=float)
    case = Case(id="t", detected_at=T0, metrics=pd.DataFrame({"time": t, "entity": "a", "metric": "cpu", "value": 1.0}))
    table, _ = detect(case)
    assert list(table.columns) == SIGNAL_COLUMNS
