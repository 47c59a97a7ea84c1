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


def test_several_hypotheses_by_likely_use_without_duplicates():
    """Steps go by confidence x remedy weight: each suspect's direct remedies (cart 0.9, checkout
    0.8, cart again 0.7) before the alternatives (0.45, 0.4); a remedy proposed once is not again."""
    p = plan(shop(), ranking(("cart", "cpu"), ("checkout", "mem"), ("cart", "mem")), now=NOW)
    assert names(p) == [("scale", "cart"), ("scale", "checkout"), ("restart", "checkout"), ("restart", "cart"),
                        ("rate_limit", "cart"), ("rate_limit", "checkout")]  # fmt: skip
    assert [s.rank for s in p.steps] == [1, 2, 2, 3, 1, 2]
    assert [s.id for s in p.steps] == [f"s{i}" for i in range(1, len(p.steps) + 1)]


def test_a_torn_ranking_puts_the_second_suspects_direct_remedy_before_long_shots_at_the_first():
    """Suspects at 0.49 (delay, no direct remedy applies) and 0.43 (a crashing pod): restarting
    the pod (0.43) comes before scaling or limiting the first (0.245); with the first at 0.95,
    its alternatives (0.475) come before the second's restart (0.3)."""
    torn = Ranking("fake", [Hypothesis("checkout", "delay", 1.0, 0.49), Hypothesis("cart-1", "crash", 0.9, 0.43)])
    assert names(plan(shop(), torn, now=NOW))[:2] == [("restart", "cart-1"), ("scale", "checkout")]
    sure = Ranking("fake", [Hypothesis("checkout", "delay", 1.0, 0.95), Hypothesis("cart-1", "crash", 0.9, 0.3)])
    assert names(plan(shop(), sure, now=NOW))[:4] == [("scale", "checkout"), ("rate_limit", "checkout"),
                                                      ("restart", "checkout"), ("restart", "cart-1")]  # fmt: skip


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


def _events(*rows: tuple[float, str, str, str, dict]) -> pd.DataFrame:
    return pd.DataFrame({"time": [r[0] for r in rows], "entity": [r[1] for r in rows], "kind": [r[2] for r in rows],
                         "reason": [r[3] for r in rows], "message": [""] * len(rows),
                         "attributes": [json.dumps(r[4]) for r in rows]})  # fmt: skip


def test_a_flag_switched_on_at_the_onset_is_switched_off_first_not_rolled_back():
    """An error whose onset matches a flag change: toggle_flag names that flag and says when it
    changed; a flag flip has no revision to roll back to, so no rollback is proposed for it."""
    ev = _events((NOW - 200, "checkout", "config", "FeatureFlagChanged", {"flag": "fast-pay", "enabled": True}))
    case = shop(events=ev, detected_at=NOW - 170)
    p = plan(case, ranking(("checkout", "error")), now=NOW)
    first = p.steps[0]
    assert (first.action.name, first.action.params["flag"]) == ("toggle_flag", "fast-pay")
    assert first.action.params["flag_changed_at"] == NOW - 200
    assert "flag fast-pay was switched on 30 s before the incident was detected" in first.rationale
    assert first.decision.decision == "allow"
    assert "rollback" not in [n for n, _ in names(p)]


def test_the_newest_flag_that_is_still_on_is_the_one_switched_off():
    ev = _events((NOW - 900, "cart", "config", "FeatureFlagChanged", {"flag": "old", "enabled": True}),
                 (NOW - 300, "cart", "config", "FeatureFlagChanged", {"flag": "recent", "enabled": True}),
                 (NOW - 100, "cart", "config", "FeatureFlagToggled", {"flag": "recent", "enabled": False, "author": "aisre"}))  # fmt: skip
    p = plan(shop(events=ev), ranking(("cart", "error")), now=NOW)
    assert p.steps[0].action.params["flag"] == "old"  # "recent" is off already; the declared flag comes last
    ev = ev.iloc[:2]
    assert plan(shop(events=ev), ranking(("cart", "error")), now=NOW).steps[0].action.params["flag"] == "recent"


def test_aisres_own_changes_are_not_causes_to_roll_back():
    ev = _events((NOW - 100, "checkout", "deploy", "RollbackCompleted", {"revision": "r7", "author": "aisre"}))
    p = plan(shop(events=ev), ranking(("checkout", "deploy")), now=NOW)
    assert "rollback" not in [n for n, _ in names(p)]
    assert any("no deploy or config change to checkout is on record" in n for n in p.notes)


def test_a_drain_is_undone_by_putting_the_pod_back():
    from aisre.remediate import inverse_action

    case = shop()
    drain = get_action("shift_traffic").build(case, resolve_target(case, "cart-1"))
    assert drain.inverse == "put cart-1 back in the load balancer"
    inv = inverse_action(drain)
    assert (inv.name, inv.target, inv.params["restore"], inv.params["reverts"]) == ("shift_traffic", "cart-1", "cart-1", "shift_traffic")
    assert inv.blast_radius == drain.blast_radius and inv.reversible
