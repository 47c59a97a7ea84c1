"""Bounded remediation under policy, with a tamper-evident audit log.

Plan (:func:`plan`), decide (Cedar :class:`Policy`), carry out (:func:`remediate` through an
:class:`Executor`), record (:class:`AuditLog`). See docs/policy.md for the policy guide.
"""

from __future__ import annotations

from aisre.remediate.actions import (
    ACTION_GROUP,
    NO_LIMIT_RPS,
    TIER_WEIGHTS,
    ActionSpec,
    Target,
    adds_capacity_only,
    available_actions,
    blast_radius,
    get_action,
    inverse_action,
    register_action,
    resolve_target,
)
from aisre.remediate.audit import GENESIS, RECORD_KINDS, AuditLog, AuditRecord, canonical_json, format_records
from aisre.remediate.executors import DryRunExecutor, Executor, KubernetesExecutor, describe, get_executor
from aisre.remediate.planner import ALTERNATIVE_WEIGHT, FALLBACK, PLAYBOOK, PlanStep, RemediationPlan, decide, plan, plan_to_json, step_to_json
from aisre.remediate.policy import (
    DEFAULT_DENY,
    EVALUATION_ERROR,
    Policy,
    PolicyRequest,
    build_request,
    default_policy_text,
    default_schema_text,
    load_policy,
    policy_path,
)
from aisre.remediate.runner import (
    APPROVAL_TTL,
    HARM_BURN,
    STATUSES,
    UNDONE_WITHOUT_HELP,
    StepOutcome,
    approve,
    harm,
    reconcile,
    remediate,
    remediation_to_json,
)

__all__ = [
    "ACTION_GROUP",
    "ALTERNATIVE_WEIGHT",
    "APPROVAL_TTL",
    "ActionSpec",
    "AuditLog",
    "AuditRecord",
    "DEFAULT_DENY",
    "DryRunExecutor",
    "EVALUATION_ERROR",
    "Executor",
    "FALLBACK",
    "GENESIS",
    "HARM_BURN",
    "KubernetesExecutor",
    "NO_LIMIT_RPS",
    "PLAYBOOK",
    "PlanStep",
    "Policy",
    "PolicyRequest",
    "RECORD_KINDS",
    "RemediationPlan",
    "STATUSES",
    "StepOutcome",
    "TIER_WEIGHTS",
    "Target",
    "UNDONE_WITHOUT_HELP",
    "adds_capacity_only",
    "approve",
    "available_actions",
    "blast_radius",
    "build_request",
    "canonical_json",
    "decide",
    "default_policy_text",
    "default_schema_text",
    "describe",
    "format_records",
    "get_action",
    "get_executor",
    "harm",
    "inverse_action",
    "load_policy",
    "plan",
    "plan_to_json",
    "policy_path",
    "reconcile",
    "register_action",
    "remediate",
    "remediation_to_json",
    "resolve_target",
    "step_to_json",
]
