"""Incident memory: fingerprints, retrieval, the prior, feedback, export/import, concurrency and
corrupt records, each against a known answer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from aisre.case import Action, Alert, Case, Evidence, Hypothesis, Ranking, Step, Topology, Truth
from aisre.errors import DataError, UsageError
from aisre.memory import INCIDENTS, Memory, fingerprint, prioritise_steps, successful_actions, with_memory
from aisre.memory_prior import MAX_BOOST, Match

T0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[1]


def _topology() -> Topology:
    topo = Topology(source="given")
    for name in ("fe", "cart", "redis", "pay", "ads"):
        topo.add_node(name)
    topo.add_edge("fe", "cart")
    topo.add_edge("cart", "redis")
    topo.add_edge("fe", "pay")
    topo.add_edge("fe", "ads")
    return topo


def _case(cid: str, alert_on: str | None = None, system: str = "shop") -> Case:
    alerts = [Alert(fingerprint=f"a-{alert_on}", labels={"alertname": "HighLatency", "service": alert_on},
                    service=alert_on, starts_at=T0 + 60)] if alert_on else []
    return Case(id=cid, system=system, window=(T0, T0 + 600), detected_at=T0 + 300, topology=_topology(), alerts=alerts)


def _ranking(*scored: tuple[str, str | None, float], onset_first: str | None = None) -> Ranking:
    """A hand-built ranking: (entity, fault, score) best first, each with one evidence signal."""
    hyps = []
    for i, (entity, fault, score) in enumerate(scored):
        kind = {"cpu": "metric:cpu", "mem": "metric:mem"}.get(fault or "", "metric:latency-99")
        onset = T0 + 300 + (0 if entity == onset_first else 10 * (i + 1))
        hyps.append(Hypothesis(entity=entity, fault=fault, score=score, confidence=0.0,
                               evidence=[Evidence(signal=kind, entity=entity, onset=onset, magnitude=20.0 * score)]))
    total = sum(h.score for h in hyps) or 1.0
    for h in hyps:
        h.confidence = h.score / total
    return Ranking("aisre", hyps)


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory(f"sqlite:///{tmp_path / 'mem.db'}")


def test_identical_incident_comes_back_first_with_similarity_one(memory):
    """The same incident remembered among others is the first match, similarity ~1, with reasons."""
    a = _case("a", "fe")
    ra = _ranking(("cart", "cpu", 5.0), ("redis", "delay", 2.0), onset_first="cart")
    other = _case("b", "fe")
    rb = _ranking(("ads", "mem", 4.0), ("pay", "delay", 1.0), onset_first="ads")
    ia = memory.remember(a, ra, confirmed=Truth("cart", "cpu"))
    memory.remember(other, rb, confirmed=("ads", "mem"))
    got = memory.similar(a, ra, k=2)
    assert [m.incident_id for m in got][0] == ia
    assert got[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert got[0].confirmed == ("cart", "cpu")
    assert "same top suspect cart (cpu)" in got[0].why
    assert got[1].similarity < 0.6


def test_fingerprint_is_deterministic_and_fixed_length():
    """Two builds of one fingerprint are equal; the vector is unit length, whatever the case."""
    c, r = _case("a", "fe"), _ranking(("cart", "cpu", 5.0), ("redis", "delay", 2.0))
    f1, f2 = fingerprint(c, r), fingerprint(c, r)
    assert (f1.vector == f2.vector).all() and f1.parts == f2.parts
    assert f1.vector.shape == (128,)
    assert abs(float((f1.vector**2).sum()) - 1.0) < 1e-5
    assert f1.parts["suspects"][0] == {"service": "cart", "fault": "cpu", "score": 1.0}
    assert f1.parts["neighbourhood"]["cart"] == ["fe", "redis"]
    assert f1.parts["alerts"] == ["HighLatency@fe"]
    empty = fingerprint(c, Ranking("aisre", abstained=True, reason="nothing moved"))
    assert empty.vector.shape == (128,) and empty.parts["suspects"] == []


def test_close_scores_recurring_fault_fixed_by_memory(memory):
    """Twice before, redis was the cause while cart looked slightly worse; now again cart 1.0 vs
    redis 0.9: memory puts redis first and says why."""
    for i in range(2):
        memory.remember(_case(f"old{i}", "fe"), _ranking(("cart", "delay", 1.0), ("redis", "delay", 0.92)),
                        confirmed=("redis", "delay"))
    now = _ranking(("cart", "delay", 1.0), ("redis", "delay", 0.9))
    matches = memory.similar(_case("new", "fe"), now)
    assert matches[0].similarity > 0.9
    assert now.hypotheses[0].entity == "cart"  # the input is not changed
    assert with_memory(now, matches, learn_corrections=False).hypotheses[0].entity == "redis"  # the bound suffices
    boosted = with_memory(now, matches)
    assert boosted.hypotheses[0].entity == "redis"
    assert boosted.method == "aisre+memory"
    texts = [e.text for e in boosted.hypotheses[0].evidence if e.text.startswith("seen before")]
    assert texts and texts[0].startswith(f"seen before: {matches[0].incident_id} (similarity")
    assert "confirmed redis delay" in texts[0]
    assert boosted.hypotheses[0].confidence > boosted.hypotheses[1].confidence


def test_strong_current_evidence_is_not_overridden(memory):
    """Memory says ads (confirmed three times, the ranker agreeing then); now pay leads ads 1.0 to
    0.5: pay stays first, ads is raised by at most MAX_BOOST of the top score."""
    for i in range(3):
        memory.remember(_case(f"old{i}", "fe"), _ranking(("ads", "mem", 1.0), ("pay", "delay", 0.5)), confirmed=("ads", "mem"))
    now = _ranking(("pay", "error", 1.0), ("ads", "mem", 0.5), ("cart", None, 0.2))
    matches = memory.similar(_case("new", "fe"), now)
    assert any(m.confirmed == ("ads", "mem") for m in matches)
    boosted = with_memory(now, matches)
    assert [h.entity for h in boosted.hypotheses][:2] == ["pay", "ads"]
    ads = boosted.hypotheses[1]
    assert 0.5 < ads.score <= 0.5 + MAX_BOOST * 1.0 + 1e-9
    assert any(e.signal == "memory" for e in ads.evidence)


def test_contradicting_memory_cannot_lift_a_cause_without_current_evidence():
    """A remembered cause the current ranking does not name is added below every strong suspect."""
    now = _ranking(("pay", "error", 1.0), ("ads", "mem", 0.8))
    match = Match("INC-x", 1.0, "identical", cause="redis", fault="cpu", status="confirmed", suspect="redis")
    boosted = with_memory(now, [match] * 5)
    assert [h.entity for h in boosted.hypotheses] == ["pay", "ads", "redis"]
    assert boosted.hypotheses[2].score <= MAX_BOOST


def test_learned_correction_reorders_only_the_same_misleading_pattern():
    """Three similar incidents ranked cart first and were corrected to redis: now cart 1.0 vs
    redis 0.3 again, memory puts redis first; without learned corrections the bound holds; when
    the past incidents did not rank cart first, the bound holds too."""
    now = _ranking(("cart", "delay", 1.0), ("redis", "delay", 0.3))
    corrected = [Match(f"INC-{i}", 0.95, "", cause="redis", fault="delay", status="corrected", suspect="cart") for i in range(3)]
    assert with_memory(now, corrected).hypotheses[0].entity == "redis"
    assert any("learned correction" in e.text for e in with_memory(now, corrected).hypotheses[0].evidence)
    assert with_memory(now, corrected, learn_corrections=False).hypotheses[0].entity == "cart"
    other_leader = [Match(f"INC-{i}", 0.95, "", cause="redis", fault="delay", status="confirmed", suspect="redis") for i in range(3)]
    assert with_memory(now, other_leader).hypotheses[0].entity == "cart"
    unconfirmed = [Match(f"INC-{i}", 0.95, "", cause=None, suspect="cart") for i in range(3)]
    assert [h.entity for h in with_memory(now, unconfirmed).hypotheses] == ["cart", "redis"]
    weak = [Match(f"INC-{i}", 0.4, "", cause="redis", fault="delay", status="corrected", suspect="cart") for i in range(3)]
    assert with_memory(now, weak).hypotheses[0].entity == "cart"


def test_abstention_stays_an_abstention():
    """An abstained ranking comes back abstained whatever memory says."""
    r = Ranking("aisre", abstained=True, reason="nothing moved")
    m = Match("INC-x", 1.0, "", cause="cart", fault="cpu", status="confirmed")
    out = with_memory(r, [m])
    assert out.abstained and out.hypotheses == []


def test_correction_is_learned(memory):
    """An unconfirmed incident does not act as a prior; once corrected to redis/mem by an
    engineer, retrieval returns redis as the confirmed cause and the prior follows it."""
    case, rk = _case("a", "fe"), _ranking(("cart", "delay", 1.0), ("redis", "mem", 0.85))
    iid = memory.remember(case, rk)
    m = memory.similar(case, rk, k=1)[0]
    assert m.confirmed is None and m.suspect == "cart"
    assert with_memory(rk, [m]).hypotheses[0].entity == "cart"
    memory.correct(iid, "redis", "mem", by="bob")
    m = memory.similar(case, rk, k=1)[0]
    assert m.confirmed == ("redis", "mem") and m.status == "corrected"
    assert with_memory(rk, [m]).hypotheses[0].entity == "redis"
    record = memory.get(iid)
    assert [(f["kind"], f["service"], f["by"]) for f in record["feedback"]] == [("correct", "redis", "bob")]
    memory.confirm(iid, by="carol")  # confirming a corrected incident keeps the correction
    assert memory.get(iid)["cause"] == "redis" and memory.get(iid)["status"] == "corrected"


def test_confirm_takes_the_top_suspect(memory):
    """confirm() turns the top suspect into the confirmed cause."""
    iid = memory.remember(_case("a"), _ranking(("cart", "cpu", 1.0)))
    memory.confirm(iid, by="alice")
    rec = memory.get(iid)
    assert (rec["cause"], rec["cause_fault"], rec["status"], rec["confirmed_by"]) == ("cart", "cpu", "confirmed", "alice")


def test_feedback_errors(memory):
    """Unknown ids, empty names, unknown faults and bad k are usage errors."""
    iid = memory.remember(_case("a"), _ranking(("cart", "cpu", 1.0)))
    with pytest.raises(UsageError, match="no incident"):
        memory.confirm("INC-nope", by="x")
    with pytest.raises(UsageError, match="--by"):
        memory.confirm(iid, by=" ")
    with pytest.raises(UsageError, match="unknown fault"):
        memory.correct(iid, "cart", "meltdown", by="x")
    with pytest.raises(UsageError, match="k must be"):
        memory.similar(_case("a"), _ranking(("cart", "cpu", 1.0)), k=0)
    with pytest.raises(DataError, match="action"):
        memory.remember(_case("a"), _ranking(("cart", "cpu", 1.0)), actions=[42])


def test_successful_actions_and_plan_order(memory):
    """Actions that worked for similar incidents come back counted, and go first in a plan."""
    rk = _ranking(("cart", "cpu", 1.0), ("redis", "delay", 0.5))
    scale = Action("scale", "cart")
    for i in range(2):
        memory.remember(_case(f"o{i}", "fe"), rk, confirmed=("cart", "cpu"),
                        actions=[("restart", "cart", False), (scale, True)], outcome="mitigated")
    memory.remember(_case("x", "fe"), _ranking(("ads", "mem", 1.0)), confirmed=("ads", "mem"), actions=[("restart", "ads", True)])
    got = memory.successful_actions(_case("n", "fe"), rk)
    assert got == [("scale", "cart", 2)]
    steps = [Step("s1", Action("restart", "cart"), hypothesis="cart"), Step("s2", Action("rate_limit", "cart"), hypothesis="cart"),
             Step("s3", Action("scale", "cart"), hypothesis="cart"), Step("s4", Action("scale", "redis"), hypothesis="redis")]
    assert [s.id for s in prioritise_steps(steps, got)] == ["s3", "s1", "s2", "s4"]
    # a success on a lower-ranked hypothesis moves within that hypothesis only
    assert [s.id for s in prioritise_steps(steps, [("scale", "redis", 5)])] == ["s1", "s2", "s3", "s4"]
    assert successful_actions([]) == []


def test_export_import_round_trip(memory, tmp_path):
    """Exported incidents import into another store with causes, actions and feedback; a second
    import adds nothing; a corrupt line is reported and skipped."""
    ids = [memory.remember(_case(f"c{i}", "fe"), _ranking((svc, "cpu", 1.0), ("fe", None, 0.4)), confirmed=(svc, "cpu"),
                           actions=[("scale", svc, True)], postmortem=f"reports/c{i}/postmortem.md")
           for i, svc in enumerate(("cart", "redis", "ads"))]  # fmt: skip
    memory.correct(ids[1], "cart", "mem", by="bob")
    path = tmp_path / "memory.jsonl"
    assert memory.export(path) == 3
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["schema"] == "aisre.memory/1"
    path.write_text("\n".join([lines[0], "{not json", json.dumps({"schema": "aisre.memory/1", "id": "INC-short",
                    "vector": [0.1, 0.2], "fingerprint": {}}), *lines[1:]]) + "\n")  # fmt: skip
    other = Memory(f"sqlite:///{tmp_path / 'other.db'}")
    first = other.import_(path)
    assert (first["imported"], first["duplicate"], first["corrupt"]) == (3, 0, 2)
    assert first["errors"][0].startswith("line 2: ") and "vector" in first["errors"][1]
    again = other.import_(path)
    assert (again["imported"], again["duplicate"], again["corrupt"]) == (0, 3, 2)
    assert len(other) == 3
    rec = other.get(ids[1])
    assert (rec["cause"], rec["cause_fault"], rec["status"]) == ("cart", "mem", "corrected")
    assert rec["actions"] == [{"name": "scale", "target": "redis", "ok": True}]
    assert rec["postmortem"] == "reports/c1/postmortem.md"
    assert [f["kind"] for f in rec["feedback"]] == ["confirm", "correct"]
    probe = _case("p", "fe"), _ranking(("ads", "cpu", 1.0), ("fe", None, 0.4))
    assert other.similar(*probe, k=1)[0].incident_id == memory.similar(*probe, k=1)[0].incident_id == ids[2]


def test_corrupt_records_are_reported_and_skipped(memory, caplog):
    """A row whose parts are not JSON and a row whose vector has the wrong length are skipped by
    retrieval, named in problems and logged; the good rows still come back."""
    rk = _ranking(("cart", "cpu", 1.0), ("redis", "delay", 0.4))
    good = memory.remember(_case("g", "fe"), rk, confirmed=("cart", "cpu"))
    bad_json = memory.remember(_case("j", "fe"), rk, confirmed=("cart", "cpu"))
    bad_vec = memory.remember(_case("v", "fe"), rk, confirmed=("cart", "cpu"))
    with memory.engine.begin() as conn:
        conn.execute(update(INCIDENTS).where(INCIDENTS.c.id == bad_json).values(fingerprint="{oops"))
        conn.execute(update(INCIDENTS).where(INCIDENTS.c.id == bad_vec).values(vector=b"\x00" * 12, dim=3))
    fresh = Memory(str(memory.engine.url))
    with caplog.at_level("WARNING", logger="aisre.memory"):
        got = fresh.similar(_case("q", "fe"), rk, k=5)
    assert [m.incident_id for m in got] == [good]
    assert set(fresh.problems) == {bad_json, bad_vec}
    assert "not valid JSON" in fresh.problems[bad_json] and "vector" in fresh.problems[bad_vec]
    assert bad_json in caplog.text and bad_vec in caplog.text


def test_index_sees_rows_written_by_another_memory(memory):
    """Two Memory objects on one store: what one writes the other retrieves (the index reloads)."""
    rk = _ranking(("cart", "cpu", 1.0))
    reader = Memory(str(memory.engine.url))
    assert reader.similar(_case("q"), rk) == []
    iid = memory.remember(_case("a"), rk)
    assert [m.incident_id for m in reader.similar(_case("q"), rk)] == [iid]


_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_memory import _case, _ranking
    from aisre.memory import Memory, fingerprint
    mem = Memory({url!r})
    fp = fingerprint(_case("w"), _ranking(("cart", "cpu", 1.0), ("redis", "delay", 0.5)))
    for i in range(500):
        mem.remember(fp, confirmed=("cart", "cpu"), case_id=f"{tag}-{{i}}")
""")


@pytest.mark.slow
def test_two_processes_writing_lose_nothing(tmp_path):
    """Two processes remembering 500 incidents each at once: all 1,000 are in the store and in
    the index."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    Memory(url)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER.format(tests=str(ROOT / "tests"), url=url, tag=tag)],
                              stderr=subprocess.PIPE, text=True) for tag in ("p1", "p2")]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    mem = Memory(url)
    assert len(mem) == 1000
    assert mem.refresh() == 1000
    exported = tmp_path / "all.jsonl"
    assert mem.export(exported) == 1000
    case_ids = {json.loads(line)["case_id"] for line in exported.read_text().splitlines()}
    assert case_ids == {f"{t}-{i}" for t in ("p1", "p2") for i in range(500)}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=5))
def test_import_never_crashes_on_hostile_lines(tmp_path_factory, lines):
    """Any text file imports without an exception: each non-blank line is imported or corrupt."""
    folder = tmp_path_factory.mktemp("imp")
    path = folder / "x.jsonl"
    path.write_text("\n".join(line.replace("\n", " ").replace("\r", " ") for line in lines), encoding="utf-8")
    mem = Memory(f"sqlite:///{folder / 'm.db'}")
    res = mem.import_(path)
    assert res["imported"] == 0
    assert res["corrupt"] == len(res["errors"])
