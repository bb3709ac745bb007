"""Sample paths of one log-linear GLM series with lags (the per-series path of
:meth:`forecast.models.glm.PoissonGLM.forecast`; batched series use ``simulate_many``)."""
from __future__ import annotations

import numpy as np

from forecast.models._glmglue import _draw, start_history
from forecast.models.design import capped_mean, lag_values
from forecast.models.series import Series


def simulate_series(n_paths: int, eta: np.ndarray, gamma: np.ndarray, lags: tuple[int, ...], s: Series,
                    alpha: float, cap: float, rng: np.random.Generator, pre: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Sample paths (h, n_paths): draw y_{T+j} given the simulated past, step by step; also
    the mean each draw was made with (h, n_paths), the path's conditional law of that step.

    ``pre`` (the lag-free linear predictor of the last w periods, see
    :func:`~forecast.models._missing.lag_window`): the missing counts among them are
    drawn first, from the last observed ones forward, so each path carries its own
    value of a missing lag.
    """
    h, L = len(eta), max(lags)
    w = 0 if pre is None else len(pre)
    hist = np.empty((n_paths, L + w + h))
    hist[:, :L + w] = start_history(s, L + w) if w else s.y[-L:]
    n = len(s.y)
    for j in range(w):  # in-sample periods T-w .. T-1: draw the missing ones
        t = n - w + j
        if s.observed[t] or not np.isfinite(pre[j]):
            continue  # observed, or before the first fitted row (start_history filled it)
        mu = capped_mean(np.exp(pre[j] + lag_values(hist[:, :L + j], lags) @ gamma), cap, s.uid)
        hist[:, L + j] = _draw(rng, mu, alpha)
    mus = np.empty((h, n_paths))
    for j in range(h):  # vectorised over paths; the recursion forces a loop over steps
        mus[j] = capped_mean(np.exp(eta[j] + lag_values(hist[:, :L + w + j], lags) @ gamma), cap, s.uid)
        hist[:, L + w + j] = _draw(rng, mus[j], alpha)
    return hist[:, L + w:].T.astype(np.int64), mus
