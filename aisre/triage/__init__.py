"""Alerts to incidents: deduplicate, suppress noise, group by time and topology, rank by impact.

The pipeline, vectorised with pandas/numpy so 100,000 alerts take a few seconds:

1. **Deduplicate.** An alert's identity is its fingerprint plus its label set (two different
   label sets that share a fingerprint stay apart). Notifications of one identity with the same
   ``starts_at`` are one *episode* (Alertmanager repeats a firing alert with an unchanged start
   and sends a resolved copy at the end); the episode is resolved when any copy is.
2. **Suppress noise** before grouping, so noise never glues incidents together: alerts labelled
   severity ``info``/``none``, and *flapping* identities (at least ``flap_count`` episodes that
   fired and resolved within ``flap_window`` seconds).
3. **Group by service and time.** Episodes on one service form a *burst* while each starts
   within ``window`` seconds of the end of an earlier one (an unresolved alert stays open until
   ``now``, so a late alert joins the open burst).
4. **Group by topology.** Faults spread from a dependency to its callers, so a burst is
   explained by a burst on a service it depends on (a pure path of ``calls``/``reads``/
   ``writes``/``publishes``/``runs_on`` edges, at most ``max_hops`` long) that is active within
   ``window`` of its onset. A burst nothing explains opens an incident (a *root*); a burst with
   saturation, resource or crash alerts of its own is a root unless its dependency started
   alerting within ``window`` before it. Unexplained bursts of symptoms on the direct callers of
   one quiet dependency, started as close together as two callers one hop from one cause do,
   share that *silent cause*. Without a topology, only step 3 groups.
5. **Attribute alerts on shared services.** A service that several simultaneous faults reach
   (a hub calling everything) fires one burst that no single explanation fits, so each of its
   alerts goes with one incident, chosen by timing. The stream's own propagation is measured on
   the alerts only one incident could explain: the delay from a dependency's first alert to a
   caller's alert per hop (the first hop from a fault's origin apart), how tightly one fault's
   alerts on one service fire together, how often trouble shows one hop up, and how long an
   SLO burn lags its fault (each leaning on a prior while the measurements are few). A fault
   reaches a service once: each candidate incident arrives at most once, as likely as the hop
   delay from its nearest alerting dependency says, and its other alerts there follow soon
   after; a later fault on a service already alerting is masked (its alerts already fire). The
   arrivals that explain the burst best win (every configuration for small bursts, coordinate
   ascent for large). A caller's error alert looks only at dependencies whose alerts fail
   requests; services are visited from the deepest dependency up; an SLO alert goes with the
   incident whose arrival on the service best explains it by the SLO lag. Siblings that only
   share a caller are never connected, so unrelated simultaneous faults stay apart.
6. **Suppress symptoms**: a latency or error-rate alert on a service whose dependency in the
   same incident has a saturation, resource or crash alert. SLO-burn alerts are never
   suppressed: they are the user impact.
7. **Rank** incidents by user impact (:func:`impact_score`) and explain every grouping and
   suppression in words.

The package, one job per module, in pipeline order:

* :mod:`~aisre.triage.kinds`: what kind of alert a name describes, and severity order;
* :mod:`~aisre.triage.model`: the results (:class:`Incident`, :class:`Suppressed`,
  :class:`TriageResult`) and their terminal and notebook views;
* :mod:`~aisre.triage.dedup`: notifications to episodes (step 1);
* :mod:`~aisre.triage.suppression`: noise (step 2) and symptoms (step 6);
* :mod:`~aisre.triage.topology`: dependency pairs, entry services, service depth;
* :mod:`~aisre.triage.grouping`: bursts and their links by time and topology (steps 3 and 4);
* :mod:`~aisre.triage.propagation`: the priors and the propagation measured on the stream;
* :mod:`~aisre.triage.hub`: the timing split of alerts on shared services (step 5);
* :mod:`~aisre.triage.ranking` and :mod:`~aisre.triage.explain`: incidents ranked by impact,
  and the words (step 7);
* :mod:`~aisre.triage.pipeline`: :func:`triage`, the steps in order.
"""

from __future__ import annotations

from aisre.triage.kinds import (
    CAUSE_PATTERN,
    ERROR_PATTERN,
    SEVERITY_RANK,
    SLO_PATTERN,
    SYMPTOM_PATTERN,
    alert_kind,
)
from aisre.triage.model import Incident, Suppressed, TriageResult
from aisre.triage.pipeline import triage
from aisre.triage.propagation import (
    PRIOR_HOP_DELAY,
    PRIOR_HOP_SPREAD,
    PRIOR_SLO_LAG,
    PRIOR_WAVE,
)
from aisre.triage.ranking import impact_score

__all__ = [
    "CAUSE_PATTERN",
    "ERROR_PATTERN",
    "PRIOR_HOP_DELAY",
    "PRIOR_HOP_SPREAD",
    "PRIOR_SLO_LAG",
    "PRIOR_WAVE",
    "SEVERITY_RANK",
    "SLO_PATTERN",
    "SYMPTOM_PATTERN",
    "Incident",
    "Suppressed",
    "TriageResult",
    "alert_kind",
    "impact_score",
    "triage",
]
