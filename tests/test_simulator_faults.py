"""Fault specs: KIND:TARGET[@START][+DURATION][*INTENSITY], parsed, validated and resolved."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisre.case import FAULT_KINDS
from aisre.errors import AisreError, SpecError
from aisre.simulator import FaultSpec, load_topology, parse_fault, resolve_faults


def test_full_spec_parses():
    """Every part of the grammar is read; units s, m, h convert to seconds."""
    assert parse_fault("cpu:cartservice@300+120*0.9") == FaultSpec("cpu", "cartservice", 300.0, 120.0, 0.9)
    assert parse_fault("delay:catalogue@5m+2m*0.25") == FaultSpec("delay", "catalogue", 300.0, 120.0, 0.25)
    assert parse_fault("crash:cartservice") == FaultSpec("crash", "cartservice")
    assert parse_fault("error:paymentservice/Charge+60") == FaultSpec("error", "paymentservice/Charge", None, 60.0)


def test_kinds_are_the_project_vocabulary():
    """Exactly the twelve kinds of aisre.case.FAULT_KINDS parse."""
    assert FAULT_KINDS == ("cpu", "mem", "disk", "delay", "loss", "socket", "crash", "error", "deploy", "config", "pool", "neighbour")
    for kind in FAULT_KINDS:
        assert parse_fault(f"{kind}:x").kind == kind


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("oops:cartservice", "kind"),
        ("cpu:", "target"),
        ("cpu:cart@-5", "start"),
        ("cpu:cart@soon", "start"),
        ("cpu:cart+0", "duration"),
        ("cpu:cart*1.5", "intensity"),
        ("cpu:cart*0", "intensity"),
        ("cpu:cart*lots", "intensity"),
        ("cpu:cart/GetCart", "target"),
        ("no colon at all", "fault"),
    ],
)
def test_bad_specs_name_the_field(text, field):
    """A malformed spec raises SpecError naming the wrong field."""
    with pytest.raises(SpecError) as err:
        parse_fault(text)
    assert err.value.field == field


@given(
    kind=st.sampled_from(FAULT_KINDS),
    target=st.from_regex(r"[a-z][a-z0-9\-]{0,20}", fullmatch=True),
    start=st.none() | st.integers(0, 10_000).map(float),
    duration=st.none() | st.integers(1, 10_000).map(float),
    intensity=st.none() | st.sampled_from([0.1, 0.25, 0.5, 0.9, 1.0]),
)
def test_round_trip(kind, target, start, duration, intensity):
    """str(spec) parses back to the same spec."""
    spec = FaultSpec(kind, target, start, duration, intensity)
    assert parse_fault(str(spec)) == spec


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_garbage_never_crashes(text):
    """Any text either parses or raises SpecError, never another exception."""
    try:
        parse_fault(text)
    except AisreError as exc:
        assert isinstance(exc, SpecError)


def test_resolution_against_a_topology():
    """Defaults: start at half the run, last to its end, the kind's intensity; targets resolve."""
    topo = load_topology("online-boutique")
    (f,) = resolve_faults(["cpu:cartservice"], topo, 600)
    assert (f.service, f.instances, f.start, f.end, f.intensity) == ("cartservice", ("cartservice-0",), 300.0, 600.0, 0.9)
    (g,) = resolve_faults(["error:paymentservice/Charge@10+20*0.3"], topo, 600)
    assert (g.endpoint, g.start, g.end) == ("Charge", 10.0, 30.0)
    (h,) = resolve_faults(["neighbour:node-2"], topo, 600)
    assert h.host == "node-2" and "checkoutservice-0" in h.instances


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("cpu:nosuchservice", "target"),
        ("error:paymentservice/Refund", "target"),
        ("neighbour:node-9", "target"),
        ("cpu:node-1", "target"),
        ("cpu:cartservice@600", "start"),
    ],
)
def test_unresolvable_faults_name_the_field(text, field):
    """Unknown targets, endpoints, hosts and a start past the run's end are rejected."""
    with pytest.raises(SpecError) as err:
        resolve_faults([text], load_topology("online-boutique"), 600)
    assert err.value.field == field
