"""Maximum likelihood of ARIMA(p, d, q) coefficients, vectorised over many series.

The estimation behind :class:`~forecast.models.log_arma.LogArma`: a grid of starts and
damped Newton steps with finite-difference derivatives, every series and every trial
point in one run of the batched Kalman filter (:mod:`forecast.models._armafilter`, whose
names are re-exported here). Pure numpy; no model classes.
"""
from __future__ import annotations

import numpy as np

from forecast.models._armafilter import Arma, FilterOut, _tmul, forecast_state, kalman, pacf_to_coef

__all__ = ["Arma", "FilterOut", "_tmul", "fit_arma", "fit_arma_pair", "forecast_state", "kalman", "pacf_to_coef"]

#: Bound of the unconstrained coefficients (partial autocorrelations within ±0.9998: an MA root
#: at the unit circle is a common optimum of an over-differenced series).
X_BOUND = 50.0
#: Grid points per coefficient of the start search, by the number of coefficients.
GRID_POINTS = {1: 15, 2: 9, 3: 5, 4: 4}
#: Newton iterations and step of the finite differences (on the unconstrained scale).
MAX_ITER = 30
FD_STEP = 1e-4
#: Converged when no step improves the log-likelihood by more than this.
TOL = 1e-7
#: ... or once a step gains less than this (a flat ridge; a proper maximum: after one more
#: Newton step, see :func:`_newton`), or when the last of ``MAX_ITER`` steps gained less.
SMALL_GAIN = 1e-3


def _grid(k: int) -> np.ndarray:
    """Start points (G, k) on the unconstrained scale: an even grid of partial autocorrelations."""
    if not k:
        return np.zeros((1, 0))
    m = GRID_POINTS.get(k, 3)
    rho = np.linspace(-0.9, 0.9, m)
    x = rho / np.sqrt(1 - rho ** 2)
    return np.stack(np.meshgrid(*[x] * k, indexing="ij"), axis=-1).reshape(-1, k)


def _llf_many(model: Arma, X0: np.ndarray, z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Log-likelihood of every series (S) at every candidate (S, G, k): (S, G)."""
    S, G, k = X0.shape
    rep = lambda arr: np.repeat(arr, G, axis=0)  # noqa: E731 (series-major, as X0.reshape)
    with np.errstate(all="ignore"):
        out = kalman(model, X0.reshape(S * G, k), rep(z), rep(X)).llf
    return out.reshape(S, G)


def fit_arma(model: Arma, z: np.ndarray, X: np.ndarray, start: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, FilterOut]:
    """Maximum-likelihood ARMA coefficients of every series.

    A grid of starts (:data:`GRID_POINTS`), the best two (see the code) each
    followed by damped Newton steps with finite-difference derivatives (the better end
    kept), every series at once (each row of the batch is
    independent, so a series' result does not depend on the others in the batch).

    Parameters
    ----------
    model : orders.
    z : (S, n) data, NaN where missing.
    X : (S, n, c) regressors (β is profiled out; NaN: absent, see :func:`kalman`).
    start : (S, p + q) a warm start (e.g. the estimates of a shorter window of the same
        series): Newton steps from there alone, no grid. Much cheaper, but it finds the
        local maximum nearest the start, which on a bimodal likelihood may not be the one
        the grid's two starts find. (S, 2, p + q): two starts per series, as the grid's
        (see :func:`fit_arma_pair`).

    Returns
    -------
    x : (S, p + q) unconstrained coefficients (see :meth:`Arma.matrices`).
    converged : (S,) bool, no step improved the likelihood by more than ``TOL`` at the end.
    out : the filter at ``x`` (β̂, σ̂², the last state).
    """
    return fit_arma_pair(model, z, X, start)[:3]


def fit_arma_pair(model: Arma, z: np.ndarray, X: np.ndarray, start: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, FilterOut, np.ndarray]:
    """:func:`fit_arma`, and where the other of the two Newton ascents ended (S, p + q) (``x``
    itself for one start per series): a refit on one more period warm-started at both ends
    (``start`` (S, 2, p + q); rows of NaN start cold, from the grid) follows both maxima of a
    bimodal likelihood, as the grid's two starts would find them, with a few Newton steps
    instead of a grid and a longer ascent."""
    S, k = len(z), model.k
    if not k:
        with np.errstate(all="ignore"):
            out = kalman(model, np.zeros((S, 0)), z, X)
        return np.zeros((S, 0)), np.ones(S, dtype=bool), out, np.zeros((S, 0))
    st = None if start is None else np.asarray(start, dtype=float)
    if st is not None and st.ndim == 2:  # one start per series
        G = 1
        x = np.clip(st, -X_BOUND, X_BOUND).reshape(S, k)
        cur = _llf_many(model, x[:, None, :], z, X)[:, 0]
    else:
        # Two starts per series: the given ones (a series whose row holds NaN starts cold), else
        # the best grid point and the best whose first coefficient has the other sign
        # (near-cancelling AR and MA roots make the likelihood bimodal along such a ridge). Warm
        # and cold series then share every Newton run.
        G = 2
        x, cur = np.zeros((S, 2, k)), np.zeros((S, 2))
        hot = np.zeros(S, dtype=bool) if st is None else np.isfinite(st.reshape(S, -1)).all(axis=1)
        if hot.any():
            x[hot] = np.clip(st.reshape(S, 2, k)[hot], -X_BOUND, X_BOUND)
            cur[hot] = _llf_many(model, x[hot], z[hot], X[hot])
        if not hot.all():
            cold = ~hot
            grid = _grid(k)
            ll = _llf_many(model, np.broadcast_to(grid, (int(cold.sum()), *grid.shape)).copy(), z[cold], X[cold])
            first = grid[:, 0] > 0
            i1 = np.argmax(ll, axis=1)
            other = np.where(first[None, :] != first[i1][:, None], ll, -np.inf)
            i2 = np.argmax(other, axis=1)
            x[cold] = np.stack([grid[i1], grid[i2]], axis=1)
            rows = np.arange(len(ll))
            cur[cold] = np.stack([ll[rows, i1], other[rows, i2]], axis=1)
        x, cur = x.reshape(2 * S, k), cur.reshape(2 * S)
    if G == 1:
        x, conv = _newton(model, x, cur, z, X)
    else:
        x, conv = _newton(model, x, cur, np.repeat(z, G, axis=0), np.repeat(X, G, axis=0))
    best = np.argmax(cur.reshape(S, G), axis=1)
    pick = G * np.arange(S) + best
    alt = x[G * np.arange(S) + (G - 1 - best)]
    x, converged = x[pick], conv[pick]
    with np.errstate(all="ignore"):
        out = kalman(model, x, z, X)
    return x, converged, out, alt


def _stencil(k: int, h: float) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Offsets (1 + 2k + 4k(k-1)/2, k) of the finite differences: 0, ±h e_i, and ±h e_i ± h e_j
    (i < j) for the mixed second derivatives; and the pairs (i, j)."""
    eye = np.eye(k)
    offs = [np.zeros(k)] + [sgn * h * eye[i] for i in range(k) for sgn in (1, -1)]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    offs += [h * (si * eye[i] + sj * eye[j]) for i, j in pairs for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    return np.array(offs).reshape(len(offs), k), pairs


def _derivs(f: np.ndarray, k: int, h: float, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Gradient (A, k) and Hessian (A, k, k) from the log-likelihood at the stencil points (A, m)."""
    f0 = f[:, 0]
    g = np.stack([(f[:, 1 + 2 * i] - f[:, 2 + 2 * i]) / (2 * h) for i in range(k)], axis=1)
    H = np.zeros((len(f), k, k))
    for i in range(k):
        H[:, i, i] = (f[:, 1 + 2 * i] - 2 * f0 + f[:, 2 + 2 * i]) / h ** 2
    for m, (i, j) in enumerate(pairs):
        b = 1 + 2 * k + 4 * m
        H[:, i, j] = H[:, j, i] = (f[:, b] - f[:, b + 1] - f[:, b + 2] + f[:, b + 3]) / (4 * h * h)
    return g, H


def _newton(model: Arma, x: np.ndarray, cur: np.ndarray, z: np.ndarray, X: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton ascent of every row from ``x`` (log-likelihood ``cur``, updated in place).

    Each filter run costs a fixed Python overhead per period plus a cost per row, so the full
    Newton step is tried first, with the finite-difference stencil around it in the same run
    (when it is taken, the next iteration needs no stencil run of its own); the 15 damped and
    gradient trials are run only for the rows where it does not raise the likelihood.

    A row stops when no step gains more than ``TOL``, or once a step gains less than
    ``SMALL_GAIN`` (a flat ridge); when that step was a full Newton step to a proper maximum,
    after one more such (polishing) step, so the estimate is that maximum to far below
    ``TOL``'s scale whatever the start (a warm start ends where the grid's start does).
    """
    S, k = x.shape
    x = x.copy()
    converged = np.zeros(S, dtype=bool)
    gain = np.full(S, np.inf)
    h = FD_STEP
    eye = np.eye(k)
    offs_arr, pairs = _stencil(k, h)
    m = len(offs_arr)
    fs = np.zeros((S, m))  # the stencil's log-likelihoods around x, valid where ``have``
    have = np.zeros(S, dtype=bool)
    polish = np.zeros(S, dtype=bool)  # rows taking their last, polishing Newton step
    steps = np.array([1.0, 0.3, 0.1, 0.02])
    for _ in range(MAX_ITER):
        act = ~converged
        if not act.any():
            break
        ia = np.flatnonzero(act)
        need = ia[~have[ia]]
        if len(need):
            fs[need] = _llf_many(model, x[need, None, :] + offs_arr[None], z[need], X[need])
        g, H = _derivs(fs[ia], k, h, pairs)
        # Newton directions, regularised (Levenberg-Marquardt) where -H is not positive definite
        # (a flat ridge of near-cancelling AR and MA roots), and plain gradient steps; the full
        # Newton step when it raises the likelihood, else the best of all trial points, so each
        # iteration can only raise the likelihood.
        negH = np.where(np.isfinite(H), -H, 0.0)
        low = np.linalg.eigvalsh(negH)[:, 0]
        proper = low > 0
        lam = np.maximum(0.0, -low) + 1e-6 * (1 + np.abs(negH).max(axis=(1, 2)))
        dirs = []
        for boost in (1.0, 10.0, 100.0):
            M = negH + (boost * lam)[:, None, None] * eye
            dirs.append(np.linalg.solve(M, g[:, :, None])[:, :, 0])
        gnorm = np.maximum(np.sqrt((g * g).sum(axis=1, keepdims=True)), 1e-300)
        dirs.append(g / gnorm)
        D = np.stack(dirs, axis=1)  # (A, 4, k)
        D = np.where(np.isfinite(D), D, 0.0)
        lens = np.sqrt((D * D).sum(axis=2, keepdims=True))
        D = np.where(lens > 10.0, D * 10.0 / np.maximum(lens, 1e-300), D)  # at most 10 on the x scale
        trial = (x[ia, None, None, :] + steps[None, None, :, None] * D[:, :, None, :]).reshape(len(ia), -1, k)
        trial = np.clip(trial, -X_BOUND, X_BOUND)
        # A proper maximum ahead (-H positive definite) that the full Newton step reaches uncut
        # (not capped, not clipped at the bound): there Newton converges quadratically. (A row
        # drifting to an MA root at the unit circle takes capped or clipped steps.)
        proper &= (lens[:, 0, 0] <= 10.0) & (np.abs(trial[:, 0]) < X_BOUND).all(axis=1)
        # First the full Newton step (trial 0) with its stencil riding along; the other trials
        # only for rows where it does not raise the likelihood (most rows, most iterations, it does).
        ahead = trial[:, :1, :] + offs_arr[None, 1:]
        f1 = _llf_many(model, np.concatenate([trial[:, :1], ahead], axis=1), z[ia], X[ia])
        fbest = f1[:, 0].copy()
        best = np.zeros(len(ia), dtype=int)
        # (a row whose full step to a proper maximum gains less than TOL has converged there: no
        # other trial can beat it by more than TOL's scale, so it needs no trials of its own)
        was = polish[ia]
        rest = np.flatnonzero(~(fbest > cur[ia] + TOL) & ~(proper & (fbest >= cur[ia])) & ~was)
        if len(rest):
            fr = np.concatenate([f1[rest, :1], _llf_many(model, trial[rest, 1:], z[ia[rest]], X[ia[rest]])], axis=1)
            best[rest] = np.argmax(fr, axis=1)
            fbest[rest] = fr[np.arange(len(rest)), best[rest]]
        better = fbest > cur[ia] + TOL
        # Near a proper maximum the full Newton step lands on it to second order: it is taken
        # even when it gains less than TOL (and the row stops).
        full = (best == 0) & proper
        take = better | (full & (fbest >= cur[ia]))
        gain[ia] = np.where(better, fbest - cur[ia], 0.0)
        x[ia[take]] = trial[np.flatnonzero(take), best[take]]
        cur[ia[take]] = fbest[take]
        newton = better & (best == 0)
        fs[ia[newton]] = f1[newton]
        have[ia] = newton
        converged[ia[~better | was]] = True
        # A row creeping along a flat ridge (an MA root drifting to the unit circle: the
        # likelihood and the forecasts barely change along it) stops once a step gains less
        # than SMALL_GAIN, the gain it would be called converged at anyway. A row that got there
        # by a full Newton step to a proper maximum takes one more (polishing) step: Newton
        # converges quadratically there, so that step lands on the maximum to far below TOL's
        # scale, and the estimate does not depend on where the ascent started.
        small = better & (gain[ia] < SMALL_GAIN)
        converged[ia[small & ~full]] = True
        polish[ia[small & full & ~was]] = True
    # (still creeping along a flat ridge after MAX_ITER: converged if the last gain was negligible)
    return x, converged | (gain < SMALL_GAIN)
