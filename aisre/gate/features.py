"""Just-in-time change features from real git history (Kamei et al. 2013, as ApacheJIT has them).

:func:`change_features` runs ``git`` as a subprocess (no GitPython) a handful of times:

* ``git diff --numstat -z MERGE-BASE HEAD`` (what HEAD adds since it forked from BASE, as a pull
  request shows it): lines added/deleted per file (``la``, ``ld``); binary files
  count as changed files with 0 lines; ``nf`` files, ``nd`` directories, ``ns`` subsystems (the
  top-level directory; files at the root form one subsystem), ``ent`` the entropy in bits of the
  changed lines over the files (0 <= ent <= log2 nf).
* ONE ``git log -n HISTORY --name-only -z MERGE-BASE`` over the history up to the fork point,
  parsed into a pandas frame (commit, time, author, file): per changed file the days since it was
  last changed (``age``), its distinct prior authors (``ndev``) and prior changes (``nuc``), each
  averaged over the changed files as ApacheJIT does (files never changed before count 0); the
  head commit author's prior commits (``aexp``), the same weighted by recency ``1/(1+years)``
  (``arexp``) and those touching the change's subsystems (``asexp``).
* ``git log BASE..HEAD``: the head commit's author and time, and the messages: ``fix`` is True
  when a message names a fix, a bug or an issue key (``fixes #12``, ``HDFS-1234``), ``revert``
  when one reverts an earlier commit.

Only the last ``history`` commits before BASE are read, so experience counts are capped by that
window (ApacheJIT counts the whole history): a large window costs time, not correctness.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.errors import GitError

__all__ = [
    "ChangeFeatures",
    "KAMEI_FEATURES",
    "change_features",
    "is_fix_message",
    "is_revert_message",
]

KAMEI_FEATURES = ("la", "ld", "nf", "nd", "ns", "ent", "ndev", "age", "nuc", "aexp", "arexp", "asexp")
"""The ApacheJIT/Kamei change metrics, in the dataset's column order."""

_DAY = 86400.0
_YEAR = 365.25 * _DAY
_RS, _US = "\x1e", "\x1f"

_FIX_WORDS = re.compile(r"\b(fix(e[sd])?|fixing|bug(s|fix)?|hotfix|defect|regression)\b", re.IGNORECASE)
_ISSUE_KEY = re.compile(r"\b(?P<project>[A-Z][A-Z0-9]+)-[0-9]+\b|(?<![\w&])#[0-9]+\b")
_NOT_ISSUE_KEYS = frozenset({"UTF", "SHA", "ISO", "RFC", "CVE", "MD", "UTF8", "X", "TLS", "SSL"})
_REVERT = re.compile(r"^\s*revert\b|\bthis reverts commit\b", re.IGNORECASE | re.MULTILINE)


def is_fix_message(message: str) -> bool:
    """Return True when a commit message says it fixes something: a fix/bug word or an issue key
    (``JIRA-123``, ``#42``; ``UTF-8``, ``SHA-1``, ``RFC-7231`` and the like are not keys).

    This is what is known at gate time; ApacheJIT's ``fix`` is True only for commits linked to a
    JIRA bug later resolved as fixed, so the dataset's feature is partly post-hoc (NOTES trap 7).
    """
    text = message or ""
    if _FIX_WORDS.search(text):
        return True
    return any(m.group("project") not in _NOT_ISSUE_KEYS for m in _ISSUE_KEY.finditer(text))


def is_revert_message(message: str) -> bool:
    """Return True when a commit message reverts an earlier commit (``Revert "..."``)."""
    return bool(_REVERT.search(message or ""))


@dataclass
class ChangeFeatures:
    """The change metrics of BASE..HEAD plus what the gate needs to explain them.

    The twelve :data:`KAMEI_FEATURES` are floats; ``fix``/``revert`` come from the messages;
    ``files`` lists every changed path (after renames: the new path), ``binary`` how many of them
    are binary; ``author``/``time`` are the head commit's author e-mail and author time (unix s).
    """

    la: float = 0.0
    ld: float = 0.0
    nf: float = 0.0
    nd: float = 0.0
    ns: float = 0.0
    ent: float = 0.0
    ndev: float = 0.0
    age: float = 0.0
    nuc: float = 0.0
    aexp: float = 0.0
    arexp: float = 0.0
    asexp: float = 0.0
    fix: bool = False
    revert: bool = False
    files: list[str] = field(default_factory=list)
    binary: int = 0
    author: str = ""
    time: float = 0.0
    base: str = ""
    head: str = ""
    commits: int = 0
    history_commits: int = 0
    new_files: int = 0

    def row(self) -> dict[str, float]:
        """Return the model's input: the Kamei metrics and ``fix`` (0/1), as floats."""
        out = {k: float(getattr(self, k)) for k in KAMEI_FEATURES}
        out["fix"] = float(self.fix)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the file list included)."""
        return asdict(self)


# --------------------------------------------------------------------------- git plumbing


def _git(repo: Path, *args: str) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
    cmd = ["git", "-C", str(repo), "-c", "core.quotepath=false", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed (the gate runs the git command)") from exc
    except OSError as exc:
        raise GitError(f"cannot run git in {repo}: {exc.strerror}") from exc
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed in {repo}: {msg[-1] if msg else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def _open_repo(repo: str | os.PathLike[str]) -> Path:
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise GitError(f"not a git repository: {path} is not a directory")
    try:
        _git(path, "rev-parse", "--git-dir")
    except GitError:
        raise GitError(f"not a git repository: {path}") from None
    return path


def _resolve(repo: Path, rev: str, name: str) -> str:
    if not isinstance(rev, str) or not rev.strip() or rev.startswith("-") or "\0" in rev:
        raise GitError(f"bad {name} revision {rev!r}")
    try:
        out = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    except GitError:
        raise GitError(f"unknown {name} revision {rev!r} in {repo}") from None
    sha = out.decode().strip()
    if not sha:
        raise GitError(f"unknown {name} revision {rev!r} in {repo}")
    return sha


def _numstat(raw: bytes) -> pd.DataFrame:
    """Parse ``git diff --numstat -z``: one row per file with added, deleted, binary."""
    tokens = raw.decode("utf-8", "replace").split("\0")
    paths: list[str] = []
    added: list[float] = []
    deleted: list[float] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not tok:
            continue
        parts = tok.split("\t", 2)
        if len(parts) != 3:
            continue
        a, d, path = parts
        if path == "":  # a rename or copy: the old and the new path follow
            path = tokens[i + 1] if i + 1 < len(tokens) else tokens[i]
            i += 2
        paths.append(path)
        added.append(float("nan") if a == "-" else float(a))
        deleted.append(float("nan") if d == "-" else float(d))
    frame = pd.DataFrame({"path": paths, "added": added, "deleted": deleted})
    frame["binary"] = frame["added"].isna()
    frame[["added", "deleted"]] = frame[["added", "deleted"]].fillna(0.0)
    return frame


def _history(raw: bytes) -> pd.DataFrame:
    """Parse ``git log --format=<RS>%H<US>%at<US>%ae --name-only -z``: one row per (commit, file)."""
    commits: list[int] = []
    times: list[float] = []
    authors: list[str] = []
    files: list[str] = []
    records = raw.decode("utf-8", "replace").split(_RS)
    for n, rec in enumerate(r for r in records if r):
        head, _, rest = rec.partition("\0")
        parts = head.split(_US)
        if len(parts) < 3:
            continue
        names = [f for f in rest.lstrip("\n").split("\0") if f]
        if not names:
            names = [""]  # a commit without files (a merge) still counts as experience
        commits.extend([n] * len(names))
        times.extend([float(parts[1])] * len(names))
        authors.extend([parts[2].lower()] * len(names))
        files.extend(names)
    return pd.DataFrame({"commit": commits, "time": times, "author": authors, "file": files})


def _dirname(paths: pd.Series) -> pd.Series:
    return paths.str.rpartition("/")[0]


def _subsystem(paths: pd.Series) -> pd.Series:
    # a file at the root has no "/": partition puts it in part 0; the root is one subsystem ("")
    head = paths.str.partition("/")
    return head[0].where(head[1] == "/", "")


def _entropy(lines: np.ndarray) -> float:
    total = float(lines.sum())
    if total <= 0 or int((lines > 0).sum()) < 2:
        return 0.0
    p = lines[lines > 0] / total
    return max(0.0, float(-(p * np.log2(p)).sum()))


# --------------------------------------------------------------------------- features


def change_features(
    repo: str | os.PathLike[str], base: str, head: str, *, history: int = 2000
) -> ChangeFeatures:
    """Return the :class:`ChangeFeatures` of the change BASE..HEAD in *repo*.

    *history* is how many commits before BASE (BASE included) inform the history features.

    Raises:
        GitError: when *repo* is not a git repository, a revision does not exist, or git fails;
            the message is one line naming the repository and the revision.
    """
    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise GitError(f"history must be a positive number of commits, got {history!r}")
    path = _open_repo(repo)
    base_sha = _resolve(path, base, "base")
    head_sha = _resolve(path, head, "head")
    # a pull request is what HEAD adds since it forked from BASE (git diff BASE...HEAD), not the
    # difference between the two tips: BASE may have moved on since
    try:
        fork = _git(path, "merge-base", base_sha, head_sha).decode().strip() or base_sha
    except GitError:  # unrelated histories
        fork = base_sha

    diff = _numstat(_git(path, "diff", "--numstat", "-z", "--no-color", "--no-ext-diff", fork, head_sha, "--"))
    log = _git(path, "log", f"--format={_RS}%H{_US}%ae{_US}%at{_US}%B", f"{base_sha}..{head_sha}", "--")
    msgs = [r.split(_US, 3) for r in log.decode("utf-8", "replace").split(_RS) if r]
    if msgs and len(msgs[0]) == 4:
        author, when = msgs[0][1].lower(), float(msgs[0][2])
    else:  # HEAD is BASE or behind it: describe HEAD itself
        meta = _git(path, "log", "-1", f"--format=%ae{_US}%at", head_sha, "--").decode("utf-8", "replace").strip()
        author, _, at = meta.partition(_US)
        author, when = author.lower(), float(at or 0.0)
    messages = [m[3] for m in msgs if len(m) == 4]

    feats = ChangeFeatures(
        base=base_sha, head=head_sha, author=author, time=when, commits=len(messages),
        fix=any(is_fix_message(m) for m in messages), revert=any(is_revert_message(m) for m in messages),
    )  # fmt: skip
    if diff.empty:
        return feats
    files = diff["path"]
    lines = (diff["added"] + diff["deleted"]).to_numpy(float)
    subsystems = set(_subsystem(files))
    feats.files = files.tolist()
    feats.binary = int(diff["binary"].sum())
    feats.la, feats.ld = float(diff["added"].sum()), float(diff["deleted"].sum())
    feats.nf = float(len(diff))
    feats.nd = float(_dirname(files).nunique())
    feats.ns = float(len(subsystems))
    feats.ent = _entropy(lines)

    hist = _history(_git(path, "log", "-n", str(history), f"--format={_RS}%H{_US}%at{_US}%ae", "--name-only", "-z",
                         fork, "--"))  # fmt: skip
    if hist.empty:
        feats.new_files = len(diff)
        return feats
    feats.history_commits = int(hist["commit"].nunique())

    touched = hist[hist["file"].isin(set(feats.files))]
    per_file = touched.groupby("file").agg(last=("time", "max"), ndev=("author", "nunique"), nuc=("commit", "nunique"))
    per_file = per_file.reindex(files)
    nf = float(len(files))
    age_days = ((when - per_file["last"]) / _DAY).clip(lower=0.0).fillna(0.0)
    feats.age = float(age_days.sum() / nf)
    feats.ndev = float(per_file["ndev"].fillna(0.0).sum() / nf)
    feats.nuc = float(per_file["nuc"].fillna(0.0).sum() / nf)
    feats.new_files = int(per_file["last"].isna().sum())

    mine = hist[hist["author"] == author]
    if not mine.empty:
        per_commit = mine.groupby("commit")["time"].first()
        years = ((when - per_commit) / _YEAR).clip(lower=0.0)
        feats.aexp = float(len(per_commit))
        feats.arexp = float((1.0 / (1.0 + years)).sum())
        in_sub = mine[_subsystem(mine["file"]).isin(subsystems)]
        feats.asexp = float(in_sub["commit"].nunique())
    for name in KAMEI_FEATURES:
        value = getattr(feats, name)
        if not math.isfinite(value):
            setattr(feats, name, 0.0)
    return feats
