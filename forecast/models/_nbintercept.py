"""Intercept-only NB2 fits of many rows at once (the climatology baseline's solver).

Re-exported by :mod:`forecast.models._glmbatch`, where it used to live.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from forecast.models._baselinebatch import log_factorials
from forecast.models._glmstack import _dispersion_sums  # noqa: F401 (tests count its calls)
from forecast.models._nbpieces import _h_and_dh, _log1p_ratio
from forecast.models._nbtails import _Tails

#: Bracket of log alpha searched (alpha from 2e-9 to 3000), as the per-series baseline had.
LOG_ALPHA_BOUNDS = (-20.0, 8.0)


def nb_intercept_mle_batch(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ML NB2 mean and dispersion of each row of ``Y`` (S, W) of i.i.d. counts.

    Returns (mu, alpha, loglik), each (S,). The MLE of the mean is the row mean for any
    alpha; alpha maximises the profile log-likelihood ℓ(alpha) and is 0 (Poisson) unless
    the row's variance (divisor W) exceeds its mean, in which case ℓ has one interior
    maximum. Found by safeguarded Newton on the score in θ = log alpha, bracketed by
    bisection inside :data:`LOG_ALPHA_BOUNDS`, to |Δθ| <= 1e-10.
    """
    Y = np.asarray(Y, dtype=np.int64)
    S, W = Y.shape
    mu = Y.mean(axis=1) if W else np.zeros(S)
    alpha = np.zeros(S)
    lg = log_factorials(Y)  # log y!, shared by both log-likelihoods
    with np.errstate(divide="ignore", invalid="ignore"):
        pois = np.sum(special.xlogy(Y, mu[:, None]) - mu[:, None] - lg, axis=1)
    ll = np.where(mu > 0, pois, 0.0)
    over = (mu > 0) & (np.mean((Y - mu[:, None]) ** 2, axis=1) > mu)
    rows = np.flatnonzero(over)
    if rows.size == 0:
        return mu, alpha, ll
    y, m = Y[rows], mu[rows][:, None]
    lgy = lg[rows]

    tails = _Tails(y)
    sy = y.sum(axis=1).astype(float)  # Σ_t y_t (exact: integers)
    n = float(W)
    m1 = m[:, 0]

    def score_and_slope(theta: np.ndarray, sub: np.ndarray):
        """d ℓ/dθ and d² ℓ/dθ² of the rows ``sub`` (intercept-only: mu is fixed at the mean).

        Every term but the dispersion sums is the same for all counts of a row (mu is the
        row mean), so the row sums are Σ_k N_k·f(k) plus closed forms in Σ_t y_t."""
        a = np.exp(theta)
        mm = m1[sub]
        u = a * mm
        s1, s2 = tails.sums(a, sub)
        h, dh = _h_and_dh(u)
        q = 1.0 / (1.0 + u)
        g_a = s1 + n * mm * mm * h - sy[sub] * mm * q
        h_aa = -s2 + n * mm**3 * dh + sy[sub] * (mm * q) ** 2
        return a * g_a, a * a * h_aa + a * g_a

    lo = np.full(rows.size, LOG_ALPHA_BOUNDS[0])
    hi = np.full(rows.size, LOG_ALPHA_BOUNDS[1])
    # Start at the moment estimate (var - mean) / mean², inside the bracket.
    v = np.mean((y - m) ** 2, axis=1)
    theta = np.clip(np.log((v - m[:, 0]) / m[:, 0] ** 2), lo + 1e-3, hi - 1e-3)
    active = np.arange(rows.size)
    # Rows whose score at the lower bound has been looked at (see below), at most once each.
    checked = np.zeros(rows.size, dtype=bool)
    for _ in range(200):
        if active.size == 0:
            break
        t = theta[active]
        sc, sl = score_and_slope(t, active)
        up = sc > 0  # the maximum lies above t
        lo[active] = np.where(up, t, lo[active])
        hi[active] = np.where(up, hi[active], t)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - sc / sl
        inside = (sl < 0) & (newton > lo[active]) & (newton < hi[active])
        new = np.where(inside, newton, 0.5 * (lo[active] + hi[active]))
        # A score of exactly 0 is the root: the row stops at t (it used to stop at the
        # bisection midpoint computed for it, far from the maximum).
        new = np.where(sc == 0, t, new)
        step = np.abs(new - t)
        theta[active] = new
        # |Δθ| <= 1e-10: alpha to 1e-10 relative (below that, rounding in the score decides steps)
        going = (step > 1e-10) & (sc != 0) & (hi[active] - lo[active] > 1e-10)
        # A row about to bisect downwards may have its maximum below the bracket (a window
        # whose variance exceeds its mean by rounding only, or by a hair): the score at the
        # lower bound tells, in one evaluation, where bisection would spend ~20 rounds to
        # end within 1e-10 of that bound. Rows it clears at the bound stop there.
        probe = going & ~inside & ~up & ~checked[active]
        if probe.any():
            cand = active[probe]
            checked[cand] = True
            at_bound = score_and_slope(np.full(cand.size, LOG_ALPHA_BOUNDS[0]), cand)[0] <= 0
            theta[cand[at_bound]] = LOG_ALPHA_BOUNDS[0]
            going[np.flatnonzero(probe)[at_bound]] = False
        active = active[going]
    a = np.exp(theta)
    alpha[rows] = a
    u = a * m1
    ll[rows] = (tails.log_sum(a) - lgy.sum(axis=1) + special.xlogy(sy, m1) - sy * np.log1p(u)
                - n * m1 * _log1p_ratio(u))
    return mu, alpha, ll


def nb_intercept_mle(y: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood NB2 mean and dispersion of an i.i.d. sample.

    The MLE of the mean is the sample mean for any alpha; alpha maximises the
    profile likelihood and is 0 (Poisson) when the sample is not overdispersed
    (its variance, divisor n, does not exceed its mean). Returns (mu, alpha, loglik).
    One row of :func:`nb_intercept_mle_batch`, so a
    series gets the same estimate alone or in a batch.
    """
    y = np.asarray(y, dtype=np.int64)
    mu, alpha, ll = nb_intercept_mle_batch(y[None, :])
    return float(mu[0]), float(alpha[0]), float(ll[0])
