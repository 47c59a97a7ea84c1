"""The preventive change-risk gate: score a change before it deploys.

``run_gate(repo, base, head)`` reads the change's git history features, maps files to services
(ownership globs or CODEOWNERS), weighs the blast radius in the dependency graph and the
services' incident history, and returns a calibrated score, plain-language reasons and a
decision (allow, canary, needs approval, block during a freeze). ``train`` and ``evaluate`` fit
and measure the change model on ApacheJIT-format data. See ``docs/gate-ci.md``.
"""

from __future__ import annotations

from aisre.gate.blast import TIER_WEIGHTS, BlastRadius, blast_radius
from aisre.gate.features import KAMEI_FEATURES, ChangeFeatures, change_features
from aisre.gate.gate import (
    DECISIONS,
    DEFAULT_THRESHOLDS,
    EXIT_CODES,
    FreezeWindow,
    GatePolicy,
    GateResult,
    decide,
    load_policy,
    load_topology_file,
    run_gate,
)
from aisre.gate.history import HistoryFeatures, history_features, record_outcome
from aisre.gate.model import JITModel, combine, evaluate, fit_jit, load_model, read_jit_csv, train
from aisre.gate.owners import Ownership, load_ownership

__all__ = [
    "BlastRadius",
    "ChangeFeatures",
    "DECISIONS",
    "DEFAULT_THRESHOLDS",
    "EXIT_CODES",
    "FreezeWindow",
    "GatePolicy",
    "GateResult",
    "HistoryFeatures",
    "JITModel",
    "KAMEI_FEATURES",
    "Ownership",
    "TIER_WEIGHTS",
    "blast_radius",
    "change_features",
    "combine",
    "decide",
    "evaluate",
    "fit_jit",
    "history_features",
    "load_model",
    "load_ownership",
    "load_policy",
    "load_topology_file",
    "read_jit_csv",
    "record_outcome",
    "run_gate",
    "train",
]
