"""The Cedar policy: the default file's rules, where policy files come from, and failures deny."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from aisre.case import Action, Case, Change, Step, Topology
from aisre.errors import PolicyError
from aisre.remediate import (
    DEFAULT_DENY,
    EVALUATION_ERROR,
    AuditLog,
    PlanStep,
    Policy,
    build_request,
    decide,
    default_policy_text,
    get_action,
    inverse_action,
    load_policy,
    policy_path,
    resolve_target,
)

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC).timestamp()  # a Wednesday, outside any freeze
FREEZE = datetime(2026, 12, 28, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_DB", raising=False)
    return tmp_path / "home"


@pytest.fixture
def case() -> Case:
    t = Topology()
    t.add_node("frontend", tier="critical", replicas=3)
    t.add_node("checkout", tier="standard", replicas=2)
    t.add_node("cart", tier="standard", replicas=2)
    t.add_node("ads", tier="best-effort", replicas=1)
    t.add_edge("frontend", "checkout")
    t.add_edge("frontend", "cart")
    t.add_edge("checkout", "cart")
    t.add_edge("frontend", "ads")
    return Case("c1", topology=t)


def step_for(case: Case, name: str, entity: str, confidence: float = 0.9, **params) -> PlanStep:
    """A planner step for *name* on *entity*, from a hypothesis of the given confidence."""
    action = get_action(name).build(case, resolve_target(case, entity), **params)
    return PlanStep("s1", action, hypothesis=entity, confidence=confidence)


def verdict(policy: Policy, case: Case, step: Step, **kw):
    args = {"env": "production", "now": NOW, "dry_run": False, "dry_run_passed": True}
    args.update(kw)
    return policy.decide(build_request(case, step, **args))


def test_default_policy_allows_a_reversible_small_change_and_names_the_permit(case):
    """Scaling a standard service is allowed, and the decision names the permitting policy."""
    d = verdict(load_policy(), case, step_for(case, "scale", "cart"))
    assert d.decision == "allow"
    assert d.policies == ["permit-production-standard"]
    assert d.reasons and "standard" in d.reasons[0]


def test_tier_restricts_actions_in_production_but_not_in_staging(case):
    """A policy that permits nothing on critical services in production denies by default,
    naming the service and tier; the packaged one's non-production permit still allows."""
    text = default_policy_text().replace(
        'when { context.env == "production" && resource.tier == "critical" };', 'when { false };'
    )
    step = step_for(case, "scale", "frontend")
    d = verdict(Policy(text), case, step)
    assert d.decision == "deny" and d.policies == [DEFAULT_DENY]
    assert "critical" in d.reasons[0] and "frontend" in d.reasons[0]
    assert verdict(Policy(text), case, step, env="staging").decision == "allow"


def test_max_scale_factor(case):
    """Tripling is allowed, quadrupling is not."""
    pol = load_policy()
    assert verdict(pol, case, step_for(case, "scale", "cart", replicas=6)).decision == "allow"
    d = verdict(pol, case, step_for(case, "scale", "cart", replicas=8))
    assert d.decision == "deny" and d.policies == ["max-scale-factor"]


def test_irreversible_action_needs_approval_and_approval_allows_it(case):
    pol = load_policy()
    step = step_for(case, "restart", "cart")
    d = verdict(pol, case, step)
    assert d.decision == "needs_approval" and d.policies == ["approval-irreversible"]
    assert verdict(pol, case, step, approved=True).decision == "allow"


def test_blast_radius_above_threshold_needs_approval_but_scaling_up_is_exempt(case):
    pol = load_policy()
    step = step_for(case, "shift_traffic", "cart-1")
    step.action.blast_radius = 25
    d = verdict(pol, case, step)
    assert d.decision == "needs_approval" and d.policies == ["approval-blast-radius"]
    step.action.blast_radius = 24
    assert verdict(pol, case, step).decision == "allow"
    up = step_for(case, "scale", "cart")
    up.action.blast_radius = 40
    assert verdict(pol, case, up).decision == "allow"
    down = step_for(case, "scale", "cart", replicas=1)
    down.action.blast_radius = 40
    assert verdict(pol, case, down).policies == ["approval-blast-radius"]


def _deployed(case: Case, age: float, service: str = "frontend") -> Case:
    case.changes = [Change("ch1", service, time=NOW - age, revision="v2")]
    case.detected_at = NOW
    return case


@pytest.mark.parametrize(("service", "tier"), [("frontend", "critical"), ("checkout", "standard")])
def test_rolling_back_a_recent_change_is_allowed_whatever_its_blast_radius(case, service, tier):
    """The safest remedy goes ahead alone: a rollback of a deploy made within the hour before
    detection, even on a critical service with a large footprint; an old deploy's rollback is
    judged like any other reversible change, and a freeze still denies it."""
    pol = load_policy()
    step = step_for(_deployed(case, 600, service), "rollback", service)
    step.action.blast_radius = 60
    d = verdict(pol, case, step)
    assert d.decision == "allow" and d.policies == [f"permit-production-{tier}"]
    old = step_for(_deployed(case, 7200, service), "rollback", service)
    old.action.blast_radius = 60
    assert verdict(pol, case, old).policies == ["approval-blast-radius"]
    assert verdict(pol, case, step, now=FREEZE).policies == ["freeze-year-end-2026"]


def test_the_rollback_sees_the_change_age_relative_to_detection(case):
    req = build_request(_deployed(case, 600), step_for(case, "rollback", "frontend"), env="production", now=NOW + 5000,
                        dry_run=False)  # fmt: skip
    assert req.context["change_age_s"] == 600
    assert build_request(case, step_for(case, "scale", "cart"), env="production", now=NOW, dry_run=False).context["change_age_s"] == -1
    events = pd.DataFrame({"time": [NOW - 30], "entity": ["cart"], "kind": ["config"], "reason": ["ConfigMapUpdated"],
                           "message": ["x"], "attributes": ['{"key": "threads"}']})  # fmt: skip
    case.events = events
    req = build_request(case, step_for(case, "rollback", "cart"), env="production", now=NOW, dry_run=False)
    assert req.context["change_age_s"] == 30


def test_a_single_instance_restart_is_allowed_when_other_replicas_carry_the_load(case):
    pol = load_policy()
    one = step_for(case, "restart", "cart-1")
    assert one.action.target == "cart-1"
    d = verdict(pol, case, one)
    assert d.decision == "allow" and d.policies == ["permit-production-standard"]
    rolling = step_for(case, "restart", "cart")
    assert verdict(pol, case, rolling).policies == ["approval-irreversible"]
    only = step_for(case, "restart", "ads-1")  # ads has one replica: restarting it is an outage
    assert verdict(pol, case, only).policies == ["approval-irreversible"]


def test_rate_limits_on_critical_services_need_approval_standard_ones_do_not(case):
    pol = load_policy()
    step = step_for(case, "scale", "frontend")  # nothing calls frontend: the catalogue would not propose it
    step.action.name = "rate_limit"
    d = verdict(pol, case, step)
    assert d.decision == "needs_approval" and d.policies == ["approval-rate-limit-critical"]
    assert verdict(pol, case, step_for(case, "rate_limit", "cart")).decision == "allow"


def test_low_confidence_or_an_abstained_ranking_needs_a_person(case):
    pol = load_policy()
    d = verdict(pol, case, step_for(case, "scale", "cart", confidence=0.49))
    assert d.decision == "needs_approval" and d.policies == ["approval-low-confidence"]
    assert verdict(pol, case, step_for(case, "scale", "cart", confidence=0.5)).decision == "allow"
    step = step_for(case, "scale", "cart", confidence=0.99)
    step.abstained = True
    assert verdict(pol, case, step).policies == ["approval-low-confidence"]
    # a hand-made step says nothing about confidence: it counts as none
    plain = Step("s1", step.action)
    assert verdict(pol, case, plain).policies == ["approval-low-confidence"]


def test_undoing_a_harmful_change_is_its_own_action_exempt_from_limits_but_not_freezes(case):
    pol, log = load_policy(), AuditLog()
    limit = step_for(case, "rate_limit", "cart", confidence=0.3)
    inv = inverse_action(limit.action)
    assert inv.name == "rate_limit" and inv.params["remove"] is True and inv.params["reverts"] == "rate_limit"
    undo = PlanStep("s1-revert", inv, hypothesis="cart", confidence=0.3, reverts="s1")
    assert build_request(case, undo, env="production", now=NOW, dry_run=False).action == "revert"
    for t in (NOW - 300, NOW - 200, NOW - 100):
        log.log("start", time=t, target="cart", action="scale", params={"service": "cart"}, dry_run=False)
    d = decide(case, undo, pol, env="production", now=NOW, dry_run=False, dry_run_passed=True, audit=log)
    assert d.decision == "allow" and d.policies == ["permit-revert"]
    assert decide(case, undo, pol, env="production", now=NOW, dry_run=False, dry_run_passed=False, audit=log).policies == ["dry-run-first"]
    assert verdict(pol, case, undo, now=FREEZE).policies == ["freeze-year-end-2026"]


def test_freeze_window_denies_real_changes_but_not_dry_runs(case):
    pol = load_policy()
    step = step_for(case, "scale", "cart")
    d = verdict(pol, case, step, now=FREEZE)
    assert d.decision == "deny" and d.policies == ["freeze-year-end-2026"]
    assert verdict(pol, case, step, now=FREEZE, dry_run=True).decision == "allow"
    # a freeze is not something an approval lifts
    assert verdict(pol, case, step, now=FREEZE, approved=True).decision == "deny"


def test_dry_run_must_pass_before_execution(case):
    d = verdict(load_policy(), case, step_for(case, "scale", "cart"), dry_run_passed=False)
    assert d.decision == "deny" and d.policies == ["dry-run-first"]


def test_rate_limit_counts_earlier_executed_actions_from_the_audit_log(case):
    """Three executions on cart in the last hour deny a fourth; older ones do not count."""
    pol, log = load_policy(), AuditLog()
    step = step_for(case, "scale", "cart")
    for t in (NOW - 7200, NOW - 1800, NOW - 600):
        log.log("start", time=t, target="cart", action="scale", params={"service": "cart"}, dry_run=False)
    log.log("start", time=NOW - 60, target="cart", action="scale", params={"service": "cart"}, dry_run=True)
    assert decide(case, step, pol, env="production", now=NOW, dry_run=False, dry_run_passed=True, audit=log).decision == "allow"
    log.log("start", time=NOW - 30, target="cart", action="scale", params={"service": "cart"}, dry_run=False)
    d = decide(case, step, pol, env="production", now=NOW, dry_run=False, dry_run_passed=True, audit=log)
    assert d.decision == "deny" and d.policies == ["rate-limit-per-service"]


def test_critical_service_allows_one_action_per_hour(case):
    pol, log = load_policy(), AuditLog()
    step = step_for(case, "scale", "frontend")
    assert decide(case, step, pol, env="production", now=NOW, dry_run=False, dry_run_passed=True, audit=log).decision == "allow"
    log.log("start", time=NOW - 100, target="frontend", params={"service": "frontend"}, dry_run=False)
    d = decide(case, step, pol, env="production", now=NOW, dry_run=False, dry_run_passed=True, audit=log)
    assert d.policies == ["rate-limit-critical"]


def test_unknown_topology_needs_approval_in_production():
    case = Case("c2")
    step = step_for(case, "scale", "mystery")
    d = verdict(load_policy(), case, step)
    assert d.decision == "needs_approval" and d.policies == ["approval-unknown-topology"]


def test_evaluation_error_denies_even_when_a_permit_matches(case):
    """An overflow inside a policy is an evaluation error: the request is denied, never allowed."""
    text = default_policy_text() + (
        '\n@id("overflow")\nforbid (principal, action, resource) '
        "when { context.blast_radius + 9223372036854775807 + 1 > 0 };\n"
    )
    d = verdict(Policy(text), case, step_for(case, "scale", "cart"))
    assert d.decision == "deny" and d.policies == [EVALUATION_ERROR]
    assert "overflow" in " ".join(d.reasons).lower()


def test_engine_failure_denies(case, monkeypatch):
    import cedarpy

    def boom(*a, **k):
        raise RuntimeError("engine exploded")

    pol = load_policy()
    monkeypatch.setattr(cedarpy, "is_authorized", boom)
    d = verdict(pol, case, step_for(case, "scale", "cart"))
    assert d.decision == "deny" and d.policies == [EVALUATION_ERROR] and "engine exploded" in d.reasons[0]


def test_action_missing_from_schema_denies(case):
    """A plugin action the schema does not declare cannot be permitted by anything."""
    step = Step("s1", Action("reboot_host", "cart", params={"service": "cart"}))
    d = verdict(Policy('@id("all")\npermit (principal, action, resource);'), case, step)
    assert d.decision == "deny" and d.policies == [EVALUATION_ERROR]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("permit (principal, action, resource);", "no @id"),
        ('@id("a")\npermit (principal, action, resource) when { context.nope };', "schema"),
        ('@id("a")\npermit (principal, action, resource) when {', "parse"),
        ('@id("a")\npermit (principal, action, resource);\n@id("a")\nforbid (principal, action, resource);', "duplicate"),
    ],
)
def test_bad_policy_text_is_a_policy_error(text, needle):
    with pytest.raises(PolicyError, match=needle):
        Policy(text)


def test_policy_file_precedence(home, tmp_path):
    """--policy FILE wins; else $AISRE_HOME/policy.cedar; else the packaged default."""
    assert policy_path() is None and load_policy().source == "default.cedar"
    home.mkdir(parents=True, exist_ok=True)
    (home / "policy.cedar").write_text('@id("home-all")\npermit (principal, action, resource);\n')
    assert load_policy().source == str(home / "policy.cedar")
    other = tmp_path / "mine.cedar"
    other.write_text('@id("mine")\nforbid (principal, action, resource);\n')
    assert load_policy(other).source == str(other)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.cedar")


def test_every_example_in_the_policy_guide_validates():
    """docs/policy.md's Cedar examples parse and fit the schema, each alone and with the default."""
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[1] / "docs" / "policy.md"
    if not guide.exists():
        pytest.skip("docs/policy.md is not in this tree")
    blocks = re.findall(r"```cedar\n(.*?)```", guide.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        Policy(block)
        Policy(default_policy_text() + "\n" + block)
