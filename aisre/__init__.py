"""aisre: an open-source AI SRE.

The public API. The model and the errors load eagerly; everything else loads on first use, so
``import aisre`` stays fast and optional parts cost nothing until called.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from aisre.case import (
    FAULT_KINDS,
    Action,
    Alert,
    Case,
    Change,
    Decision,
    Evidence,
    Hypothesis,
    Outcome,
    Plan,
    Ranking,
    Step,
    Topology,
    Truth,
    load_case,
    save_case,
    topology_from_spans,
)
from aisre.errors import (
    AisreError,
    DataError,
    ExecutorError,
    GitError,
    PolicyError,
    SchemaError,
    SpecError,
    StoreError,
    UsageError,
)

__version__ = "0.1.0"

_LAZY = {
    "available_rankers": ("aisre.rank", "available"),
    "get_ranker": ("aisre.rank", "get_ranker"),
    "load": ("aisre.datasets", "load"),
    "postmortem_facts": ("aisre.report", "postmortem_facts"),
    "run_demo": ("aisre.demo", "run_demo"),
    "run_scenario": ("aisre.simulator", "run_scenario"),
    "simulate": ("aisre.simulator", "simulate"),
    "write_postmortem": ("aisre.report", "write_postmortem"),
    "Workbench": ("aisre.widgets", "Workbench"),
    "Memory": ("aisre.memory", "Memory"),
}

__all__ = [
    "Action",
    "AisreError",
    "Alert",
    "Case",
    "Change",
    "DataError",
    "Decision",
    "Evidence",
    "ExecutorError",
    "FAULT_KINDS",
    "GitError",
    "Hypothesis",
    "Memory",
    "Outcome",
    "Plan",
    "PolicyError",
    "Ranking",
    "SchemaError",
    "SpecError",
    "Step",
    "StoreError",
    "Topology",
    "Truth",
    "UsageError",
    "Workbench",
    "available_rankers",
    "get_ranker",
    "load",
    "load_case",
    "postmortem_facts",
    "run_demo",
    "run_scenario",
    "save_case",
    "simulate",
    "topology_from_spans",
    "write_postmortem",
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'aisre' has no attribute {name!r}") from None
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
