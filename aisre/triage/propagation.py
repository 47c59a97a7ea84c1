"""How faults travel in one alert stream: the priors, and the figures measured on its
unambiguous alerts (hop delay, wave, SLO lag, odds of showing one hop up)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PRIOR_HOP_DELAY = 60.0
"""Seconds a fault is assumed to take to show one hop up (dependency alert to caller alert)
before the alert stream itself says: one evaluation interval plus a typical ``for: 1m``."""

PRIOR_HOP_SPREAD = 30.0
"""Spread (seconds) assumed around :data:`PRIOR_HOP_DELAY` before the stream says."""

PRIOR_SLO_LAG = 60.0
"""Seconds an SLO burn-rate alert is assumed to fire after the first alert of the fault burning
it on the same service (a burn-rate rule looks back further than a latency rule) before the
stream says."""

PRIOR_WAVE = 15.0
"""Seconds within which one fault's alerts on one service are assumed to fire together (about
one rule evaluation interval) before the stream says."""

_PRIOR_WEIGHT = 5.0
"""How many measurements a prior counts as: with few unambiguous alerts the priors dominate,
with dozens the stream's own figures do."""


@dataclass(frozen=True, eq=False)
class _Propagation:
    """How faults travel in this alert stream, measured on its unambiguous alerts (those only
    one incident could explain), each figure leaning on a prior while the measurements are few.

    *mu*, *sigma*: median and robust spread of the seconds from a dependency's first alert to a
    caller's alert one hop up; *mu_origin*, *sigma_origin*: the same for the first hop from the
    service where a fault showed first (its own alerts have a delay of their own); *wave*: how
    tightly one fault's alerts on one service fire together; *log_hop*: log share of alerts whose
    nearest alerting dependency is h hops away (index h); *log_arrive*, *log_absent*: log odds
    that trouble on a dependency shows on a direct caller at all; *slo_mu*, *slo_sigma*: seconds
    from a fault's first alert on a service to the SLO burn alert there.
    """

    mu: float
    sigma: float
    mu_origin: float
    sigma_origin: float
    wave: float
    log_hop: np.ndarray
    log_arrive: float
    log_absent: float
    slo_mu: float
    slo_sigma: float

    @property
    def together(self) -> float:
        """Seconds within which two callers one hop from one cause start alerting (the spread
        of the difference of two hop delays, two standard deviations)."""
        return 2.0 * math.sqrt(2.0) * self.sigma

    def expected(self, h: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the seconds from a dependency's first alert to a caller's alert
        *h* hops up: the first hop from the fault's *origin* (its own alerts have their own
        delay) or from a service it reached, then a hop delay per hop."""
        mu1 = np.where(origin, self.mu_origin, self.mu)
        var1 = np.where(origin, self.sigma_origin**2, self.sigma**2)
        return mu1 + (h - 1) * self.mu, var1 + (h - 1) * self.sigma**2

    def delay_score(self, delta: np.ndarray, h: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """Log-likelihood of a caller alerting *delta* seconds after a dependency *h* hops away
        first did (see :meth:`expected`), times the share of alerts that far."""
        mean, var = self.expected(h, origin)
        hop = self.log_hop[np.minimum(h.astype(np.int64), self.log_hop.size - 1)]
        return -0.5 * (delta - mean) ** 2 / var - 0.5 * np.log(var) + hop

    def wave_score(self, dt: np.ndarray) -> np.ndarray:
        """Log-likelihood of an alert *dt* seconds after the first one its fault raised on the
        same service (half-normal; -inf before it)."""
        with np.errstate(invalid="ignore"):
            s = math.log(2.0 / (self.wave * math.sqrt(2.0 * math.pi))) - 0.5 * (dt / self.wave) ** 2
        return np.where(dt >= 0, s, -np.inf)


def _fit_propagation(
    live: pd.DataFrame, j: pd.DataFrame, lab: np.ndarray, bursts: pd.DataFrame, pairs: pd.DataFrame, window: float
) -> _Propagation:
    """Measure :class:`_Propagation` on the episodes only one incident (*lab*) could explain."""
    is_slo = live["kind"].eq("slo").to_numpy()
    slo_lag = _slo_lags(live, j, lab, window)
    # SLO alerts burn later than the alerts that measure propagation
    j = j[~is_slo[j["e"].to_numpy()]]
    one = j.assign(lab=lab[j["q"].to_numpy()])
    one = _nearest_evidence(one[one.groupby("e")["lab"].transform("nunique") == 1])
    # hop delay: a caller alerting long after its dependency's alert opened is a late alert
    hop1 = one[one["hops"].to_numpy() == 1]
    d = (hop1["t"] - hop1["qt"]).to_numpy()
    near = np.abs(d) <= window
    d, from_origin = d[near], hop1["origin"].to_numpy()[near]
    mu, sigma = _location_spread(d, PRIOR_HOP_DELAY, PRIOR_HOP_SPREAD)
    # the first hop from a fault's origin, whose own alerts have a delay of their own
    mu_o, sigma_o = _location_spread(d[from_origin], mu, sigma)
    mu, sigma = _location_spread(d[~from_origin], mu, sigma)
    # wave: seconds from a burst's first alert to each later one, where one incident explains it
    first = one.drop_duplicates("e")
    off = (first["t"] - first.groupby("burst")["t"].transform("min")).to_numpy()
    off = off[(off > 0) & (off <= window)]
    # the median of a half-normal is 0.674 of its scale, and ignores a stray late alert
    wave = _shrink(float(np.median(off)) / 0.674 if off.size else PRIOR_WAVE, off.size, PRIOR_WAVE)
    max_hops = max(int(pairs["hops"].max()) if len(pairs) else 1, 1)
    counts = np.bincount(np.clip(first["hops"].to_numpy(dtype=np.int64), 1, max_hops), minlength=max_hops + 1)
    counts = counts.astype(np.float64) + 1.0
    counts[0] = 0.0
    with np.errstate(divide="ignore"):
        log_hop = np.log(counts / counts.sum())
    p = _arrival_rate(bursts, pairs, window)
    slo_mu, slo_sigma = _location_spread(slo_lag, PRIOR_SLO_LAG, PRIOR_HOP_SPREAD)
    return _Propagation(
        mu=mu, sigma=sigma, mu_origin=mu_o, sigma_origin=sigma_o, wave=max(wave, 1.0), log_hop=log_hop,
        log_arrive=math.log(p), log_absent=math.log1p(-p), slo_mu=slo_mu, slo_sigma=slo_sigma,
    )


def _location_spread(d: np.ndarray, mu0: float, sigma0: float) -> tuple[float, float]:
    """Median and robust spread (1.4826 MAD, at least 1 s) of *d*, each pulled toward the prior
    *mu0*, *sigma0* as if measured on :data:`_PRIOR_WEIGHT` more items."""
    if d.size == 0:
        return mu0, max(sigma0, 1.0)
    med = float(np.median(d))
    sd = float(1.4826 * np.median(np.abs(d - med)))
    return _shrink(med, d.size, mu0), max(math.sqrt(_shrink(sd**2, d.size, sigma0**2)), 1.0)


def _slo_lags(live: pd.DataFrame, j: pd.DataFrame, lab: np.ndarray, window: float) -> np.ndarray:
    """Seconds from the first other alert on a service to its SLO alert, in the bursts only one
    incident explains (or none: the incident's origin)."""
    is_slo = live["kind"].eq("slo").to_numpy()
    if not is_slo.any():
        return np.zeros(0)
    burst = live["burst"].to_numpy()
    t = live["start"].to_numpy()
    n_labs = pd.Series(lab[j["q"].to_numpy()]).groupby(burst[j["e"].to_numpy()]).nunique()
    single = ~np.isin(burst, n_labs[n_labs > 1].index.to_numpy())
    first = pd.Series(t[~is_slo]).groupby(burst[~is_slo]).min()
    rows = np.flatnonzero(is_slo & single & np.isin(burst, first.index.to_numpy()))
    lag = t[rows] - first.reindex(burst[rows]).to_numpy()
    return lag[np.abs(lag) <= window]


def _shrink(value: float, n: int, prior: float) -> float:
    """*value* measured on *n* items, pulled toward *prior* as if it were measured on
    :data:`_PRIOR_WEIGHT` more."""
    return (n * value + _PRIOR_WEIGHT * prior) / (n + _PRIOR_WEIGHT)


def _arrival_rate(bursts: pd.DataFrame, pairs: pd.DataFrame, window: float) -> float:
    """Share (add-one smoothed) of the direct callers of an alerting service that alert within
    *window* of it: how often trouble shows one hop up in this stream."""
    direct = pairs[pairs["hops"] == 1]
    if direct.empty or bursts.empty:
        return 0.5
    strong = bursts.loc[~bursts["weak"].astype(bool), ["burst", "service", "t0"]]
    up = strong.rename(columns={"service": "dep", "t0": "d0", "burst": "db"}).merge(direct, on="dep")
    m = up.merge(strong, on="service", how="left")
    hit = (m["t0"] - m["d0"]).abs() <= window
    seen = m.assign(hit=hit).groupby(["db", "service"])["hit"].any()
    return float((seen.sum() + 1.0) / (len(seen) + 2.0))


def _nearest_evidence(sel: pd.DataFrame) -> pd.DataFrame:
    """Keep, per episode and incident (``lab``), the first alert of that incident on each of its
    nearest alerting dependencies (fewest hops): nearer evidence dates the arrival best."""
    sel = sel[sel["hops"] == sel.groupby(["e", "lab"])["hops"].transform("min")]
    sel = sel.sort_values(["e", "lab", "parent", "qt", "q"], kind="stable")
    return sel.drop_duplicates(["e", "lab", "parent"])
