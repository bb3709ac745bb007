r"""Predictive count distributions shared by every model: :class:`CountForecast`.

One object holds the forecast distribution of many rows (row = one series x one
future period): a dense pmf over ``0..K``, the mass beyond ``K`` per row and, where
the model has one, the parametric form, so outcomes above ``K`` still score exactly.

Notes
-----
Every parametric row is a (mixture of) zero-inflated NB2 component(s)

.. math::

    f(k) = \pi\,[k=0] + (1-\pi)\,\frac{\Gamma(k+r)}{\Gamma(r)\,k!}
           \Big(\frac{r}{r+\mu}\Big)^{r}\Big(\frac{\mu}{r+\mu}\Big)^{k}, \qquad r = 1/\alpha,

with mean :math:`(1-\pi)\mu` and variance :math:`(1-\pi)\mu(1+\alpha\mu+\pi\mu)`;
NB2 is :math:`\pi=0` (variance :math:`\mu+\alpha\mu^2`), the Poisson also :math:`\alpha=0`.
``r`` is never formed for the pmf: :math:`f(k)/f(k-1) = \frac{\mu}{k}\frac{1+\alpha(k-1)}{1+\alpha\mu}`
and :math:`\log f(0) = -\mu\log(1+\alpha\mu)/(\alpha\mu)` are smooth as :math:`\alpha\to0`,
so NB2 tends to the Poisson without cancellation.

**Parametric form.** ``components = (w, mu, alpha, pi)``, four ``(C, n_rows)`` arrays.
Poisson/NB/ZI forecasts have ``C = 1, w = 1``; empirical ones (samples, dense pmf)
``C = 0``; a mixture stacks its members' components with weights multiplied, so rows
pooling an empirical member have :math:`\sum_c w_c < 1`. Beyond ``K``

.. math:: F(k) = F(K) + \sum_c w_c\,[S_c(K) - S_c(k)], \qquad S_c(k) = P_c(Y>k),

the empirical remainder of the tail having no known location.

**Memory and time.** The pmf is ``n_rows x (K+1)`` float64: 1e6 rows take 490 MB at
``K = 60`` and 1.6 GB at the default cap ``K = 200``. Every pass works in row blocks,
so temporaries stay at a few MB; ``mixture`` allocates only its output, ``concat`` one
padded copy per part. Building is dominated by one cumulative product over the grid.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

TAIL_TOL = 1e-6         # K: smallest k leaving P(Y > k) < TAIL_TOL on every row
QUANTILE_TOL = 1e-12    # quantile(q) = min{k : F(k) >= q - QUANTILE_TOL}
K_CAP_MIN = 200         # K <= max(K_CAP_MIN, 10 * history_max)
K_CAP_MAX = 100_000     # and never above this, whatever the history
_ALPHA_POISSON = 1e-20  # betainc needs finite r = 1/alpha; below this NB2 == Poisson to 1e-15
_LOG_TINY = -700.0      # exp(-700) ~ 1e-304 is still a normal float
_CHUNK = 1 << 11        # rows per block: temporaries stay in cache
_INDEX_COLS = ("unique_id", "ds", "h")


def _chunks(n: int, size: int = _CHUNK):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _cap(history_max: float | None) -> int:
    if history_max is None:
        return K_CAP_MIN
    if not np.isfinite(history_max) or history_max < 0:
        raise ValueError(f"history_max must be a finite count >= 0. Got {history_max!r} instead.")
    # The absolute ceiling keeps a runaway series (an explosive fit, counts in the
    # millions) from allocating a dense pmf of absurd width; its mass goes to the tail.
    return min(K_CAP_MAX, max(K_CAP_MIN, int(10 * history_max)))


def _check_index(index: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(index, pd.DataFrame) or not set(_INDEX_COLS) <= set(index.columns):
        raise ValueError(f"index must be a DataFrame with columns {list(_INDEX_COLS)}.")
    return index.reset_index(drop=True)


def _param(value, n: int, name: str, upper: float = np.inf) -> np.ndarray:
    a = np.array(np.broadcast_to(np.asarray(value, dtype=float), (n,)))
    bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0) & (a <= upper)))
    if bad.size:
        raise ValueError(f"'{name}' must be finite and in [0, {upper}]; {bad.size} row(s) fail "
                         f"(first: row {bad[0]}, value {a[bad[0]]!r}).")
    return a


def _fraction(level: float) -> float:
    f = level / 100 if level > 1 else level
    if not 0 < f < 1:
        raise ValueError(f"level must be in (0, 1) or a percentage in (1, 100). Got {level!r} instead.")
    return float(f)


def _log1p_ratio(x: np.ndarray) -> np.ndarray:
    """log(1+x)/x with its limit 1 at x = 0 (the alpha -> 0 limit of log f(0))."""
    pos = x > 0
    return np.where(pos, np.log1p(x) / np.where(pos, x, 1.0), 1.0)


def _nb_pmf_grid(mu: np.ndarray, alpha: np.ndarray, K: int, out: np.ndarray | None = None) -> np.ndarray:
    """NB2 pmf on 0..K, (n, K+1), as a cumulative product of the ratios f(k)/f(k-1).

    Products avoid a log1p and an exp per cell (5x faster than log space); rows whose
    f(0) underflows (mu above ~700) are done in log space instead.
    """
    k = np.arange(1, K + 1, dtype=float)
    out = np.empty((mu.size, K + 1)) if out is None else out
    c = mu / (1 + alpha * mu)
    if alpha.size and alpha.min() == alpha.max():  # one dispersion for all rows: a single outer product
        np.multiply(c[:, None], (1 + alpha[0] * (k - 1)) / k, out=out[:, 1:])
    else:
        np.multiply(alpha[:, None], k - 1, out=out[:, 1:])
        out[:, 1:] += 1
        out[:, 1:] *= c[:, None]
        out[:, 1:] /= k
    logf0 = -mu * _log1p_ratio(alpha * mu)
    low = np.flatnonzero(logf0 < _LOG_TINY)
    log_ratio = np.log(out[low, 1:])  # mu > 700 there, so every ratio is > 0
    out[:, 0] = np.exp(logf0)
    np.cumprod(out, axis=1, out=out)
    out[low, 1:] = np.exp(logf0[low, None] + np.cumsum(log_ratio, axis=1))
    return out


def _log_rising_ratio(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """log G(y+r) - log G(r) - y log r for r >= 1e3, without cancellation.

    Stirling's series log G(z) = (z - 1/2) log z - z + log(2 pi)/2 + 1/(12z) - 1/(360z^3)
    + 1/(1260z^5) (error below 1/(1680 z^7) <= 1e-24 here) gives, with u = y/r,
    r g(u) - log1p(u)/2 + c(r + y) - c(r), where g(u) = (1+u) log1p(u) - u is summed
    as its series sum_{n>=2} (-u)^n / (n(n-1)) for u < 0.01 (it cancels there).
    """
    u = y / r
    g = (1 + u) * np.log1p(u) - u
    s = u < 0.01
    us = u[s]
    g[s] = sum((-us) ** n / (n * (n - 1)) for n in range(2, 11))

    def c(z):
        return 1 / (12 * z) - 1 / (360 * z**3) + 1 / (1260 * z**5)

    return r * g - 0.5 * np.log1p(u) + (c(r + y) - c(r))


def _nb_logpmf(y: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log f(y) of NB2 per element (1-D arrays of equal length, y integer-valued >= 0)."""
    # T = log G(y+r) - log G(r) - y log r = sum_{j<y} log(1 + alpha j): by gammaln while
    # r <= 1e3 (absolute error ~1e-12); for smaller alpha gammaln(r) is so large that
    # the difference cancels, so sum the terms directly for y <= 256 and use Stirling's
    # series beyond (a sum over y terms would need y floats: 1e9 of them for y = 1e9).
    T = np.zeros(y.shape)
    big = alpha >= 1e-3
    r = 1.0 / alpha[big]
    T[big] = special.gammaln(y[big] + r) - special.gammaln(r) - y[big] * np.log(r)
    far = ~big & (alpha > 0) & (y > 256)
    T[far] = _log_rising_ratio(y[far], 1.0 / alpha[far])
    small = np.flatnonzero(~big & (alpha > 0) & (y > 1) & ~far)
    if small.size:
        n_terms = y[small].astype(np.int64)
        owner = np.repeat(np.arange(small.size), n_terms)
        j = np.arange(owner.size) - np.repeat(np.cumsum(n_terms) - n_terms, n_terms)
        T[small] = np.bincount(owner, np.log1p(alpha[small][owner] * j), minlength=small.size)
    x = alpha * mu
    return T - special.gammaln(y + 1) + special.xlogy(y, mu) - y * np.log1p(x) - mu * _log1p_ratio(x)


def _nb_sf(k: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """P(Y > k) of NB2 per element, k >= 0: I_{x/(1+x)}(k+1, 1/alpha) with x = alpha mu."""
    out = np.empty(mu.shape)
    pois = alpha < _ALPHA_POISSON
    out[pois] = special.gammainc(k[pois] + 1, mu[pois])
    x = alpha[~pois] * mu[~pois]
    out[~pois] = special.betainc(k[~pois] + 1, 1 / alpha[~pois], x / (1 + x))
    return out


def _comp_sf(k, comps: tuple) -> np.ndarray:
    """w_c (1 - pi_c) S_c(k) per component, shape (C, m), for k >= 0 scalar or (m,)."""
    w, mu, alpha, pi = comps
    kk = np.broadcast_to(np.asarray(k, dtype=float), mu.shape)
    return w * (1 - pi) * _nb_sf(kk.ravel(), mu.ravel(), alpha.ravel()).reshape(mu.shape)


def _comp_logpmf(y: np.ndarray, comps: tuple) -> np.ndarray:
    """log sum_c w_c f_c(y), shape (m,), for integer y >= 0."""
    w, mu, alpha, pi = comps
    yy = np.broadcast_to(y.astype(float), mu.shape)
    lf = _nb_logpmf(yy.ravel(), mu.ravel(), alpha.ravel()).reshape(mu.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        lz = np.where(yy == 0, np.log(pi + (1 - pi) * np.exp(lf)), np.log1p(-pi) + lf)
        return special.logsumexp(lz, axis=0, b=w)  # zero-weight (padding) components drop out


def _needed_k(mu: np.ndarray, alpha: np.ndarray, pi: np.ndarray, cap: int) -> int:
    """Smallest K with (1 - pi) P(Y > K) < TAIL_TOL on every row, at most ``cap``."""
    # Walk k upwards with the pmf recurrence, dropping each row once its tail is small:
    # most rows (means < 5) leave within a few steps, far cheaper than a ppf per row.
    # 1 - F carries ~1e-16 absolute error, immaterial against TAIL_TOL. Rows whose
    # f(0) underflows walk in log space.
    logf0, c, K = -mu * _log1p_ratio(alpha * mu), mu / (1 + alpha * mu), 0
    for in_logs in (False, True):
        sel = (logf0 < _LOG_TINY) == in_logs
        F, a, cc, scale, k = np.exp(logf0[sel]), alpha[sel], c[sel], 1 - pi[sel], 0
        f = logf0[sel] if in_logs else F
        while k < cap:
            live = scale * (1 - F) >= TAIL_TOL
            if not live.any():
                break
            if not live.all():
                f, F, a, cc, scale = (v[live] for v in (f, F, a, cc, scale))
            k += 1
            ratio = cc * (1 + a * (k - 1)) / k
            f = f + np.log(ratio) if in_logs else f * ratio
            F = F + (np.exp(f) if in_logs else f)
        K = max(K, k)
    return K


class CountForecast:
    """Predictive count distribution for many forecast rows.

    Build one with :meth:`poisson`, :meth:`negbin`, :meth:`zero_inflated`,
    :meth:`from_samples`, :meth:`from_pmf`, :meth:`mixture` or :meth:`concat`;
    ``__init__`` takes already-checked arrays and serves those constructors.

    Attributes
    ----------
    index : DataFrame with ``unique_id, ds, h`` (optionally ``cutoff``), RangeIndex.
    model : model name shown by :meth:`to_frame`.
    family : ``poisson, negbin, zip, zinb, samples, pmf, mixture`` or ``mixed``.
    n_rows, K : number of rows; the dense support is ``0..K``.
    pmf : (n_rows, K+1) float64 :math:`P(Y=k)`; rows sum to ``1 - tail``. Read-only.
    tail : (n_rows,) :math:`P(Y>K)`; below ``TAIL_TOL`` unless ``K`` hit its cap.
    components : ``(w, mu, alpha, pi)``, each (C, n_rows); C = 0 without a parametric form.
    paths : (n_series, horizon, n_paths) ints or None; row = series * horizon + h - 1.
    mean, var : (n_rows,); closed form where parametric, law of total variance for
        mixtures, else moments of the paths or of the pmf (mass beyond K ignored).
    """

    def __init__(self, index, model, pmf, tail, components, mean, var, paths=None, family="pmf",
                 row_models=None):
        self.index, self.model, self.family = index, str(model), family
        self.pmf, self.tail, self.components, self.paths = pmf, tail, components, paths
        self.mean, self.var, self._row_models = mean, var, row_models
        self.n_rows, self.K = pmf.shape[0], pmf.shape[1] - 1
        for a in (pmf, tail, mean, var, *components):
            a.flags.writeable = False  # shared by scoring, ensembles and plots: no silent edits

    # ------------------------------------------------------------------ constructors
    @classmethod
    def _parametric(cls, index, mu, alpha, pi, model, family, history_max) -> CountForecast:
        index = _check_index(index)
        n = len(index)
        mu, alpha, pi = _param(mu, n, "mu"), _param(alpha, n, "alpha"), _param(pi, n, "pi", 1.0)
        K = _needed_k(mu, alpha, pi, _cap(history_max))
        pmf, inflated = np.empty((n, K + 1)), pi.any()
        for sl in _chunks(n):
            _nb_pmf_grid(mu[sl], alpha[sl], K, out=pmf[sl])
            if inflated:
                pmf[sl] *= (1 - pi[sl])[:, None]
                pmf[sl, 0] += pi[sl]
        tail = (1 - pi) * _nb_sf(np.full(n, float(K)), mu, alpha)
        mean, var = (1 - pi) * mu, (1 - pi) * mu * (1 + alpha * mu + pi * mu)
        comps = tuple(a[None, :] for a in (np.ones(n), mu, alpha, pi))
        return cls(index, model, pmf, tail, comps, mean, var, family=family)

    @classmethod
    def poisson(cls, index, mu, *, model: str, history_max: float | None = None) -> CountForecast:
        """Poisson rows, :math:`P(Y=k) = e^{-\\mu}\\mu^k/k!`.

        ``mu`` (scalar or per row) >= 0; ``history_max``, the largest count in the
        history, raises the support cap to ``10 * history_max`` when above 20.
        """
        return cls._parametric(index, mu, 0.0, 0.0, model, "poisson", history_max)

    @classmethod
    def negbin(cls, index, mu, alpha, *, model: str, history_max: float | None = None) -> CountForecast:
        """NB2 rows, :math:`\\operatorname{Var} Y = \\mu + \\alpha\\mu^2`; ``alpha = 0`` is the Poisson."""
        return cls._parametric(index, mu, alpha, 0.0, model, "negbin", history_max)

    @classmethod
    def zero_inflated(cls, index, mu, pi, alpha=None, *, model: str,
                      history_max: float | None = None) -> CountForecast:
        """Zero-inflated Poisson (``alpha=None``) or NB2: :math:`P(0) = \\pi + (1-\\pi)f(0)`."""
        family = "zip" if alpha is None else "zinb"
        return cls._parametric(index, mu, 0.0 if alpha is None else alpha, pi, model, family, history_max)

    @classmethod
    def from_samples(cls, index, paths, *, model: str, history_max: float | None = None) -> CountForecast:
        """Empirical distribution of simulated paths, kept for sums over series or periods.

        ``paths`` is an int array (n_series, horizon, n_paths); ``index`` rows run
        series-major then ``h = 1..horizon`` (row = s * horizon + h - 1). ``K`` is the
        largest simulated count, capped as for the parametric families (draws above the
        cap count as ``tail``). Mean and variance are the path moments (ddof 0).
        """
        index = _check_index(index)
        paths = np.asarray(paths)
        if paths.ndim != 3 or not np.issubdtype(paths.dtype, np.integer) or paths.shape[2] < 1:
            raise ValueError(f"paths must be an int array (n_series, horizon, n_paths); got {paths.shape}.")
        S, H, P = paths.shape
        if S * H != len(index) or not np.array_equal(index["h"].to_numpy(), np.tile(np.arange(1, H + 1), S)):
            raise ValueError("index rows must be series-major then h = 1..horizon, one per (series, h).")
        v = paths.reshape(S * H, P)
        if v.size and v.min() < 0:
            raise ValueError("paths hold negative counts.")
        n, K = S * H, int(min(v.max(initial=0), _cap(history_max)))
        pmf, tail, mean, var = np.empty((n, K + 1)), np.empty(n), np.empty(n), np.empty(n)
        for sl in _chunks(n, max(1, (1 << 22) // P)):  # bounds the (rows x paths) temporaries
            vs = v[sl]
            flat = (np.arange(vs.shape[0])[:, None] * (K + 2) + np.minimum(vs, K + 1)).ravel()
            counts = np.bincount(flat, minlength=vs.shape[0] * (K + 2)).reshape(-1, K + 2)
            pmf[sl], tail[sl] = counts[:, :K + 1] / P, counts[:, K + 1] / P
            mean[sl], var[sl] = vs.mean(axis=1), vs.var(axis=1)
        kept = paths.view()
        kept.flags.writeable = False  # a read-only view: the caller's array keeps its flags
        return cls(index, model, pmf, tail, _no_components(n), mean, var, kept, family="samples")

    @classmethod
    def from_pmf(cls, index, pmf, *, model: str, tail=None) -> CountForecast:
        """Dense pmf over ``0..K`` per row (e.g. a discretised Gaussian), copied.

        With ``tail=None`` the mass beyond ``K`` is ``1 - row sum``; rows summing to
        more than 1 by at most 1e-9 (float noise) are renormalised to 1, more than that
        raises ``ValueError``. A given ``tail`` must satisfy ``|row sum + tail - 1| <= 1e-9``
        and rows are rescaled to sum to ``1 - tail``. Mass beyond ``K`` has no known
        location here: quantiles and draws falling there are reported as ``K + 1``.
        """
        index = _check_index(index)
        n = len(index)
        p = np.array(pmf, dtype=float)  # our own copy: rescaled in place, then frozen
        if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 1 or not np.isfinite(p).all() or (p < 0).any():
            raise ValueError(f"pmf must be finite, >= 0 and of shape ({n}, K+1); got shape {p.shape}.")
        s = p.sum(axis=1)
        t = np.clip(1 - s, 0, None) if tail is None else _param(tail, n, "tail", 1.0)
        bad = np.flatnonzero(s > 1 + 1e-9 if tail is None else np.abs(s + t - 1) > 1e-9)
        if bad.size:
            what = "pmf rows sum to more than 1" if tail is None else "pmf row sum + tail is not 1 (1e-9)"
            raise ValueError(f"{what} in {bad.size} row(s) (first: row {bad[0]}, sum {s[bad[0]]!r}).")
        fix = np.abs(s - (1 - t)) > 1e-15
        p[fix] *= ((1 - t[fix]) / s[fix])[:, None]
        k = np.arange(p.shape[1], dtype=float)
        mean = p @ k
        return cls(index, model, p, t, _no_components(n), mean, np.maximum(p @ (k * k) - mean**2, 0.0))

    @classmethod
    def mixture(cls, members: Sequence[CountForecast], weights, *, model: str) -> CountForecast:
        """Linear pool :math:`\\sum_m w_m p_m` of forecasts of the same rows.

        ``weights`` is (n_members,) or (n_members, n_rows), >= 0, renormalised to sum to
        1 per row; members must match on unique_id/ds/h row by row (``ValueError``).
        Members' parametric components are kept, weights multiplied. Paths are kept only
        if every member has paths of one shape and weights are constant within each
        series: path ``j`` of series ``s`` is path ``j`` of the member whose cumulative
        weight band holds ``(j + 0.5) / n_paths`` (deterministic stratified allocation,
        no rng, each path's joint structure intact). Their empirical law matches the
        pool up to weights rounded to multiples of ``1 / n_paths``; ``pmf`` is exact.
        """
        members = list(members)
        if not members:
            raise ValueError("mixture needs at least one member.")
        ref, n, M = members[0].index, members[0].n_rows, len(members)
        for i, m in enumerate(members[1:], 1):
            if m.n_rows != n or any(not np.array_equal(ref[c].to_numpy(), m.index[c].to_numpy())
                                    for c in _INDEX_COLS):
                raise ValueError(f"mixture members must share unique_id/ds/h row by row; member {i} "
                                 f"({m.model!r}) differs.")
        w = np.asarray(weights, dtype=float)
        w = np.broadcast_to(w[:, None], (M, n)) if w.shape == (M,) else w
        if w.shape != (M, n) or not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=0) <= 0).any():
            raise ValueError(f"weights must be finite, >= 0, not all 0, of shape ({M},) or ({M}, {n}).")
        w = w / w.sum(axis=0)
        K = max(m.K for m in members)
        pmf, tail = np.empty((n, K + 1)), np.empty(n)
        for sl in _chunks(n):  # pad members block by block: no member-sized temporaries
            parts = [m._padded(K, sl) for m in members]
            pmf[sl] = sum(wm[sl, None] * p for wm, (p, _) in zip(w, parts))
            tail[sl] = sum(wm[sl] * t for wm, (_, t) in zip(w, parts))
        comps = tuple(np.concatenate([m.components[j] * (wm if j == 0 else 1) for wm, m in zip(w, members)])
                      for j in range(4))
        mean = sum(wm * m.mean for wm, m in zip(w, members))
        var = sum(wm * (m.var + (m.mean - mean) ** 2) for wm, m in zip(w, members))
        return cls(ref, model, pmf, tail, comps, mean, var, _mixture_paths(members, w), "mixture")

    @classmethod
    def concat(cls, forecasts: Sequence[CountForecast]) -> CountForecast:
        """Stack forecasts row-wise; ``K`` becomes the largest, parts padded exactly.

        Models may differ (``model`` joins the names, ``to_frame`` labels each row).
        Paths are kept when every part has paths of the same horizon and n_paths.
        """
        fs = list(forecasts)
        if not fs:
            raise ValueError("concat needs at least one forecast.")
        K, C = max(f.K for f in fs), max(f.components[0].shape[0] for f in fs)
        padded = [f._padded(K) for f in fs]
        comps = tuple(np.concatenate([np.pad(f.components[j], ((0, C - f.components[j].shape[0]), (0, 0)))
                                      for f in fs], axis=1) for j in range(4))
        models, families = sorted({f.model for f in fs}), {f.family for f in fs}
        labels = None if len(models) == 1 else np.concatenate(
            [np.full(f.n_rows, f.model, dtype=object) if f._row_models is None else f._row_models for f in fs])
        shapes = {None if f.paths is None else f.paths.shape[1:] for f in fs}
        paths = np.concatenate([f.paths for f in fs]) if None not in shapes and len(shapes) == 1 else None
        return cls(pd.concat([f.index for f in fs], ignore_index=True), "+".join(models),
                   np.concatenate([p for p, _ in padded]), np.concatenate([t for _, t in padded]), comps,
                   np.concatenate([f.mean for f in fs]), np.concatenate([f.var for f in fs]), paths,
                   families.pop() if len(families) == 1 else "mixed", labels)

    def subset(self, mask_or_idx) -> CountForecast:
        """Rows selected by a boolean mask or integer positions; ``K`` is unchanged.

        Paths are kept only if the selection is whole series (every ``h`` of each
        selected series, in order; series may be reordered), else dropped.
        """
        sel = np.asarray(mask_or_idx)
        if sel.dtype == bool and sel.shape != (self.n_rows,):
            raise ValueError(f"boolean mask must have shape ({self.n_rows},).")
        pos = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.intp).ravel()
        paths, H = None, 0 if self.paths is None else self.paths.shape[1]
        if H and pos.size % H == 0:
            start = pos[::H]
            if (start % H == 0).all() and np.array_equal(pos.reshape(-1, H), start[:, None] + np.arange(H)):
                paths = self.paths[start // H]
        return type(self)(self.index.iloc[pos].reset_index(drop=True), self.model, self.pmf[pos],
                          self.tail[pos], tuple(a[:, pos] for a in self.components), self.mean[pos],
                          self.var[pos], paths, self.family,
                          None if self._row_models is None else self._row_models[pos])

    # ------------------------------------------------------------------ evaluation
    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        paths = None if self.paths is None else self.paths.shape
        return (f"CountForecast(model={self.model!r}, family={self.family!r}, n_rows={self.n_rows}, "
                f"K={self.K}, max_tail={self.tail.max(initial=0):.2e}, paths={paths})")

    def cdf(self, k) -> np.ndarray:
        """:math:`F(k) = P(Y \\le k)` per row, ``k`` scalar or broadcastable to (n_rows,).

        From the pmf up to ``K``; beyond, exact through the parametric form
        (``1 - tail`` where there is none).
        """
        k = self._points(k)
        out = np.zeros(self.n_rows)
        ins = np.flatnonzero((k >= 0) & (k <= self.K))
        out[ins] = self._prefix(k[ins], ins)
        rows = np.flatnonzero(k > self.K)
        if rows.size:
            comps = self._comp(rows)
            gain = np.maximum(_comp_sf(self.K, comps) - _comp_sf(k[rows], comps), 0).sum(axis=0)
            out[rows] = self._prefix(np.full(rows.size, self.K), rows) + gain
        return np.minimum(out, 1.0)  # rounding in the sums can reach 1 + 2e-16

    def pmf_at(self, y) -> np.ndarray:
        """:math:`P(Y = y_i)` per row for integer ``y``; exact beyond ``K`` where parametric, else 0."""
        y = self._points(y, integer=True)
        out = np.zeros(self.n_rows)
        ins = np.flatnonzero((y >= 0) & (y <= self.K))
        out[ins] = self.pmf[ins, y[ins].astype(np.intp)]
        rows = np.flatnonzero(y > self.K)
        if rows.size and self.components[0].shape[0]:
            out[rows] = np.exp(_comp_logpmf(y[rows], self._comp(rows)))
        return out

    def logpmf_at(self, y) -> np.ndarray:
        """:math:`\\log P(Y = y_i)`; from the parametric form on fully parametric rows, so it
        stays finite where :math:`P` underflows (the log score needs that)."""
        y = self._points(y, integer=True)
        with np.errstate(divide="ignore"):
            out = np.log(self.pmf_at(y))
        rows = np.flatnonzero((self.components[0].sum(axis=0) >= 1 - 1e-12) & (y >= 0))
        if rows.size:
            out[rows] = _comp_logpmf(y[rows], self._comp(rows))
        return out

    def quantile(self, q) -> np.ndarray:
        """Smallest ``k`` with :math:`F(k) \\ge q - 10^{-12}`, int64.

        The tolerance keeps float noise in cumulative sums (0.7999999999999999 for 0.8)
        from moving a quantile up by one. Scalar ``q`` gives (n_rows,), a 1-D sequence
        (n_rows, len(q)). Beyond ``K`` the parametric form is searched.
        """
        qs = np.atleast_1d(np.asarray(q, dtype=float))
        if qs.ndim != 1 or not ((qs >= 0) & (qs <= 1)).all():
            raise ValueError(f"q must be in [0, 1]. Got {q!r} instead.")
        out = self._invert(np.broadcast_to(qs - QUANTILE_TOL, (self.n_rows, qs.size)))
        return out[:, 0] if np.ndim(q) == 0 else out

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval ``(quantile(a), quantile(1 - a))`` with ``a = (1 - level) / 2``.

        ``level`` as 0.8 or 80. :math:`P(lo \\le Y \\le hi) \\ge` level, usually above it
        (the law is discrete), and intervals are nested across levels.
        """
        a = (1 - _fraction(level)) / 2
        qs = self.quantile([a, 1 - a])
        return qs[:, 0], qs[:, 1]

    def prob_at_least(self, k) -> np.ndarray:
        """:math:`P(Y \\ge k) = 1 - F(k-1)` for integer ``k``.

        Values below 1e-6 (where ``1 - F`` would keep only an absolute 1e-16) are
        recomputed as tail plus the upper pmf sum, and beyond ``K`` from the survival
        function, so small exceedance probabilities keep their relative precision.
        """
        s = self._points(k, integer=True) - 1
        out = np.ones(self.n_rows)
        ins = np.flatnonzero((s >= 0) & (s < self.K))
        out[ins] = 1 - self._prefix(s[ins], ins)
        small = ins[out[ins] < 1e-6]
        out[small] = self.tail[small] + self._prefix(s[small] + 1, small, upper=True)
        rows = np.flatnonzero(s >= self.K)
        if rows.size:
            comps = self._comp(rows)
            out[rows] = self._tail_np(rows, comps) + _comp_sf(s[rows], comps).sum(axis=0)
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws per row, (n_rows, n) int64, by inverse CDF on the pmf.

        Draws in the tail come from the parametric form (``K + 1`` where there is none).
        ``rng`` is required: no global random state.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy Generator, e.g. np.random.default_rng(seed).")
        return self._invert(rng.random((self.n_rows, int(n))))

    def to_frame(self, levels: Sequence[float] = (50, 80, 95), thresholds: Sequence[int] = (1, 5)) -> pd.DataFrame:
        """Long frame ``unique_id, ds, [cutoff,] h, model, mean, lo-L, hi-L ..., p_ge_T ...``.

        ``lo``/``hi`` are int64 central-interval bounds, ``p_ge_T`` float64
        :math:`P(Y \\ge T)`; ``cutoff`` appears only when the index has it.
        """
        fr = [_fraction(lv) for lv in levels]
        Q = self.quantile([q for f in fr for q in ((1 - f) / 2, 1 - (1 - f) / 2)])
        data = {c: self.index[c] for c in ("unique_id", "ds", "cutoff", "h") if c in self.index.columns}
        data["model"] = np.full(self.n_rows, self.model, dtype=object) if self._row_models is None \
            else self._row_models
        data["mean"] = np.asarray(self.mean, dtype=float)
        for i, f in enumerate(fr):
            name = f"{round(f * 100, 6):g}"
            data[f"lo-{name}"], data[f"hi-{name}"] = Q[:, 2 * i], Q[:, 2 * i + 1]
        for t in thresholds:
            data[f"p_ge_{t}"] = self.prob_at_least(t)
        return pd.DataFrame(data).astype({"model": str})

    # ------------------------------------------------------------------ internals
    def _points(self, k, integer: bool = False) -> np.ndarray:
        a = np.asarray(k, dtype=float)
        if not np.isfinite(a).all() or (integer and (a != np.floor(a)).any()):
            raise ValueError(f"expected finite {'integer ' if integer else ''}values, got {k!r}.")
        return np.broadcast_to(np.floor(a), (self.n_rows,))

    def _comp(self, rows: np.ndarray) -> tuple:
        return tuple(a[:, rows] for a in self.components)

    def _prefix(self, k: np.ndarray, rows: np.ndarray, upper: bool = False) -> np.ndarray:
        """F(k_i) on ``rows`` (0 <= k <= K) by sequential cumsum, the sums ``_invert`` uses too;
        with ``upper`` the upper sum over j >= k_i instead."""
        ki, out = k.astype(np.intp), np.empty(rows.size)
        for sl in _chunks(rows.size):
            if upper:
                c, j = np.cumsum(self.pmf[rows[sl], ::-1], axis=1), self.K - ki[sl]
            else:
                c, j = np.cumsum(self.pmf[rows[sl], :int(ki[sl].max(initial=0)) + 1], axis=1), ki[sl]
            out[sl] = np.take_along_axis(c, j[:, None], axis=1)[:, 0]
        return out

    def _tail_np(self, rows: np.ndarray, comps: tuple) -> np.ndarray:
        """Tail mass beyond K that no component explains (exactly 0 on fully parametric rows)."""
        rest = self.tail[rows] - _comp_sf(self.K, comps).sum(axis=0)
        return np.where(comps[0].sum(axis=0) >= 1 - 1e-12, 0.0, np.maximum(rest, 0.0))

    def _invert(self, target: np.ndarray) -> np.ndarray:
        """Smallest k with F(k) >= target, for targets (n_rows, j) in [-1e-12, 1]."""
        # One searchsorted serves a block of 256 rows stacked at offsets 2r; offsets
        # below 512 round F and targets to 5.7e-14, far below QUANTILE_TOL.
        out = np.empty(target.shape, dtype=np.int64)
        for sl in _chunks(self.n_rows, 256):
            c = np.cumsum(self.pmf[sl], axis=1)
            r = np.arange(c.shape[0])[:, None]
            c += 2.0 * r
            pos = np.searchsorted(c.ravel(), (target[sl] + 2.0 * r).ravel())
            out[sl] = pos.reshape(target[sl].shape) - r * (self.K + 1)
        rows, cols = np.nonzero(out > self.K)
        if rows.size:
            out[rows, cols] = self._search_beyond(rows, target[rows, cols])
        return out

    def _search_beyond(self, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Smallest k > K with F(k) >= target (> F(K)) by doubling then bisection on the
        parametric cdf; ``K + 1`` where the parametric part cannot reach the target."""
        K, out = self.K, np.full(rows.size, self.K + 1, dtype=np.int64)
        comps = self._comp(rows)
        if not comps[0].shape[0]:
            return out
        base, sK = self._prefix(np.full(rows.size, K), rows), _comp_sf(K, comps)

        def F(k, i):
            c = tuple(a[:, i] for a in comps)
            return base[i] + np.maximum(sK[:, i] - _comp_sf(k, c), 0).sum(axis=0)

        idx = np.flatnonzero(base + sK.sum(axis=0) >= target)
        lo, hi, act = np.full(idx.size, K), np.full(idx.size, K + 1), np.arange(idx.size)
        for _ in range(62):
            act = act[F(hi[act], idx[act]) < target[idx[act]]]
            if not act.size:
                break
            lo[act], hi[act] = hi[act], K + 2 * (hi[act] - K)
        while (act := np.flatnonzero(hi - lo > 1)).size:
            mid = (lo[act] + hi[act]) // 2
            ok = F(mid, idx[act]) >= target[idx[act]]
            hi[act[ok]], lo[act[~ok]] = mid[ok], mid[~ok]
        out[idx] = hi
        return out

    def _padded(self, K: int, sl: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(pmf on 0..K, tail beyond K) of rows ``sl``, K >= self.K, extended by the parametric form."""
        if K == self.K:
            return self.pmf[sl], self.tail[sl]
        rows, k0 = np.arange(self.n_rows)[sl], self.K + 1
        p = np.zeros((rows.size, K + 1))
        p[:, :k0] = self.pmf[sl]
        comps = self._comp(rows)
        for w, mu, alpha, pi in zip(*comps):
            p[:, k0:] += (w * (1 - pi))[:, None] * _nb_pmf_grid(mu, alpha, K)[:, k0:]
        return p, self._tail_np(rows, comps) + _comp_sf(K, comps).sum(axis=0)


def _no_components(n: int) -> tuple:
    return tuple(np.empty((0, n)) for _ in range(4))


def _mixture_paths(members: list[CountForecast], w: np.ndarray) -> np.ndarray | None:
    ps = [m.paths for m in members]
    if any(p is None for p in ps) or len({p.shape for p in ps}) != 1:
        return None
    S, H, P = ps[0].shape
    wr = w.reshape(len(ps), S, H)
    if not (wr == wr[:, :, :1]).all():
        return None  # weights vary with h: no single member per path
    band = np.cumsum(wr[:, :, 0], axis=0)
    who = np.minimum((band[:, :, None] < (np.arange(P) + 0.5) / P).sum(axis=0), len(ps) - 1)  # (S, P)
    out = np.empty_like(ps[0])
    for m, p in enumerate(ps):
        np.copyto(out, p, where=(who == m)[:, None, :])
    return out
