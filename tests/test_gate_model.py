"""The change model: JSON round trip, the packaged default, the temporal evaluation on ApacheJIT,
and that ``project`` (which leaks the label) never reaches the features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisre.errors import DataError
from aisre.gate import JITModel, combine, evaluate, fit_jit, load_model, read_jit_csv, train
from aisre.gate.model import MODEL_FEATURES


def _synthetic(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """ApacheJIT-format rows whose label rises with lines added; ``project`` equals the label."""
    rng = np.random.default_rng(seed)
    la = np.floor(rng.lognormal(3, 1.5, n))
    buggy = rng.random(n) < 1 / (1 + np.exp(-(np.log1p(la) - 4)))
    return pd.DataFrame({
        "commit_id": [f"{i:040x}" for i in range(n)], "project": np.where(buggy, "apache/leaky", "apache/clean"),
        "buggy": np.where(buggy, "True", "False"), "fix": np.where(rng.random(n) < 0.1, "True", "False"),
        "year": 2018, "author_date": 1_500_000_000 + np.arange(n) * 3600, "la": la,
        "ld": np.floor(rng.lognormal(2, 1.5, n)), "nf": 1 + rng.poisson(3, n), "nd": 1 + rng.poisson(1, n),
        "ns": 1, "ent": rng.random(n), "ndev": rng.poisson(4, n), "age": rng.exponential(50, n),
        "nuc": rng.poisson(20, n), "aexp": rng.poisson(300, n), "arexp": rng.poisson(100, n), "asexp": rng.poisson(50, n),
    })  # fmt: skip


def test_json_round_trip(tmp_path: Path) -> None:
    csv = tmp_path / "jit.csv"
    _synthetic().to_csv(csv, index=False)
    model = fit_jit(read_jit_csv(csv))
    again = JITModel.from_dict(json.loads(json.dumps(model.to_dict())))
    frame = read_jit_csv(csv)
    assert np.allclose(model.predict(frame), again.predict(frame))
    saved = JITModel.load(model.save(tmp_path / "m" / "gate.json"))
    assert saved.to_dict() == model.to_dict()


def test_not_a_model(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"schema": "something/9"}))
    with pytest.raises(DataError, match="not a gate model"):
        JITModel.load(p)
    doc = load_model().to_dict()
    doc["coef"] = doc["coef"][:-1]
    with pytest.raises(DataError, match="coef"):
        JITModel.from_dict(doc)


def test_project_column_is_never_a_feature(tmp_path: Path) -> None:
    """``project`` equals the label here; the model must not see it: swapping it changes nothing."""
    rows = _synthetic()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    rows.to_csv(a, index=False)
    rows.assign(project=rows["project"].sample(frac=1, random_state=1).to_numpy()).to_csv(b, index=False)
    frame = read_jit_csv(a)
    assert "project" not in frame.columns and "year" not in frame.columns
    ma, mb = fit_jit(frame), fit_jit(read_jit_csv(b))
    assert ma.features == list(MODEL_FEATURES) and "project" not in ma.to_dict()["features"]
    assert np.array_equal(ma.coef, mb.coef)
    # the leak would give a perfect AUC; lines added alone cannot
    assert evaluate(a)["auc"] < 0.95


def test_packaged_default_model_has_provenance() -> None:
    model = load_model()
    prov = model.provenance
    assert prov["rows"] == 6021 and prov["upstream"]["repo"] == "hosseinkshvrz/apachejit"
    assert len(prov["data"][0]["sha256"]) == 64 and "project" in prov["ignored_columns"]
    assert model.metrics["time_split"]["auc"] >= 0.85
    coef = dict(zip(model.features, model.coef, strict=True))
    assert coef["la"] > 0 and coef["fix"] > 0 and coef["aexp"] < 0  # size and fixes raise risk, experience lowers it


def test_train_writes_the_home_model_that_the_gate_then_loads(tmp_path: Path) -> None:
    csv = tmp_path / "jit.csv"
    _synthetic().to_csv(csv, index=False)
    out = train(csv)
    assert Path(out["model"]).is_file() and out["n"] == 800
    assert load_model().provenance["rows"] == 800  # $AISRE_HOME/models/gate.json wins over the packaged one


def test_malformed_csv(tmp_path: Path) -> None:
    rows = _synthetic(60)
    rows.loc[7, "buggy"] = "maybe"
    p = tmp_path / "bad.csv"
    rows.to_csv(p, index=False)
    with pytest.raises(DataError, match="row 9") as info:
        read_jit_csv(p)
    assert info.value.field == "buggy"
    rows = _synthetic(60).drop(columns=["la"])
    rows.to_csv(p, index=False)
    with pytest.raises(DataError, match="la"):
        read_jit_csv(p)


def test_out_of_range_values_are_clipped_not_extrapolated() -> None:
    model = load_model()
    base = {k: 1.0 for k in MODEL_FEATURES}
    at_max = model.predict({**base, "nf": [100.0]})
    beyond = model.predict({**base, "nf": [100_000.0]})
    assert at_max[0] == pytest.approx(beyond[0])
    _, contribs = model.explain({**base, "nf": 100_000.0})
    assert next(c for c in contribs if c.feature == "nf").clipped_to == 100.0


def test_combine_is_neutral_for_the_reference_change() -> None:
    p, adj = combine(0.3, blast_weighted=1.0, failure_rate=0.1, prior_rate=0.1)
    assert p == pytest.approx(0.3) and all(a.factor == pytest.approx(1.0) for a in adj)
    worse, _ = combine(0.3, blast_weighted=10.0, failure_rate=0.4, recent_incidents=2, hot_share=0.6)
    assert worse > 0.6


def test_evaluate_on_apachejit_temporal_split(shared: Path) -> None:
    """Fit on the earliest 70 % by author_date, score the latest 30 %."""
    got = evaluate(shared / "datasets" / "apachejit")
    assert set(got) == {"n", "auc", "recall_at_10", "recall_at_20", "brier"}
    assert got["n"] == 6021 - int(6021 * 0.7)
    assert got["auc"] >= 0.8
    assert got["recall_at_20"] > got["recall_at_10"] > 0.3  # a random order would give 0.1
    assert got["brier"] < 0.12  # a constant at the training base rate scores about 0.137
