r"""Proper scores for count forecasts, vectorised over many :class:`CountForecast` rows.

Every function takes a forecast ``fc`` with ``n`` rows and outcomes ``y`` (n,) of
non-negative integers and returns one score per row (lower is better, except
``coverage``). :func:`score_all` computes everything in one pass over the pmf.

Notes
-----
With :math:`F` the predictive cdf and :math:`p` the pmf:

- log score :math:`-\log p(y)`, unfloored: :math:`+\infty` where the forecast gave the
  outcome probability 0 (as the peers report it). A floored variant,
  :math:`-\log\max(p(y), 10^{-12})`, is available explicitly (``floor=LOG_FLOOR``; the
  ``log_floored`` column of :func:`score_all`), and an outcome with :math:`p(y) < 10^{-12}`
  (``IMPOSSIBLE_P``) is an *impossible outcome* (``impossible`` column): a calibration
  failure that backtest summaries count per model;
- ranked probability score :math:`\sum_{k\ge0}(F(k) - [y\le k])^2`, which for
  integer outcomes equals the CRPS, :math:`E|X-y| - \tfrac12 E|X-X'|`;
- Dawid-Sebastiani :math:`(y-\mu)^2/\sigma^2 + \log\sigma^2`;
- Brier :math:`(P(Y\ge k) - [y\ge k])^2`; interval score of Gneiting & Raftery (2007).

**Outcomes above the support** ``0..K`` are never clipped: the log score, the PIT
values, exceedance probabilities and quantiles come from the forecast's exact
parametric form (``pmf_at``/``logpmf_at``/``cdf``/``prob_at_least``/``quantile``),
and the RPS adds its terms beyond ``K`` from the parametric survival function
(stable sums in log space), or, for a single (zero-inflated) Poisson/NB row with a
long tail, takes the exact closed form instead (:mod:`forecast._countnum`): exact to
~1e-10 relative for means from 1e-3 to 1e6 (Poisson(5000), ``K = 200``, is no longer NaN).
Mass beyond ``K`` without a parametric form (empirical rows) has no known
location: the RPS treats it as sitting at ``K + 1`` (the least extreme place it
can be, which keeps the score finite); the other scores follow ``CountForecast``.

**Speed.** :func:`score_all` and the cdf-based scores read the pmf in one pass
(:mod:`forecast._scorescan`, whose docstring gives the truncation and its error bound).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import special

from forecast._countnum import param_sf_block as _param_sf_block  # noqa: F401 (calibration)
from forecast._fcrows import _fraction
from forecast._leanpmf import ParamGrid
from forecast._scorescan import (  # noqa: F401 (re-exported: the one pass lives there)
    _CELLS,
    _SUM_TERMS,
    _W0,
    _W_STEP,
    RPS_TOL,
    _beyond_support,
    _enqueue,
    _predict_width,
    _scan,
    table_columns,
)
from forecast.distributions import QUANTILE_TOL, CountForecast  # noqa: F401 (QUANTILE_TOL: importable here as before)
from forecast.numerics import nb_logpmf
from forecast.numerics import nb_sf as _nb_sf  # noqa: F401 (calibration)

LOG_FLOOR = 1e-12        # floor of the explicitly floored log score: penalty <= 27.63
IMPOSSIBLE_P = 1e-12     # an outcome given less probability than this is an "impossible outcome"
VAR_FLOOR = 1e-12        # smallest predictive variance the DSS uses
_TINY_P = 1e-280         # dense pmf values below this are recomputed in log space


# ----------------------------------------------------------------------------- helpers
def _outcomes(fc: CountForecast, y) -> np.ndarray:
    a = np.asarray(y, dtype=float)
    if a.ndim == 0:
        a = np.full(fc.n_rows, float(a))
    bad = np.flatnonzero(~np.isfinite(a) | (a < 0) | (a != np.floor(a))) if a.ndim == 1 else []
    if a.shape != (fc.n_rows,) or len(bad):
        where = f"; {len(bad)} row(s) fail (first: row {bad[0]}, value {a[bad[0]]!r})" if len(bad) else ""
        raise ValueError(f"y must be {fc.n_rows} non-negative integer counts, one per forecast row "
                         f"(got shape {a.shape}{where}).")
    return a.astype(np.int64)


def _label(level: float) -> str:
    return f"{round(_fraction(level) * 100, 6):g}"


def _logpmf(fc: CountForecast, y: np.ndarray) -> np.ndarray:
    """log p(y): dense pmf where it is representable, else the forecast's exact form."""
    grid = fc._grid
    if isinstance(grid, ParamGrid) and not grid.pi.any():  # one NB/Poisson component per row:
        return nb_logpmf(y.astype(float), grid.mu, grid.alpha)  # logpmf_at's numbers, fewer steps
    if grid is not None:  # one exact component per row: its log-pmf, no grid
        return fc.logpmf_at(y)
    inside = np.flatnonzero(y <= fc.K)
    p = np.zeros(fc.n_rows)
    p[inside] = fc.pmf[inside, y[inside]]
    with np.errstate(divide="ignore"):
        out = np.log(p)
    redo = np.flatnonzero((y > fc.K) | (p < _TINY_P))
    if redo.size:
        with np.errstate(divide="ignore"):
            out[redo] = fc.subset(redo).logpmf_at(y[redo])
    return out


# ----------------------------------------------------------------------------- public scores
def log_score(fc: CountForecast, y, floor: float = 0.0) -> np.ndarray:
    """Log score :math:`-\\log p(y)` per row; with ``floor > 0``, :math:`-\\log\\max(p(y), \\text{floor})`.

    By default unfloored, as published comparisons report it: :math:`+\\infty` where the
    forecast gave the outcome probability 0 (a point mass at 0 and then a case; an
    empirical forecast with no mass there), and large but finite where :math:`p(y)` is
    tiny yet representable in log space (``-log p`` is computed from the parametric form,
    so it does not underflow to ``inf`` early: Poisson(1e-30) at ``y = 1`` scores 69.08).
    ``floor=LOG_FLOOR`` gives the floored variant (penalty at most
    :math:`-\\log 10^{-12} \\approx 27.6`; probabilities above the floor untouched), for
    uses that need finite scores (e.g. :func:`forecast.calibration.calibration_test`).
    ``p(y)`` is exact for any ``y`` (parametric form beyond ``K``; 0 where there is none).
    """
    y = _outcomes(fc, y)
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1). Got {floor!r} instead.")
    return np.minimum(-_logpmf(fc, y), -np.log(floor) if floor > 0 else np.inf) + 0.0  # no -0.0


def pit(fc: CountForecast, y) -> tuple[np.ndarray, np.ndarray]:
    """Non-randomised PIT bounds ``(F(y - 1), F(y))`` per row (Czado, Gneiting & Held 2009).

    A count's PIT is uniform on this interval; :func:`forecast.calibration.pit_histogram`
    takes them. Computed in the same pass over the pmf as the RPS (see :func:`score_all`).
    """
    sc = _scan(fc, _outcomes(fc, y))
    return sc["lo"], sc["hi"]


def rps(fc: CountForecast, y) -> np.ndarray:
    """Ranked probability score :math:`\\sum_{k\\ge0}(F(k) - [y \\le k])^2` (= CRPS for counts).

    Exact over the whole support: the dense sum over ``0..K`` plus the terms beyond
    ``K`` from the parametric form (summed until the rest is below ``RPS_TOL``), or the
    closed form :math:`E|X-y| - \\tfrac12 E|X-X'|` for a single Poisson/NB/ZI row whose
    tail is long; tail mass without a parametric form is placed at ``K + 1``.
    """
    y = _outcomes(fc, y)
    return _scan(fc, y)["rps"]


def dss(fc: CountForecast, y, var_floor: float = VAR_FLOOR) -> np.ndarray:
    """Dawid-Sebastiani score :math:`(y-\\mu)^2/\\sigma^2 + \\log\\sigma^2` (``fc.mean``, ``fc.var``).

    A point forecast (:math:`\\sigma^2 = 0`, e.g. the zero model) would score
    :math:`-\\infty` when right and :math:`+\\infty` when wrong. Convention: the variance
    is floored at ``var_floor`` (1e-12), so a right point forecast scores
    :math:`\\log 10^{-12} \\approx -27.6` and a wrong one :math:`10^{12}(y-\\mu)^2 - 27.6`.
    Means over many rows are then finite, but dominated by such rows: report them.
    """
    y = _outcomes(fc, y)
    v = np.maximum(fc.var, var_floor)
    return (y - fc.mean) ** 2 / v + np.log(v)


def brier(fc: CountForecast, y, k) -> np.ndarray:
    """Brier score of the exceedance :math:`(P(Y \\ge k) - [y \\ge k])^2`.

    ``k`` an int gives (n,); a sequence gives (n, len(k)), one column per threshold.
    """
    y = _outcomes(fc, y)
    kk = np.atleast_1d(np.asarray(k, dtype=np.int64))
    p = _scan(fc, y, ks=kk)["ge"]
    out = (p - (y[:, None] >= kk[None, :])) ** 2
    return out[:, 0] if np.ndim(k) == 0 else out


def _interval(fc: CountForecast, y: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - _fraction(level)) / 2
    q = _scan(fc, y, probs=(a, 1 - a))["q"]
    return q[:, 0], q[:, 1]


def _interval_score(lo, hi, y, level) -> np.ndarray:
    alpha = 1 - _fraction(level)
    return (hi - lo) + (2 / alpha) * np.maximum(lo - y, 0) + (2 / alpha) * np.maximum(y - hi, 0)


def interval_score(fc: CountForecast, y, level: float) -> np.ndarray:
    """Interval score (Gneiting & Raftery 2007) of the central interval ``fc.interval(level)``.

    :math:`(u-l) + \\frac2\\alpha(l-y)[y<l] + \\frac2\\alpha(y-u)[y>u]`, :math:`\\alpha = 1 -` level;
    ``level`` as 0.8 or 80. ``l, u`` are the forecast's own quantiles (same tolerance).
    """
    y = _outcomes(fc, y)
    lo, hi = _interval(fc, y, level)
    return _interval_score(lo, hi, y, level)


def coverage(fc: CountForecast, y, level: float) -> np.ndarray:
    """1.0 where ``l <= y <= u`` for the central interval at ``level``, else 0.0."""
    y = _outcomes(fc, y)
    lo, hi = _interval(fc, y, level)
    return ((lo <= y) & (y <= hi)).astype(float)


def abs_error(fc: CountForecast, y) -> np.ndarray:
    """:math:`|\\mu - y|` of the predictive mean (average for the MAE)."""
    return np.abs(fc.mean - _outcomes(fc, y))


def sq_error(fc: CountForecast, y) -> np.ndarray:
    """:math:`(\\mu - y)^2` of the predictive mean (average, then root, for the RMSE)."""
    return (fc.mean - _outcomes(fc, y)) ** 2


def bias(fc: CountForecast, y) -> np.ndarray:
    """:math:`\\mu - y`: positive where the forecast mean is too high."""
    return fc.mean - _outcomes(fc, y)


def mase_scale(history_y, season_length: int) -> float:
    """In-sample MAE of the seasonal naive forecast, the MASE denominator of one series.

    Lag ``season_length`` (m); lag 1 when the history has fewer than ``m + 1`` values.
    NaN when the scale is 0 (an all-zero or constant series, or fewer than 2 values):
    the MASE is undefined there, and the caller counts such series.
    """
    h = np.asarray(history_y, dtype=float).ravel()
    m = int(season_length)
    if m < 1:
        raise ValueError(f"season_length must be >= 1. Got {season_length!r} instead.")
    lag = m if h.size >= m + 1 else 1
    if h.size <= lag:
        return float("nan")
    d = np.abs(h[lag:] - h[:-lag])
    d = d[np.isfinite(d)]  # missing periods (NaN): pairs where both counts are observed
    scale = float(np.mean(d)) if d.size else 0.0
    return scale if scale > 0 else float("nan")


def mase(abs_err, scale) -> np.ndarray:
    """MASE terms ``abs_err / scale`` (NaN where the scale is NaN or 0)."""
    s = np.asarray(scale, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(abs_err, dtype=float) / np.where(s > 0, s, np.nan)


def impossible(fc: CountForecast, y) -> np.ndarray:
    """1.0 where the forecast gave the outcome less than ``IMPOSSIBLE_P`` (1e-12) probability, else 0.0.

    Such an outcome is a calibration failure made visible: its log score exceeds
    :math:`-\\log 10^{-12} \\approx 27.6` (``+inf`` where :math:`p(y) = 0`). Backtests count them per model.
    """
    return _impossible(_logpmf(fc, _outcomes(fc, y)))


def _impossible(logp: np.ndarray) -> np.ndarray:
    return (logp < np.log(IMPOSSIBLE_P)).astype(float)


def score_all(fc: CountForecast, y, *, levels: Sequence[float] = (50, 80, 95),
              thresholds: Sequence[int] = (1, 5)) -> dict[str, np.ndarray]:
    """Every per-row score in one pass over the pmf.

    Returns ``log, log_floored, impossible, rps, dss, brier_ge_<k>, coverage_<lvl>,
    interval_<lvl>, mass_<lvl>, abs_error, sq_error, bias, pit_lo, pit_hi`` (float64 arrays of length
    ``n``): ``log`` is the unfloored log score (``+inf`` where :math:`p(y) = 0`),
    ``log_floored`` the log score with :math:`p(y)` floored at ``LOG_FLOOR`` (1e-12), and
    ``impossible`` 1.0 where :math:`p(y) <` ``IMPOSSIBLE_P`` (1e-12), else 0.0 (its mean
    is the share of impossible outcomes); ``mass_<lvl>`` is the probability the forecast itself
    gives its central interval, :math:`P(lo \\le Y \\le hi) \\ge` level (a count interval holds
    at least its level, so coverage is judged against this, not the nominal level);
    ``pit_lo = F(y-1)`` and ``pit_hi = F(y)`` feed :func:`forecast.calibration.pit_histogram`
    (its ``active_only`` form also needs ``F(0) = fc.pmf[:, 0]``, or ``1 - p_ge_1``).
    """
    return _score_all(fc, _outcomes(fc, y), levels, thresholds)[0]


def _score_all(fc: CountForecast, y: np.ndarray, levels: Sequence[float],
               thresholds: Sequence[int]) -> tuple[dict[str, np.ndarray], dict]:
    """:func:`score_all` on checked outcomes, and the pass it read (``_scan``'s dict): its
    quantiles and exceedances serve the forecast table too (:func:`forecast_table`)."""
    fr = [_fraction(lv) for lv in levels]
    probs = [p for f in fr for p in ((1 - f) / 2, 1 - (1 - f) / 2)]
    ks = np.asarray(thresholds, dtype=np.int64)
    sc = _scan(fc, y, probs, ks)
    lp = _logpmf(fc, y)
    log = -lp + 0.0  # no -0.0
    out = {"log": log, "log_floored": np.minimum(log, -np.log(LOG_FLOOR)), "impossible": _impossible(lp),
           "rps": sc["rps"], "dss": dss(fc, y)}
    for j, k in enumerate(ks):
        out[f"brier_ge_{k}"] = (sc["ge"][:, j] - (y >= k)) ** 2
    for i, lv in enumerate(levels):
        lo, hi = sc["q"][:, 2 * i], sc["q"][:, 2 * i + 1]
        out[f"coverage_{_label(lv)}"] = ((lo <= y) & (y <= hi)).astype(float)
        out[f"interval_{_label(lv)}"] = _interval_score(lo, hi, y, lv).astype(float)
        out[f"mass_{_label(lv)}"] = sc["fq"][:, 2 * i + 1] - sc["fq1"][:, 2 * i]  # F(hi) - F(lo - 1)
    err = fc.mean - y
    out.update(abs_error=np.abs(err), sq_error=err**2, bias=err, pit_lo=sc["lo"], pit_hi=sc["hi"])
    return out, dict(sc, probs=np.asarray(probs, dtype=float), ks=ks)


def scores_and_table(fc: CountForecast, y, *, levels: Sequence[float] = (50, 80, 95),
                     thresholds: Sequence[int] = (1, 5)) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:func:`score_all` and the columns of ``fc.to_frame(levels, thresholds)`` (``mean``,
    ``lo-L``, ``hi-L``, ``p_ge_T``, as arrays) from one pass over the pmf.

    The quantiles and exceedance probabilities the scores need are the table's: they are
    read once (:func:`forecast._scorescan.table_columns`), equal to ``to_frame``'s.
    """
    sc, scan = _score_all(fc, _outcomes(fc, y), levels, thresholds)
    return sc, table_columns(fc, scan, levels, thresholds)
