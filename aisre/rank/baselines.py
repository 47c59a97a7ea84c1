"""Simple baselines: the classic n-sigma ranker and a seeded random ranker.

Both rank the entities of a case's metrics (and, for random, every entity the case names); they
exist to show what the causal engine adds over plain statistics and over chance.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from aisre.case import Case, Evidence, Hypothesis, Ranking
from aisre.detect import aligned_wide, split_periods

__all__ = ["NSigmaRanker", "RandomRanker"]


class NSigmaRanker:
    """Ranks entities by the largest |z| of any of their metrics over the abnormal period, with
    mean and standard deviation taken from the normal period (the classic n-sigma rule).

    A column constant in the normal period gets its standard deviation floored at *floor*
    (relative to its mean level) so it cannot score infinity.
    """

    name = "nsigma"

    def __init__(self, *, floor: float = 1e-3) -> None:
        self.floor = float(floor)

    def rank(self, case: Case) -> Ranking:
        """Return entities ordered by their largest n-sigma score; abstain when there are no
        metrics or no normal/abnormal samples."""
        t0 = time.perf_counter()
        wide = aligned_wide(case)
        if wide.empty:
            return Ranking(self.name, abstained=True, reason="no metrics", seconds=time.perf_counter() - t0)
        times = wide.index.to_numpy(dtype="float64")
        periods = split_periods(case, times)
        values = wide.to_numpy(dtype="float64")
        normal, abnormal = values[periods.normal_mask(times)], values[periods.abnormal_mask(times)]
        if len(normal) < 2 or len(abnormal) < 1:
            return Ranking(self.name, abstained=True, reason="too few normal or abnormal samples",
                           seconds=time.perf_counter() - t0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mu, sd = np.nanmean(normal, axis=0), np.nanstd(normal, axis=0)
            sd = np.fmax(sd, self.floor * np.fmax(np.abs(mu), 1e-6))
            z = np.nanmax(np.abs(abnormal - mu) / sd, axis=0)
        z = np.where(np.isfinite(z), z, 0.0)
        best: dict[str, tuple[float, str]] = {}
        for (entity, metric), score in zip(wide.columns, z, strict=True):
            if score > best.get(entity, (-1.0, ""))[0]:
                best[entity] = (float(score), metric)
        order = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        total = sum(s for _, (s, _) in order) or 1.0
        hyps = [
            Hypothesis(entity=e, fault=None, score=s, confidence=s / total,
                       evidence=[Evidence(signal=f"metric:{m}", entity=e, magnitude=s, text=f"{m} moved {s:.1f} sigma")])
            for e, (s, m) in order
        ]
        return Ranking(self.name, hyps, seconds=time.perf_counter() - t0)


class RandomRanker:
    """Ranks every entity of a case in a random order drawn from a generator seeded with *seed*
    (the same case always gets the same order)."""

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = int(seed)

    def rank(self, case: Case) -> Ranking:
        """Return the case's entities shuffled; abstain when the case names none."""
        t0 = time.perf_counter()
        entities = case.entities()
        if not entities:
            return Ranking(self.name, abstained=True, reason="no entities", seconds=time.perf_counter() - t0)
        rng = np.random.default_rng(self.seed)
        order = [entities[i] for i in rng.permutation(len(entities))]
        p = 1.0 / len(order)
        hyps = [Hypothesis(entity=e, score=float(len(order) - i), confidence=p) for i, e in enumerate(order)]
        return Ranking(self.name, hyps, seconds=time.perf_counter() - t0)
