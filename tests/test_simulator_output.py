"""Run output: determinism, every fault kind's signal, telemetry shapes, alerts and exports."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aisre.case import load_case, save_case
from aisre.errors import SpecError
from aisre.simulator import METRICS, SCENARIOS, alertmanager_payloads, export_rcaeval, run_scenario, simulate, write

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def small():
    return simulate("online-boutique", ["crash:cartservice@60+30"], duration=120, rate=10, seed=7)


def _folder_bytes(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_same_seed_is_byte_identical_and_another_differs(tmp_path):
    """The same seed writes byte-identical Case folders and RCAEval files; another seed differs."""
    runs = [simulate("online-boutique", ["cpu:cartservice@60+60"], duration=120, rate=10, seed=s) for s in (1, 1, 2)]
    folders = [save_case(c, tmp_path / f"run{k}") for k, c in enumerate(runs)]
    a, b, c = (_folder_bytes(f) for f in folders)
    assert a == b
    assert a["metrics.parquet"] != c["metrics.parquet"]
    r1 = export_rcaeval(runs[0], tmp_path / "r1")
    r2 = export_rcaeval(runs[1], tmp_path / "r2")
    assert _folder_bytes(r1) == _folder_bytes(r2)


def test_case_round_trips_through_a_folder(tmp_path, small):
    """The Case saves and loads with its truth, topology, alerts and webhook payloads."""
    back = load_case(save_case(small, tmp_path / "case"))
    assert back.truth == small.truth
    assert back.topology == small.topology
    assert len(back.alerts) == len(small.alerts)
    assert back.meta["alertmanager_payloads"] == small.meta["alertmanager_payloads"]


def test_metrics_cover_services_instances_and_hosts(small):
    """Every service and instance has all nine metrics every second; hosts have cpu and mem."""
    m = small.metrics
    ent = m["entity"].astype(str)
    for e in ("cartservice", "cartservice-0", "frontend", "redis-cart"):
        assert sorted(m.loc[ent == e, "metric"].astype(str).unique()) == sorted(METRICS)
        assert (ent == e).sum() == 120 * len(METRICS)
    assert sorted(m.loc[ent == "node-1", "metric"].astype(str).unique()) == ["cpu", "mem"]
    assert m["time"].min() == T0 and m["time"].max() == T0 + 119


def test_spans_are_linked_traces_with_otlp_attributes(small):
    """Spans have ids, parents inside their trace, OTLP attribute names; error traces are kept."""
    s = small.spans
    assert s["trace_id"].str.len().eq(32).all() and s["span_id"].str.len().eq(16).all()
    assert s["span_id"].is_unique
    ids = set(zip(s["trace_id"], s["span_id"]))
    child = s.dropna(subset=["parent_id"])
    assert all((t, p) in ids for t, p in zip(child["trace_id"], child["parent_id"]))
    attrs = json.loads(s["attributes"].iloc[0])
    assert {"service.name", "service.instance.id", "rpc.method", "span.kind"} <= attrs.keys()
    assert (s["status"] == "error").any()


def test_logs_have_templates_levels_and_trace_ids(small):
    """Logs come from templates with levels; errors link to their trace."""
    lg = small.logs
    assert set(lg["level"]) <= {"INFO", "WARN", "ERROR"}
    err = lg[lg["level"] == "ERROR"]
    assert err["template"].str.contains("<*>", regex=False).all()
    assert err["trace_id"].notna().any()
    assert lg["time"].is_monotonic_increasing


def test_alerts_and_webhook_payloads(small):
    """Alerts include the Watchdog; payloads are Alertmanager webhook v4 documents."""
    names = {a.labels["alertname"] for a in small.alerts}
    assert "Watchdog" in names
    payloads = alertmanager_payloads(small.alerts)
    assert payloads == small.meta["alertmanager_payloads"]
    p = payloads[0]
    assert p["version"] == "4"
    assert {"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "groupKey", "truncatedAlerts"} <= p.keys()
    assert p["alerts"][0]["startsAt"].endswith("Z")
    assert set(small.meta["noise_alerts"]) <= {a.fingerprint for a in small.alerts}


def test_rcaeval_layout(tmp_path, small):
    """export_rcaeval writes <system>/<service>_<fault>/<rep>/ with RCAEval's files and columns."""
    folder = export_rcaeval(small, tmp_path, rep=2)
    assert folder == tmp_path / "online-boutique" / "cartservice_crash" / "2"
    assert (folder / "inject_time.txt").read_text().strip() == str(int(T0 + 60))
    data = pd.read_csv(folder / "data.csv")
    assert data.columns[0] == "time" and len(data) == 120
    for metric in ("cpu", "mem", "diskio", "socket", "workload", "error", "latency-50", "latency-90"):
        assert f"cartservice_{metric}" in data.columns
    assert "cartservice-0_cpu" not in data.columns
    traces = pd.read_csv(folder / "traces.csv")
    assert {"traceID", "spanID", "parentSpanID", "serviceName", "operationName", "startTime", "duration", "statusCode"} <= set(traces.columns)
    assert traces["startTime"].min() > T0 * 1e6 - 1
    logs = pd.read_csv(folder / "logs.csv")
    assert {"timestamp", "container_name", "message", "level", "log_template"} <= set(logs.columns)


def test_normal_operation_has_no_truth(tmp_path):
    """Without faults: no truth, no detection, and the RCAEval folder is 'normal'."""
    case = simulate("sock-shop", [], duration=60, rate=10, seed=1)
    assert case.truth is None and case.detected_at is None and case.meta["faults"] == []
    folder = write(case, tmp_path, format="rcaeval")
    assert folder.parent.name == "normal" and not (folder / "inject_time.txt").exists()


@pytest.mark.parametrize(
    ("topology", "spec", "check"),
    [
        ("online-boutique", "cpu:cartservice@60*0.9", ("cartservice-0", "cpu", 10.0)),
        ("online-boutique", "disk:cartservice@60*0.8", ("cartservice-0", "diskio", 10.0)),
        ("online-boutique", "delay:cartservice@60*0.2", ("cartservice", "latency-50", 10.0)),
        ("online-boutique", "loss:cartservice@60*0.5", ("cartservice", "latency-90", 3.0)),
        ("online-boutique", "socket:cartservice@60*1.0", ("cartservice-0", "socket", 5.0)),
        ("online-boutique", "mem:adservice@60*1.0", ("adservice-0", "mem", 1.3)),
        ("online-boutique", "error:cartservice/GetCart@60*0.5", ("cartservice", "error", None)),
        ("online-boutique", "deploy:cartservice@60*0.8", ("cartservice", "error", None)),
        ("online-boutique", "config:frontend@60*1.0", ("frontend", "error", None)),
        ("online-boutique", "crash:currencyservice@60", ("frontend", "error", None)),
        ("sock-shop", "pool:orders-db@60*1.0", ("orders", "error", None)),
        ("online-boutique", "neighbour:node-1@60*0.8", ("node-1", "cpu", 2.0)),
    ],
)
def test_every_fault_kind_moves_its_signal(topology, spec, check):
    """Each kind moves its documented signal at its target (docs/faults.md) after the start."""
    case = simulate(topology, [spec], duration=120, rate=15, seed=11)
    entity, metric, factor = check
    w = case.wide()
    col = w[f"{entity}:{metric}"].to_numpy()
    before, after = col[10:60], col[62:120]
    if factor is None:
        assert before.sum() == 0 and after.sum() > 0
    else:
        assert after.max() > factor * max(before.mean(), 1e-6)


def test_several_faults_at_once():
    """Several faults run together; truth is the first, meta lists all."""
    case = simulate("online-boutique", ["cpu:cartservice@30+30", "delay:paymentservice@40+30"], duration=90, rate=10, seed=1)
    assert case.truth.service == "cartservice"
    assert [f["kind"] for f in case.meta["faults"]] == ["cpu", "delay"]


def test_scenarios_are_runnable_specs():
    """Every scenario names a topology and faults; unknown names are SpecErrors."""
    for name, spec in SCENARIOS.items():
        assert {"topology", "faults", "description"} <= spec.keys(), name
    case = run_scenario("bad-deploy", duration=120, rate=5, faults=["deploy:productcatalogservice@60"])
    assert case.truth.fault == "deploy"
    with pytest.raises(SpecError):
        run_scenario("nope")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"rate": -1}, "rate"), ({"duration": 0}, "duration"), ({"seed": -3}, "seed"), ({"trace_sample": 2}, "trace_sample")],
)
def test_bad_run_settings_name_the_field(kwargs, field):
    """Negative rates, empty runs and bad seeds are rejected naming the field."""
    with pytest.raises(SpecError) as err:
        simulate("online-boutique", [], **kwargs)
    assert err.value.field == field


@pytest.mark.slow
def test_train_ticket_and_random_topologies_run():
    """The big topologies run end to end and produce metrics for every service."""
    for topo in ("train-ticket", "random:300"):
        case = simulate(topo, [], duration=60, rate=20, seed=1)
        assert set(case.metrics["entity"].astype(str)) >= set(case.topology.nodes("service"))
