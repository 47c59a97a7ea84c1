"""Small helpers the views share: times in words, HTML escaping, the actor's name, figures in
Output widgets."""

from __future__ import annotations

import getpass
import html
import json
import os
from datetime import UTC, datetime
from typing import Any

import plotly.io as pio
from ipywidgets import Output

__all__ = ["default_actor", "esc", "show_figure", "when"]


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


def show_figure(out: Output, fig: Any) -> None:
    """Render plotly figure *fig* into Output widget *out*, replacing what it showed.

    The figure goes in as plotly's own MIME bundle, so JupyterLab and voila draw it with the
    plotly renderer they already have, whether or not a kernel-side display hook is active.
    """
    spec = json.loads(pio.to_json(fig, validate=False))
    spec["config"] = {"displaylogo": False}
    if fig.layout.height:
        # The renderer sizes its node from the parent; a parent laid out before the figure
        # arrives can leave it 0 px high, so the Output keeps room for the figure's height.
        out.layout.min_height = f"{int(fig.layout.height) + 8}px"
    title = fig.layout.title.text if fig.layout.title and fig.layout.title.text else "figure"
    out.outputs = ({"output_type": "display_data", "metadata": {},
                    "data": {"application/vnd.plotly.v1+json": spec, "text/plain": f"<plotly figure: {title}>"}},)
