"""Small helpers the views share: times in words, HTML escaping, the actor's name."""

from __future__ import annotations

import getpass
import html
import os
from datetime import UTC, datetime

__all__ = ["default_actor", "esc", "when"]


def when(t: float | None) -> str:
    """Return unix seconds *t* as ``YYYY-MM-DD HH:MM:SSZ`` (UTC), or ``-`` for ``None``."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def esc(value: object) -> str:
    """Return ``str(value)`` escaped for HTML."""
    return html.escape(str(value))


def default_actor() -> str:
    """Return who is at the keyboard: ``$AISRE_ACTOR``, else the login name, else ``aisre``."""
    name = os.environ.get("AISRE_ACTOR")
    if name:
        return name
    try:
        return getpass.getuser() or "aisre"
    except (KeyError, OSError):  # no passwd entry in some containers
        return "aisre"
