"""The batched Kalman filter of forecast.models._armafilter against a plain one-series reference.

The reference below is the textbook filter (dense T P T', one series at a time, every branch
written out, including the diffuse start at the first observed value when d = 1), so the
structured products and the up-front bookkeeping of the batched filter are checked against
an independent implementation, at 1e-10.
"""
from __future__ import annotations

import numpy as np
import pytest

from forecast.models._armafilter import Arma, _tmul, kalman


def _reference(model: Arma, x: np.ndarray, z: np.ndarray, X: np.ndarray) -> tuple[float, np.ndarray]:
    """Profile log-likelihood and β̂ of one series (z (n,), X (n, c)) by a plain loop."""
    T, R, P0 = (m[0] for m in model.matrices(x[None]))
    d, s = model.d, model.r + model.d
    Y = np.column_stack([z, X])
    a, P = np.zeros((s, Y.shape[1])), np.zeros((s, s))
    if not d:
        P = P0.copy()
    A, logF, nobs, started = np.zeros((Y.shape[1], Y.shape[1])), 0.0, 0, not d
    for t in range(len(z)):
        if np.isfinite(z[t]):
            if not started:
                a[:] = 0.0
                a[0] = Y[t]
                P = np.zeros((s, s))
                P[1:, 1:] = P0
                started = True
            else:
                F = P[0, 0]
                v = Y[t] - a[0]
                K = P[:, 0] / F
                A += np.outer(v, v) / F
                logF += np.log(F)
                nobs += 1
                a = a + np.outer(K, v)
                P = P - np.outer(K, K) * F
        a = T @ a
        P = T @ P @ T.T + np.outer(R, R)
    c = X.shape[1]
    beta = np.linalg.solve(A[1:, 1:], A[1:, 0]) if c else np.zeros(0)
    rss = A[0, 0] - A[1:, 0] @ beta
    return -0.5 * nobs * (np.log(2 * np.pi * rss / nobs) + 1) - 0.5 * logF, beta


@pytest.mark.parametrize("order", [(1, 1, 1), (1, 0, 1), (2, 1, 1), (0, 1, 2), (2, 0, 2)])
def test_structured_transition_product_equals_the_dense_one(order):
    model = Arma(*order)
    x = np.random.default_rng(1).uniform(-2, 2, size=(5, model.k))
    T = model.matrices(x)[0]
    s = T.shape[1]
    M = np.random.default_rng(2).normal(size=(s, 3, 5))
    phi = np.ascontiguousarray(T[:, model.d:, model.d].T)
    np.testing.assert_allclose(_tmul(phi, M, model.d), np.einsum("nij,jcn->icn", T, M), atol=1e-14)


@pytest.mark.parametrize("order", [(1, 1, 1), (1, 0, 1), (2, 1, 1), (0, 1, 2)])
def test_batched_filter_equals_a_plain_loop(order):
    """Rows with leading missing values (late starts), gaps, a missing last value and a
    never-observed-until-the-end row, with and without regressors."""
    rng = np.random.default_rng(3)
    model = Arma(*order)
    S, n = 6, 50
    z = np.cumsum(rng.normal(size=(S, n)), axis=1) + 3
    z[1, :7] = np.nan
    z[2, 20:25] = np.nan
    z[3, -1] = np.nan
    z[4, :45] = np.nan
    z[5, ::3] = np.nan
    u = np.arange(n) / 12
    X = np.broadcast_to(np.column_stack([np.sin(2 * np.pi * u), np.cos(2 * np.pi * u)]), (S, n, 2)).copy()
    x = rng.uniform(-1.5, 1.5, size=(S, model.k))
    for XX in (X, X[:, :, :0]):
        out = kalman(model, x, z, XX)
        for i in range(S):
            ll, beta = _reference(model, x[i], z[i], XX[i])
            assert abs(out.llf[i] - ll) < 1e-10 * max(1.0, abs(ll)), (order, i)
            np.testing.assert_allclose(out.beta[i], beta, atol=1e-10)


def test_an_absent_regressor_column_is_the_narrower_design():
    """A regressor that is NaN throughout a row (a batch mixing Fourier orders) gives that row
    the likelihood, β (with a 0 for the absent column) and state of the narrower design."""
    rng = np.random.default_rng(4)
    model = Arma(1, 1, 1)
    n = 60
    z = np.cumsum(rng.normal(size=(2, n)), axis=1)
    u = np.arange(n) / 12
    F = np.column_stack([np.sin(2 * np.pi * u), np.cos(2 * np.pi * u)])
    x = np.array([[0.3, -0.8], [-0.2, 1.1]])
    X = np.stack([F, F])
    X[1, :, 1] = np.nan
    mixed = kalman(model, x, z, X)
    full = kalman(model, x[:1], z[:1], F[None])
    narrow = kalman(model, x[1:], z[1:], F[None, :, :1])
    np.testing.assert_allclose(mixed.llf, [full.llf[0], narrow.llf[0]], rtol=1e-12)
    np.testing.assert_allclose(mixed.beta, [full.beta[0], [narrow.beta[0, 0], 0.0]], atol=1e-12)
    np.testing.assert_allclose(mixed.a[1], narrow.a[0], atol=1e-12)
