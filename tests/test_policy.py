"""The Cedar policy: the default file's rules, where policy files come from, and failures deny."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aisre.case import Action, Case, Step, Topology
from aisre.errors import PolicyError
from aisre.remediate import (
    DEFAULT_DENY,
    EVALUATION_ERROR,
    AuditLog,
    Policy,
    build_request,
    decide,
    default_policy_text,
    get_action,
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


def step_for(case: Case, name: str, entity: str, **params) -> Step:
    return Step("s1", get_action(name).build(case, resolve_target(case, entity), **params))


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
    """Rate-limiting a critical service is not permitted in production; in staging it is."""
    pol = load_policy()
    step = step_for(case, "scale", "frontend")
    step.action.name = "rate_limit"
    d = verdict(pol, case, step)
    assert d.decision == "deny" and d.policies == [DEFAULT_DENY]
    assert "critical" in d.reasons[0] and "frontend" in d.reasons[0]
    assert verdict(pol, case, step, env="staging").decision == "allow"


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


def test_blast_radius_above_threshold_needs_approval(case):
    pol = load_policy()
    step = step_for(case, "scale", "cart")
    step.action.blast_radius = 13
    d = verdict(pol, case, step)
    assert d.decision == "needs_approval" and d.policies == ["approval-blast-radius"]
    step.action.blast_radius = 12
    assert verdict(pol, case, step).decision == "allow"


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
    step = Step("s1", get_action("scale").build(case, resolve_target(case, "mystery")))
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
