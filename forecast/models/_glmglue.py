"""Small pieces the GLM specs (:mod:`forecast.models.glm`) share: batched results as
floats, NB2 draws and batched path simulation, simulated forecasts as path mixtures,
solver messages in term names, and the future frame's check."""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError
from forecast.models.design import DesignSpec, build_design, capped_mean
from forecast.models.results import SeriesForecast
from forecast.models.streams import series_rng


class _BatchRows:
    """A batched solve's results per series, read from the batch's arrays: one small
    object per fit (:class:`_BatchCoef`) instead of a dict of tuples and lists of floats.
    Thousands of fits then leave few objects behind, and Python's cyclic garbage collector
    (whose full passes over a large heap cost ~0.1-0.2 s) runs far less often."""

    def __init__(self, res, d, nb: bool) -> None:
        self.res, self.names, self.nb = res, list(d.names), nb
        self.index = {name: k for k, name in enumerate(self.names)}
        self.loglik = res.loglik.tolist()
        lag = list(d.lag_cols)
        self.lag_sum = res.coef[:, lag].sum(axis=1).tolist() if lag else [0.0] * len(self.loglik)
        # rows of the fit per series (the design's rows, less missing ones)
        n = d.y.shape[1]
        self.n_obs = [n] * len(self.loglik) if d.rows is None else d.rows.sum(axis=1).tolist()


class _BatchCoef(Mapping):
    """term -> (estimate, std error) of series ``j`` of a batched solve (with ``alpha`` for
    NB), as the per-series path's dict gives it; pickles as that dict."""

    __slots__ = ("_rows", "_j")

    def __init__(self, rows: _BatchRows, j: int) -> None:
        self._rows, self._j = rows, j

    def __getitem__(self, key: str) -> tuple[float, float]:
        r, j = self._rows, self._j
        if key == "alpha" and r.nb:
            return float(r.res.alpha[j]), float(r.res.alpha_se[j])
        k = r.index[key]
        return float(r.res.coef[j, k]), float(r.res.std_error[j, k])

    def __iter__(self):
        yield from self._rows.names
        if self._rows.nb:
            yield "alpha"

    def __len__(self) -> int:
        return len(self._rows.names) + int(self._rows.nb)

    def items(self):  # (one conversion per row, not per term)
        r, j = self._rows, self._j
        out = list(zip(r.names, zip(r.res.coef[j].tolist(), r.res.std_error[j].tolist())))
        if r.nb:
            out.append(("alpha", (float(r.res.alpha[j]), float(r.res.alpha_se[j]))))
        return out

    def __reduce__(self):
        return dict, (dict(self.items()),)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def _draw(rng: np.random.Generator, mu: np.ndarray, alpha: float) -> np.ndarray:
    """NB2(mu, alpha) draws as a gamma-Poisson mixture (alpha = 0: Poisson).

    The gamma draws are ``rng.gamma(1 / alpha, alpha * mu)`` exactly (numpy draws
    ``scale * standard_gamma(shape)`` element by element); with the one shape as a scalar,
    numpy checks no array of parameters (a third of the cost of a call of 1000 draws)."""
    if alpha > 0:
        mu = rng.standard_gamma(1.0 / alpha, np.shape(mu)) * (alpha * mu)  # mean mu, variance alpha mu^2
    return rng.poisson(mu)


def pathmix(paths: np.ndarray, mus: np.ndarray, alpha: float | None = 0.0, pi: float | None = None
            ) -> SeriesForecast:
    """Simulated paths (h, n_paths) with the mean each count was drawn with: each step's pmf is
    the average of the paths' conditional (ZI)NB2 laws (``CountForecast.from_path_means``)."""
    h = len(mus)
    return SeriesForecast("pathmix", paths=paths, path_mu=mus, alpha=np.full(h, 0.0 if alpha is None else float(alpha)),
                          pi=None if pi is None else np.full(h, float(pi)))


def _named_columns(message: str, names: list[str]) -> str:
    """The solver names columns by position; say which terms they are."""

    def repl(m: re.Match) -> str:
        idx = [int(i) for i in m.group(2).split(", ")]
        return m.group(1) + ", ".join(names[i] if i < len(names) else str(i) for i in idx)

    return re.sub(r"(column(?:s|\(s\))? )(\d+(?:, \d+)*)", repl, message)


def _check_future(dspec: DesignSpec, future: pd.DataFrame | None, uid: str) -> None:
    need = dspec.needed_columns()
    if not need or future is None:
        return  # future_design says which columns are needed when none are given
    missing = [c for c in need if c not in future.columns]
    if missing:
        raise ConfigError(f"The future frame lacks column(s) {', '.join(missing)} needed to forecast "
                          f"series '{uid}': give unique_id, ds and {', '.join(need)}.")
    if dspec.exposure and (future[dspec.exposure].to_numpy(dtype=float) < 0).any():
        raise ConfigError(f"Future exposure of series '{uid}' must be >= 0.")


def in_sample_eta(dspec: DesignSpec, s, beta: np.ndarray, w: int) -> np.ndarray:
    """Linear predictor without the lag part for the last ``w`` periods of the series
    (NaN before the first fitted row, which has no design row)."""
    d = build_design(dspec, s)
    X = d.X.copy()
    X[:, list(d.lag_cols)] = 0.0
    eta = X @ beta + d.offset
    out = np.full(w, np.nan)
    k = min(w, len(eta))
    if k:
        out[w - k:] = eta[len(eta) - k:]
    return out


def start_history(s, n_back: int) -> np.ndarray:
    """The last ``n_back`` counts; periods before the series' start and missing periods
    before the first fitted row (which the model cannot draw) take the observed mean."""
    y = np.asarray(s.y, dtype=float)
    obs = np.ones(len(y), dtype=bool) if s.observed is None else np.asarray(s.observed, dtype=bool)
    fill = float(np.round(y[obs].mean())) if obs.any() else 0.0
    out = np.full(n_back, fill)
    k = min(n_back, len(y))
    out[n_back - k:] = np.where(obs[len(y) - k:], y[len(y) - k:], fill)
    return out


def simulate_many(eta: np.ndarray, gamma: np.ndarray, lags: tuple[int, ...], group: list, alpha: np.ndarray,
                  caps: np.ndarray, seed: int, n_paths: int) -> tuple[np.ndarray, np.ndarray]:
    """The GLM's per-series path simulation for S series at once: paths and the mean each
    count was drawn with, both (S, h, n_paths). Means are computed for all series together;
    each series draws from its own stream, in the per-series order (same draws).

    Arrays are laid out as the result, series-major then step, so a step's lagged counts
    are contiguous rows and nothing is transposed or copied at the end.
    """
    S, h = eta.shape
    L = max(lags)
    rngs = [series_rng(seed, s.uid, s.ds_values[-1]) for s in group]
    paths = np.empty((S, h, n_paths), dtype=np.int64)
    mus = np.empty((S, h, n_paths))
    start = np.log1p(np.stack([np.asarray(s.y[-L:], dtype=float) for s in group]))  # (S, L): counts before h = 1

    def log_lag(j: int, k: int) -> np.ndarray:  # log(1 + y) of the count k steps before step j, (S, P or 1)
        return np.log1p(paths[:, j - k]) if j >= k else start[:, L + j - k, None]

    for j in range(h):
        if len(lags) == 1:  # (one term: the product is the one-term matmul's value exactly)
            z = log_lag(j, lags[0]) * gamma[:, 0, None]
        else:
            lagv = np.stack([np.broadcast_to(log_lag(j, k), (S, n_paths)) for k in lags], axis=-1)
            z = np.matmul(lagv, gamma[:, :, None])[:, :, 0]
        mu = np.exp(eta[:, j, None] + z)
        mu = np.broadcast_to(mu, (S, n_paths))
        with np.errstate(invalid="ignore"):
            over = set(np.flatnonzero((mu > caps[:, None]).any(axis=1)).tolist())  # checked once per step
        mus[:, j] = mu
        for i, rng in enumerate(rngs):
            m = mus[i, j] if i not in over else capped_mean(mus[i, j].copy(), caps[i], group[i].uid)
            mus[i, j] = m
            paths[i, j] = _draw(rng, m, alpha[i])
    return paths, mus
