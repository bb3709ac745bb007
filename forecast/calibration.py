r"""Calibration of count forecasts: non-randomised PIT, the Wei-Held test, reliability data.

Notes
-----
**Non-randomised PIT** (Czado, Gneiting & Held 2009). For a count outcome the PIT is
not a single number: given :math:`y` it is uniform on :math:`[F(y-1), F(y)]`, i.e.

.. math:: G(u \mid y) = \min\{1, \max\{0, (u - F(y-1)) / (F(y) - F(y-1))\}\},

and the PIT histogram shows :math:`\bar G(u) = n^{-1}\sum_i G_i(u \mid y_i)` differenced
over equal bins. If every :math:`Y_i \sim F_i`, :math:`E\,\bar G(u) = u`: each bin has
density 1.

**Calibration test** (Wei & Held 2014, R ``surveillance::calibrationTest``). For a
proper score :math:`S`, under calibration :math:`E_{F_i} S(F_i, Y_i) = E_i` and
:math:`\operatorname{Var}_{F_i} S(F_i, Y_i) = V_i`, so
:math:`z = \sum_i (S_i - E_i) / \sqrt{\sum_i V_i}` is approximately N(0, 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from forecast.distributions import CountForecast
from forecast.scoring import (
    LOG_FLOOR,
    VAR_FLOOR,
    _nb_sf,
    _outcomes,
    _param_sf_block,
    _scan,
    dss,
    log_score,
)

ZERO_MASS_TOL = 1e-12   # active PIT: rows with 1 - F(0) below this have no conditional law
TAIL_MASS_TOL = 1e-14   # calibration_test: parametric tail mass left out, per row
_CELLS = 1 << 20


# ----------------------------------------------------------------------------- PIT
@dataclass(frozen=True)
class PITHistogram:
    """Non-randomised PIT histogram.

    Attributes
    ----------
    edges : (bins + 1,) bin edges on [0, 1].
    density : (bins,) mean PIT mass per bin times ``bins``: 1.0 in every bin when calibrated.
    n : number of forecasts in the histogram.
    n_excluded : ``active_only``: rows with ``y > 0`` whose forecast had ``F(0) = 1``
        (no law conditional on ``Y > 0``), left out; else 0.
    """

    edges: np.ndarray
    density: np.ndarray
    n: int
    n_excluded: int = 0

    @property
    def counts(self) -> np.ndarray:
        """Expected-count scale: ``density * n / bins`` (each ``n / bins`` when calibrated)."""
        return self.density * self.n / self.density.size

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"bin_lo": self.edges[:-1], "bin_hi": self.edges[1:], "density": self.density,
                             "n": self.n, "n_excluded": self.n_excluded})


def _pit_arrays(fc_or_arrays, y):
    """(lo, hi, F(0) or None, y or None) from a forecast or precomputed arrays."""
    if isinstance(fc_or_arrays, CountForecast):
        fc = fc_or_arrays
        if y is None:
            raise ValueError("pit_histogram(fc, y): the outcomes y are required with a CountForecast.")
        yy = _outcomes(fc, y)
        sc = _scan(fc, yy)
        return sc["lo"], sc["hi"], fc.pmf_at(0), yy  # P(Y = 0) without building a dense grid
    if isinstance(fc_or_arrays, Mapping) or isinstance(fc_or_arrays, pd.DataFrame):
        d = fc_or_arrays
        arrays = [d["pit_lo"], d["pit_hi"]] + ([d["pit_f0"]] if "pit_f0" in d else [])
    else:
        arrays = list(fc_or_arrays)
        if len(arrays) not in (2, 3):
            raise ValueError("pass a CountForecast, a mapping with pit_lo/pit_hi[/pit_f0], "
                             "or a tuple (pit_lo, pit_hi[, F(0)]).")
    a = [np.asarray(v, dtype=float) for v in arrays]
    if any(v.shape != a[0].shape or v.ndim != 1 for v in a):
        raise ValueError("pit_lo, pit_hi (and F(0)) must be 1-D arrays of one length.")
    if not ((a[0] >= 0) & (a[0] <= a[1]) & (a[1] <= 1 + 1e-12)).all():
        raise ValueError("PIT bounds must satisfy 0 <= pit_lo <= pit_hi <= 1.")
    yy = None if y is None else np.asarray(y, dtype=float)
    if yy is not None and yy.shape != a[0].shape:
        raise ValueError("y must have one entry per PIT pair.")
    return a[0], a[1], (a[2] if len(a) == 3 else None), yy


def pit_histogram(fc_or_arrays, y=None, bins: int = 10, active_only: bool = False) -> PITHistogram:
    """Non-randomised PIT histogram (Czado, Gneiting & Held 2009).

    Parameters
    ----------
    fc_or_arrays : a :class:`CountForecast` (then ``y`` is required); a mapping such as
        :func:`forecast.scoring.score_all`'s output with ``pit_lo``, ``pit_hi`` (and
        ``pit_f0`` = F(0)); or a tuple ``(pit_lo, pit_hi[, F(0)])``.
    y : outcomes; needed with a forecast and for ``active_only``.
    bins : number of equal bins on [0, 1].
    active_only : only forecasts with ``y > 0``, each judged against its predictive
        law *conditioned on* :math:`Y > 0`,
        :math:`F_+(k) = (F(k) - F(0)) / (1 - F(0))` for :math:`k \\ge 0`.

    Notes
    -----
    Why condition: selecting forecasts by their outcome (``y > 0``) changes what a
    correct forecast must look like. Among the selected rows the outcome is drawn
    from :math:`F` given :math:`Y > 0`, so its unconditional PIT lies in
    :math:`[F(0), 1]`, never below :math:`F(0)`: even a perfect forecast gets empty
    low bins and a surplus in the high ones and would be read as biased low (too many
    zeros predicted). Under :math:`F_+` the selected outcomes are again draws from the
    forecast, so a perfect forecast stays flat. Rows with :math:`F(0) = 1`
    (within ``ZERO_MASS_TOL``: a certain zero that turned out wrong) have no
    conditional law; they are excluded and reported in ``n_excluded``.
    """
    bins = int(bins)
    if bins < 1:
        raise ValueError(f"bins must be >= 1. Got {bins!r} instead.")
    lo, hi, f0, yy = _pit_arrays(fc_or_arrays, y)
    n_excluded = 0
    if active_only:
        if yy is None or f0 is None:
            raise ValueError("active_only needs y and F(0) (a CountForecast, 'pit_f0', or a 3-tuple).")
        act = yy > 0
        s0 = 1 - f0
        keep = act & (s0 > ZERO_MASS_TOL)
        n_excluded = int((act & ~keep).sum())
        s0 = s0[keep]
        # 1 - F_+(k) = S(k) / S(0), with S(k) = 1 - F(k)
        lo = np.clip(1 - (1 - lo[keep]) / s0, 0, 1)
        hi = np.clip(1 - (1 - hi[keep]) / s0, 0, 1)
    edges = np.linspace(0, 1, bins + 1)
    total = np.zeros(bins + 1)
    step = max(1, _CELLS // (bins + 1))
    for s in range(0, lo.size, step):
        a, b = lo[s:s + step, None], hi[s:s + step, None]
        width = b - a
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.where(width > 0, np.clip((edges - a) / width, 0, 1), (edges >= a).astype(float))
        total += G.sum(axis=0)
    Fbar = total / max(lo.size, 1)
    Fbar[0], Fbar[-1] = 0.0, 1.0 if lo.size else 0.0  # PIT mass sitting exactly on 0 or 1 stays in the end bins
    return PITHistogram(edges, np.diff(Fbar) * bins, int(lo.size), n_excluded)


# ----------------------------------------------------------------------------- calibration test
class CalibrationTest(NamedTuple):
    """Wei-Held calibration test: statistic, two-sided p-value, number of forecasts."""

    z: float
    p_value: float
    n: int


def _tail_length(comps: tuple, K: int, tol: float) -> np.ndarray:
    """Smallest L >= 0 per row with parametric mass beyond K + L below ``tol`` (doubling + bisection)."""
    w, mu, alpha, pi = comps

    def sf(k, idx):
        return (w[:, idx] * (1 - pi[:, idx]) * _nb_sf(K + k[None, :], mu[:, idx], alpha[:, idx])).sum(axis=0)

    m = mu.shape[1]
    lo, hi, act = np.full(m, -1), np.zeros(m, np.int64), np.arange(m)
    while act.size:  # grow hi until sf(K + hi) < tol
        act = act[sf(hi[act], act) >= tol]
        lo[act], hi[act] = hi[act], np.maximum(1, 2 * hi[act])
    while (act := np.flatnonzero(hi - lo > 1)).size:
        mid = (lo[act] + hi[act]) // 2
        ok = sf(mid, act) < tol
        hi[act[ok]], lo[act[~ok]] = mid[ok], mid[~ok]
    return hi


def _extended_pmf(fc: CountForecast, rows: np.ndarray | None = None, tol: float = TAIL_MASS_TOL):
    """Yield (pos, P, np_tail) for ``rows`` (default all) in blocks: ``pos`` indexes ``rows``,
    ``P`` is each row's pmf on 0..K+L with the parametric tail appended until less than
    ``tol`` of it is left, ``np_tail`` the mass beyond K without a parametric form."""
    rows = np.arange(fc.n_rows) if rows is None else np.asarray(rows)
    K, comps = fc.K, tuple(a[:, rows] for a in fc.components)
    param = (comps[0] * (1 - comps[3]) * _nb_sf(K, comps[1], comps[2])).sum(axis=0)
    np_tail = np.maximum(fc.tail[rows] - param, 0.0)
    ext = np.flatnonzero(param >= tol)
    plain = np.setdiff1d(np.arange(rows.size), ext)
    step = max(1, _CELLS // (K + 1))
    for s in range(0, plain.size, step):
        pos = plain[s:s + step]
        yield pos, fc.pmf[rows[pos]], np_tail[pos]
    if not ext.size:
        return
    L = _tail_length(tuple(a[:, ext] for a in comps), K, tol)
    order = np.argsort(L, kind="stable")
    ext, L = ext[order], L[order]
    s = 0
    while s < ext.size:  # blocks of rows with similar tail lengths, about _CELLS cells each
        cost = np.arange(1, ext.size - s + 1) * (K + 1 + L[s:])
        e = s + max(1, int(np.searchsorted(cost, _CELLS, side="right")))
        pos, Lmax = ext[s:e], max(1, int(L[e - 1]))
        S = _param_sf_block(tuple(a[:, pos] for a in comps), K + 1, Lmax)
        p_ext = -np.diff(np.hstack([param[pos, None], S]), axis=1)
        yield pos, np.hstack([fc.pmf[rows[pos]], np.maximum(p_ext, 0)]), np_tail[pos]
        s = e


def _moments_param(comps: tuple):
    """Mean, variance and 4th central moment of fully parametric rows (closed form)."""
    w, mu, alpha, pi = comps
    k1 = mu
    k2 = mu * (1 + alpha * mu)
    k3 = k2 * (1 + 2 * alpha * mu)
    k4 = k2 * (1 + 6 * alpha * mu * (1 + alpha * mu))
    # each ZINB component = point mass at 0 (weight w pi) + NB (weight w (1 - pi))
    wn, wz = w * (1 - pi), w * pi
    mean = (wn * k1).sum(axis=0)
    d = k1 - mean
    var = (wn * (k2 + d**2) + wz * mean**2).sum(axis=0)
    m4 = (wn * (k4 + 3 * k2**2 + 4 * k3 * d + 6 * k2 * d**2 + d**4) + wz * mean**4).sum(axis=0)
    return mean, var, m4


def _score_ev(fc: CountForecast, score: str, floor: float):
    """Expectation and variance of each row's score when Y follows the row's own forecast."""
    n = fc.n_rows
    E, V = np.empty(n), np.empty(n)
    if score == "dss":
        full = fc.components[0].sum(axis=0) >= 1 - 1e-12
        m4 = np.empty(n)
        m4[full] = _moments_param(tuple(a[:, full] for a in fc.components))[2]
        rest = np.flatnonzero(~full)
        for pos, P, _ in _extended_pmf(fc, rest):
            k = np.arange(P.shape[1], dtype=float)
            m4[rest[pos]] = (P * (k - fc.mean[rest[pos], None]) ** 4).sum(axis=1)
        v = np.maximum(fc.var, floor)
        return fc.var / v + np.log(v), np.maximum(m4 - fc.var**2, 0) / v**2
    cap = -np.log(floor)
    for rows, P, np_tail in _extended_pmf(fc):  # positions = rows: every row
        if score == "log":
            with np.errstate(divide="ignore"):
                s = np.minimum(-np.log(P), cap)
            e1 = (P * s).sum(axis=1) + np_tail * cap
            e2 = (P * s * s).sum(axis=1) + np_tail * cap**2
        else:  # rps: mass without a parametric form sits at K + 1, as in scoring.rps
            P = np.hstack([P, np.zeros((rows.size, 1))]) if P.shape[1] == fc.K + 1 else P.copy()
            P[:, fc.K + 1] += np_tail
            F = np.cumsum(P, axis=1)
            A = np.cumsum(F * F, axis=1)                              # sum_{k <= j} F(k)^2
            B = np.cumsum(((1 - F) ** 2)[:, ::-1], axis=1)[:, ::-1]    # sum_{k >= j} S(k)^2
            r = B.copy()
            r[:, 1:] += A[:, :-1]                                     # RPS(F, j) for each j
            e1, e2 = (P * r).sum(axis=1), (P * r * r).sum(axis=1)
        E[rows], V[rows] = e1, np.maximum(e2 - e1**2, 0)
    return E, V


def calibration_test(fc: CountForecast, y, score: str = "dss", method: int = 1) -> CalibrationTest:
    """Calibration test for count forecasts (Wei & Held 2014; R ``surveillance::calibrationTest``).

    Parameters
    ----------
    score : ``"dss"`` (Dawid-Sebastiani), ``"log"`` (the log score floored at
        ``LOG_FLOOR``, 1e-12: ``log_score(fc, y, floor=LOG_FLOOR)``, the ``log_floored``
        backtest column; unfloored, one outcome of probability 0 would make z infinite, and
        such outcomes are counted as impossible outcomes instead) or ``"rps"``.
    method : 1, :math:`z = \\sum_i (S_i - E_i)/\\sqrt{\\sum_i V_i}` (default here;
        ``surveillance``'s ``method = 1``); 2, :math:`z^* = n^{-1/2}\\sum_i (S_i - E_i)/\\sqrt{V_i}`
        (``surveillance``'s default).

    Returns
    -------
    CalibrationTest ``(z, p_value, n)``, two-sided :math:`p = 2\\Phi(-|z|)`.

    Notes
    -----
    :math:`E_i, V_i` are the mean and variance of the score when :math:`Y \\sim F_i`.
    DSS: :math:`E = 1 + \\log\\sigma^2`, :math:`V = (\\mu_4 - \\sigma^4)/\\sigma^4`, with
    :math:`\\mu_4` in closed form for parametric rows (NB2 cumulants
    :math:`\\kappa_4 = \\mu(1+\\alpha\\mu)(1+6\\alpha\\mu(1+\\alpha\\mu))`) and from the pmf
    otherwise. Log: :math:`E = -\\sum_k p_k\\log p_k`, :math:`V = \\sum_k p_k\\log^2 p_k - E^2`.
    RPS: moments of :math:`\\mathrm{RPS}(F, Y)` over the support. The sums run over
    ``0..K`` and then the parametric tail until less than ``TAIL_MASS_TOL`` is left.
    """
    y = _outcomes(fc, y)
    if score not in ("dss", "log", "rps") or method not in (1, 2):
        raise ValueError(f"score must be 'dss', 'log' or 'rps' and method 1 or 2; got {score!r}, {method!r}.")
    if score == "dss":
        s = dss(fc, y, var_floor=VAR_FLOOR)
    elif score == "log":
        s = log_score(fc, y, floor=LOG_FLOOR)
    else:
        s = _scan(fc, y)["rps"]
    E, V = _score_ev(fc, score, VAR_FLOOR if score == "dss" else LOG_FLOOR)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s - E).sum() / np.sqrt(V.sum()) if method == 1 else ((s - E) / np.sqrt(V)).sum() / np.sqrt(y.size)
    return CalibrationTest(float(z), float(2 * special.ndtr(-abs(z))), int(y.size))


# ----------------------------------------------------------------------------- reliability
def reliability(prob, outcome, bins: int = 10, band: float = 0.9) -> pd.DataFrame:
    """Reliability-diagram data for probability forecasts such as :math:`P(Y \\ge k)`.

    Equal bins on [0, 1] (the last closed). Per bin: ``mean_prob``, ``obs_freq`` (share
    of outcomes that happened), ``n``, and a consistency band ``band_lo, band_hi``:
    the central ``band`` (default 5-95%) range of the observed frequency if the
    forecasts were calibrated, from Binomial(n, mean_prob) quantiles divided by n.
    The exact null law is Poisson-binomial (one probability per forecast), whose
    variance is at most the binomial's: the band is slightly conservative. Empty
    bins have ``n = 0`` and NaN elsewhere.
    """
    p = np.asarray(prob, dtype=float).ravel()
    o = np.asarray(outcome, dtype=float).ravel()
    if p.shape != o.shape or not ((p >= 0) & (p <= 1)).all() or not np.isin(o, (0, 1)).all():
        raise ValueError("prob must be in [0, 1] and outcome 0/1 (or bool), of equal length.")
    edges = np.linspace(0, 1, int(bins) + 1)
    j = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, int(bins) - 1)
    n = np.bincount(j, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(j, p, minlength=bins) / n
        obs = np.bincount(j, o, minlength=bins) / n
        a = (1 - band) / 2
        lo = stats.binom.ppf(a, n, mean_prob) / n
        hi = stats.binom.ppf(1 - a, n, mean_prob) / n
    empty = n == 0
    lo[empty] = hi[empty] = np.nan
    return pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:], "mean_prob": mean_prob, "obs_freq": obs,
                         "n": n, "band_lo": lo, "band_hi": hi})
