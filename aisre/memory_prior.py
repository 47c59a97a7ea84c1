"""Past incidents as a prior: re-rank a ranking with the causes engineers confirmed before, and
put the actions that worked before first in a plan.

The rule (:func:`with_memory`), in full:

1. Only matches with a confirmed (or corrected) cause and a similarity of at least
   :data:`MIN_SIMILARITY` vote. A match votes with weight ``w = (similarity - MIN_SIMILARITY) /
   (1 - MIN_SIMILARITY)``, so a barely similar incident counts for almost nothing.
2. A cause's *strength* is its votes over all votes plus :data:`PRIOR_COUNT` (a pseudo-count that
   keeps one lukewarm match from acting like certainty): ``strength = sum(w for cause) /
   (sum(w) + PRIOR_COUNT)``, in [0, 1).
3. The hypothesis naming that cause (the entity itself, else the first of its instances) gains
   ``MAX_BOOST * strength * top``, where ``top`` is the largest current score. A cause no current
   hypothesis names is added with that gain as its whole score.
4. The ranking is re-sorted by the new scores.

So the bonus is bounded by ``MAX_BOOST`` of the top score: a hypothesis can overtake another only
when its current score is within 30 % of the top score; strong current evidence (a leader ahead
by more than that) is not overridden, however many past incidents disagree.

One exception, and only one: a *learned correction*. When similar past incidents had **the same
top suspect as now** and people confirmed another cause for them, the current leader's evidence
is not new: it is the very pattern that misled the ranker before. If those corrections carry at
least :data:`CORRECTION_SHARE` of the memory's strength (rule 2, counting only them) and the
corrected cause has current evidence of its own (a hypothesis with at least
:data:`CORRECTION_FLOOR` of the top score), the corrected cause is moved to the top. Memory never
promotes a cause with no current evidence, and never overrides a leader the past incidents did
not rank first. ``learn_corrections=False`` turns the exception off.

Confidences are rescaled in log-odds by ``LOGIT_GAIN * strength`` and renormalised. An abstention
stays one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aisre.case import Evidence, Hypothesis, Ranking, Step

__all__ = [
    "CORRECTION_FLOOR",
    "CORRECTION_SHARE",
    "LOGIT_GAIN",
    "MAX_BOOST",
    "MIN_SIMILARITY",
    "PRIOR_COUNT",
    "Match",
    "Strength",
    "cause_strengths",
    "prioritise_steps",
    "with_memory",
]

MIN_SIMILARITY = 0.5
"""Matches less similar than this do not vote (more than half alike)."""

MAX_BOOST = 0.3
"""Largest gain memory can give a hypothesis, as a share of the top current score."""

PRIOR_COUNT = 0.5
"""Pseudo-count of votes for "none of the remembered causes" (see the module docstring)."""

CORRECTION_SHARE = 0.5
"""Share of the memory's strength learned corrections need before they may reorder beyond the bound."""

CORRECTION_FLOOR = 0.05
"""Smallest current score, as a share of the top score, of a cause a learned correction may promote."""

LOGIT_GAIN = 2.0
"""Log-odds added to a hypothesis' confidence at strength 1."""

_INSTANCE = re.compile(r"^(?P<svc>.+?)-(?:[0-9a-f]{8,10}-[a-z0-9]{5}|[a-z0-9]{9,10}-[a-z0-9]{5}|\d+)$")


@dataclass
class Match:
    """A remembered incident similar to the one at hand.

    ``similarity`` is 0..1 (1: the same fingerprint); ``why`` says in words what the incidents
    share; ``cause``/``fault`` is the confirmed (or corrected) root cause, ``None`` while
    unconfirmed; ``status`` is ``unconfirmed``, ``confirmed`` or ``corrected``; ``actions`` are
    ``{"name", "target", "ok"}`` dicts of what was done and whether it worked.
    """

    incident_id: str
    similarity: float
    why: str
    cause: str | None = None
    fault: str | None = None
    status: str = "unconfirmed"
    actions: list[dict[str, Any]] = field(default_factory=list)
    case_id: str = ""
    system: str = ""
    suspect: str | None = None
    outcome: str | None = None
    postmortem: str | None = None
    created: float = 0.0

    @property
    def confirmed(self) -> tuple[str, str | None] | None:
        """``(service, fault)`` when a person confirmed or corrected the cause, else ``None``."""
        return (self.cause, self.fault) if self.cause and self.status in ("confirmed", "corrected") else None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "incident_id": self.incident_id, "similarity": round(float(self.similarity), 4), "why": self.why,
            "cause": self.cause, "fault": self.fault, "status": self.status, "actions": list(self.actions),
            "case_id": self.case_id, "system": self.system, "suspect": self.suspect, "outcome": self.outcome,
            "postmortem": self.postmortem, "created": self.created,
        }  # fmt: skip

    def __str__(self) -> str:
        cause = f"{self.cause} {self.fault or ''}".strip() if self.cause else "cause unconfirmed"
        return f"{self.incident_id}  {self.similarity:.2f}  {cause} ({self.status})  {self.why}"


@dataclass
class Strength:
    """What the memory says of one cause: ``strength`` (rule 2), ``correction`` (the same, over
    the learned corrections only), the most voted ``fault`` and the supporting matches."""

    strength: float
    correction: float
    fault: str | None
    support: list[Match]


def _service(entity: str | None) -> str:
    name = str(entity or "")
    m = _INSTANCE.match(name)
    return m.group("svc") if m else name


def cause_strengths(matches: Iterable[Match], *, top: str | None = None,
                    min_similarity: float = MIN_SIMILARITY) -> dict[str, Strength]:
    """Return ``{service: Strength}`` from the confirmed causes of *matches* (rules 1 and 2 of
    the module docstring); *top* is the current top suspect, for the learned corrections."""
    votes: dict[str, float] = {}
    corrections: dict[str, float] = {}
    faults: dict[str, dict[str | None, float]] = {}
    support: dict[str, list[Match]] = {}
    total = 0.0
    for m in matches:
        c = m.confirmed
        sim = float(m.similarity)
        if c is None or not math.isfinite(sim) or sim < min_similarity:
            continue
        w = (sim - min_similarity) / (1.0 - min_similarity) if min_similarity < 1.0 else 1.0
        w = min(max(w, 0.0), 1.0)
        total += w
        votes[c[0]] = votes.get(c[0], 0.0) + w
        if top is not None and m.suspect and _service(m.suspect) == _service(top) and _service(c[0]) != _service(top):
            corrections[c[0]] = corrections.get(c[0], 0.0) + w
        faults.setdefault(c[0], {})
        faults[c[0]][c[1]] = faults[c[0]].get(c[1], 0.0) + w
        support.setdefault(c[0], []).append(m)
    out = {}
    for svc, v in votes.items():
        fault = max(faults[svc].items(), key=lambda kv: (kv[1], kv[0] is not None))[0]
        out[svc] = Strength(v / (total + PRIOR_COUNT), corrections.get(svc, 0.0) / (total + PRIOR_COUNT), fault,
                            sorted(support[svc], key=lambda m: -m.similarity))
    return out


def _find(hyps: Sequence[Hypothesis], service: str) -> int | None:
    for i, h in enumerate(hyps):
        if h.entity == service:
            return i
    for i, h in enumerate(hyps):
        if _service(h.entity) == service:
            return i
    return None


def with_memory(ranking: Ranking, matches: Sequence[Match], *, max_boost: float = MAX_BOOST,
                min_similarity: float = MIN_SIMILARITY, learn_corrections: bool = True) -> Ranking:
    """Return a new ranking: *ranking* re-ranked with the confirmed causes of *matches* as a
    bounded prior, plus learned corrections (the rule is in the module docstring); each boosted
    hypothesis gains a ``memory`` Evidence per supporting incident ("seen before: INC-...
    (similarity 0.93) confirmed cartservice cpu"). *ranking* itself is not changed; an
    abstention or a ranking without confirmed matches comes back as an equal copy."""
    hyps = [replace(h, evidence=list(h.evidence)) for h in ranking.hypotheses]
    out = replace(ranking, hypotheses=hyps)
    if ranking.abstained or not hyps:
        return out
    leader = hyps[0].entity
    strengths = cause_strengths(matches, top=leader if learn_corrections else None, min_similarity=min_similarity)
    if not strengths:
        return out
    finite = [abs(h.score) for h in hyps if math.isfinite(h.score)]
    top = max(finite, default=0.0) or 1.0
    gain: dict[int, float] = {}
    for svc, st in sorted(strengths.items(), key=lambda kv: (-kv[1].correction, -kv[1].strength, kv[0])):
        i = _find(hyps, svc)
        if i is None:
            hyps.append(Hypothesis(entity=svc, fault=st.fault, score=0.0, confidence=0.0))
            i = len(hyps) - 1
        if i in gain:  # two causes mapped to one hypothesis: keep the stronger
            continue
        h = hyps[i]
        current = h.score if math.isfinite(h.score) else 0.0
        corrected = st.correction >= CORRECTION_SHARE and current >= CORRECTION_FLOOR * top
        if corrected:
            h.score = top * (1.0 + max_boost * st.strength)
        else:
            h.score = current + max_boost * st.strength * top
        gain[i] = st.strength
        if h.fault is None:
            h.fault = st.fault
        if corrected:
            h.evidence.append(Evidence(
                signal="memory", entity=svc, magnitude=float(st.correction),
                text=f"learned correction: in {len(st.support)} similar incident(s) {_service(leader)} looked first "
                     f"and people confirmed {svc} {st.fault or ''}".rstrip(),
            ))  # fmt: skip
        for m in st.support[:3]:
            h.evidence.append(Evidence(
                signal="memory", entity=svc, magnitude=float(m.similarity),
                text=f"seen before: {m.incident_id} (similarity {m.similarity:.2f}) confirmed {svc} {m.fault or ''}".rstrip()
                + (f"; {m.why}" if m.why else ""),
            ))  # fmt: skip
    conf = [max(float(h.confidence), 0.0) if math.isfinite(h.confidence) else 0.0 for h in hyps]
    floor = min((c for c in conf if c > 0), default=1e-6) * 1e-3
    new = [max(c, floor) * math.exp(LOGIT_GAIN * gain.get(i, 0.0)) for i, c in enumerate(conf)]
    norm = sum(new)
    for h, c in zip(hyps, new, strict=True):
        h.confidence = c / norm if norm > 0 else 0.0
    order = sorted(range(len(hyps)), key=lambda i: (-(hyps[i].score if math.isfinite(hyps[i].score) else -math.inf), i))
    out.hypotheses = [hyps[i] for i in order]
    out.method = f"{ranking.method}+memory"
    return out


def prioritise_steps(steps: Sequence[Step], successes: Iterable[tuple[str, str, int]]) -> list[Step]:
    """Return *steps* with, within the steps of each hypothesis (``Step.hypothesis``, else the
    action's target), those whose ``(action.name, action.target)`` worked before (in *successes*,
    ``(name, target, count)`` as :func:`aisre.memory.successful_actions` returns them) first,
    most successes first. Hypotheses keep the order the ranking gave them (memory reorders
    hypotheses only through :func:`with_memory`); steps are not renumbered."""
    count: Mapping[tuple[str, str], int] = {(str(n), str(t)): int(c) for n, t, c in successes}
    group: dict[str, int] = {}
    for s in steps:
        group.setdefault(s.hypothesis or s.action.target, len(group))
    ranked = sorted(range(len(steps)), key=lambda i: (group[steps[i].hypothesis or steps[i].action.target],
                                                      -count.get((steps[i].action.name, steps[i].action.target), 0), i))
    return [steps[i] for i in ranked]
