"""The gate benchmark's parts: the generated repository, the change stream, the SLO check."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisre.bench.gate import build_repo, run_gate_benchmark, simulate_stream, slo_breach
from aisre.gate import change_features


def test_generated_repository_has_the_asked_change(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "r", commits=30, files=120, change_files=100)
    f = change_features(repo["path"], repo["base"], repo["head"])
    assert f.nf == 100 and f.aexp == 0 and f.author == "new@example.com"
    assert f.history_commits == 30 and f.ns == 8


def test_stream_is_seeded_and_gating_the_riskiest_beats_random() -> None:
    a, info = simulate_stream(n=300, seed=3)
    b, _ = simulate_stream(n=300, seed=3)
    assert a.drop(columns="files").equals(b.drop(columns="files"))
    assert info["topology"] == "online-boutique" and len(a) == 300
    assert a["incident"].sum() > 10
    top = a.nlargest(30, "score")
    # the riskiest 10 % hold far more than 10 % of the incidents
    assert top["incident"].sum() / a["incident"].sum() > 0.2


def test_a_bad_deploy_breaks_the_slo_and_no_deploy_does_not() -> None:
    from aisre.simulator import load_topology, simulate

    sim = load_topology("online-boutique")
    entry = sorted({s for s, _, _ in sim.entry_endpoints()})
    bad = simulate(sim, ["deploy:cartservice@60+120*0.8"], duration=240, rate=20, seed=1)
    calm = simulate(sim, [], duration=240, rate=20, seed=1)
    assert (bad.events["kind"] == "deploy").any()
    assert slo_breach(bad, entry)["breach"] and not slo_breach(calm, entry)["breach"]


@pytest.mark.slow
def test_quick_benchmark_meets_the_issue_targets() -> None:
    r = run_gate_benchmark(quick=True)
    assert not [f for f in r["failures"] if f["part"] != "apachejit"]
    assert r["timing"]["files_changed"] == 1000 and r["timing"]["gate_seconds"] < 5
    assert r["stream"]["pooled"]["gate"]["prevented_share"] > r["stream"]["pooled"]["random"]["prevented_share"]
    # a bad deploy behind an optional call may stay within the SLO; not deploying never breaks it
    assert any(e["deployed"]["breach"] for e in r["end_to_end"])
    assert not any(e["not_deployed"]["breach"] for e in r["end_to_end"])
