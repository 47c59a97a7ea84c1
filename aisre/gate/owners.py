"""Which services a change touches: an ownership file of path globs, or CODEOWNERS.

Two formats:

* **Ownership YAML/JSON** ``{service: [glob, ...]}``: a file belongs to every service one of
  whose globs matches it.
* **CODEOWNERS** (GitHub/GitLab): ``pattern owner...`` per line, ``#`` comments; the **last
  matching pattern wins** and a pattern without owners leaves the file unowned. Owners are
  teams or people (``@org/team-web``); with a topology they become services through the nodes'
  ``owner`` attribute (``team-web`` or ``org/team-web``), else through a service of that name;
  otherwise the owner itself stands for the service.

Patterns follow gitignore rules as GitHub applies them: ``*`` and ``?`` stay within one path
component, ``**`` crosses them; a leading ``/`` or a ``/`` inside the pattern anchors it at the
repository root, otherwise it matches at any depth; a pattern naming a directory covers everything
below it (``docs/`` or ``docs``), except that a pattern ending in ``/*`` covers only the
directory's direct children (GitHub: ``docs/*`` owns ``docs/a.md`` but not ``docs/x/b.md``).

Without an ownership file, a changed path belongs to a topology service when one of its
directory names is that service's name (``src/cartservice/main.go`` -> ``cartservice``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from aisre.errors import SpecError

if TYPE_CHECKING:
    from aisre.case import Topology

__all__ = [
    "CODEOWNERS_LOCATIONS",
    "Ownership",
    "OwnershipRule",
    "find_ownership",
    "load_ownership",
    "pattern_regex",
    "services_by_path",
]

CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
"""Where GitHub looks for CODEOWNERS, in its order; :func:`find_ownership` uses the same."""


def pattern_regex(pattern: str) -> str:
    """Return the regular expression (anchored both ends) a gitignore-style *pattern* stands for.

    Raises:
        SpecError: for an empty pattern or a negation (``!``), which CODEOWNERS does not support.
    """
    pat = pattern.strip()
    if pat.startswith("\\#") or pat.startswith("\\!"):
        pat = pat[1:]
    elif pat.startswith("!"):
        raise SpecError(f"negated pattern {pattern!r} is not supported", field="pattern")
    pat = pat.replace("\\ ", " ")
    if not pat or pat == "/":
        raise SpecError(f"empty pattern {pattern!r}", field="pattern")
    dir_only = pat.endswith("/")
    pat = pat.rstrip("/")
    anchored = pat.startswith("/") or "/" in pat
    pat = pat.lstrip("/")
    children_only = pat.endswith("/*")
    out: list[str] = []
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("/**", i) and i + 3 == len(pat):
            out.append("/.*")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pat.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pat[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        elif c == "\\" and i + 1 < len(pat):
            out.append(re.escape(pat[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    prefix = "" if anchored else "(?:.*/)?"
    if children_only:
        suffix = ""
    elif dir_only:
        suffix = "/.*"
    else:
        suffix = "(?:/.*)?"
    return f"^{prefix}{body}{suffix}$"


@dataclass(frozen=True)
class OwnershipRule:
    """One pattern and who owns what it matches (services for globs, owners for CODEOWNERS)."""

    pattern: str
    owners: tuple[str, ...]
    line: int
    regex: str


@dataclass(frozen=True)
class Ownership:
    """Rules mapping paths to services; ``kind`` is ``globs`` (union) or ``codeowners`` (last wins)."""

    kind: str
    rules: tuple[OwnershipRule, ...]
    source: str = ""

    @classmethod
    def from_globs(cls, mapping: Mapping[str, Sequence[str] | str], *, source: str = "") -> Ownership:
        """Build from ``{service: [glob, ...]}``.

        Raises:
            SpecError: for a non-string service, a glob list that is not a list of strings, or a
                bad pattern, naming the service.
        """
        if not isinstance(mapping, Mapping):
            raise SpecError("an ownership file maps each service to a list of path globs", field="services", path=source or None)
        rules = []
        for n, (service, globs) in enumerate(mapping.items(), 1):
            if not isinstance(service, str) or not service:
                raise SpecError(f"service names must be non-empty strings, got {service!r}", field="services", path=source or None)
            if isinstance(globs, str):
                globs = [globs]
            if not isinstance(globs, Sequence) or not all(isinstance(g, str) for g in globs):
                raise SpecError("needs a list of path globs", field=service, path=source or None)
            for g in globs:
                try:
                    rules.append(OwnershipRule(g, (service,), n, pattern_regex(g)))
                except SpecError as exc:
                    raise SpecError(exc.message, field=service, path=source or None) from None
        return cls("globs", tuple(rules), source)

    @classmethod
    def from_codeowners(cls, text: str, *, source: str = "") -> Ownership:
        """Build from CODEOWNERS text; lines with negations or empty patterns are skipped (as GitHub does).

        Raises:
            SpecError: never for content (bad lines are skipped); kept for a uniform signature.
        """
        rules = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            # an unescaped " #" starts a trailing comment
            line = re.split(r"(?<!\\)\s#", line, maxsplit=1)[0]
            parts = re.split(r"(?<!\\)\s+", line.strip())
            try:
                regex = pattern_regex(parts[0])
            except SpecError:
                continue
            rules.append(OwnershipRule(parts[0], tuple(p for p in parts[1:] if p), n, regex))
        return cls("codeowners", tuple(rules), source)

    def owners(self, files: Iterable[str]) -> pd.Series:
        """Return, per path, the tuple of owners (services for globs); ``()`` where nobody owns it."""
        paths = pd.Series(list(files), dtype=object)
        if paths.empty:
            return pd.Series([], dtype=object)
        paths = paths.str.lstrip("/")
        if self.kind == "codeowners":
            winner = np.full(len(paths), -1)
            for i, rule in enumerate(self.rules):
                winner[paths.str.match(rule.regex).to_numpy(bool)] = i  # later rules overwrite
            owners = [self.rules[w].owners if w >= 0 else () for w in winner]
        else:
            hits = [paths.str.match(r.regex).to_numpy(bool) for r in self.rules]
            owners = [
                tuple(dict.fromkeys(r.owners[0] for r, h in zip(self.rules, hits, strict=True) if h[k]))
                for k in range(len(paths))
            ]
        return pd.Series(owners, index=paths.to_numpy(), dtype=object)

    def services(self, files: Iterable[str], topology: Topology | None = None) -> dict[str, list[str]]:
        """Return ``{service: [changed files]}`` (services sorted, files in input order).

        CODEOWNERS owners become services through *topology* (see the module docstring).
        """
        per_file = self.owners(files)
        team_map = _team_services(topology) if self.kind == "codeowners" else {}
        out: dict[str, list[str]] = {}
        for path, owners in per_file.items():
            for owner in owners:
                for svc in _resolve_owner(owner, team_map, topology) if self.kind == "codeowners" else (owner,):
                    out.setdefault(svc, []).append(str(path))
        return dict(sorted(out.items()))


def _team_services(topology: Topology | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if topology is None:
        return out
    for name in topology.services():
        owner = topology.node(name).get("owner")
        if owner:
            key = str(owner).lstrip("@").lower()
            out.setdefault(key, []).append(name)
            out.setdefault(key.rsplit("/", 1)[-1], []).append(name)
    return out


def _resolve_owner(owner: str, team_map: Mapping[str, list[str]], topology: Topology | None) -> list[str]:
    key = owner.lstrip("@").lower()
    for k in (key, key.rsplit("/", 1)[-1]):
        if k in team_map:
            return list(dict.fromkeys(team_map[k]))
    if topology is not None:
        short = key.rsplit("/", 1)[-1]
        if short in topology and short in topology.services():
            return [short]
    return [owner]


def services_by_path(files: Iterable[str], topology: Topology) -> dict[str, list[str]]:
    """Return ``{service: [files]}`` for paths with a directory named after a topology service."""
    names = set(topology.services())
    out: dict[str, list[str]] = {}
    for path in files:
        for part in str(path).split("/")[:-1]:
            if part in names:
                out.setdefault(part, []).append(str(path))
                break
    return dict(sorted(out.items()))


def load_ownership(path: str | Path) -> Ownership:
    """Read an ownership file: CODEOWNERS (by name, or any text that is not a YAML mapping) or
    a YAML/JSON ``{service: [globs]}`` mapping.

    Raises:
        SpecError: when the file cannot be read or a YAML/JSON mapping is malformed, naming it.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read ownership file: {exc}", field="owners", path=str(p)) from exc
    if p.name.upper() == "CODEOWNERS":
        return Ownership.from_codeowners(text, source=str(p))
    try:
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        if p.suffix.lower() in (".json", ".yaml", ".yml"):
            raise SpecError(f"cannot parse ownership file: {str(exc).splitlines()[0]}", field="owners", path=str(p)) from exc
        return Ownership.from_codeowners(text, source=str(p))
    if isinstance(doc, Mapping):
        return Ownership.from_globs(doc, source=str(p))
    if p.suffix.lower() in (".json", ".yaml", ".yml"):
        raise SpecError("an ownership file maps each service to a list of path globs", field="owners", path=str(p))
    return Ownership.from_codeowners(text, source=str(p))


def find_ownership(repo: str | Path) -> Path | None:
    """Return the repository's CODEOWNERS (first of :data:`CODEOWNERS_LOCATIONS`), or None."""
    for rel in CODEOWNERS_LOCATIONS:
        p = Path(repo) / rel
        if p.is_file():
            return p
    return None
