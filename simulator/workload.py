"""Open-loop workload: Poisson arrivals with a daily shape and bursts, drawn up front.

Open loop means users do not wait for each other: arrivals keep coming at the offered rate
whatever the system does, so a slow service builds queues instead of slowing the load down
(the way real traffic behaves, and what closed-loop load generators hide). Arrivals are drawn
per second as Poisson counts of ``rate * shape(t) * burst(t)``, spread uniformly within the
second, and each picks an entry endpoint by its weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aisre.errors import SpecError

__all__ = ["Arrivals", "Burst", "draw_arrivals", "rate_curve"]

DAILY_PEAK_HOUR = 15.0
"""Hour of day (UTC) of peak traffic in the daily shape."""


@dataclass(frozen=True)
class Burst:
    """A flash crowd: the rate times ``factor`` between ``start`` and ``end`` (run seconds)."""

    start: float
    end: float
    factor: float


@dataclass(frozen=True)
class Arrivals:
    """Arrival times (run seconds, sorted), the entry index of each, the bursts drawn and the
    offered rate per second."""

    times: np.ndarray
    entry: np.ndarray
    bursts: tuple[Burst, ...]
    offered: np.ndarray


def rate_curve(
    rate: float,
    duration: float,
    start_time: float,
    *,
    daily_amplitude: float = 0.3,
    bursts: Sequence[Burst] = (),
) -> np.ndarray:
    """Return the offered request rate for each whole second of the run.

    The daily shape is ``1 + a*cos(2*pi*(hour - 15)/24)``: traffic peaks at 15:00 UTC and is
    lowest at 03:00; bursts multiply the rate while they last.
    """
    n = int(math.ceil(duration))
    t = np.arange(n, dtype=np.float64)
    hours = ((start_time + t) / 3600.0) % 24.0
    shape = 1.0 + daily_amplitude * np.cos(2 * np.pi * (hours - DAILY_PEAK_HOUR) / 24.0)
    lam = rate * np.clip(shape, 0.05, None)
    for b in bursts:
        lam[(t >= math.floor(b.start)) & (t < b.end)] *= b.factor
    return lam


def draw_arrivals(
    weights: Sequence[float],
    rate: float,
    duration: float,
    rng: np.random.Generator,
    *,
    start_time: float = 0.0,
    shape: Mapping[str, float] | None = None,
) -> Arrivals:
    """Draw the whole run's arrivals: times, entry endpoint indices (by *weights*) and bursts.

    *shape* may hold ``daily_amplitude``, ``burst_per_hour``, ``burst_factor`` and
    ``burst_seconds`` (the topology's ``workload`` section).

    Raises:
        SpecError: for a negative or non-finite rate, a non-positive duration or no weights.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate < 0:
        raise SpecError(f"rate must be a non-negative number of requests per second, got {rate!r}", field="rate")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration <= 0:
        raise SpecError(f"duration must be a positive number of seconds, got {duration!r}", field="duration")
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or not np.all(w >= 0) or w.sum() <= 0:
        raise SpecError("entry endpoints need positive weights", field="weight")
    shape = dict(shape or {})
    amplitude = float(shape.get("daily_amplitude", 0.3))
    per_hour = float(shape.get("burst_per_hour", 2.0))
    factor = float(shape.get("burst_factor", 1.8))
    seconds = float(shape.get("burst_seconds", 20.0))
    n_bursts = int(rng.poisson(per_hour * duration / 3600.0))
    starts = np.sort(rng.uniform(0.0, duration, n_bursts))
    lengths = seconds * rng.uniform(0.5, 1.5, n_bursts)
    bursts = tuple(Burst(float(s), float(min(duration, s + d)), factor) for s, d in zip(starts, lengths))
    lam = rate_curve(rate, duration, start_time, daily_amplitude=amplitude, bursts=bursts)
    counts = rng.poisson(lam)
    total = int(counts.sum())
    times = np.repeat(np.arange(lam.size, dtype=np.float64), counts) + rng.random(total)
    times = np.sort(times[times < duration])
    entry = rng.choice(w.size, size=times.size, p=w / w.sum())
    return Arrivals(times=times, entry=entry.astype(np.int64), bursts=bursts, offered=lam)
