"""The benchmark fault suite: every kind asked for, each at a fitting target, with its truth."""

from __future__ import annotations

import pytest

from aisre.errors import SpecError
from aisre.simulator import fault_suite, parse_suite


def test_suite_covers_each_kind_with_its_truth():
    """One case per kind; the truth names the kind and the target; pool faults hit a store."""
    cases = list(fault_suite("sock-shop", per_kind=1, duration=120.0, rate=5.0, kinds=("cpu", "pool", "error")))
    assert [c.truth.fault for c in cases] == ["cpu", "pool", "error"]
    kinds = {n: d["kind"] for n, d in cases[1].topology.graph.nodes(data=True)}
    assert kinds[cases[1].truth.service] in ("database", "cache", "queue")
    assert cases[0].truth.service != "front-end"  # entry points are not targets


def test_suite_specs_are_checked():
    """simulator:TOPOLOGY[:PER_KIND] parses; anything else names the field."""
    assert parse_suite("simulator:online-boutique:3") == {"topology": "online-boutique", "per_kind": 3}
    with pytest.raises(SpecError, match="per_kind"):
        parse_suite("simulator:online-boutique:many")
    with pytest.raises(SpecError, match="source"):
        parse_suite("simulated:online-boutique")
    with pytest.raises(SpecError, match="kind"):
        list(fault_suite("online-boutique", kinds=("meteor",), duration=60.0, rate=1.0))
