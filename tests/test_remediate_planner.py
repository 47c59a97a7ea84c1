"""The catalogue and the planner: which remedy for which fault, in which order, and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from aisre.case import Case, Change, Hypothesis, Ranking, Topology
from aisre.errors import SpecError, UsageError
from aisre.remediate import (
    ACTION_GROUP,
    ActionSpec,
    available_actions,
    blast_radius,
    get_action,
    plan,
    plan_to_json,
    register_action,
    resolve_target,
)

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_DB", raising=False)


def shop(**case_kw) -> Case:
    """frontend (critical) -> checkout -> cart -> redis; frontend -> cart; frontend -> ads."""
    t = Topology(source="given")
    t.add_node("frontend", tier="critical", replicas=3)
    t.add_node("checkout", tier="standard", replicas=2)
    t.add_node("cart", tier="standard", replicas=2, flags=["new-cart-ui"])
    t.add_node("ads", tier="best-effort", replicas=1)
    t.add_node("redis", kind="cache", tier="standard")
    t.add_edge("frontend", "checkout")
    t.add_edge("checkout", "cart")
    t.add_edge("frontend", "cart")
    t.add_edge("cart", "redis")
    t.add_edge("frontend", "ads")
    return Case("shop-1", topology=t, **case_kw)


def ranking(*hyps: tuple[str, str | None]) -> Ranking:
    return Ranking("fake", [Hypothesis(e, f, 1.0 - i / 10, 0.9 - i / 10) for i, (e, f) in enumerate(hyps)])


def names(p) -> list[tuple[str, str]]:
    return [(s.action.name, s.action.target) for s in p.steps]


def test_catalogue_has_the_six_actions():
    assert {"scale", "rollback", "restart", "toggle_flag", "shift_traffic", "rate_limit"} <= set(available_actions())


def test_blast_radius_counts_transitive_callers_weighted_by_tier():
    """cart is called by checkout and frontend: 2 (cart) + 2 (checkout) + 4 (frontend) = 8."""
    case = shop()
    radius, affected = blast_radius(case, resolve_target(case, "cart"))
    assert (radius, affected) == (8, ["cart", "checkout", "frontend"])
    assert blast_radius(case, resolve_target(case, "ads")) == (5, ["ads", "frontend"])
    assert blast_radius(case, resolve_target(case, "frontend")) == (4, ["frontend"])
    # an action disturbing a quarter of the footprint: ceil(8 / 4)
    assert blast_radius(case, resolve_target(case, "cart"), 0.25)[0] == 2


def test_each_action_has_inverse_effect_and_blast_radius():
    case = shop(changes=[Change("ch1", "cart", time=NOW - 60, revision="v7")])
    target = resolve_target(case, "cart")
    scale = get_action("scale").build(case, target)
    assert scale.params["replicas"] == 4 and scale.inverse == "scale cart back to 2 replicas" and scale.reversible
    roll = get_action("rollback").build(case, target)
    assert roll.inverse == "roll cart forward to revision v7" and roll.blast_radius == 8
    flag = get_action("toggle_flag").build(case, target)
    assert flag.params["flag"] == "new-cart-ui" and flag.params["enabled"] is False and flag.blast_radius == 4
    restart = get_action("restart").build(case, target)
    assert restart.inverse is None and not restart.reversible
    assert all(a.expected_effect for a in (scale, roll, flag, restart))


def test_preconditions_say_why_an_action_does_not_apply():
    case = shop()
    assert "no deploy or config change" in get_action("rollback").applies(case, resolve_target(case, "checkout"))
    assert "cache" in get_action("scale").applies(case, resolve_target(case, "redis"))
    assert "nothing calls frontend" in get_action("rate_limit").applies(case, resolve_target(case, "frontend"))
    assert "no other replica" in get_action("shift_traffic").applies(case, resolve_target(case, "ads-1"))
    with pytest.raises(SpecError, match="rollback does not apply"):
        get_action("rollback").build(case, resolve_target(case, "checkout"))


def test_instance_names_resolve_to_their_service():
    case = shop()
    t = resolve_target(case, "cart-7d9f8b6c4-x2x9z")
    assert (t.service, t.instance, t.replicas) == ("cart", "cart-7d9f8b6c4-x2x9z", 2)
    assert resolve_target(case, "cart-1").instance == "cart-1"
    assert resolve_target(case, "unknown").known is False


def test_deploy_fault_rolls_back_first():
    case = shop(changes=[Change("ch1", "checkout", time=NOW - 300, revision="v2")])
    p = plan(case, ranking(("checkout", "deploy")), now=NOW)
    assert names(p)[0] == ("rollback", "checkout")
    assert "first remedy for deploy" in p.steps[0].rationale


def test_config_event_rolls_back_first_and_flags_come_from_events():
    events = pd.DataFrame({"time": [NOW - 100], "entity": ["checkout"], "kind": ["config"], "reason": ["flag"],
                           "message": ["enabled fast-pay"], "attributes": ['{"flag": "fast-pay", "revision": "c9"}']})  # fmt: skip
    p = plan(shop(events=events), ranking(("checkout", "config")), now=NOW)
    assert names(p)[:2] == [("rollback", "checkout"), ("toggle_flag", "checkout")]
    assert p.steps[1].action.params["flag"] == "fast-pay"


@pytest.mark.parametrize("fault", ["cpu", "mem", "pool", "socket"])
def test_resource_faults_scale_first_then_restart_or_limit(fault):
    p = plan(shop(), ranking(("cart", fault)), now=NOW)
    assert names(p)[0] == ("scale", "cart")
    assert {"restart", "rate_limit"} & {n for n, _ in names(p)[1:]}


def test_crash_restarts_the_instance_first():
    p = plan(shop(), ranking(("cart-1", "crash")), now=NOW)
    assert names(p)[0] == ("restart", "cart-1")
    assert p.steps[0].action.blast_radius == 4  # half of cart's footprint: one of two replicas


def test_delay_on_an_instance_drains_it_first():
    p = plan(shop(), ranking(("checkout-1", "delay")), now=NOW)
    assert names(p)[0] == ("shift_traffic", "checkout-1")


def test_error_toggles_a_flag_before_rolling_back():
    case = shop(changes=[Change("ch1", "cart", time=NOW - 300, revision="v3")])
    p = plan(case, ranking(("cart", "error")), now=NOW)
    assert names(p)[:2] == [("toggle_flag", "cart"), ("rollback", "cart")]


def test_alternatives_prefer_reversible_and_small_blast_radius():
    """For cpu, after scaling: rate_limit (reversible) before restart (irreversible)."""
    p = plan(shop(), ranking(("cart", "cpu")), now=NOW)
    assert names(p) == [("scale", "cart"), ("rate_limit", "cart"), ("restart", "cart")]


def test_several_hypotheses_in_rank_order_without_duplicates():
    p = plan(shop(), ranking(("cart", "cpu"), ("checkout", "mem"), ("cart", "mem")), now=NOW)
    hyps = [s.hypothesis for s in p.steps]
    assert hyps == sorted(hyps, key=["cart", "checkout"].index)
    assert len(set(names(p))) == len(p.steps)
    assert [s.id for s in p.steps] == [f"s{i}" for i in range(1, len(p.steps) + 1)]


def test_abstained_ranking_gives_an_empty_plan_with_a_note():
    p = plan(shop(), Ranking("fake", abstained=True, reason="no anomaly"), now=NOW)
    assert p.steps == [] and "abstained" in p.notes[0]


def test_every_step_is_decided_and_the_json_contract_holds():
    case = shop(changes=[Change("ch1", "checkout", time=NOW - 300, revision="v2")])
    p = plan(case, ranking(("checkout", "deploy"), ("frontend", "cpu")), now=NOW, env="production")
    doc = json.loads(json.dumps(plan_to_json(p)))
    assert doc["steps"]
    for s in doc["steps"]:
        assert {"id", "action", "target", "decision", "policies", "reasons", "inverse"} <= set(s)
        assert s["decision"] in ("allow", "deny", "needs_approval") and s["policies"] and s["reasons"]
    by = {(s["action"], s["target"]): s for s in doc["steps"]}
    assert by[("rollback", "checkout")]["decision"] == "allow"
    assert by[("restart", "frontend")]["decision"] == "needs_approval"
    assert by[("restart", "frontend")]["inverse"] is None


def test_plan_prints_and_renders_html():
    p = plan(shop(), ranking(("cart", "cpu")), now=NOW)
    text = str(p)
    assert text.splitlines()[0] == "plan for shop-1 in production (dry run), policy default.cedar"
    assert "s1   scale         cart                     allow           permit-production-standard" in text
    assert "undo: scale cart back to 2 replicas" in text
    html = p._repr_html_()
    assert "<table>" in html and "permit-production-standard" in html and "needs_approval" in html


def test_entry_point_and_registered_actions(monkeypatch):
    spec = ActionSpec(
        name="flush_cache", summary="flush a cache", effect="stale entries go", reversible=False, fixes=("error",),
        precondition=lambda c, t: None, params=lambda c, t: {"service": t.service}, inverse=lambda t, p: None,
    )  # fmt: skip
    register_action(spec)
    assert get_action("flush_cache") is spec

    class EP:
        name, value = "from_plugin", "aisre.remediate.actions:_BUILTINS"

    import aisre.remediate.actions as mod

    monkeypatch.setattr(mod, "entry_points", lambda group: [EP()] if group == ACTION_GROUP else [])
    assert "from_plugin" in available_actions()
    with pytest.raises(UsageError, match="does not load to an ActionSpec"):
        get_action("from_plugin")
    with pytest.raises(UsageError, match="unknown action"):
        get_action("nope")
    mod._REGISTRY.pop("flush_cache")
    mod._REGISTRY.pop("from_plugin")


def test_no_remedy_for_a_hypothesis_below_the_confidence_floor():
    r = Ranking("fake", [Hypothesis("cart", "cpu", 1.0, 0.9), Hypothesis("checkout", "cpu", 0.1, 0.05)])
    p = plan(shop(), r, now=NOW)
    assert {s.hypothesis for s in p.steps} == {"cart"}
    assert any("checkout (suspect #2) has confidence 0.05 < 0.10" in n for n in p.notes)


def test_restarts_and_shifts_act_on_the_one_instance_the_evidence_names():
    """With other replicas serving, a service-level suspect whose evidence names one pod gets
    instance-level restarts and traffic shifts (which the default policy lets run alone)."""
    from aisre.case import Evidence

    case = shop()
    h = Hypothesis("cart", "delay", 1.0, 0.9, evidence=[Evidence("metric:latency-90", "cart"),
                                                        Evidence("metric:latency-90", "cart-1")])  # fmt: skip
    p = plan(case, Ranking("fake", [h]), now=NOW)
    assert names(p)[0] == ("shift_traffic", "cart-1") and p.steps[0].decision.decision == "allow"
    assert any("points at one instance, cart-1" in n for n in p.notes)
    two = Hypothesis("cart", "delay", 1.0, 0.9, evidence=[Evidence("m", "cart-1"), Evidence("m", "cart-2")])
    assert ("shift_traffic", "cart-1") not in names(plan(case, Ranking("fake", [two]), now=NOW))


def test_an_error_without_flag_or_deploy_gets_a_restart_first_and_with_a_deploy_a_rollback():
    case = shop()
    p = plan(case, ranking(("checkout", "error")), now=NOW)
    assert names(p)[0] == ("restart", "checkout") and any("restart proposed first" in n for n in p.notes)
    case = shop(changes=[Change("ch1", "checkout", time=NOW - 300, revision="v2")])
    assert names(plan(case, ranking(("checkout", "error")), now=NOW))[0] == ("rollback", "checkout")


def test_an_abstaining_ranking_with_suspects_proposes_only_steps_for_a_person():
    r = Ranking("fake", [Hypothesis("cart", "cpu", 1.0, 0.95)], abstained=True, reason="weak signal")
    p = plan(shop(), r, now=NOW)
    assert p.steps and all(s.decision.decision == "needs_approval" for s in p.steps)
    assert all("approval-low-confidence" in s.decision.policies for s in p.steps)
