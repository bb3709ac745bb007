"""The separation check's LP-free shortcuts give the LP's answer (tests/models: _glmcheck)."""
from __future__ import annotations

import numpy as np
import pytest

from forecast.models import _glmcheck
from forecast.models._glmcheck import _diverging_columns


def _lp_only(X, y, free):
    """The check with the LP always deciding (the behaviour before the shortcuts)."""
    zero = y == 0
    A, B = X[zero][:, free], X[~zero][:, free]
    if A.shape[0] == 0 or A.shape[1] == 0:
        return np.zeros(0, dtype=int)
    neg = _glmcheck._lp_separating_rows(A, B)
    if neg is None or not neg.any():
        return np.zeros(0, dtype=int)
    return _glmcheck._unpinned(X, zero, neg, free)


def _monthly(rng, n, lag: bool, empty_months: int):
    t = np.arange(n)
    month = t % 12 + 1
    X = np.column_stack([np.ones(n), t / 12] + [(month == k).astype(float) for k in range(2, 13)])
    mu = np.exp(rng.normal(0.0, 1.0) + rng.normal(0, 0.5, 12)[month - 1])
    y = rng.poisson(mu)
    for k in rng.choice(np.arange(2, 13), size=empty_months, replace=False):  # months that never saw a count
        y[month == k] = 0
    if lag:
        X = np.column_stack([X, np.r_[0.0, np.log1p(y[:-1])]])
    return X, y


@pytest.mark.parametrize("seed", range(40))
def test_shortcut_equals_the_lp_on_monthly_designs(seed):
    rng = np.random.default_rng(seed)
    X, y = _monthly(rng, int(rng.integers(14, 60)), lag=bool(seed % 2), empty_months=int(rng.integers(0, 4)))
    free = np.ones(X.shape[1], dtype=bool)
    np.testing.assert_array_equal(_diverging_columns(X, y, free), _lp_only(X, y, free))


def test_empty_month_is_decided_without_the_lp(monkeypatch):
    rng = np.random.default_rng(3)
    X, y = _monthly(rng, 48, lag=False, empty_months=0)
    y[X[:, 4] == 1] = 0  # month_5 never saw a count: its coefficient diverges
    y[X[:, 4] == 0] += 1
    free = np.ones(X.shape[1], dtype=bool)
    expected = _lp_only(X, y, free)

    def no_lp(*args, **kwargs):
        raise AssertionError("the LP ran")

    monkeypatch.setattr(_glmcheck, "_lp_separating_rows", no_lp)
    got = _diverging_columns(X, y, free)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, [4])


def test_overlapping_zero_columns_go_to_the_lp(monkeypatch):
    # two one-signed columns zero on every y > 0 row share a row: the LP's optimum need not
    # be unique there, so the shortcut must not decide
    X = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=float)
    y = np.array([2, 0, 0, 0, 1, 3])
    calls = []
    real = _glmcheck._lp_separating_rows

    def spy(A, B):
        calls.append(1)
        return real(A, B)

    monkeypatch.setattr(_glmcheck, "_lp_separating_rows", spy)
    got = _diverging_columns(X, y, np.ones(3, dtype=bool))
    assert calls == [1]
    np.testing.assert_array_equal(got, _lp_only(X, y, np.ones(3, dtype=bool)))


def _no_lp(monkeypatch):
    def no_lp(*args, **kwargs):
        raise AssertionError("the LP ran")

    monkeypatch.setattr(_glmcheck, "_lp_separating_rows", no_lp)


@pytest.mark.parametrize("seed", range(20))
def test_empty_reference_month_is_decided_without_the_lp(seed, monkeypatch):
    # January (the month without a dummy) never saw a count: B d = 0 leaves one direction
    # (intercept down, every month dummy up), which moves the January rows only
    rng = np.random.default_rng(100 + seed)
    X, y = _monthly(rng, int(rng.integers(30, 90)), lag=bool(seed % 2), empty_months=int(seed % 3 == 0))
    y[X[:, 2:13].sum(axis=1) == 0] = 0
    y[(X[:, 2:13].sum(axis=1) == 1) & (y == 0)] = 1  # every other month has counts
    free = np.ones(X.shape[1], dtype=bool)
    expected = _lp_only(X, y, free)
    assert expected.size  # the LP finds the separation
    _no_lp(monkeypatch)
    np.testing.assert_array_equal(_diverging_columns(X, y, free), expected)


def test_one_dimensional_null_space_of_both_signs_separates_nothing(monkeypatch):
    # B d = 0 leaves d = t (1, -1); A's rows move one each way: only t = 0 is feasible
    X = np.array([[1, 1], [2, 2], [1, 0], [0, 1]], dtype=float)
    y = np.array([1, 2, 0, 0])
    free = np.ones(2, dtype=bool)
    assert _lp_only(X, y, free).size == 0
    _no_lp(monkeypatch)
    assert _diverging_columns(X, y, free).size == 0


def test_one_dimensional_null_space_of_one_sign_separates_its_rows(monkeypatch):
    # d = t (1, -1) again; both y = 0 rows move the same way, the third y = 0 row not at all
    X = np.array([[1, 1], [2, 2], [1, 0], [3, 0], [1, 1]], dtype=float)
    y = np.array([1, 2, 0, 0, 0])
    free = np.ones(2, dtype=bool)
    expected = _lp_only(X, y, free)
    _no_lp(monkeypatch)
    np.testing.assert_array_equal(_diverging_columns(X, y, free), expected)
    np.testing.assert_array_equal(expected, [0, 1])
