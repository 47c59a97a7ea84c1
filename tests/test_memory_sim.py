"""Incident memory on short simulator runs, and the memory benchmark's contract."""

from __future__ import annotations

import pytest

from aisre.memory import Memory, fingerprint
from aisre.rank import get_ranker
from aisre.simulator import simulate


def _run(topology: str, fault: str, seed: int):
    case = simulate(topology, [fault], duration=300, rate=5, seed=seed)
    return case, get_ranker("aisre").rank(case)


def test_simulated_recurrence_finds_its_pattern(tmp_path):
    """A CPU hog on cartservice is remembered next to a memory leak in adservice; the same run is
    found first with similarity ~1, and a new cartservice CPU hog (other seed, start and
    intensity) matches the cartservice incident before the adservice one."""
    mem = Memory(f"sqlite:///{tmp_path / 'm.db'}")
    cart, r_cart = _run("online-boutique", "cpu:cartservice@150+150*0.9", 3)
    ads, r_ads = _run("online-boutique", "mem:adservice@120+180*0.8", 3)
    i_cart = mem.remember(cart, r_cart, confirmed=cart.truth)
    i_ads = mem.remember(ads, r_ads, confirmed=ads.truth)
    same = mem.similar(fingerprint(cart, r_cart), k=2)
    assert same[0].incident_id == i_cart and same[0].similarity > 0.99
    again, r_again = _run("online-boutique", "cpu:cartservice@120+160*0.8", 11)
    got = mem.similar(again, r_again, k=2)
    assert [m.incident_id for m in got] == [i_cart, i_ads]
    assert got[0].confirmed == ("cartservice", "cpu")
    assert got[0].similarity > got[1].similarity + 0.2


@pytest.mark.slow
def test_memory_benchmark_contract_and_direction():
    """The quick benchmark returns the contract's keys; memory raises AC@1 on recurring incidents
    and does not lower it on novel ones."""
    from aisre.bench.memory import run_memory_benchmark

    res = run_memory_benchmark(quick=True, seed=0)
    for group in ("recurring", "novel"):
        assert set(res[group]) >= {"n", "ac1_with", "ac1_without", "mttm_with", "mttm_without"}
        assert res[group]["n"] > 0
    assert res["recurring"]["n"] + res["novel"]["n"] + len(res["failures"]) == 40
    assert res["recurring"]["ac1_with"] > res["recurring"]["ac1_without"]
    assert res["novel"]["ac1_with"] >= res["novel"]["ac1_without"]
    assert res["recurring"]["mttm_with"] < res["recurring"]["mttm_without"]
