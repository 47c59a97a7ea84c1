"""The telemetry's per-key nearest-rank percentiles match a plain per-key computation, on the
radix path (keys that fit 16 bits) and on the wide-key path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from aisre.simulator.telemetry import _percentiles

QS = (0.5, 0.9, 0.99)


def brute(keys: np.ndarray, values: np.ndarray, n_keys: int) -> np.ndarray:
    out = np.full((len(QS), n_keys), np.nan)
    for k in np.unique(keys):
        v = np.sort(values[keys == k])
        for j, q in enumerate(QS):
            out[j, k] = v[max(math.ceil(q * v.size) - 1, 0)]
    return out


@pytest.mark.parametrize("n_keys", [7, 1 << 16, (1 << 16) + 5, 300_000])
def test_percentiles_per_key_match_a_plain_sort(n_keys):
    rng = np.random.default_rng(n_keys)
    n = 5_000
    keys = rng.choice(rng.integers(0, n_keys, size=40), size=n)
    values = np.round(rng.lognormal(size=n), 2)  # rounded: ties between values on purpose
    got = _percentiles(keys, values, n_keys, QS)
    assert np.array_equal(got, brute(keys, values, n_keys), equal_nan=True)
    assert np.array_equal(_percentiles(keys, values, n_keys, QS, np.argsort(values)), got, equal_nan=True)


def test_no_values_gives_nan_everywhere():
    got = _percentiles(np.zeros(0, dtype=np.int64), np.zeros(0), 4, QS)
    assert got.shape == (3, 4) and np.isnan(got).all()
