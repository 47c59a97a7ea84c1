"""Change features from a real git repository the test builds, with known answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aisre.errors import GitError
from aisre.gate import change_features, run_gate
from aisre.gate.features import is_fix_message, is_revert_message

DAY = 86400


def _git(repo: Path, *args: str, author: str = "old@example.com", when: int = 1_600_000_000) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": author.split("@")[0], "GIT_AUTHOR_EMAIL": author,
        "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com",
        "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000",
    }  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True).stdout


def _commit(repo: Path, files: dict[str, str], message: str, *, author: str, when: int) -> str:
    for rel, text in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message, author=author, when=when)
    return _git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A repository: 20 commits by old@ to svc/a.py and svc/b.py; then two changes off the tip:
    ``small``: old@ changes one line of svc/a.py; ``huge``: new@ (no earlier commit) adds 40 files
    of 100 lines in 8 subsystems and edits svc/b.py."""
    root = tmp_path_factory.mktemp("gate-repo")
    _git(root, "init", "-q", "-b", "main")
    t0 = 1_600_000_000
    for i in range(20):
        _commit(root, {"svc/a.py": f"a = {i}\n" * 10, "svc/b.py": f"b = {i}\n" * 5},
                f"tweak {i}", author="old@example.com", when=t0 + i * DAY)  # fmt: skip
    base = _git(root, "rev-parse", "HEAD").strip()
    a_lines = (root / "svc/a.py").read_text().splitlines()
    a_lines[0] = "a = 'changed'"
    small = _commit(root, {"svc/a.py": "\n".join(a_lines) + "\n"}, "tune a", author="old@example.com", when=t0 + 30 * DAY)
    _git(root, "checkout", "-q", "-b", "huge", base)
    files = {f"sub{k % 8}/dir{k % 16}/f{k}.py": "x = 1\n" * 100 for k in range(40)}
    files["svc/b.py"] = "rewritten\n" * 3
    huge = _commit(root, files, "HDFS-42: rework everything", author="new@example.com", when=t0 + 30 * DAY)
    (root / "bin.dat").write_bytes(bytes(range(256)) * 4)
    binary = _commit(root, {}, "add a binary", author="new@example.com", when=t0 + 31 * DAY)
    return {"root": root, "base": base, "small": small, "huge": huge, "binary": binary, "t0": t0}


def test_small_change_metrics(repo: dict[str, object]) -> None:
    """One line changed in svc/a.py by the author of all 20 earlier commits."""
    f = change_features(repo["root"], repo["base"], repo["small"])
    assert (f.la, f.ld, f.nf, f.nd, f.ns, f.ent) == (1, 1, 1, 1, 1, 0)
    assert f.files == ["svc/a.py"]
    assert f.aexp == 20 and f.asexp == 20
    assert f.ndev == 1 and f.nuc == 20
    assert f.age == pytest.approx(30 - 19)  # last changed on day 19, the change is on day 30
    assert f.arexp == pytest.approx(sum(1 / (1 + (30 - i) / 365.25) for i in range(20)))
    assert not f.fix and f.author == "old@example.com"


def test_huge_change_metrics(repo: dict[str, object]) -> None:
    """41 files in 9 subsystems by a first-time author; svc/b.py's 5 lines replaced by 3."""
    f = change_features(repo["root"], repo["base"], repo["huge"])
    assert f.nf == 41 and f.ns == 9 and f.nd == 17
    assert f.la == 40 * 100 + 3 and f.ld == 5
    assert f.aexp == 0 and f.arexp == 0 and f.asexp == 0
    assert f.ndev == pytest.approx(1 / 41) and f.nuc == pytest.approx(20 / 41)
    assert f.new_files == 40
    assert 5.0 < f.ent <= __import__("math").log2(41)
    assert f.fix  # an issue key in the message


def test_binary_files_count_as_changed_files(repo: dict[str, object]) -> None:
    f = change_features(repo["root"], repo["huge"], repo["binary"])
    assert f.files == ["bin.dat"] and f.binary == 1 and f.nf == 1 and f.la == 0


def test_huge_first_time_change_scores_higher_than_one_line_change(repo: dict[str, object]) -> None:
    """The known answer the gate exists for."""
    small = run_gate(repo["root"], repo["base"], repo["small"], now=0, use_store=False)
    huge = run_gate(repo["root"], repo["base"], repo["huge"], now=0, use_store=False)
    assert huge.score > small.score + 0.3
    assert small.decision == "allow" and small.exit_code == 0
    assert huge.decision in ("canary", "needs_approval") and huge.exit_code == 1
    assert any("large change" in r for r in huge.reasons)
    assert any("inexperienced author" in r for r in huge.reasons)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        change_features(tmp_path, "HEAD~1", "HEAD")
    with pytest.raises(GitError, match="not a directory"):
        change_features(tmp_path / "missing", "HEAD~1", "HEAD")


@pytest.mark.parametrize("rev", ["no-such-branch", "deadbeef" * 5, "HEAD~999", "--output=/tmp/x", ""])
def test_bad_revision(repo: dict[str, object], rev: str) -> None:
    with pytest.raises(GitError) as info:
        change_features(repo["root"], rev, repo["small"])
    assert "base revision" in str(info.value) and "\n" not in str(info.value)


def test_head_equal_to_base_is_an_empty_change(repo: dict[str, object]) -> None:
    f = change_features(repo["root"], repo["small"], repo["small"])
    assert f.nf == 0 and f.files == [] and f.commits == 0


@pytest.mark.parametrize(
    ("message", "fix"),
    [("Fix NPE in parser", True), ("HDFS-1234. Speed up reads", True), ("closes #12", True), ("bugfix", True),
     ("Use UTF-8 everywhere", False), ("add prefix handling", False), ("Refactor SHA-1 helper", False)],
)  # fmt: skip
def test_fix_messages(message: str, fix: bool) -> None:
    assert is_fix_message(message) is fix


def test_revert_messages() -> None:
    assert is_revert_message('Revert "add cache"\n\nThis reverts commit abc.')
    assert not is_revert_message("add a reverter tool")


def test_base_that_moved_on_counts_only_what_head_adds(repo: dict[str, object]) -> None:
    """``small`` is a later commit on main than the fork point of ``huge``: the change is still
    what ``huge`` adds since it forked (as a pull request shows it), not the tip-to-tip diff."""
    moved = change_features(repo["root"], repo["small"], repo["huge"])
    forked = change_features(repo["root"], repo["base"], repo["huge"])
    assert (moved.nf, moved.la, moved.ld, moved.nuc) == (forked.nf, forked.la, forked.ld, forked.nuc)
    assert "svc/a.py" not in moved.files
