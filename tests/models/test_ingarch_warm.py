"""Warm-started INGARCH refits (forecast.models._ingarchwarm): a refit on one more period
started from the previous fit reaches the cold fit's optimum and decisions, in fewer
Newton iterations.

Tolerance: both fits stop at max |score| <= 1e-8 (``fit_ingarch``'s ``tol``), so two
fits of the same optimum differ by about the inverse information times 1e-8. The
intercept / mean-lag direction of a log-linear INGARCH is a flat ridge (curvature of
order 1e-3 relative), so estimates are compared to 1e-5, relative where larger than 1:
far below their standard errors (>= 1e-2 here) and far above rounding, and a start
mapped to the wrong columns that converged elsewhere would fail it.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import forecast
from forecast.models import _ingarchfit
from forecast.models.autoregressive import INGARCH
from forecast.models.base import Series
from forecast.models.ladder import warm_starts

TOL = 1e-5


def _simulate(rng, n, b0, b1, a1, alpha, amp=0.3):
    """Log-linear INGARCH(1,1) counts with a yearly cycle: NB2 (alpha > 0) or Poisson."""
    y, nu = np.zeros(n, dtype=np.int64), b0 / (1 - b1 - a1)
    for t in range(n):
        prev = np.log1p(y[t - 1]) if t else nu
        nu = b0 + b1 * prev + a1 * nu + amp * np.sin(2 * np.pi * t / 12)
        mu = np.exp(min(nu, 8.0))
        y[t] = rng.poisson(rng.gamma(1 / alpha, alpha * mu)) if alpha > 0 else rng.poisson(mu)
    return y


def _series(y, observed=None, exog=None):
    ds = pd.date_range("2014-01-01", periods=len(y), freq="MS")
    y = np.asarray(y, dtype=np.int64).copy()
    if observed is not None:
        y[~observed] = 0  # (the contract: y holds 0 at a missing period)
    return Series("s", ds, y, "MS", None if exog is None else exog.iloc[:len(y)].reset_index(drop=True),
                  observed)


# kind -> (spec parameters, data parameters b0, b1, a1, alpha)
KINDS = {
    "negbin": ({}, (0.6, 0.3, 0.35, 0.3)),
    "poisson": ({"distribution": "poisson"}, (0.6, 0.3, 0.35, 0.0)),
    "near_poisson_boundary": ({}, (0.6, 0.3, 0.35, 0.0)),  # NB spec, Poisson data: alpha at 0 often
    "near_nonstationary": ({}, (0.1, 0.5, 0.44, 0.2)),
    "missing": ({}, (0.6, 0.3, 0.35, 0.3)),
    "aliased": ({"exog": ("one", "zero")}, (0.6, 0.3, 0.35, 0.3)),  # a copy of the intercept, a zero column
}


def _case(kind, seed):
    rng = np.random.default_rng(seed)
    params, (b0, b1, a1, alpha) = KINDS[kind]
    n = int(rng.integers(40, 90))
    y = _simulate(rng, n + 1, b0, b1, a1, alpha)
    observed = exog = None
    if kind == "missing":
        observed = np.ones(n + 1, dtype=bool)
        observed[rng.choice(np.arange(2, n + 1), size=4, replace=False)] = False
    if kind == "aliased":
        exog = pd.DataFrame({"one": np.ones(n + 1), "zero": np.zeros(n + 1)})
    spec = INGARCH(seasonality="fourier", fourier_k=1, **params)
    before = _series(y[:n], None if observed is None else observed[:n], exog)
    now = _series(y, observed, exog)
    return spec, before, now


def _kinds(message):
    """A message's classes: each note up to its first number or colon."""
    return [part.split(":")[0].split("(")[0].strip() for part in message.split("; ") if part]


def _assert_same_fit(warm, cold):
    assert warm.converged == cold.converged
    assert _kinds(warm.message) == _kinds(cold.message)
    assert warm.n_params == cold.n_params and warm.n_obs == cold.n_obs
    assert list(warm.coef) == list(cold.coef)
    for name, (w, _) in warm.coef.items():
        c = cold.coef[name][0]
        assert np.isnan(w) == np.isnan(c), name
        if not np.isnan(c):
            assert abs(w - c) <= TOL * max(1.0, abs(c)), (name, w, c)
    if cold.converged:
        # the Poisson / NB decision: alpha exactly 0 in both, or in neither
        assert (warm.state["alpha"] == 0) == (cold.state["alpha"] == 0)
        assert warm.loglik == pytest.approx(cold.loglik, rel=1e-9, abs=1e-9)


@pytest.fixture()
def iterations(monkeypatch):
    """Newton iterations of every ascent, summed."""
    count = [0]
    real = _ingarchfit._ascend

    def counted(*args):
        out = real(*args)
        count[0] += out[4]
        return out

    monkeypatch.setattr(_ingarchfit, "_ascend", counted)
    return count


def _compare(kind, seeds, iterations):
    """(cases warm-started, cases whose warm and cold fits differ, warm and cold iterations)."""
    n_warm = n_cold = used = differ = 0
    for seed in seeds:
        spec, before, now = _case(kind, 1000 * len(kind) + seed)
        earlier = spec._fit_series(before)
        k0 = iterations[0]
        cold = spec._fit_series(now)
        k1 = iterations[0]
        warm = spec._fit_series(now, earlier)
        n_cold, n_warm = n_cold + k1 - k0, n_warm + iterations[0] - k1
        used += earlier.converged
        try:
            _assert_same_fit(warm, cold)
        except AssertionError:
            # Allowed only as a second local maximum: the warm ascent converged (it is kept
            # only then) to a point of another likelihood than the cold fit's.
            assert warm.converged and abs(warm.loglik - cold.loglik) > 1e-6
            differ += 1
    return used, differ, n_warm, n_cold


def _check(kind, iterations):
    used, differ, n_warm, n_cold = _compare(kind, range(12), iterations)
    assert used >= 8  # (enough cases where a warm start was given)
    assert differ <= 1
    assert n_warm < 0.8 * n_cold, (n_warm, n_cold)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_warm_refit_on_one_more_period_equals_the_cold_fit(kind, iterations):
    """The likelihood of a log-linear INGARCH can have several local maxima (most often
    near the stationarity edge): a warm ascent then keeps to the earlier fit's, which may
    not be the one the cold path reaches (3 of 533 warm starts on 600 such panels, 16 of
    538 in the demo's backtest). That is why ``INGARCH.warm_starts`` is off by default;
    here at most 1 case in 12 may differ, and only that way."""
    _check(kind, iterations)


def test_a_wrong_start_or_a_lax_boundary_rule_fails_the_check(monkeypatch, iterations):
    """The check above fails a warm path that starts from a scrambled estimate (more
    iterations than cold) or keeps a warm NB fit whatever its alpha (the Poisson/NB
    decision then differs near the boundary)."""
    from forecast.models import _ingarchwarm
    import forecast.models.autoregressive as ar

    real = _ingarchwarm.start_of

    def scrambled(fit, spec, names, cols):
        got = real(fit, spec, names, cols)
        return None if got is None else (np.roll(got[0], 1), got[1])

    with monkeypatch.context() as m:
        m.setattr(ar, "start_of", scrambled)
        with pytest.raises(AssertionError):
            _check("negbin", iterations)
    monkeypatch.setattr(_ingarchfit, "WARM_ALPHA_MIN", 0.0)
    with pytest.raises(AssertionError):
        _check("near_poisson_boundary", iterations)


def test_starts_cold_when_the_earlier_fit_is_not_usable():
    from forecast.models._ingarchwarm import start_of

    spec, before, now = _case("negbin", 6006)
    fit = spec._fit_series(before)
    assert fit.converged
    names = fit.state["names"]
    cols = np.ones(len(names), dtype=bool)
    start, alpha = start_of(fit, spec, names, cols)
    assert start.tolist() == [*fit.state["beta"], *fit.state["a"]] and alpha == fit.state["alpha"]
    assert start_of(None, spec, names, cols) is None
    assert start_of(fit, spec, [*names, "neighbours_lag1"], np.ones(len(names) + 1, bool)) is None
    assert start_of(fit, spec.clone().set_params(past_mean=(1, 2)), names, cols) is None
    fit.fallback = "negbin_glm"
    assert start_of(fit, spec, names, cols) is None


def _panel(n_series=6, n=70, seed=11):
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2016-01-01", periods=n, freq="MS")
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds,
                                    "y": _simulate(rng, n, 0.7, 0.3, 0.3, 0.25)}) for i in range(n_series)],
                     ignore_index=True)


def test_a_backtest_with_warm_starts_scores_as_the_cold_one_in_fewer_iterations(iterations, monkeypatch):
    monkeypatch.setattr(INGARCH, "warm_starts", True)  # (opt-in, see above)
    panel = _panel()
    kw = dict(horizon=2, n_origins=8, seed=1, progress=False, keep_pmf=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with warm_starts(False):
            cold = forecast.backtest(panel, {"m": forecast.load_model("ingarch")}, **kw)
        n_cold, iterations[0] = iterations[0], 0
        warm = forecast.backtest(panel, {"m": forecast.load_model("ingarch")}, **kw)
        n_warm = iterations[0]
    assert n_warm < 0.8 * n_cold, (n_warm, n_cold)  # fails when warm starts are silently not used
    for a, b in ((warm.point_scores, cold.point_scores), (warm.forecasts, cold.forecasts)):
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        for c in a.columns:
            if pd.api.types.is_float_dtype(a[c]):
                np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-6, atol=1e-6, err_msg=c)
            else:
                assert (a[c].astype(str) == b[c].astype(str)).all(), c


def _step_trying_every_shift(H, g):
    """The Newton step as the solver took it before: a Cholesky at every shift in turn."""
    from scipy import linalg

    scale = max(float(np.max(np.abs(np.diag(H)), initial=1.0)), 1e-12)
    for shift in (0.0, *(scale * 10.0 ** np.arange(-10, 3))):
        try:
            return linalg.cho_solve((np.linalg.cholesky(-H + shift * np.eye(len(g))), True), g)
        except (linalg.LinAlgError, ValueError):
            continue
    return g / scale


def test_the_newton_step_skips_only_shifts_that_surely_fail():
    """Equal, bit for bit, to trying every shift: on negative definite, indefinite (mildly
    and strongly), singular and non-finite Hessians."""
    rng = np.random.default_rng(4)
    cases = 0
    for _ in range(400):
        k = int(rng.integers(2, 8))
        Q = np.linalg.qr(rng.normal(size=(k, k)))[0]
        ev = -np.exp(rng.normal(0, 3, size=k))  # negative definite ...
        flip = rng.random(k) < rng.choice([0.0, 0.3, 1.0])
        ev[flip] *= -rng.choice([1e-12, 1e-6, 1e-3, 1.0, 1e3], size=flip.sum())  # ... or not
        if rng.random() < 0.1:
            ev[0] = 0.0
        H = (Q * ev) @ Q.T
        H = (H + H.T) / 2
        if rng.random() < 0.03:
            H[0, 0] = np.nan
        g = rng.normal(size=k)
        a, b = _ingarchfit._newton_step(H, g), _step_trying_every_shift(H, g)
        assert np.array_equal(a, b, equal_nan=True)
        cases += bool(flip.any())
    assert cases > 100
