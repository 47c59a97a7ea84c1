"""The sentences that say why each burst belongs to its incident."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aisre.case import Topology
from aisre.triage.kinds import SLO_PATTERN
from aisre.triage.model import _when
from aisre.triage.propagation import _Propagation


def _names(values: Sequence[str], k: int = 3) -> str:
    uniq = list(dict.fromkeys(v for v in values if v))
    shown = ", ".join(uniq[:k])
    return shown + (f" and {len(uniq) - k} more" if len(uniq) > k else "")


@dataclass(frozen=True)
class _Words:
    """What the sentences about bursts need: their links, services, starts, sizes and alert
    names, the topology, the window and the propagation measured on the stream (if any)."""

    parent_of: dict[int, int]
    hops_of: dict[int, int]
    silent_of: dict[int, str]
    service: list[str]
    t0: list[float]
    n: list[int]
    split: list[bool]
    names: dict[int, list[str]]
    topology: Topology | None
    nodes: set[str]
    window: float
    model: _Propagation | None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _burst_reason(b: int, root: int, opened: float, w: _Words) -> str:
    """One sentence saying why burst *b* belongs to its incident."""
    svc = w.service[b]
    what = f"{_plural(w.n[b], 'alert')} on {svc} ({_names(w.names.get(b, []))})"
    if b == root:
        text = f"{what} opened the incident at {_when(w.t0[b])}"
        if w.topology is None:
            text += "; no topology, so alerts group by service and time only"
        elif svc not in w.nodes:
            text += f"; {svc} is not in the topology, so only service and time group it"
    elif b in w.silent_of:
        together = " of each other, as two callers one hop from one cause do here" if w.model else ""
        text = (
            f"{what} joined: {svc} and {w.service[w.parent_of[b]]} both depend on {w.silent_of[b]}, which has no "
            f"alert of its own but may be the silent cause; their alerts started within "
            f"{w.model.together if w.model else w.window:.0f} s{together}"
        )
    elif b in w.parent_of:
        p = w.parent_of[b]
        h = int(w.hops_of[b])
        text = (
            f"{what} joined: {svc} depends on {w.service[p]} ({_plural(h, 'hop')} in the "
            f"dependency graph), whose alerts were active within {w.window:.0f} s of {_when(w.t0[b])}"
        )
        if w.split[b] and w.model is not None:
            m = w.model
            mean, var = m.expected(np.array([float(h)]), np.array([p not in w.parent_of]))
            text += (
                f"; {svc} alerted for several incidents at once, and a fault reaches a service once, its "
                f"alerts there firing together (within about {m.wave:.0f} s here), so each of its alerts went "
                f"with the incident whose arrival explains it best: these started {w.t0[b] - w.t0[p]:.0f} s "
                f"after this incident's first alert on {w.service[p]}, where {_plural(h, 'hop')} take{'s' if h == 1 else ''} "
                f"{mean[0]:.0f} ± {math.sqrt(var[0]):.0f} s in these alerts"
            )
            if any(SLO_PATTERN.search(str(a).lower()) for a in w.names.get(b, [])):
                text += f", and an SLO burn follows its fault by {m.slo_mu:.0f} ± {m.slo_sigma:.0f} s"
    else:
        text = f"{what} joined through a dependency cycle at {_when(w.t0[b])}"
    if w.n[b] > 1:
        text += f"; they fired on {svc} within {w.window:.0f} s of each other or while one was still firing"
    if w.t0[b] - opened > w.window:
        text += f"; a late alert, {(w.t0[b] - opened) / 60:.0f} min after the incident opened, joined it while open"
    return text
