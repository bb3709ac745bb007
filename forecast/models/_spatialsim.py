"""Arrays of the endemic–epidemic model from series, and its joint forecasts.

``grid`` lays a group's series on one calendar (missing where a series has no count);
``time_design`` gives the endemic time terms; ``forecast_group`` gives each series'
predictive law: the steps up to the lag L depend on observed counts only and are exact
NB (or Poisson) laws; later steps are simulated jointly — every path draws all regions
from NB(μ_t) and the draws feed the next step's own and neighbour terms — and each row's
pmf is the mixture of the paths' conditional laws (``pathmix``). The epidemic part is
linear, so E μ_t follows exactly from E y_{t−L}; the path means of each step are rescaled
to that exact mean, so forecast means carry no Monte Carlo error.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.models import _hhh4fit as hh
from forecast.models.guard import MEAN_CAP_FACTOR, note_capped
from forecast.models.results import SeriesForecast
from forecast.models.series import Series, series_rng


def grid(series: list[Series], freq: Any, exposure: str | None) -> tuple:
    """(Y, obs, log_e, t0) of ``series`` on their common calendar (T, n) from the first period."""
    t0 = min(s.ds_values[0] for s in series)
    pos = [freq.index(s.ds_values, t0) for s in series]
    T = int(max(p[-1] for p in pos)) + 1
    n = len(series)
    Y, obs, log_e = np.zeros((T, n)), np.zeros((T, n), dtype=bool), np.zeros((T, n))
    for j, (s, p) in enumerate(zip(series, pos)):
        Y[p, j], obs[p, j] = s.y, s.observed_mask()
        if exposure:  # periods outside the series take the nearest value (they carry no weight)
            e = np.log(s.exog[exposure].to_numpy(dtype=float))
            at = np.clip(np.searchsorted(p, np.arange(T), side="right") - 1, 0, len(p) - 1)
            log_e[:, j] = e[at]
    return Y, obs, log_e, np.datetime64(t0, "ns")


def time_design(t: np.ndarray, spec: Any, period: float, season_length: int) -> tuple[np.ndarray, list[str]]:
    """Endemic time terms at period numbers ``t`` (0 = the fit's first period): sin/cos of
    the annual cycle (hhh4's phase, t = 0 at the first period) and a per-year trend."""
    cols, names = [], []
    if spec.seasonality and season_length > 1:
        for k in range(1, spec.fourier_k + 1):
            cols += [np.sin(2 * np.pi * k * t / period), np.cos(2 * np.pi * k * t / period)]
            names += [f"sin({k})", f"cos({k})"]
    if spec.trend:
        cols.append(t / period)
        names.append("trend")
    X = np.column_stack(cols) if cols else np.zeros((len(t), 0))
    return X, names


def _future_log_e(uids: list[str], last_log_e: np.ndarray, future: pd.DataFrame | None,
                  exposure: str | None, dates: np.ndarray) -> np.ndarray:
    """(h, n) offsets: the future frame's exposure where given, else the last value carried."""
    out = np.tile(last_log_e, (len(dates), 1))
    if not exposure or future is None or exposure not in future.columns:
        return out
    f = future.set_index([future["unique_id"].astype(str), pd.to_datetime(future["ds"])])[exposure]
    f = f[~f.index.duplicated(keep="last")]
    want = pd.MultiIndex.from_product([uids, pd.DatetimeIndex(dates)])
    table = f.reindex(want).to_numpy(dtype=float).reshape(len(uids), len(dates)).T
    with np.errstate(divide="ignore", invalid="ignore"):
        given = np.log(table)
    return np.where(np.isfinite(given), given, out)


def forecast_group(g: Any, current: dict[str, Series], h: int, future: pd.DataFrame | None, seed: int,
                   n_paths: int, exposure: str | None) -> dict[str, SeriesForecast | str]:
    """Forecasts of the series in ``current`` (a subset of the group ``g``; the others use the
    series stored at fit) from the group's joint fit; a string (the reason) when unusable."""
    fitted = g.problem  # the fit's arrays: weights, family, lag
    series = [current.get(u, s) for u, s in zip(g.uids, g.series)]
    ends = {s.ds_values[-1] for s in series}
    if len(ends) > 1:
        return {u: "the series of the joint fit end at different periods" for u in current}
    freq = series[0].freq
    Y, obs, log_e, t0 = grid(series, freq, exposure)
    T, n = Y.shape
    off = int(freq.index(np.array([t0]), g.t0)[0])  # t of this grid's first row in the fit's time
    X, _ = time_design(off + np.arange(T), g.spec_view, g.period, freq.season_length)
    pr = hh.Problem(Y, obs, g.problem.orders, log_e, X, g.problem.x_names, g.uids, weights=fitted.weights,
                    family=fitted.family, overdispersion=fitted.overdispersion, lag=fitted.lag,
                    active=fitted.active)
    theta = g.fit.theta
    L = pr.lag
    # The last L counts; a missing one is replaced by its fitted conditional mean.
    mu_grid = sum(hh.components(pr, theta))
    tail = np.where(obs, Y, mu_grid)[T - L:] if T >= L else np.vstack([np.zeros((L - T, n)), np.where(obs, Y, mu_grid)])
    p = pr.split(theta)
    dates = freq.future(np.array([series[0].ds_values[-1]]), h)[0]
    Xf, _ = time_design(off + T - 1 + np.arange(1, h + 1), g.spec_view, g.period, freq.season_length)
    log_ef = _future_log_e(g.uids, log_e[-1], future, exposure, dates)
    nu = np.exp(p["alpha"][None, :] + (Xf @ p["beta"])[:, None] + log_ef)  # (h, n)
    A = hh.epidemic_matrix(pr, theta)
    psi = pr.psi(theta)
    cap = MEAN_CAP_FACTOR * np.maximum(np.array([float(s.y.max(initial=0)) for s in series]), 1.0)
    # Exact means: m_s = nu_s + A m_{s-L}.
    m = np.vstack([tail, np.zeros((h, n))])
    for s in range(h):
        m[L + s] = np.minimum(nu[s] + A @ m[s], cap)
    means = m[L:]
    capped = np.any(means >= cap, axis=0)
    for j in np.flatnonzero(capped):
        if g.uids[j] in current:
            note_capped(g.uids[j])
    fam = "poisson" if pr.n_psi == 0 else "negbin"
    if h <= L:  # every step depends on observed counts only: exact laws
        return {u: SeriesForecast(fam, mu=means[:, j].copy(), alpha=np.full(h, psi[j]))
                for j, u in enumerate(g.uids) if u in current}
    rng = series_rng(seed, f"endemic_epidemic:{g.label}:{len(g.uids)}:{g.uids[0]}", series[0].ds_values[-1])
    P = n_paths
    buf = np.zeros((L + h, n, P))
    buf[:L] = tail[:, :, None]
    path_mu = np.empty((h, n, P))
    r = None if fam == "poisson" else (1.0 / psi)[:, None]
    for s in range(h):
        mu = np.minimum(nu[s][:, None] + A @ buf[s], cap[:, None])
        path_mu[s] = mu
        if r is None:
            buf[L + s] = rng.poisson(mu)
        else:
            buf[L + s] = rng.negative_binomial(np.broadcast_to(r, mu.shape), r / (r + mu))
    # Path means of each step rescaled to the exact mean (no Monte Carlo error in the means).
    avg = path_mu.mean(axis=2)
    scale = np.divide(means, avg, out=np.ones_like(means), where=avg > 0)
    path_mu *= scale[:, :, None]
    paths = buf[L:].astype(np.int64)
    return {u: SeriesForecast("pathmix", path_mu=path_mu[:, j, :], paths=paths[:, j, :],
                              alpha=np.full(h, psi[j]), pi=np.zeros(h))
            for j, u in enumerate(g.uids) if u in current}
