"""Remediation policy in Cedar: load it, validate it, decide allow / deny / needs_approval.

A :class:`Policy` holds a Cedar policy set and the schema it is validated against (the packaged
``schema.cedarschema``). Every policy in the set must carry an ``@id("...")`` annotation: it is the
id a :class:`~aisre.case.Decision` names; an optional ``@reason("...")`` is the sentence shown
with it. Requests are built by :func:`build_request` from a step, its target and the context
(environment, time, dry run, approval, actions already taken).

Three outcomes from a two-valued engine: a request Cedar allows is ``allow``; one it denies but
would allow if ``context.approved`` were true is ``needs_approval``; anything else, including any
evaluation error, a request that does not fit the schema, or an engine failure, is ``deny``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import cedarpy

from aisre.case import Case, Decision, Step
from aisre.errors import PolicyError
from aisre.remediate.actions import resolve_target

__all__ = [
    "DEFAULT_DENY",
    "EVALUATION_ERROR",
    "Policy",
    "PolicyRequest",
    "build_request",
    "default_policy_text",
    "default_schema_text",
    "load_policy",
    "policy_path",
]

DEFAULT_DENY = "default-deny"
"""The id a Decision names when no policy permits the request (Cedar's implicit deny)."""

EVALUATION_ERROR = "evaluation-error"
"""The id a Decision names when evaluation failed; such a request is always denied."""

_NAMESPACE = "Aisre"


def default_policy_text() -> str:
    """Return the text of the packaged ``default.cedar``."""
    return files("aisre.remediate").joinpath("default.cedar").read_text()


def default_schema_text() -> str:
    """Return the text of the packaged ``schema.cedarschema``."""
    return files("aisre.remediate").joinpath("schema.cedarschema").read_text()


def policy_path(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the policy file in force: *path*, else ``$AISRE_HOME/policy.cedar`` when it exists,
    else ``None`` (the packaged default)."""
    if path is not None:
        return Path(path)
    home = os.environ.get("AISRE_HOME")
    if home and (Path(home) / "policy.cedar").is_file():
        return Path(home) / "policy.cedar"
    return None


def load_policy(path: str | os.PathLike[str] | None = None, *, schema: str | os.PathLike[str] | None = None) -> Policy:
    """Return the :class:`Policy` from *path* (see :func:`policy_path` for the default).

    *schema* names a schema file to use instead of the packaged one (needed when a plugin adds
    actions); ``$AISRE_HOME/schema.cedarschema`` is used when it exists.

    Raises:
        PolicyError: when a file cannot be read, does not parse, fails schema validation or has a
            policy without an ``@id``.
    """
    where = policy_path(path)
    text = _read(where) if where is not None else default_policy_text()
    home = os.environ.get("AISRE_HOME")
    if schema is None and home and (Path(home) / "schema.cedarschema").is_file():
        schema = Path(home) / "schema.cedarschema"
    schema_text = _read(Path(schema)) if schema is not None else default_schema_text()
    return Policy(text, schema=schema_text, source=str(where) if where else "default.cedar")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not UTF-8 text") from exc


@dataclass(frozen=True)
class PolicyRequest:
    """One question to policy: may *actor* do *action* to *service* in this *context*?"""

    actor: str
    action: str
    service: str
    tier: str
    kind: str
    replicas: int
    context: Mapping[str, Any] = field(default_factory=dict)
    actor_kind: str = "agent"

    def with_context(self, **changes: Any) -> PolicyRequest:
        """Return a copy with *changes* applied to the context."""
        return replace(self, context={**self.context, **changes})


def _datetime(now: float) -> str:
    dt = datetime.fromtimestamp(now, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def build_request(
    case: Case,
    step: Step,
    *,
    env: str,
    now: float,
    dry_run: bool,
    dry_run_passed: bool = False,
    approved: bool = False,
    recent_actions: int = 0,
    actor: str = "aisre",
    actor_kind: str = "agent",
) -> PolicyRequest:
    """Return the :class:`PolicyRequest` for carrying out (or dry-running) *step* of *case*.

    A step with a ``reverts`` attribute (the runner's undo of a harmful change) is asked as the
    Cedar action ``revert``; a step with ``abstained`` set has confidence 0 (see the schema for
    every context attribute)."""
    action = step.action
    params = action.params or {}
    target = resolve_target(case, str(params.get("service") or action.target))
    scale_pct = 100
    if action.name == "scale":
        before = params.get("from_replicas", target.replicas)
        after = params.get("replicas", before)
        try:
            # Scaling to zero or from zero is a factor policy cannot judge: make it huge.
            scale_pct = int(math.ceil(float(after) * 100 / float(before))) if float(before) > 0 else 10**6
        except (TypeError, ValueError):
            scale_pct = 10**6
    confidence = getattr(step, "confidence", None)
    if getattr(step, "abstained", False):
        confidence = 0.0  # a ranker that abstained vouches for none of its hypotheses
    fault = getattr(step, "fault", None)
    reverts = getattr(step, "reverts", None)
    change_age = -1
    if action.name == "rollback" and not params.get("roll_forward"):
        try:
            changed = float(params["change_time"])
            ref = float(case.detected_at) if case.detected_at is not None else float(now)
            change_age = int(max(0.0, ref - changed)) if math.isfinite(changed) and math.isfinite(ref) else -1
        except (KeyError, TypeError, ValueError):
            change_age = -1
    context = {
        "env": str(env),
        "now": now,
        "dry_run": bool(dry_run),
        "dry_run_passed": bool(dry_run_passed),
        "approved": bool(approved),
        "reversible": bool(action.reversible),
        "blast_radius": int(action.blast_radius),
        "blast_radius_known": bool(params.get("blast_radius_known", target.known)),
        "scale_factor_pct": scale_pct,
        "recent_actions": int(recent_actions),
        "confidence_pct": int(round(100 * float(confidence))) if confidence is not None else 0,
        "fault": str(fault or "unknown"),
        "change_age_s": change_age,
        "instance_level": _instance_level(case, action.target, target.service),
    }
    return PolicyRequest(
        actor=actor,
        action="revert" if reverts else action.name,
        service=target.service,
        tier=target.tier,
        kind=target.kind,
        replicas=target.replicas,
        context=context,
        actor_kind=actor_kind,
    )


def _instance_level(case: Case, entity: str, service: str) -> bool:
    """Return whether *entity* names one instance of *service* (not the service itself)."""
    if entity == service:
        return False
    t = resolve_target(case, str(entity))
    return t.instance is not None and t.service == service


class Policy:
    """A validated Cedar policy set that decides remediation requests.

    Raises (on construction):
        PolicyError: when the text does not parse, fails validation against *schema*, or has a
            policy without an ``@id``; the message names the problem.
    """

    def __init__(self, text: str, *, schema: str | None = None, source: str = "<policy>") -> None:
        self.text = text
        self.schema = default_schema_text() if schema is None else schema
        self.source = source
        try:
            doc = json.loads(cedarpy.policies_to_json_str(text))
        except Exception as exc:  # cedarpy raises ValueError and others on a parse failure
            raise PolicyError(f"{source}: the policy does not parse: {exc}") from exc
        static = doc.get("staticPolicies", {})
        self.ids: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        for n, (pid, body) in enumerate(static.items(), 1):
            notes = body.get("annotations") or {}
            if not notes.get("id"):
                raise PolicyError(f"{source}: policy #{n} ({body.get('effect')}) has no @id(\"...\") annotation")
            self.ids[pid] = str(notes["id"])
            self.reasons[str(notes["id"])] = str(notes.get("reason") or notes["id"])
        dupes = sorted({i for i in self.ids.values() if list(self.ids.values()).count(i) > 1})
        if dupes:
            raise PolicyError(f"{source}: duplicate policy ids {', '.join(dupes)}")
        try:
            result = cedarpy.validate_policies(text, self.schema)
        except Exception as exc:
            raise PolicyError(f"{source}: the policy or its schema does not parse: {exc}") from exc
        if not result.validation_passed:
            first = "; ".join(str(e) for e in result.errors[:3])
            raise PolicyError(f"{source}: the policy does not fit the schema: {first}")
        try:
            # Pre-parsed handles: parsing the schema dominates the cost of one evaluation.
            self._policies = cedarpy.PolicySet.from_str(text)
            self._schema = cedarpy.Schema.from_str(self.schema)
        except Exception as exc:
            raise PolicyError(f"{source}: the policy or its schema does not parse: {exc}") from exc

    def __repr__(self) -> str:
        return f"Policy(source={self.source!r}, policies={len(self.ids)})"

    def decide(self, request: PolicyRequest) -> Decision:
        """Return the :class:`Decision` for *request*; never raises (any failure denies)."""
        allowed, matched, errors = self._evaluate(request)
        if errors:
            return Decision("deny", [EVALUATION_ERROR], [f"policy evaluation failed, so the step is denied: {e}" for e in errors])
        if allowed:
            return Decision("allow", matched, [self.reasons.get(m, m) for m in matched])
        if not request.context.get("approved"):
            allowed2, _m2, errors2 = self._evaluate(request.with_context(approved=True))
            if allowed2 and not errors2:
                return Decision("needs_approval", matched, [self.reasons.get(m, m) for m in matched])
        if matched:
            return Decision("deny", matched, [self.reasons.get(m, m) for m in matched])
        return Decision(
            "deny",
            [DEFAULT_DENY],
            [f"no policy permits {request.action} on the {request.tier} service {request.service} in {request.context.get('env')}"],
        )

    def _evaluate(self, request: PolicyRequest) -> tuple[bool, list[str], list[str]]:
        """Return ``(allowed, matched policy ids, errors)``; an engine failure is an error."""
        try:
            context = dict(request.context)
            context["now"] = {"__extn": {"fn": "datetime", "arg": _datetime(float(context["now"]))}}
            dt = datetime.fromtimestamp(float(request.context["now"]), tz=UTC)
            context.setdefault("weekday", dt.weekday())
            context.setdefault("hour", dt.hour)
            entities = [
                {"uid": {"type": f"{_NAMESPACE}::Agent", "id": request.actor}, "attrs": {"kind": request.actor_kind}, "parents": []},
                {
                    "uid": {"type": f"{_NAMESPACE}::Service", "id": request.service},
                    "attrs": {"tier": request.tier, "kind": request.kind, "replicas": int(request.replicas)},
                    "parents": [],
                },
            ]
            cedar_request = {
                "principal": {"type": f"{_NAMESPACE}::Agent", "id": request.actor},
                "action": {"type": f"{_NAMESPACE}::Action", "id": request.action},
                "resource": {"type": f"{_NAMESPACE}::Service", "id": request.service},
                "context": context,
            }
            result = cedarpy.is_authorized(cedar_request, self._policies, entities, schema=self._schema)
        except Exception as exc:  # an engine failure of any kind must deny, never crash
            return False, [], [f"{type(exc).__name__}: {exc}"]
        diag = result.diagnostics
        errors = list(diag.errors)
        if result.decision == cedarpy.Decision.NoDecision and not errors:
            errors = ["the engine reached no decision"]
        matched = [self.ids.get(p, p) for p in diag.reasons]
        return result.allowed and not errors, sorted(matched), errors
