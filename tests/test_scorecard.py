"""The open AI SRE scorecard: the quick suite's contract, governance at 100 %, tampering caught,
and a regression check that fires on a real drop and not on one case of noise.

The quick suite runs once for the module (about a minute on two workers), as CI runs it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from aisre.bench import compare_scorecard, load_scorecard, run_scorecard, save_scorecard, write_scorecard_html
from aisre.bench.scorecard import SCHEMA, scorecard_tables, scorecard_text, suite_config
from aisre.case import FAULT_KINDS
from aisre.errors import DataError, UsageError

SECTIONS = ("prevention", "resolution", "memory", "governance")


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AISRE_HOME", str(home))
        mp.delenv("AISRE_DB", raising=False)
        result = run_scorecard(quick=True)
    # the suite works in temporary homes of its own, never in the caller's
    assert not any(home.iterdir())
    return result


def test_quick_suite_has_the_contract(quick: dict) -> None:
    """Four sections, each with its figures and a `how` string; coverage as fractions."""
    assert quick["schema"] == SCHEMA
    assert quick["failures"] == []
    for name in SECTIONS:
        assert isinstance(quick[name], dict)
        assert isinstance(quick[name]["how"], str) and len(quick[name]["how"]) > 200
    g = quick["governance"]
    assert isinstance(g["policy_coverage"], float) and isinstance(g["audit_coverage"], float)
    assert quick["config"]["quick"] is True and quick["config"]["seeds"] == [0]
    json.dumps(quick, allow_nan=False)


def test_quick_suite_finishes_within_its_budget(quick: dict) -> None:
    assert quick["seconds"] < 120


def test_resolution_scores_every_fault_kind(quick: dict) -> None:
    r = quick["resolution"]
    assert set(r["by_fault"]) == set(FAULT_KINDS)
    assert r["n"] == len(FAULT_KINDS) == sum(v["n"] for v in r["by_fault"].values())
    for v in r["by_fault"].values():
        assert 0.0 <= v["ac1"] <= v["ac3"] <= 1.0
    assert 0.0 <= r["ac1"] <= r["ac3"] <= 1.0
    # the detection delay is simulated: at least the alert rules' own delay, well under the run
    assert 0 < r["detection_median_seconds"] <= r["ttd_median_seconds"] < 300
    assert r["breached"] >= 1 and r["ttm_with_median_seconds"] <= r["ttm_without_median_seconds"]
    assert all(i["fault"].split(":", 1)[0] == i["kind"] for i in r["incidents"])


def test_prevention_and_memory_figures_are_shares(quick: dict) -> None:
    p, m = quick["prevention"], quick["memory"]
    for key in ("prevented_share", "false_block_rate", "random_prevented_share"):
        assert 0.0 <= p[key] <= 1.0
    assert p["incidents"] > 0 and p["gated"] > 0
    assert m["recurring"]["n"] > 0 and m["novel"]["n"] > 0
    assert m["recurring_ac1_gain"] == pytest.approx(m["recurring"]["ac1_with"] - m["recurring"]["ac1_without"], abs=1e-3)
    assert m["no_loss_on_novel"] == (m["novel"]["ac1_with"] >= m["novel"]["ac1_without"])


def test_governance_is_complete(quick: dict) -> None:
    """Every proposed step decided, every executor call audited, every audit log intact."""
    g = quick["governance"]
    assert g["policy_coverage"] == 1.0 and g["audit_coverage"] == 1.0
    assert g["changes_with_allow_decision"] == 1.0
    assert g["proposed"] > 10 and g["acted"] > 10 and g["changes"] > 0
    assert g["audit_logs"] > 1 and g["audit_logs_intact"] == g["audit_logs"]


def test_policy_violations_are_blocked_and_an_allowed_step_runs(quick: dict) -> None:
    g = quick["governance"]
    assert g["violations_injected"] >= 10
    assert g["violations_blocked"] == g["violations_injected"]
    assert g["violations_denied"] + g["violations_waiting_for_approval"] == g["violations_injected"]
    assert not any(v["changed"] for v in g["violations"])
    freeze = next(v for v in g["violations"] if "freeze" in v["proposal"])
    assert freeze["decision"] == "deny" and freeze["policies"] == ["freeze-year-end-2026"]
    assert g["allowed_control_executed"] is True


def test_audit_tampering_is_detected(quick: dict) -> None:
    g = quick["governance"]
    assert g["tampering_injected"] >= 7
    assert g["tampering_detected"] == g["tampering_injected"]
    assert all(t["first_problem"] for t in g["tampering"])
    assert g["clean_copies_verify"] is True


def test_regression_check_passes_on_itself_and_fires_on_a_doctored_baseline(quick: dict) -> None:
    assert compare_scorecard(quick, quick) == []
    base = copy.deepcopy(quick)
    base["resolution"]["ac1"] = min(1.0, quick["resolution"]["ac1"] + 0.3)
    base["prevention"]["prevented_share"] = quick["prevention"]["prevented_share"] + 0.4
    base["resolution"]["ttm_with_median_seconds"] = 1.0
    lines = compare_scorecard(quick, base)
    assert any(line.startswith("resolution.ac1:") for line in lines)
    assert any(line.startswith("prevention.prevented_share:") for line in lines)
    assert any(line.startswith("resolution.ttm_with_median_seconds:") for line in lines)
    assert len(lines) == 3


def test_governance_below_full_coverage_is_a_regression_whatever_the_baseline(quick: dict) -> None:
    now = copy.deepcopy(quick)
    now["governance"]["audit_coverage"] = 0.99
    now["governance"]["tampering_detected_share"] = 6 / 7
    lines = compare_scorecard(now, now)
    assert [line.split(":")[0] for line in lines] == ["governance.audit_coverage", "governance.tampering_detected_share"]


def test_one_case_of_noise_is_not_a_regression() -> None:
    """A drop of one incident in a sample of 12 is noise; two are a regression."""
    base = {"schema": SCHEMA, "config": {"quick": True, "seeds": [0]}, "resolution": {"n": 12, "ac1": 10 / 12}}
    one = copy.deepcopy(base)
    one["resolution"]["ac1"] = 9 / 12
    two = copy.deepcopy(base)
    two["resolution"]["ac1"] = 8 / 12
    assert not [line for line in compare_scorecard(one, base) if line.startswith("resolution.ac1")]
    assert [line for line in compare_scorecard(two, base) if line.startswith("resolution.ac1")]


def test_a_baseline_of_another_suite_is_refused(quick: dict) -> None:
    other = copy.deepcopy(quick)
    other["config"]["quick"] = False
    with pytest.raises(UsageError, match="another suite"):
        compare_scorecard(quick, other)


def test_json_round_trip_and_bad_files(quick: dict, tmp_path: Path) -> None:
    path = save_scorecard(quick, tmp_path / "s.json")
    assert load_scorecard(path) == json.loads(json.dumps(quick))
    assert compare_scorecard(quick, path) == []
    (tmp_path / "bad.json").write_text('{"rows": []}')
    with pytest.raises(DataError, match="not a scorecard"):
        load_scorecard(tmp_path / "bad.json")
    with pytest.raises(DataError):
        load_scorecard(tmp_path / "missing.json")


def test_html_report_renders_offline_with_every_method(quick: dict, tmp_path: Path) -> None:
    html = write_scorecard_html(quick, tmp_path / "scorecard.html").read_text()
    assert "<script src=" not in html  # plotly.js is inline, not fetched
    assert html.count("Plotly.newPlot") == 5
    for name in SECTIONS:
        first_words = quick[name]["how"][:40].replace("'", "&#x27;").replace('"', "&quot;")
        assert first_words in html


def test_notebook_lays_out_a_stored_result(quick: dict, tmp_path: Path) -> None:
    from aisre.report import run_notebook

    path = save_scorecard(quick, tmp_path / "s.json")
    report = run_notebook("scorecard", tmp_path / "out", {"result_path": str(path)})
    text = report.html.read_text()
    assert "Plotly.newPlot" in text and "policy coverage" in text


def test_tables_and_text(quick: dict) -> None:
    tables = scorecard_tables(quick)
    assert list(tables["by_fault"]["fault"]) == list(FAULT_KINDS)
    assert len(tables["violations"]) == quick["governance"]["violations_injected"]
    text = scorecard_text(quick)
    assert "policy coverage" in text and "audit tampering detected" in text


@pytest.mark.parametrize("seeds", [[], [-1], [1, 1], ["a"]])
def test_bad_seeds_are_a_usage_error(seeds: list) -> None:
    with pytest.raises(UsageError):
        suite_config(True, seeds)


def test_bad_workers_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        run_scorecard(quick=True, workers=0)
