"""The simple baselines: n-sigma and seeded random."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aisre.case import Case
from aisre.rank import get_ranker
from aisre.rank.baselines import NSigmaRanker, RandomRanker

T0 = 1_700_000_000.0


def step_case() -> Case:
    rng = np.random.default_rng(0)
    t = T0 + np.arange(600.0)
    rows = []
    for s in ("a", "b", "c", "d"):
        v = 10 + rng.normal(0, 1, len(t))
        if s == "c":
            v = np.where(t >= T0 + 400, v + 8, v)
        rows.append(pd.DataFrame({"time": t, "entity": s, "metric": "cpu", "value": v}))
    rows.append(pd.DataFrame({"time": t, "entity": "d", "metric": "const", "value": 1.0}))
    return Case(id="s", window=(t[0], t[-1]), detected_at=T0 + 400, metrics=pd.concat(rows, ignore_index=True))


def test_registry_names() -> None:
    assert isinstance(get_ranker("nsigma"), NSigmaRanker)
    assert isinstance(get_ranker("random"), RandomRanker)
    assert get_ranker("random", seed=3).seed == 3


def test_nsigma_ranks_the_shifted_entity_first() -> None:
    r = NSigmaRanker().rank(step_case())
    assert r.method == "nsigma" and not r.abstained
    assert r.entities()[0] == "c"
    assert set(r.entities()) == {"a", "b", "c", "d"}
    assert all(np.isfinite(h.score) for h in r.hypotheses)  # the constant column stays finite
    assert sum(h.confidence for h in r.hypotheses) == pytest_approx(1.0)


def pytest_approx(x: float):
    import pytest

    return pytest.approx(x)


def test_nsigma_abstains_without_metrics() -> None:
    r = NSigmaRanker().rank(Case(id="e"))
    assert r.abstained and r.reason == "no metrics"


def test_random_is_a_seeded_permutation() -> None:
    case = step_case()
    one, two = RandomRanker(seed=0).rank(case), RandomRanker(seed=0).rank(case)
    other = RandomRanker(seed=1).rank(case)
    assert one.entities() == two.entities()
    assert sorted(one.entities()) == ["a", "b", "c", "d"]
    assert other.entities() != one.entities() or len(case.entities()) < 3
    assert all(h.confidence == 0.25 for h in one.hypotheses)


def test_random_abstains_on_an_empty_case() -> None:
    r = RandomRanker().rank(Case(id="e"))
    assert r.abstained
