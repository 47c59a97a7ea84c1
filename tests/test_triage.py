"""Triage: alerts become incidents with known answers on tiny hand-built storms."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aisre.case import Alert, Topology
from aisre.errors import DataError, UsageError
from aisre.triage import TriageResult, alert_kind, triage

T0 = 1_700_000_000.0
SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def shop() -> Topology:
    """fe -> checkout -> {cart -> redis, currency}; fe -> ads. fe is the critical entry."""
    t = Topology()
    t.add_node("fe", tier="critical")
    for a, b in [("fe", "checkout"), ("checkout", "cart"), ("checkout", "currency"), ("cart", "redis"), ("fe", "ads")]:
        t.add_edge(a, b)
    return t


def alert(fp: str, name: str, svc: str, at: float, *, status: str = "firing", end: float | None = None, sev: str = "warning") -> Alert:
    labels = {"alertname": name, "service": svc, "severity": sev}
    return Alert(fp, labels, {}, status, T0 + at, None if end is None else T0 + end, svc, sev)


def incident_of(result: TriageResult, fp: str) -> str | None:
    for inc in result.incidents:
        if fp in inc.alerts or fp in inc.symptoms:
            return inc.id
    return None


def test_caller_and_callee_within_the_window_group() -> None:
    """A CPU alert on cart and a latency alert on its caller checkout 60 s later are one incident,
    and the reason names the dependency."""
    r = triage([alert("c1", "HighCPU", "cart", 0), alert("k1", "HighErrorRate", "checkout", 60)], shop())
    assert len(r.incidents) == 1
    inc = r.incidents[0]
    assert inc.services == ["cart", "checkout"]
    assert any("checkout depends on cart" in why for why in inc.reasons)


def test_unrelated_simultaneous_faults_stay_apart() -> None:
    """Faults on cart and on ads (no dependency path between them) at the same moment, each with a
    symptom on a caller, make two incidents even though fe calls both."""
    alerts = [
        alert("c1", "HighCPU", "cart", 0), alert("k1", "HighErrorRate", "checkout", 40),
        alert("a1", "PodCrashLooping", "ads", 5), alert("f1", "HighErrorRate", "fe", 50),
    ]  # fmt: skip
    r = triage(alerts, shop())
    assert len(r.incidents) == 2
    assert incident_of(r, "c1") == incident_of(r, "k1")
    assert incident_of(r, "a1") != incident_of(r, "c1")


def test_siblings_sharing_only_a_caller_stay_apart() -> None:
    """cart and currency are both called by checkout but neither depends on the other."""
    r = triage([alert("c1", "HighCPU", "cart", 0), alert("u1", "DiskFull", "currency", 10)], shop())
    assert len(r.incidents) == 2


def test_far_apart_in_time_are_two_incidents() -> None:
    a = alert("c1", "HighCPU", "cart", 0, status="resolved", end=120)
    b = alert("c2", "HighCPU", "cart", 3600)
    r = triage([a, b], shop())
    assert len(r.incidents) == 2


def test_no_topology_groups_by_service_and_time_only() -> None:
    alerts = [alert("c1", "HighCPU", "cart", 0), alert("c2", "MemoryHigh", "cart", 100), alert("k1", "HighErrorRate", "checkout", 60)]
    r = triage(alerts)
    assert sorted(len(i.alerts) for i in r.incidents) == [1, 2]
    assert any("no topology" in why for i in r.incidents for why in i.reasons)


def test_late_alert_joins_the_open_incident() -> None:
    """cart is still firing 40 min later when checkout starts failing: it joins, said to be late."""
    alerts = [alert("c1", "HighCPU", "cart", 0), alert("k1", "HighErrorRate", "checkout", 2400)]
    r = triage(alerts, shop())
    assert len(r.incidents) == 1
    assert any("late alert" in why for why in r.incidents[0].reasons)


def test_resolved_alerts_close_the_incident() -> None:
    """Closed (at the last end) only when every alert resolved; one still firing keeps it open."""
    done = [
        alert("c1", "HighCPU", "cart", 0), alert("c1", "HighCPU", "cart", 0, status="resolved", end=600),
        alert("k1", "HighLatency", "checkout", 30), alert("k1", "HighLatency", "checkout", 30, status="resolved", end=650),
    ]  # fmt: skip
    r = triage(done, shop())
    assert r.incidents[0].closed == T0 + 650
    r2 = triage(done[:3], shop())
    assert r2.incidents[0].closed is None and r2.incidents[0].is_open


def test_duplicates_are_one_alert() -> None:
    """Repeated notifications of one firing alert are one alert in the incident."""
    r = triage([alert("c1", "HighCPU", "cart", 0)] * 50, shop())
    assert r.incidents[0].alerts == ["c1"]
    assert r.incidents[0].notifications == 50
    assert len(r.episodes) == 1


def test_same_fingerprint_different_labels_are_two_alerts() -> None:
    a = alert("x", "HighCPU", "cart", 0)
    b = Alert("x", {"alertname": "HighCPU", "service": "cart", "pod": "cart-2"}, {}, "firing", T0, None, "cart", "warning")
    assert len(triage([a, b], shop()).episodes) == 2


def test_flapping_is_suppressed_with_a_reason() -> None:
    alerts = []
    for k in range(5):
        alerts += [alert("fl", "QueueWobble", "redis", k * 300), alert("fl", "QueueWobble", "redis", k * 300, status="resolved", end=k * 300 + 60)]
    alerts.append(alert("c1", "HighCPU", "cart", 100))
    r = triage(alerts, shop())
    flap = [s for s in r.suppressed if s.fingerprint == "fl"]
    assert flap and flap[0].reason.startswith("flapping")
    assert "5 times" in flap[0].reason
    assert all("fl" not in i.alerts for i in r.incidents)
    assert len(r.incidents) == 1  # the flapping redis alert did not glue onto cart's incident


def test_two_resolves_are_not_flapping() -> None:
    alerts = []
    for k in range(2):
        alerts += [alert("fl", "HighCPU", "cart", k * 600), alert("fl", "HighCPU", "cart", k * 600, status="resolved", end=k * 600 + 300)]
    assert triage(alerts, shop()).suppressed == []


def test_info_is_suppressed() -> None:
    r = triage([alert("i1", "ConfigReloaded", "cart", 0, sev="info"), alert("n1", "Watch", "cart", 0, sev="none")], shop())
    assert r.incidents == []
    assert {s.fingerprint for s in r.suppressed} == {"i1", "n1"}
    assert all(s.reason.startswith("informational") for s in r.suppressed)


def test_symptom_suppressed_when_its_cause_is_in_the_incident() -> None:
    """Latency on checkout is a symptom of saturation on cart (its callee) in the same incident;
    the SLO burn on fe is user impact and never suppressed."""
    alerts = [
        alert("c1", "ConnectionPoolExhausted", "cart", 0), alert("k1", "HighLatency", "checkout", 50),
        alert("s1", "SLOBurnRate", "fe", 90, sev="critical"),
    ]  # fmt: skip
    r = triage(alerts, shop())
    assert len(r.incidents) == 1
    inc = r.incidents[0]
    assert inc.symptoms == ["k1"] and "k1" not in inc.alerts and "s1" in inc.alerts
    (sym,) = [s for s in r.suppressed if s.fingerprint == "k1"]
    assert sym.reason.startswith("symptom") and "cart" in sym.reason and inc.id in sym.reason


def test_symptom_kept_without_a_cause() -> None:
    r = triage([alert("k1", "HighLatency", "checkout", 0), alert("c1", "HighLatency", "cart", 10)], shop())
    assert r.suppressed == []


def test_slo_burn_on_entry_service_ranks_first() -> None:
    """A louder (critical, more services) incident without user impact ranks below an SLO burn on fe."""
    alerts = [
        alert("r1", "DiskFull", "redis", 0, sev="critical"), alert("c1", "HighCPU", "cart", 20, sev="critical"),
        alert("a1", "PodCrashLooping", "ads", 0), alert("s1", "SLOBurnRate", "fe", 60),
    ]  # fmt: skip
    r = triage(alerts, shop())
    assert len(r.incidents) == 2
    assert "s1" in r.incidents[0].alerts
    assert r.incidents[0].impact > r.incidents[1].impact
    assert "SLO burning on entry service fe" in r.incidents[0].reasons[-1]


def test_silent_dependency_joins_its_callers() -> None:
    """cart and currency alerting together with checkout's other callee quiet: no path links
    them, so they stay apart; two callers of a silent service join."""
    t = Topology()
    for caller in ("a", "b"):
        t.add_edge(caller, "db")
    t.add_edge("c", "other")
    r = triage([alert("x", "HighLatency", "a", 0), alert("y", "HighErrorRate", "b", 30), alert("z", "HighLatency", "c", 20)], t)
    assert incident_of(r, "x") == incident_of(r, "y") != incident_of(r, "z")
    assert any("db" in why and "silent" in why for i in r.incidents for why in i.reasons)


def test_to_dict_is_the_contract() -> None:
    r = triage([alert("c1", "HighCPU", "cart", 0), alert("i1", "Note", "cart", 0, sev="info")], shop())
    doc = json.loads(json.dumps(r.to_dict()))
    assert set(doc) == {"incidents", "suppressed"}
    assert set(doc["incidents"][0]) == {"id", "services", "alerts", "severity", "opened", "closed", "reasons"}
    assert set(doc["suppressed"][0]) == {"fingerprint", "reason"}
    assert doc["incidents"][0]["opened"] == T0 and doc["incidents"][0]["closed"] is None


def test_views_print() -> None:
    r = triage([alert("c1", "HighCPU", "cart", 0), alert("k1", "HighLatency", "checkout", 50)], shop())
    text = str(r)
    assert text.startswith("1 incidents from 2 alerts")
    assert "services: cart, checkout" in text
    assert "<table>" in r._repr_html_() and r.incidents[0].id in r.incidents[0]._repr_html_()
    assert r.incidents[0].id in str(r.incidents[0])


def test_ids_are_stable() -> None:
    alerts = [alert("c1", "HighCPU", "cart", 0)]
    assert triage(alerts, shop()).incidents[0].id == triage(list(alerts), shop()).incidents[0].id


def test_alert_kinds() -> None:
    assert alert_kind("HighCPUUsage") == "cause"
    assert alert_kind("KubePodCrashLooping") == "cause"
    assert alert_kind("HighLatency") == "symptom"
    assert alert_kind("SLOBurnRateHigh") == "slo"
    assert alert_kind("CertificateExpiringSoon") == "other"


def test_bad_input_raises_aisre_errors() -> None:
    with pytest.raises(DataError):
        triage([{"fingerprint": "x"}])  # type: ignore[list-item]
    with pytest.raises(DataError):
        triage([Alert("x", starts_at=float("nan"))])
    with pytest.raises(DataError):
        triage([Alert("x", status="pending")])
    with pytest.raises(UsageError):
        triage([alert("c1", "HighCPU", "cart", 0)], window=0)
    assert triage([]).incidents == []


def test_real_alertmanager_samples_triage() -> None:
    """Every real webhook sample parses and triages; the promgen sample's resolved alert closes."""
    folder = SHARED / "formats" / "alertmanager_webhook"
    if not folder.is_dir():
        pytest.skip(f"shared formats not found at {folder} (set AISRE_SHARED)")
    from aisre.datasets.ingest import parse_alertmanager

    alerts = []
    for path in sorted(folder.glob("*.json")):
        alerts += parse_alertmanager(path, received_at=T0)
    r = triage(alerts)
    assert r.incidents and json.dumps(r.to_dict())
    listed = {fp for i in r.incidents for fp in i.alerts} | {s.fingerprint for s in r.suppressed}
    assert listed <= {a.fingerprint for a in alerts}


def test_shared_caller_alerts_split_between_simultaneous_faults() -> None:
    """ads crashes at 0 and fe's pod 0 slows at 40; cart saturates at 100, checkout slows at 140
    and fe's pod 1 at 180. fe's alerts are one burst, but each goes with the fault that had just
    reached fe; fe's SLO burn, a minute after ads reached fe and before cart's fault did, goes
    with ads; the reason says fe was shared."""
    alerts = [
        alert("a1", "PodCrashLooping", "ads", 0), alert("f0", "HighLatency", "fe", 40),
        alert("c1", "HighCPU", "cart", 100), alert("k1", "HighLatency", "checkout", 140),
        alert("f1", "HighLatency", "fe", 180), alert("s1", "SLOBurnRate", "fe", 100, sev="critical"),
    ]  # fmt: skip
    r = triage(alerts, shop())
    assert len(r.incidents) == 2
    assert incident_of(r, "f0") == incident_of(r, "a1") == incident_of(r, "s1")
    assert incident_of(r, "f1") == incident_of(r, "c1") == incident_of(r, "k1")
    assert incident_of(r, "a1") != incident_of(r, "c1")
    assert any("fe alerted for several incidents" in why for i in r.incidents for why in i.reasons)
