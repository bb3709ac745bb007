"""Per-observation pieces of the NB2 log-likelihood for one series (pure, elementwise).

The sums over k < y of the NB2 log-pmf and its derivatives in alpha, and the function
h(u) = (log1p(u) - u/(1+u)) / u^2 that keeps them free of cancellation as alpha -> 0;
shared by the per-series solver (:mod:`~forecast.models._glmfit`), the batched one and
the intercept-only fits.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from forecast.numerics import log1p_ratio as _log1p_ratio  # noqa: F401  (re-exported)

# Above this count the sums over k < y come from digamma/trigamma instead of a table;
# the table is exact as alpha -> 0, the special functions lose digits there.
_TABLE_MAX_Y = 100_000
# h(u) = (log1p(u) - u/(1+u)) / u^2 and h'(u) cancel badly for small u: use their series.
_SERIES_U = 0.1
_K = np.arange(2, 26)
_H_POLY = ((-1.0) ** _K * (_K - 1) / _K)[::-1]
_DH_POLY = ((-1.0) ** _K[1:] * (_K[1:] - 1) * (_K[1:] - 2) / _K[1:])[::-1]


# Per-observation pieces: pure, elementwise functions (vectorisable across series later).
def _h_and_dh(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h(u) = (log1p(u) - u/(1+u)) / u^2 and h'(u), accurate for all u >= 0."""
    u = np.asarray(u, dtype=float)
    small = u < _SERIES_U
    v = np.where(small, 1.0, u)  # placeholder keeps the direct branch free of 0/0
    f = np.log1p(v) - v / (1 + v)
    h, dh = np.asarray(f / v**2), np.asarray(1 / (v * (1 + v) ** 2) - 2 * f / v**3)
    if small.any():  # the series only where it is needed (degree 24: as costly as the rest)
        h[small], dh[small] = np.polyval(_H_POLY, u[small]), np.polyval(_DH_POLY, u[small])
    return h, dh


def _dispersion_sums(y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S_0 = sum_{k<y} log(1 + k a), S_1 = sum k/(1 + k a), S_2 = sum k^2/(1 + k a)^2."""
    if alpha == 0.0:
        yf = y.astype(float)
        return np.zeros_like(yf), yf * (yf - 1) / 2, (yf - 1) * yf * (2 * yf - 1) / 6
    ymax = int(y.max()) if y.size else 0
    if ymax <= _TABLE_MAX_Y:
        k = np.arange(ymax, dtype=float)
        ak = k / (1 + alpha * k)
        return tuple(np.concatenate(([0.0], np.cumsum(t)))[y] for t in (np.log1p(alpha * k), ak, ak**2))
    r, yf = 1 / alpha, y.astype(float)
    d0 = special.digamma(yf + r) - special.digamma(r)
    d1 = special.polygamma(1, r) - special.polygamma(1, yf + r)
    s0 = special.gammaln(yf + r) - special.gammaln(r) - yf * np.log(r)
    return s0, (yf - r * d0) / alpha, (yf - 2 * r * d0 + r * r * d1) / alpha**2
