"""The investigation workbench in JupyterLab: ipywidgets views over plotly figures.

``Workbench(case)`` composes them all; each view also works alone::

    from aisre.widgets import Workbench
    Workbench(case)            # incidents, hypotheses, causal graph, timeline, plan, similar

Views: :class:`IncidentList`, :class:`HypothesisTable`, :class:`CausalGraph` (with its
:class:`DetailPanel`), :class:`TimelineView`, :class:`PlanView`, :class:`SimilarIncidents`.
"""

from __future__ import annotations

from aisre.widgets.graph import (
    CausalGraph,
    DetailPanel,
    anomaly_scores,
    evidence_chain,
    layered_layout,
    node_of,
    service_graph,
    signal_deviations,
)
from aisre.widgets.hypotheses import HypothesisTable
from aisre.widgets.incidents import IncidentList
from aisre.widgets.plan import PlanView
from aisre.widgets.similar import SimilarIncidents, find_similar
from aisre.widgets.timeline import TimelineView
from aisre.widgets.workbench import Workbench

__all__ = [
    "CausalGraph",
    "DetailPanel",
    "HypothesisTable",
    "IncidentList",
    "PlanView",
    "SimilarIncidents",
    "TimelineView",
    "Workbench",
    "anomaly_scores",
    "evidence_chain",
    "find_similar",
    "layered_layout",
    "node_of",
    "service_graph",
    "signal_deviations",
]
