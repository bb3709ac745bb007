r"""Stable numerics of the RPS (= CRPS for counts) beyond the dense support, used by scoring.

Two routes, both exact to ~1e-10 relative for any mean (checked against brute-force
sums in ``tests/test_scoring_exact.py``):

- **Closed form** for rows with one (zero-inflated) Poisson/NB2 component, via
  :math:`\mathrm{CRPS} = E|X-y| - \tfrac12 E|X-X'|`. With :math:`N \sim` NB2(mu, alpha),
  :math:`E|N-y| = y(2F(y-1)-1) + \mu - 2\mu F^{+}(y-2)` where :math:`F^{+}` is the cdf of
  NB with shape :math:`r+1` (the Poisson itself when alpha = 0), because
  :math:`k f(k) = \mu f^{+}(k-1)`; and, with :math:`a = \alpha\mu`,
  :math:`E|N-N'| = \frac{2\mu(1+a)}{1+2a}\,{}_2F_1\big(1-\tfrac1\alpha, \tfrac12; 2;
  \tfrac{4a(1+a)}{(1+2a)^2}\big)` (Wei & Held 2014 after a Pfaff transformation, whose
  argument stays in [0, 1); below alpha = 0.05 by Gauss-Legendre on Euler's integral,
  as scipy's ``hyp2f1`` fails for large ``1/alpha``); for the Poisson :math:`E|N-N'| = 2\mu e^{-2\mu}(I_0(2\mu) +
  I_1(2\mu))` (Skellam). Zero inflation :math:`\pi` adds a point mass at 0:
  :math:`E|X-y| = \pi y + (1-\pi)E|N-y|`, :math:`E|X-X'| = (1-\pi)^2E|N-N'| + 2\pi(1-\pi)\mu`.
  The cdfs are regularised incomplete gamma/beta functions, accurate in both tails.
- **Sum** for mixtures (cross terms have no closed form): :math:`\sum_{k>K}` of the
  squared terms in blocks; inside a block the pmf follows its ratio recurrence in log
  space (no overflow, no cancellation) and the survival function is anchored at the
  block's end by one exact incomplete-gamma/beta call, summed from the right.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from forecast.numerics import _ALPHA_POISSON, nb_cdf, nb_logpmf, nb_sf  # noqa: F401 (nb_sf: re-exported)


def crps_zinb(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Exact RPS of zero-inflated NB2 rows (Poisson for alpha ~ 0, no inflation for pi = 0)."""
    y = np.asarray(y, dtype=float)
    abs_dev = y * (2 * nb_cdf(y - 1, mu, alpha) - 1) + mu - 2 * mu * nb_cdf(y - 2, mu, alpha, 1.0)
    gini = np.empty(mu.shape)
    pois = alpha < _ALPHA_POISSON
    m = 2 * mu[pois]
    gini[pois] = m * (special.i0e(m) + special.i1e(m))
    a, x = alpha[~pois], alpha[~pois] * mu[~pois]
    z = 4 * x * (1 + x) / (1 + 2 * x) ** 2
    small = a < _ALPHA_QUAD  # scipy's hyp2f1 returns NaN for 1 - 1/alpha below about -1e4
    h = np.empty(a.shape)
    h[small] = _hyp_quad(1 / a[small], z[small])
    h[~small] = special.hyp2f1(1 - 1 / a[~small], 0.5, 2.0, z[~small])
    gini[~pois] = 2 * mu[~pois] * (1 + x) / (1 + 2 * x) * h
    e_abs = pi * y + (1 - pi) * abs_dev
    e_pair = (1 - pi) ** 2 * gini + 2 * pi * (1 - pi) * mu
    return np.maximum(e_abs - 0.5 * e_pair, 0.0)


_ALPHA_QUAD = 0.05       # below this 2F1(1 - r, 1/2; 2; z) is integrated numerically
_GL_X, _GL_W = np.polynomial.legendre.leggauss(96)


def _hyp_quad(r: np.ndarray, z: np.ndarray) -> np.ndarray:
    r""":math:`{}_2F_1(1-r, \tfrac12; 2; z)` for r >= 20, 0 <= z < 1, by Gauss-Legendre.

    Euler's integral with :math:`t = \sin^2\theta` gives
    :math:`\frac4\pi\int_0^{\pi/2}\cos^2\theta\,(1 - z\sin^2\theta)^{r-1}\,d\theta`, a smooth
    bump at 0 of width about :math:`1/\sqrt{(r-1)z}`: integrating over
    :math:`[0, T]` with :math:`T = \min(\pi/2, \tfrac\pi2\sqrt{80/((r-1)z)})` leaves out
    less than :math:`e^{-80}` of it (:math:`\sin\theta \ge 2\theta/\pi`).
    """
    with np.errstate(divide="ignore"):
        T = np.minimum(np.pi / 2, np.pi / 2 * np.sqrt(80 / ((r - 1) * z)))
    theta = (T / 2)[:, None] * (_GL_X + 1)
    f = np.cos(theta) ** 2 * np.exp((r - 1)[:, None] * np.log1p(-z[:, None] * np.sin(theta) ** 2))
    return 4 / np.pi * (T / 2) * (f @ _GL_W)


def _log_ratio(ks: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log f(k)/f(k-1) = log(mu/(1+alpha mu)) + log1p(alpha (k-1)) - log k, shape (m, B)."""
    with np.errstate(divide="ignore"):
        return (np.log(mu / (1 + alpha * mu))[:, None] + np.log1p(alpha[:, None] * (ks - 1)) - np.log(ks))


def _sf_block(comps: tuple, logf: np.ndarray, s_prev: np.ndarray, ks: np.ndarray):
    """S(k) = sum_c w_c (1 - pi_c) P_c(Y > k) for consecutive ``ks``, shape (m, B); also
    log f_c and S_c at the block's end, to carry into the next block.

    ``logf`` (C, m) is log f_c(ks[0]) and ``s_prev`` (C, m) is S_c(ks[0] - 1). The pmf
    follows its ratio recurrence in log space (no overflow); S_c is anchored by one exact
    call at the block's end and summed from the right, so neither a difference of
    survival values near 1 nor a product of ratios is formed. Where the block holds a
    fair share of the mass its pmf is rescaled to the exact S_c(start - 1) - S_c(end):
    rounding in the log recurrence (~1e-15 per step) would otherwise accumulate over the
    10^6 steps a mean of 10^6 takes.
    """
    w, mu, alpha, pi = comps
    S, nxt, s_end = np.zeros((mu.shape[1], ks.size)), np.empty(logf.shape), np.empty(logf.shape)
    for c in range(mu.shape[0]):
        m, a, lf0 = mu[c], alpha[c], logf[c][:, None]
        with np.errstate(invalid="ignore"):  # -inf + -inf steps of zero-mean padding stay -inf
            lf = np.concatenate([lf0, lf0 + np.cumsum(_log_ratio(ks[1:], m, a), axis=1)], axis=1)
        f = np.exp(lf)
        s_end[c] = nb_sf(ks[-1], m, a)
        mass, total = s_prev[c] - s_end[c], f.sum(axis=1)
        fix = (mass > 1e-6 * s_prev[c]) & (total > 0)
        scale = np.where(fix, mass / np.where(fix, total, 1.0), 1.0)
        f *= scale[:, None]
        upper = np.cumsum(f[:, :0:-1], axis=1)[:, ::-1]  # sum_{j=k+1}^{k_end} f(j)
        Sc = s_end[c][:, None] + np.concatenate([upper, np.zeros((m.size, 1))], axis=1)
        S += (w[c] * (1 - pi[c]))[:, None] * np.minimum(Sc, 1.0)
        nxt[c] = lf[:, -1] + np.log(scale) + _log_ratio(ks[-1:] + 1, m, a)[:, 0]
    return S, np.nan_to_num(nxt, nan=-np.inf), s_end


def _start(comps: tuple, k0: int) -> tuple[np.ndarray, np.ndarray]:
    """log f_c(k0) and S_c(k0 - 1), each (C, m)."""
    mu, alpha = comps[1], comps[2]
    C, n = mu.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        lf = np.stack([nb_logpmf(np.full(n, float(k0)), mu[c], alpha[c]) for c in range(C)]) if C \
            else np.zeros((0, n))
    s = np.stack([nb_sf(k0 - 1, mu[c], alpha[c]) for c in range(C)]) if C else np.zeros((0, n))
    return np.nan_to_num(lf, nan=-np.inf), s


def param_sf_block(comps: tuple, k0: int, B: int) -> np.ndarray:
    """S(k) = sum_c w_c (1 - pi_c) P_c(Y > k) for k = k0..k0+B-1 (k0 >= 1), shape (m, B)."""
    logf, s_prev = _start(comps, k0)
    return _sf_block(comps, logf, s_prev, k0 + np.arange(B, dtype=float))[0]


def rps_beyond(comps: tuple, K: int, y: np.ndarray, m2: np.ndarray, tol: float) -> np.ndarray:
    r"""RPS terms for k > K, :math:`\sum_{k>K}(F(k) - [y\le k])^2`, of parametric rows ``comps``.

    ``comps = (w, mu, alpha, pi)``, each (C, m). Beyond ``K`` only the parametric part
    is left (mass without a form sits at ``K + 1``), so :math:`S(k) = \sum_c w_c(1-\pi_c)S_c(k)`.
    Blocks of ``k`` are added until the rest is provably small: for ``k >= y`` the
    remaining terms sum to at most :math:`S^{3/2}\sqrt{EY^2}`; before ``y``, once
    :math:`2\sqrt{S\,EY^2}` is negligible every remaining term is 1 and they are counted.
    Cost: one exp per (row, component, k) over the support actually needed.
    """
    total, act, k0, B = np.zeros(y.size), np.arange(y.size), K + 1, 64
    logf, s_prev = _start(comps, k0)
    while act.size:
        ks = k0 + np.arange(B, dtype=float)
        S, logf[:, act], s_prev[:, act] = _sf_block(tuple(a[:, act] for a in comps), logf[:, act],
                                                    s_prev[:, act], ks)
        ya = y[act, None]
        total[act] += np.where(ks >= ya, S * S, (1 - S) ** 2).sum(axis=1)
        last, s = ks[-1], S[:, -1]
        settled = (y[act] <= last + 1) & (s**1.5 * np.sqrt(m2[act]) <= tol)
        jump = (y[act] > last + 1) & (2 * np.sqrt(s * m2[act]) <= tol)
        total[act[jump]] += y[act[jump]] - 1 - last
        act, k0, B = act[~(settled | jump)], k0 + B, min(2 * B, 4096)
    return total


def single_component(comps: tuple) -> np.ndarray:
    """Rows whose parametric form is one component of weight 1 (others are zero-weight padding)."""
    w = comps[0]
    if not w.shape[0]:
        return np.zeros(w.shape[1], bool)
    return (w.max(axis=0) >= 1 - 1e-12) & (w.sum(axis=0) <= 1 + 1e-12)
