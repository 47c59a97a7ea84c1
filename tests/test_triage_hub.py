"""Triage on a hub: simultaneous faults whose blast radii share a caller, with known answers.

The shop: fe (the entry, critical) calls checkout and ads; checkout calls cart and currency;
cart calls redis. fe is the hub every fault reaches. Each service runs three pods, and a fault
that reaches a service makes its pods alert within seconds of each other.
"""

from __future__ import annotations

import pytest

import aisre.triage as triage_module
from aisre.case import Alert, Topology
from aisre.triage import TriageResult, triage

T0 = 1_700_000_000.0


def shop() -> Topology:
    """fe -> {checkout, ads}; checkout -> {cart, currency}; cart -> redis."""
    t = Topology()
    t.add_node("fe", tier="critical")
    for a, b in [("fe", "checkout"), ("fe", "ads"), ("checkout", "cart"), ("checkout", "currency"), ("cart", "redis")]:
        t.add_edge(a, b)
    return t


def pod_alert(name: str, svc: str, pod: int, at: float, sev: str = "warning") -> Alert:
    labels = {"alertname": name, "service": svc, "pod": f"{svc}-{pod}", "severity": sev}
    return Alert(f"{name}/{svc}-{pod}", labels, {}, "firing", T0 + at, None, svc, sev)


def incident_of(result: TriageResult, fp: str) -> str | None:
    for inc in result.incidents:
        if fp in inc.alerts or fp in inc.symptoms:
            return inc.id
    return None


def cart_fault(at: float) -> list[Alert]:
    """cart saturates at *at*; checkout slows a minute later, fe's pods 0 and 1 a minute after."""
    return [
        pod_alert("HighCPU", "cart", 0, at), pod_alert("HighCPU", "cart", 1, at + 5),
        pod_alert("HighLatency", "checkout", 0, at + 50), pod_alert("HighLatency", "checkout", 1, at + 58),
        pod_alert("HighLatency", "fe", 0, at + 100), pod_alert("HighLatency", "fe", 1, at + 108),
    ]  # fmt: skip


def ads_fault(at: float) -> list[Alert]:
    """ads crash-loops at *at*; fe's pod 2 slows 50 s later."""
    return [
        pod_alert("KubePodCrashLooping", "ads", 0, at), pod_alert("KubePodCrashLooping", "ads", 1, at + 4),
        pod_alert("HighLatency", "fe", 2, at + 50),
    ]  # fmt: skip


def test_two_faults_sharing_a_hub_caller_stay_two_incidents() -> None:
    """cart's fault reaches fe at 100, ads's at 250: fe's alerts form one burst, yet each goes
    with the fault whose arrival explains it, and the two faults stay two incidents."""
    slo = pod_alert("SLOBurnRate", "fe", 0, 310, sev="critical")
    r = triage([*cart_fault(0), *ads_fault(200), slo], shop())
    assert len(r.incidents) == 2
    cart, ads = incident_of(r, "HighCPU/cart-0"), incident_of(r, "KubePodCrashLooping/ads-0")
    assert cart != ads
    assert incident_of(r, "HighLatency/fe-0") == incident_of(r, "HighLatency/fe-1") == cart
    assert incident_of(r, "HighLatency/fe-2") == ads
    # the SLO burn fired a minute after ads's fault reached fe, three and a half after cart's
    assert incident_of(r, "SLOBurnRate/fe-0") == ads
    assert any("fe alerted for several incidents at once" in why for i in r.incidents for why in i.reasons)


def test_a_symptom_joins_the_incident_of_its_cause() -> None:
    """checkout's and fe's latency are symptoms of cart's saturation: they join cart's incident
    and are suppressed in its favour, the reason naming cart; fe's latency from the ads crash is
    a symptom of ads, in the other incident."""
    r = triage([*cart_fault(0), *ads_fault(200)], shop())
    cart = r.incident(incident_of(r, "HighCPU/cart-0") or "")
    assert {"HighLatency/checkout-0", "HighLatency/fe-0"} <= set(cart.symptoms)
    (sym,) = [s for s in r.suppressed if s.fingerprint == "HighLatency/fe-0"]
    assert "HighCPU on cart" in sym.reason and cart.id in sym.reason
    (sym,) = [s for s in r.suppressed if s.fingerprint == "HighLatency/fe-2"]
    assert "KubePodCrashLooping on ads" in sym.reason


def test_interleaved_arrivals_on_the_hub_split_by_timing() -> None:
    """Both faults reach fe within two minutes: cart's fault at 100 (pods 0 and 1), ads's at
    170 (pod 2), all one burst; a fault reaches a service once and its alerts there fire
    together, so the split follows the arrivals, not the order of the alerts alone."""
    r = triage([*cart_fault(0), *ads_fault(120)], shop())
    assert len(r.incidents) == 2
    assert incident_of(r, "HighLatency/fe-0") == incident_of(r, "HighLatency/fe-1") == incident_of(r, "HighCPU/cart-0")
    assert incident_of(r, "HighLatency/fe-2") == incident_of(r, "KubePodCrashLooping/ads-0")


def test_error_alert_on_the_hub_follows_the_failing_dependency() -> None:
    """fe's error-rate alert comes at the moment both faults could explain it, but only the ads
    crash fails requests (cart is only slow): it goes with ads."""
    err = pod_alert("HighErrorRate", "fe", 1, 150)
    r = triage([*cart_fault(0), *ads_fault(100), err], shop())
    assert incident_of(r, "HighErrorRate/fe-1") == incident_of(r, "KubePodCrashLooping/ads-0")
    assert incident_of(r, "HighLatency/fe-0") == incident_of(r, "HighCPU/cart-0")


def test_silent_cause_needs_callers_starting_together() -> None:
    """a and b both call a quiet db: alerting 10 s apart they share it as the silent cause;
    alerting 10 minutes apart (a hop takes about a minute) they are two incidents."""
    t = Topology()
    for caller in ("a", "b"):
        t.add_edge(caller, "db")
    close = triage([pod_alert("HighLatency", "a", 0, 0), pod_alert("HighLatency", "b", 0, 10)], t)
    assert len(close.incidents) == 1
    assert any("silent cause" in why for why in close.incidents[0].reasons)
    apart = triage([pod_alert("HighLatency", "a", 0, 0), pod_alert("HighLatency", "b", 0, 200)], t)
    assert len(apart.incidents) == 2


def test_a_crash_long_after_its_dependency_alerted_is_its_own_incident() -> None:
    """cart has been alerting for 15 minutes when checkout starts crash-looping: a service
    crashing on its own is a new incident, not a late symptom of cart (a late latency alert
    on checkout would join cart's open incident)."""
    old = pod_alert("HighErrorRate", "cart", 0, 0)
    r = triage([old, pod_alert("KubePodCrashLooping", "checkout", 0, 900)], shop())
    assert len(r.incidents) == 2
    late = triage([old, pod_alert("HighLatency", "checkout", 0, 900)], shop())
    assert len(late.incidents) == 1


def test_large_bursts_are_split_by_coordinate_ascent_to_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst too large to try every arrival is searched by moving one or two arrivals at a
    time; on the hub case it finds the exhaustive answer."""
    alerts = [*cart_fault(0), *ads_fault(120), pod_alert("HighErrorRate", "fe", 1, 175)]
    full = triage(alerts, shop())
    monkeypatch.setattr(triage_module.hub, "_EXHAUSTIVE", 1)
    ascent = triage(alerts, shop())
    assert [sorted(i.alerts + i.symptoms) for i in ascent.incidents] == [sorted(i.alerts + i.symptoms) for i in full.incidents]
    assert incident_of(ascent, "HighLatency/fe-2") == incident_of(ascent, "KubePodCrashLooping/ads-0")
