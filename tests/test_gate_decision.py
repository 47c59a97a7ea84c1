"""The decision: thresholds, freeze windows (block, exit 2), incident history, and the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisre.case import Topology
from aisre.errors import DataError, SpecError
from aisre.gate import GatePolicy, decide, history_features, load_policy, record_outcome, run_gate

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fast-import repository: 40 commits over 200 files, then a 150-file change by a newcomer."""
    from aisre.bench.gate import build_repo

    return build_repo(tmp_path_factory.mktemp("gate-decision") / "repo", commits=40, files=200, change_files=150)


def _topology() -> Topology:
    t = Topology()
    t.add_node("frontend", tier="critical", owner="web")
    t.add_node("sub0", owner="team0")
    t.add_node("sub1", tier="best-effort")
    t.add_edge("frontend", "sub0")
    return t


def test_thresholds() -> None:
    policy = GatePolicy()
    assert decide(0.1, policy, when=0, services=[])[0] == "allow"
    assert decide(0.45, policy, when=0, services=[])[0] == "canary"
    assert decide(0.9, policy, when=0, services=[])[0] == "needs_approval"


def test_freeze_blocks_risky_changes_only_unless_strict(tmp_path: Path) -> None:
    p = tmp_path / "freeze.yaml"
    p.write_text("freezes:\n  - {name: holidays, start: '2023-11-14T00:00:00Z', end: '2023-11-16T00:00:00Z',"
                 " services: [sub0]}\n  - {name: launch, start: 1800000000, end: 1800003600, strict: true}\n")  # fmt: skip
    policy = load_policy(p)
    assert decide(0.45, policy, when=NOW, services=["sub0"])[0] == "block"
    assert decide(0.1, policy, when=NOW, services=["sub0"])[0] == "allow"  # low risk passes a normal freeze
    assert decide(0.45, policy, when=NOW, services=["sub1"])[0] == "canary"  # another service
    assert decide(0.45, policy, when=NOW + 3 * 86400, services=["sub0"])[0] == "canary"  # after the window
    assert decide(0.01, policy, when=1_800_000_100, services=[])[0] == "block"  # strict: everything


@pytest.mark.parametrize(
    "doc",
    [{"thresholds": {"canary": 0.7, "needs_approval": 0.5}}, {"thresholds": {"nope": 0.5}},
     {"freezes": [{"start": 10, "end": 5}]}, {"freezes": [{"start": "soon", "end": 5}]}, "just text"],
)  # fmt: skip
def test_bad_policy(doc: object) -> None:
    with pytest.raises(SpecError):
        load_policy(doc if not isinstance(doc, str) else {"freezes": doc})


def test_run_gate_blocks_during_freeze_with_exit_2(repo: dict[str, str]) -> None:
    freeze = {"freezes": [{"name": "release", "start": NOW - 60, "end": NOW + 60}]}
    result = run_gate(repo["path"], repo["base"], repo["head"], freeze=freeze, now=NOW)
    assert result.decision == "block" and result.exit_code == 2
    assert result.reasons[0].startswith("change freeze 'release' is in force")
    free = run_gate(repo["path"], repo["base"], repo["head"], freeze=freeze, now=NOW + 3600)
    assert free.decision == "needs_approval" and free.exit_code == 1


def test_run_gate_json_and_markdown(repo: dict[str, str], tmp_path: Path) -> None:
    owners = tmp_path / "owners.yaml"
    owners.write_text("sub0: ['sub0/**']\nsub1: ['sub1/']\n")
    result = run_gate(repo["path"], repo["base"], repo["head"], owners=owners, topology=_topology(), now=NOW)
    doc = json.loads(json.dumps(result.to_dict()))
    assert {"score", "decision", "reasons", "services", "blast_radius"} <= set(doc)
    assert doc["services"] == ["sub0", "sub1"]
    assert doc["blast_radius"]["affected"] == ["frontend", "sub0", "sub1"]
    assert doc["blast_radius"]["weighted"] == pytest.approx(3 + 1 + 0.3)
    assert doc["features"]["nf"] == 150 and doc["features"]["aexp"] == 0
    assert any(r.startswith("out of range: nf = 150") for r in doc["reasons"])  # ApacheJIT stops at 100 files
    md = result.markdown()
    assert md.startswith("<!-- aisre-gate -->") and "needs approval" in md and "`sub0`" in md
    assert "needs approval" in str(result)


def test_history_beta_prior_recent_and_hot_files() -> None:
    assert history_features(["new"], [], now=NOW).failure_rate == {"new": pytest.approx(0.1)}
    for i, bad in enumerate([True, True, False, False, False]):
        record_outcome(f"c{i}", ["cart"], [f"src/cart/f{i}.go"], bad, NOW - (10 - i) * 86400)
    h = history_features(["cart", "new"], ["src/cart/f0.go", "src/cart/f3.go", "x"], now=NOW)
    assert h.failure_rate["cart"] == pytest.approx((2 + 1) / (5 + 10))
    assert (h.changes["cart"], h.failures["cart"]) == (5, 2)
    assert h.failure_rate["new"] == pytest.approx(0.1)
    assert h.hot_files == ["src/cart/f0.go"]
    assert h.recent_incidents == 0  # the incidents were 10 and 9 days ago
    record_outcome("c9", ["cart"], [], True, NOW - 86400)
    assert history_features(["cart"], [], now=NOW).recent_incidents == 1
    assert history_features(["cart"], [], now=NOW - 8.5 * 86400).changes["cart"] == 2  # only the past: c0, c1


def test_history_raises_the_score(repo: dict[str, str], tmp_path: Path) -> None:
    owners = tmp_path / "owners.yaml"
    owners.write_text("sub1: ['sub1/']\n")
    before = run_gate(repo["path"], repo["base"], repo["head"], owners=owners, now=NOW)
    for i in range(6):
        record_outcome(f"bad{i}", ["sub1"], ["sub1/pkg1/file00001.go"], True, NOW - 86400 * (i + 1))
    after = run_gate(repo["path"], repo["base"], repo["head"], owners=owners, now=NOW)
    assert after.score > before.score and after.jit_score == pytest.approx(before.jit_score)
    assert any("change-failure rate" in r for r in after.reasons)


def test_record_outcome_rejects_bad_input() -> None:
    with pytest.raises(DataError):
        record_outcome("", ["a"], [], True, NOW)
    with pytest.raises(DataError):
        record_outcome("x", [], [], True, NOW)
    with pytest.raises(DataError):
        record_outcome("x", ["a"], [], True, float("nan"))
