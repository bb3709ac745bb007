"""Empirical-Bayes Gamma–Poisson pooling across series: the solver behind the pooled
climatology and the long-run-rate rung.

Pure numerics on arrays (one entry per series), the within-window dispersion the pooled
climatology feeds them (:func:`_within_alpha`), plus the *pooling panel*: the series a
fit pools over (all series of the panel being fitted, with their group labels), held in a
context variable so that every rung of every ladder pools over the same series whatever
subset of them it is asked to fit.

Notation (series i): S_i the sum of its last W_i counts (the window), T_i and n_i the sum
and number of all its counts (the whole training history), g(i) its group.

* Pooled rate of a group: r̄_g = Σ T_i / Σ n_i over the series of g that ever had an event.
* Shrunk long-run rate: m_i = (T_i + c·r̄_g) / (n_i + c), c = :data:`LONG_RUN_PSEUDO`
  pseudo-periods, for a series that ever had an event (so m_i > 0); m_i = 0 for one that
  never had (no evidence of any rate: it stays a point mass at 0, and adding or removing
  it changes no other series).
* Prior: λ_i ~ Gamma(shape b_g·m_i, rate b_g); b_g (pseudo-periods) maximises the
  marginal likelihood Σ_{i in g} log NB(S_i; b_g·m_i, b_g/(b_g + W_i)) (the window counts
  given their sum are multinomial, free of λ, so the sum carries all the information).
* Predictive: Y ~ NB with mean (b·m_i + S_i)/(b + W_i) and shape b·m_i + S_i; with
  overdispersion α_w within the window (Y | λ ~ NB2(λ, α_w)), the NB with that mean and
  the mixture's variance (see :func:`pooled_fit`).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, Sequence

import numpy as np
from scipy import special

from forecast.models._baselinebatch import stacked_windows
from forecast.models._nbintercept import nb_intercept_mle_batch
from forecast.models.series import observed_values

#: Pseudo-periods of the group's pooled rate in each series' long-run rate.
LONG_RUN_PSEUDO = 1.0
#: Search range of the prior strength b (pseudo-periods): from "the window alone" to
#: "the long-run rate alone" for any window up to centuries of weeks.
B_BOUNDS = (1e-3, 1e5)


def group_rates(totals: np.ndarray, lengths: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each series' group pooled rate r̄_g = Σ T / Σ n over the series of its group that
    ever had an event (series without events do not dilute it, so they change nothing)."""
    _, inv = np.unique(groups, return_inverse=True)
    had = totals > 0
    t = np.bincount(inv, weights=np.where(had, totals, 0.0).astype(float))
    n = np.bincount(inv, weights=np.where(had, lengths, 0.0).astype(float))
    rate = np.where(n > 0, t / np.maximum(n, 1), 0.0)
    return rate[inv]


def long_run_rates(totals: np.ndarray, lengths: np.ndarray, groups: np.ndarray,
                   c: float = LONG_RUN_PSEUDO) -> np.ndarray:
    """m_i = (T_i + c·r̄_g) / (n_i + c) for a series that ever had an event (> 0), 0 for one
    that never had: its rate shrunk a little to its group's."""
    totals = np.asarray(totals, dtype=float)
    m = (totals + c * group_rates(totals, lengths, groups)) / (np.asarray(lengths, dtype=float) + c)
    return np.where(totals > 0, m, 0.0)


def marginal_loglik(b: float, m: np.ndarray, S: np.ndarray, W: np.ndarray) -> float:
    """Σ_i log NB(S_i; shape b·m_i, p = b/(b + W_i)): the log-likelihood of b (series with
    m_i = 0 have S_i = 0 and contribute 0)."""
    a = b * m
    return float(np.sum(special.gammaln(a + S) - special.gammaln(a) - special.gammaln(S + 1.0)
                        + a * np.log(b / (b + W)) + S * np.log(np.maximum(W, 1e-300) / (b + W)), where=a > 0))


def fit_prior_strength(m: np.ndarray, S: np.ndarray, W: np.ndarray,
                       bounds: tuple[float, float] = B_BOUNDS) -> float:
    """The b maximising :func:`marginal_loglik` (bounded 1-D search on log b).

    With no series that ever had an event the likelihood is flat; the upper bound is
    returned then (the forecast is the long-run rate, 0, anyway).
    """
    from scipy import optimize  # (here, not at the top: a slow import every CLI call would pay)
    m, S, W = (np.asarray(v, dtype=float) for v in (m, S, W))
    keep = m > 0
    if not keep.any():
        return float(bounds[1])
    m, S, W = m[keep], S[keep], W[keep]
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = optimize.minimize_scalar(lambda lb: -marginal_loglik(float(np.exp(lb)), m, S, W),
                                   bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    # A flat or monotone likelihood ends at a bound: check both ends explicitly.
    cands = [float(res.x), lo, hi]
    vals = [marginal_loglik(float(np.exp(v)), m, S, W) for v in cands]
    return float(np.exp(cands[int(np.argmax(vals))]))


def predictive(b: np.ndarray | float, m: np.ndarray, S: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior predictive NB2 (mean, alpha = 1/shape) of one future count per series.

    A series with shape 0 (its group never had an event) gets mean 0, alpha 0: Poisson(0).
    """
    shape = np.asarray(b * m + S, dtype=float)
    mu = shape / (b + W)
    with np.errstate(divide="ignore"):
        alpha = np.where(shape > 0, 1.0 / np.where(shape > 0, shape, 1.0), 0.0)
    return mu, alpha


def window_sums(series: Sequence[Any], windows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per series (objects with ``.y``, optional ``.observed``): n_i and T_i, the number and
    sum of all its observed counts, and W_i and S_i, those of its last ``windows[i]``
    periods (at most the whole series), as float arrays (S,) each.

    Missing periods (``observed`` False, y a placeholder 0) add nothing to a sum and are not
    counted in n_i or W_i. One concatenation and a cumulative sum for all series: integer
    counts sum exactly, so the sums equal per-series ``np.sum``'s to the last bit.
    """
    k = len(series)
    n = np.fromiter((len(s.y) for s in series), dtype=np.int64, count=k)
    span = np.minimum(np.asarray(windows, dtype=np.int64), n)  # calendar periods
    ends = np.cumsum(n)
    if k and ends[-1]:
        y = np.concatenate([np.asarray(s.y) for s in series])
        csum = np.concatenate([np.zeros(1, dtype=y.dtype), np.cumsum(y)])
    else:
        csum = np.zeros(1)
    totals = (csum[ends] - csum[ends - n]).astype(float)
    # A window of 0 periods sums to 0 whatever the placeholder arithmetic says.
    S = np.where(span > 0, csum[ends] - csum[ends - np.maximum(span, 0)], 0).astype(float)
    lengths, W = n.astype(float), np.maximum(span, 0).astype(float)
    for i, s in enumerate(series):
        o = getattr(s, "observed", None)
        if o is not None:  # (only series with missing periods)
            lengths[i] = float(o.sum())
            W[i] = float(o[len(o) - span[i]:].sum()) if span[i] > 0 else 0.0
    return lengths, totals, W, S


def pooled_fit(series: Sequence[Any], groups: Sequence[Any], windows: np.ndarray,
               within: np.ndarray | None = None, fixed_b: np.ndarray | None = None) -> dict[str, Any]:
    """Pool every series in ``series`` (objects with ``.y``, optional ``.observed``) by group;
    ``windows``: the last periods each window spans (W_i: its observed periods).

    ``within`` (optional, per series): the dispersion α_w of the counts around the window's
    rate, Y | λ ~ NB2(λ, α_w); the predictive is then the NB with the mixture's mean μ and
    variance μ + μ²·(α_w·(1 + 1/shape) + 1/shape) (moment-matched), shape = b·m_i + S_i.

    ``fixed_b`` (optional, per series): the prior strength to use instead of estimating it.

    Returns per-series arrays ``m``, ``S``, ``W``, ``b``, ``mu``, ``alpha``, ``loglik``
    (the series' marginal log-likelihood of its window sum) and ``group``.
    """
    groups = np.asarray([str(g) for g in groups], dtype=object)
    lengths, totals, W, S = window_sums(series, windows)
    m = long_run_rates(totals, lengths, groups)
    if fixed_b is not None:
        b = np.asarray(fixed_b, dtype=float)
    else:
        b = np.empty(len(series))
        for g in dict.fromkeys(groups):  # first-seen order: deterministic
            idx = groups == g
            b[idx] = fit_prior_strength(m[idx], S[idx], W[idx])
    mu, alpha = predictive(b, m, S, W)
    if within is not None:  # Y | λ ~ NB2(λ, within): moment-matched NB of the mixture
        alpha = within * (1.0 + alpha) + alpha
    a = b * m
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.where(a > 0, special.gammaln(a + S) - special.gammaln(np.where(a > 0, a, 1.0))
                      - special.gammaln(S + 1.0) + a * np.log(b / (b + W))
                      + S * np.log(np.maximum(W, 1e-300) / (b + W)), 0.0)
    return dict(m=m, S=S, W=W, b=b, mu=mu, alpha=alpha, loglik=ll, group=groups)


def _within_alpha(series: Sequence[Any], windows: np.ndarray,
                  stacked: list[tuple[list[int], np.ndarray | None]] | None = None) -> np.ndarray:
    """Each window's maximum-likelihood NB2 dispersion (0 when not overdispersed), batched by
    the number of observed counts in the window (none: 0). ``stacked``: the windows as
    :func:`~forecast.models._baselinebatch.stacked_windows` gives them, when the caller has them.

    (Each row's estimate does not depend on the rows solved with it, so the grouping is free.)"""
    out = np.zeros(len(series))
    for idx, Y in stacked_windows(series, windows) if stacked is None else stacked:
        if Y is not None:
            if Y.shape[1]:
                out[idx] = nb_intercept_mle_batch(Y)[1]
            continue
        values = {j: observed_values(series[j], int(windows[j])) for j in idx}
        by_len: dict[int, list[int]] = {}
        for j, v in values.items():
            if len(v):
                by_len.setdefault(len(v), []).append(j)
        for sub in by_len.values():
            out[sub] = nb_intercept_mle_batch(np.stack([values[j] for j in sub]))[1]
    return out


# -- the pooling panel -------------------------------------------------------------------

_PANEL: contextvars.ContextVar[tuple[list, list] | str | None] = contextvars.ContextVar("forecast_pool_panel",
                                                                                  default=None)


#: The pooling panel of a ladder's lower rungs: every series pooled with itself only.
SEPARATE = "separate"


@contextlib.contextmanager
def pooling_panel(series: Sequence[Any] | str, groups: Sequence[Any] | None = None, *,
                  replace: bool = True) -> Iterator[None]:
    """Pool over ``series`` (with ``groups``, default one group) inside this block;
    ``series=SEPARATE``: each series alone (its own group).

    With ``replace=False`` an outer panel already set is kept (a ladder inside a fit
    pools over the fit's whole panel, not the subset it is given).
    """
    if not replace and _PANEL.get() is not None:
        yield
        return
    if isinstance(series, str):
        value: Any = series
    else:
        value = (list(series), ["all"] * len(series) if groups is None else list(groups))
    token = _PANEL.set(value)
    try:
        yield
    finally:
        _PANEL.reset(token)


def panel_for(series: Sequence[Any]) -> tuple[list, list]:
    """The series and groups to pool over when fitting ``series``: the pooling panel when
    it holds every one of them, each series alone under :data:`SEPARATE`, else ``series``
    themselves as one group."""
    panel = _PANEL.get()
    if panel == SEPARATE:
        return list(series), [s.uid for s in series]
    if panel is not None:
        uids = {s.uid for s in panel[0]}
        if all(s.uid in uids for s in series):
            # A series may be a new object for the same uid (a forecast-time refit): use the given one.
            given = {s.uid: s for s in series}
            return [given.get(s.uid, s) for s in panel[0]], panel[1]
    return list(series), ["all"] * len(series)


def pooling_separately() -> bool:
    """Whether series are pooled each alone here (the lower rungs of a ladder)."""
    return _PANEL.get() == SEPARATE


def groups_of(data: Any) -> list[str] | None:
    """Group label per series of a :class:`~forecast.models.series.PanelData`: its
    ``event_type`` when the panel has that key, else None (one group)."""
    keys = getattr(data, "keys", None)
    if keys is None or "event_type" not in keys.columns:
        return None
    et = keys["event_type"]
    return [str(et.get(s.uid, "")) for s in data.series]
