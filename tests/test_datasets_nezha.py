"""The Nezha loader: one case per fault-list entry with the right label, per-pod metrics at
service level, de-duplicated spans, logs with sane times, the call graph from spans, and a
DataError naming file and field for malformed input."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisre.datasets as datasets
from aisre.case import Case
from aisre.datasets import nezha
from aisre.datasets.batch import load_all
from aisre.datasets.nezha_logs import read_logs
from aisre.datasets.nezha_parse import read_dependency, read_fault_list, read_metric_csv, read_spans
from conftest import shared_dataset

from aisre.errors import AisreError, DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ROOT = SHARED / "datasets" / "nezha"

OB_EDGES = {
    ("frontend", s)
    for s in ("adservice", "cartservice", "checkoutservice", "currencyservice",
              "productcatalogservice", "recommendationservice", "shippingservice")
} | {
    ("checkoutservice", s)
    for s in ("cartservice", "emailservice", "paymentservice", "productcatalogservice", "shippingservice")
} | {("recommendationservice", "productcatalogservice")}  # fmt: skip
"""The 13 OB call edges NOTES.md recovers from the spans of every day."""



# --------------------------------------------------------------------------- shared data


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_dataset("nezha")


@pytest.fixture(scope="module")
def cases(shared: Path) -> list[Case]:
    return list(nezha.load(shared))


@pytest.fixture(scope="module")
def manifest(shared: Path) -> list[dict]:
    return json.loads((shared / "MANIFEST.json").read_text())["cases"]


def _by_label(cases: list[Case]) -> dict[tuple[str, str], Case]:
    return {(c.meta["date"], c.truth.meta["inject_time_raw"]): c for c in cases}


def test_every_shared_case_loads_with_its_label(cases: list[Case], manifest: list[dict]) -> None:
    """70 cases (OB 43, TT 27); service, fault, pod and inject time match the manifest."""
    assert len(cases) == 70
    assert Counter(c.system for c in cases) == {"OB": 43, "TT": 27}
    found = _by_label(cases)
    assert len(found) == 70
    for entry in manifest:
        case = found[(entry["date"], entry["inject_time_raw"])]
        assert case.system == entry["system"]
        assert case.truth.service == entry["service"]
        assert case.truth.fault == entry["fault"]
        assert case.truth.meta["fault"] == entry["fault_original"]
        assert case.truth.entity == entry["pod"]
        assert case.truth.inject_time == entry["inject_time"] == case.detected_at


def test_ids_are_stable_unique_and_sorted(cases: list[Case]) -> None:
    ids = [c.id for c in cases]
    assert ids == sorted(ids) and len(set(ids)) == 70
    assert ids[0] == "nezha/2022-08-22/OB/00"
    assert all(i.split("/")[2] in ("OB", "TT") for i in ids)


def test_inject_time_is_inject_time_not_the_8h_early_timestamp(cases: list[Case]) -> None:
    """TT 2023-01-29 morning: inject_timestamp is 8 h early; the case follows inject_time."""
    case = _by_label(cases)[("2023-01-29", "2023-01-29 08:52:06")]
    assert case.truth.inject_time == 1674982326.0
    assert int(case.truth.meta["inject_timestamp_raw"]) == 1674982326 - 28800
    assert case.window[0] <= case.truth.inject_time <= case.window[1]


def test_windows_lie_inside_the_manifest_windows(cases: list[Case], manifest: list[dict]) -> None:
    found = _by_label(cases)
    for entry in manifest:
        case = found[(entry["date"], entry["inject_time_raw"])]
        assert entry["window"]["start"] <= case.window[0] < case.truth.inject_time < case.window[1]
        assert case.window[1] <= entry["window"]["end"]
        assert case.metrics["time"].between(*case.window).all()


def test_metrics_are_per_service_and_keep_pods(cases: list[Case]) -> None:
    case = cases[0]
    pods = case.meta["pods"]
    assert pods["frontend-579b9bff58-t2dbm"] == "frontend"
    entities = set(case.metrics["entity"])
    assert set(pods.values()) <= entities | {"loadgenerator"}
    assert nezha.FRONT_ENTITY in entities
    assert not any(e in pods for e in entities)  # no pod names as entities
    m = case.metrics
    assert (m.loc[m["metric"] == "PodSuccessRate(%)", "value"] == 0).all()
    assert "source_50->cartservice" in set(m.loc[m["entity"] == "frontend", "metric"])
    assert "destination_50<-frontend" in set(m.loc[m["entity"] == "cartservice", "metric"])
    assert not m.duplicated(["time", "entity", "metric"]).any()
    assert np.isfinite(m["value"]).all()


def test_corrupt_timestamp_column_is_ignored(cases: list[Case]) -> None:
    """adservice's TimeStamp on 2022-08-22 is ~2028; its rows sit at their Time (2022)."""
    case = cases[0]
    ad = case.metrics[case.metrics["entity"] == "adservice"]
    assert len(ad) > 0
    assert ad["time"].between(1661139834, 1661140681).all()
    # each pod is scraped at its own sub-second offset of the same once-a-minute collector run
    front = np.sort(case.metrics.loc[case.metrics["entity"] == "frontend", "time"].unique())
    ad_times = np.sort(ad["time"].unique())
    assert len(ad_times) == len(front) and np.abs(ad_times - front).max() < 5


def test_spans_are_deduplicated_across_minute_files(cases: list[Case]) -> None:
    """69,741 span rows in the case files, 815 of them repeats (NOTES.md)."""
    assert sum(len(c.spans) for c in cases) == 69741 - 815
    for c in cases:
        assert not c.spans.duplicated(["trace_id", "span_id"]).any()
        assert (c.spans["duration"] >= 0).all()


def test_traces_and_logs_present_where_shipped(cases: list[Case]) -> None:
    ob = [c for c in cases if c.system == "OB"]
    tt = [c for c in cases if c.system == "TT"]
    assert sum(1 for c in ob if len(c.spans)) == 36
    assert sum(1 for c in ob if len(c.logs)) == 2
    assert all(len(c.spans) and len(c.logs) for c in tt)
    no_trace = [c for c in ob if c.spans.empty]
    assert all(len(c.meta["files"]["missing"]) >= 3 for c in no_trace)


def test_garbage_log_time_falls_back_to_timestamp(cases: list[Case]) -> None:
    """A row with TimeUnixNano = Go's zero time gets its Timestamp, 2023-01-29T09:33:31.347."""
    case = _by_label(cases)[("2023-01-29", "2023-01-29 09:34:19")]
    hit = case.logs[np.isclose(case.logs["time"], 1674984811.347, rtol=0, atol=1e-4)]
    assert len(hit) >= 1
    assert set(hit["level"]) == {"ERROR"}
    assert hit["template"].str.contains("dispatcherServlet").all()
    for c in cases:
        if len(c.logs):
            assert c.logs["time"].between(c.window[0], c.window[1]).all()


def test_log_levels_and_templates(cases: list[Case]) -> None:
    tt = [c for c in cases if c.system == "TT"]
    levels = set().union(*(set(c.logs["level"].dropna()) for c in tt))
    assert {"INFO", "ERROR"} <= levels
    assert all(c.logs["template"].notna().mean() > 0.9 for c in tt)
    assert not any(c.logs["message"].str.startswith('{"log"').any() for c in cases)


def test_topology_from_spans(cases: list[Case]) -> None:
    """Every case gets its day's span graph: 13 OB edges, 55 TT edges, per NOTES.md."""
    for c in cases:
        assert c.topology is not None and c.topology.source == "spans"
        edges = {(u, v) for u, v, _ in c.topology.edges("calls")}
        if c.system == "OB":
            assert edges == OB_EDGES
        else:
            assert len(edges) == 55
            assert ("ts-auth-service", "ts-verification-code-service") in edges


def test_inner_root_cause_kept(cases: list[Case]) -> None:
    assert cases[0].truth.meta["inner_root_cause"] == "CpuUsageRate(%)"


def test_detect_accepts_root_rca_data_and_a_date(shared: Path, tmp_path: Path) -> None:
    for p in (shared, shared / "rca_data", shared / "rca_data" / "2023-01-30"):
        assert nezha.detect(p)
        assert datasets.detect(p).name == "nezha"
    assert not nezha.detect(tmp_path)
    assert not nezha.detect(shared / "MANIFEST.json")
    assert not nezha.detect(shared / "rca_data" / "2023-01-30" / "metric")


def test_a_date_folder_loads_alone(shared: Path, cases: list[Case]) -> None:
    """A date folder yields that day's cases, with the same ids and contents as from the root."""
    folder = shared / "rca_data" / "2023-01-30"
    pairs = list(nezha.iter_cases(folder))
    expected = [c for c in cases if c.meta["date"] == "2023-01-30"]
    assert [cid for cid, _ in pairs] == [c.id for c in expected] and len(pairs) == 12
    alone = pairs[-1][1]()
    assert alone.id == expected[-1].id and len(alone.metrics) == len(expected[-1].metrics)
    assert alone.spans.equals(expected[-1].spans)
    assert datasets.get("nezha").load is nezha.load


# --------------------------------------------------------------------------- a hand-made day

T0 = "2030-01-01 10:05:30"
T1 = "2030-01-01 10:12:10"
FOO = "ts-foo-service-6f5c7d8b9-abcde"
BAR = "ts-bar-service-5d4c3b2a1-vwxyz"
METRIC_HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),PodSuccessRate(%),PodServerLatencyP90(s)"
TRACE_HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration"
LOG_HEADER = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log"
BASE = 1893492000  # 2030-01-01 10:00:00Z


def _metric_rows(pod: str, cpu: float) -> list[str]:
    rows = []
    for k in range(-10, 31):  # 09:50 .. 10:30, one row a minute, 19 s past
        t = BASE + 60 * k + 19
        hh, mm = divmod((t - BASE) // 60 + 600, 60)
        lat = "NaN" if k == 3 else "0.01"
        rows.append(f"2030-01-01 {hh:02d}:{mm:02d}:19.5 +0000 UTC m=+{60 * k}.1,{t + 200000000},{pod},{cpu},0,{lat}")
    return rows


def _log_line(t_ns: int, stamp: str, pod: str, trace: str, level: str, text: str) -> str:
    inner = json.dumps({"log": f"18:05:31.000 {level} f.s.FooServiceImpl#42 TraceID: {trace} SpanID: 01 [{text}]\n",
                        "stream": "stdout", "time": stamp})
    return f"{stamp},{t_ns},10.0.0.1,{pod},server,{trace},01," + '"' + inner.replace('"', '""') + '"'


def _make_day(root: Path) -> Path:
    day = root / "rca_data" / "2030-01-01"
    for sub in ("metric", "trace", "log", "traceid"):
        (day / sub).mkdir(parents=True)
    faults = {"10": [
        {"inject_time": T0, "inject_timestamp": "1", "inject_pod": FOO, "inject_type": "return"},
        {"inject_time": T1, "inject_timestamp": "2", "inject_pod": BAR, "inject_type": "network_delay"},
    ]}  # fmt: skip
    (day / "2030-01-01-fault_list.json").write_text(json.dumps(faults, indent=1))
    for pod, cpu in ((FOO, 1.5), (BAR, 2.5)):
        (day / "metric" / f"{pod}_metric.csv").write_text("\n".join([METRIC_HEADER, *_metric_rows(pod, cpu)]) + "\n")
    for minute, first in (("10_05", 10 * 60 + 5), ("10_06", 10 * 60 + 6), ("10_07", 10 * 60 + 7),
                          ("10_12", 10 * 60 + 12), ("10_13", 10 * 60 + 13), ("10_14", 10 * 60 + 14)):  # fmt: skip
        s = (BASE + (first - 600) * 60) * 10**9
        rows = [TRACE_HEADER,
                f"aa{minute},r1,root,{BAR},/api,{s},{s + 5_000_000},5000",
                f"aa{minute},c1,r1,{FOO},/foo,{s + 1_000_000},{s + 3_000_000},2000",
                # the same trace in every file: repeats across minute files
                f"dup,r0,root,{BAR},/api,{BASE * 10**9},{BASE * 10**9 + 10},0"]  # fmt: skip
        (day / "trace" / f"{minute}_trace.csv").write_text("\n".join(rows) + "\n")
        stamp_ok = f"2030-01-01T{minute[:2]}:{minute[3:]}:00.123456789Z"
        lines = [LOG_HEADER,
                 _log_line(s + 123456789, stamp_ok, FOO, f"aa{minute}", "INFO", "ok"),
                 _log_line(-6795364578871345152, f"2030-01-01T{minute[:2]}:{minute[3:]}:01.347", FOO,
                           f"aa{minute}", "ERROR", "boom")]  # fmt: skip
        (day / "log" / f"{minute}_log.csv").write_text("\n".join(lines) + "\n")
    return day


@pytest.fixture()
def day(tmp_path: Path) -> Path:
    return _make_day(tmp_path)


def test_hand_made_day_loads(day: Path) -> None:
    got = list(nezha.load(day.parent.parent))
    assert [c.id for c in got] == ["nezha/2030-01-01/TT/00", "nezha/2030-01-01/TT/01"]
    first, second = got
    t0, t1 = BASE + 330, BASE + 730
    assert first.truth.service == "ts-foo-service" and first.truth.fault == "error"
    assert second.truth.fault == "delay" and second.truth.meta["fault"] == "network_delay"
    assert first.meta["bounds"] == [t0 - 600, (t0 + t1) / 2]
    assert second.meta["bounds"] == [(t0 + t1) / 2, t1 + 600]
    # metrics are split between cases, never shared; NaN cells are absent rows
    shared_times = set(first.metrics["time"]) & set(second.metrics["time"])
    assert not shared_times
    assert first.metrics["time"].max() < (t0 + t1) / 2 <= second.metrics["time"].min()
    assert set(first.metrics["entity"]) == {"ts-foo-service", "ts-bar-service"}
    nan_row = BASE + 3 * 60 + 19.5
    lat = first.metrics[(first.metrics["metric"] == "PodServerLatencyP90(s)") & (first.metrics["entity"] == "ts-foo-service")]
    assert nan_row not in set(lat["time"]) and len(lat) > 5
    # spans: the repeated trace appears once; the graph comes from them
    assert len(first.spans) == 3 * 2 + 1
    assert first.topology is not None and first.topology.edges() == [("ts-bar-service", "ts-foo-service", "calls")]
    # logs: the Go-zero-time rows take their Timestamp (no Z, milliseconds, UTC)
    boom = first.logs[first.logs["level"] == "ERROR"]
    assert sorted(boom["time"].round(3)) == [BASE + 5 * 60 + 1.347, BASE + 6 * 60 + 1.347, BASE + 7 * 60 + 1.347]
    assert set(first.logs["template"]) == {"f.s.FooServiceImpl#42"}
    assert first.logs["message"].str.contains(r"\[boom\]|\[ok\]").all()


def test_glued_fragment_after_closing_quote_is_tolerated(day: Path) -> None:
    """Upstream 10_06_log.csv has lines with a record fragment glued after the closing quote."""
    f = day / "log" / "10_05_log.csv"
    lines = f.read_text().splitlines()
    lines[1] = lines[1] + 'junk","x,y,z'
    lines.append(lines[2] + ',extra,fields')
    f.write_text("\n".join(lines) + "\n")
    logs = read_logs(f)
    assert len(logs) == 3
    assert logs["level"].tolist() == ["INFO", "ERROR", "ERROR"]


# --------------------------------------------------------------------------- malformed input

METRIC = "metric/" + FOO + "_metric.csv"


def _rewrite(path: Path, fn) -> None:  # noqa: ANN001
    path.write_text(fn(path.read_text()))


MALFORMED = {
    "truncated metric": (METRIC, lambda t: t[: t.rindex(",")], None),
    "missing time column": (METRIC, lambda t: t.replace("Time,TimeStamp", "When,TimeStamp", 1), "Time"),
    "text in a numeric cell": (METRIC, lambda t: t.replace(",1.5,", ",lots,", 1), "CpuUsageRate(%)"),
    "inf in a value": (METRIC, lambda t: t.replace(",1.5,", ",inf,", 1), "CpuUsageRate(%)"),
    "unparseable time": (METRIC, lambda t: t.replace("2030-01-01 09:55", "2030-13-01 09:55", 1), "Time"),
    "empty time": (METRIC, lambda t: t.replace("\n2030-01-01 09:55:19.5 +0000 UTC m=+-300.1", "\n", 1), "Time"),
    "duplicate time": (METRIC, lambda t: t.replace("09:56:19.5", "09:55:19.5", 1), "Time"),
    "unsorted time": (METRIC, lambda t: t.replace("09:56:19.5", "09:54:19.5", 1), "Time"),
    "empty metric file": (METRIC, lambda t: "", None),
    "trace text in a time": ("trace/10_06_trace.csv", lambda t: t.replace(",5000\n", "x,5000\n", 1), "EndTimeUnixNano"),
    "trace missing column": ("trace/10_06_trace.csv", lambda t: t.replace("ParentID,", "Parent,", 1), None),
    "empty trace file": ("trace/10_06_trace.csv", lambda t: "", None),
    "log unterminated quote": ("log/10_06_log.csv", lambda t: t.rstrip("\n")[:-5] + "\n", "Log"),
    "log too few fields": ("log/10_06_log.csv", lambda t: t + "2030-01-01T10:06:00Z,1,2\n", "Log"),
    "log bad time": ("log/10_06_log.csv", lambda t: t.replace("2030-01-01T10:06:01.347", "yesterday", 1), "Timestamp"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_names_file_and_field(day: Path, name: str) -> None:
    rel, fn, field = MALFORMED[name]
    _rewrite(day / rel, fn)
    with pytest.raises(DataError) as info:
        for _, thunk in nezha.iter_cases(day):
            thunk()
    assert info.value.path is not None and Path(info.value.path).name == Path(rel).name
    if field is not None:
        assert info.value.field == field
    assert Path(rel).name in str(info.value)


@pytest.mark.parametrize("doc", ['[{"inject_time": "x"}]', '{"10": {"a": 1}}', '{"10": [3]}',
                                 '{"10": [{"inject_pod": "a-b-c", "inject_type": "return"}]}',
                                 '{"10": [{"inject_time": "10:00", "inject_pod": "a-b-c", "inject_type": "return"}]}',
                                 '{"10": [{"inject_time": "2030-01-01 10:00:00", "inject_pod": "nodash", "inject_type": "x"}]}',
                                 "{not json", ""])  # fmt: skip
def test_fault_list_of_the_wrong_shape(day: Path, doc: str) -> None:
    (day / "2030-01-01-fault_list.json").write_text(doc)
    pairs = list(nezha.iter_cases(day))
    assert [cid for cid, _ in pairs] == ["nezha/2030-01-01"]
    with pytest.raises(DataError) as info:
        pairs[0][1]()
    assert "fault_list.json" in str(info.value)


def test_a_bad_case_does_not_stop_the_batch(day: Path) -> None:
    """Case 01's trace file is broken: case 00 still loads, and the failure names 01."""
    (day / "trace" / "10_13_trace.csv").write_text(TRACE_HEADER + "\nx,y,root,p-q-r,op,notanumber,2,3\n")
    results = {}
    for cid, thunk in nezha.iter_cases(day):
        try:
            results[cid] = thunk()
        except DataError as exc:
            results[cid] = exc
    assert isinstance(results["nezha/2030-01-01/TT/00"], Case)
    assert isinstance(results["nezha/2030-01-01/TT/01"], DataError)
    got = []
    with pytest.raises(DataError, match="nezha/2030-01-01/TT/01.*10_13_trace.csv"):
        for case in nezha.load(day):
            got.append(case.id)
    assert got == ["nezha/2030-01-01/TT/00"]
    loaded, failures = load_all(day.parent.parent, "nezha")
    assert [c.id for c in loaded] == ["nezha/2030-01-01/TT/00"]
    assert len(failures) == 1 and failures[0].field == "StartTimeUnixNano"


def test_dependency_csv_is_used_without_spans(day: Path) -> None:
    for f in (day / "trace").iterdir():
        f.unlink()
    (day / "metric" / "dependency.csv").write_text(
        "Source,Target,Weight\nts-bar-service,ts-foo-service,1\nts-foo-service,10.0.0.1,1\n")
    case = next(nezha.load(day))
    assert case.spans.empty and case.topology is not None and case.topology.source == "file"
    assert set(case.topology.edges()) == {("ts-bar-service", "ts-foo-service", "calls"),
                                          ("ts-foo-service", "10.0.0.1", "runs_on")}  # fmt: skip
    assert len(case.meta["files"]["missing"]) == 3


def test_no_spans_and_no_graph_means_no_topology(day: Path) -> None:
    for f in (day / "trace").iterdir():
        f.unlink()
    assert next(nezha.load(day)).topology is None


# --------------------------------------------------------------------------- random bytes

PARSERS = {
    "fault_list": ("2030-01-01-fault_list.json", read_fault_list),
    "metric": (FOO + "_metric.csv", read_metric_csv),
    "trace": ("10_05_trace.csv", read_spans),
    "log": ("10_05_log.csv", read_logs),
    "dependency": ("dependency.csv", read_dependency),
}


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=400),
    st.text(alphabet=st.sampled_from(list('0123456789,."-:\n TimeSpanIDrootNaNinf{}[]')), max_size=300),
))  # fmt: skip
def test_random_bytes_raise_only_aisre_errors(tmp_path: Path, kind: str, data: bytes | str) -> None:
    name, parse = PARSERS[kind]
    f = tmp_path / name
    raw = data if isinstance(data, bytes) else data.encode()
    header = {"metric": METRIC_HEADER, "trace": TRACE_HEADER, "log": LOG_HEADER}.get(kind)
    for content in (raw, (header.encode() + b"\n" + raw) if header else raw):
        f.write_bytes(content)
        try:
            parse(f)
        except AisreError:
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
))  # fmt: skip
def test_random_json_fault_lists_raise_only_data_errors(tmp_path: Path, doc: object) -> None:
    f = tmp_path / "2030-01-01-fault_list.json"
    f.write_text(json.dumps(doc))
    try:
        read_fault_list(f)
    except DataError:
        pass


def test_a_case_survives_a_case_folder_round_trip(cases: list[Case], tmp_path: Path) -> None:
    from aisre.case import load_case, save_case

    case = next(c for c in cases if c.system == "TT")
    back = load_case(save_case(case, tmp_path / "c"))
    assert back.truth == case.truth and back.topology == case.topology and back.meta == case.meta
    for name in ("metrics", "spans", "logs"):
        a, b = getattr(case, name), getattr(back, name)
        assert len(a) == len(b) > 0
        def text(f):  # noqa: ANN001, ANN202 (parquet reads text back as str, nulls as NaN)
            return f.astype(object).fillna("<na>").astype(str).to_numpy()

        assert (text(a) == text(b)).all()
