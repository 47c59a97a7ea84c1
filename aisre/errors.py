"""The errors aisre raises on bad input, and nothing else.

Every error's ``str()`` is one line a user can act on: what is wrong, where, and
with which value. The command line prints that line; ``--debug`` adds the traceback.

::

    AisreError                 base; str() is one line a user can act on
    ├── UsageError             a bad argument or option
    ├── DataError              bad input data: carries path, field, row where known
    │   └── SchemaError        a Case folder of an unknown or newer schema
    ├── SpecError              a bad topology, fault, scenario or ownership spec: names the field
    ├── PolicyError            a policy that fails to parse or evaluate (at run time: deny)
    ├── StoreError             the store is unreachable, or a record is corrupt
    ├── ExecutorError          a remediation executor failed
    └── GitError               a bad repository or revision for the gate
"""

from __future__ import annotations

from os import PathLike
from typing import Any

__all__ = [
    "AisreError",
    "DataError",
    "ExecutorError",
    "GitError",
    "PolicyError",
    "SchemaError",
    "SpecError",
    "StoreError",
    "UsageError",
]


class AisreError(Exception):
    """Base of every error aisre raises on purpose."""

    def __init__(self, message: str) -> None:
        # One line, always: a user reads it in a terminal after "aisre: error: ".
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        """The one-line message."""
        return str(self.args[0]) if self.args else ""


class UsageError(AisreError):
    """A bad argument or option."""


class DataError(AisreError):
    """Bad input data, naming the file, the field and the row where known.

    The attributes ``path``, ``field``, ``row`` and ``value`` keep the parts so a batch
    can report them in a table; ``str()`` joins them into one line.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        field: str | None = None,
        row: int | None = None,
        value: Any = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.row = row
        self.value = value
        where = []
        if self.path is not None:
            where.append(self.path)
        if field is not None:
            where.append(f"field {field!r}")
        if row is not None:
            where.append(f"row {row}")
        text = message
        if value is not None:
            shown = repr(value)
            text += f" (value {shown[:60] + '...' if len(shown) > 60 else shown})"
        if where:
            text = f"{': '.join([', '.join(where), text])}"
        super().__init__(text)


class SchemaError(DataError):
    """A Case folder written with an unknown or newer schema."""


class SpecError(AisreError):
    """A bad topology, fault, scenario or ownership spec; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None, path: str | None = None) -> None:
        self.field = field
        self.path = path
        prefix = ": ".join(p for p in (path, f"field {field!r}" if field else None) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class PolicyError(AisreError):
    """A policy that fails to parse or to evaluate; at run time the request is denied."""


class StoreError(AisreError):
    """The store is unreachable, or a stored record is corrupt."""


class ExecutorError(AisreError):
    """A remediation executor failed to carry out a step."""


class GitError(AisreError):
    """A path that is not a git repository, or a revision that does not exist."""
