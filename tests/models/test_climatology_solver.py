"""The climatology's solvers (issue 15 item 5): the intercept-only NB2 dispersion MLE stops at
the lower bound of its bracket in one look when the maximum lies below it, and the pooled
fit's window sums come from one cumulative sum. Checked against brute force."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import optimize, special, stats

from forecast.models._nbintercept import LOG_ALPHA_BOUNDS, nb_intercept_mle_batch
from forecast.models._pooled import window_sums

# A 36-month window of a simulated series whose variance equals its mean exactly (sum of
# squared deviations 16 = sum 16) but exceeds it by one rounding in floating point: the
# profile likelihood falls as alpha leaves 0 (its maximum is the boundary), so the solver
# ends at the lower end of its bracket.
EQUI = [0, 0, 0, 2, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0,
        0, 0, 1]


def nb_loglik(alpha: float, y: np.ndarray) -> float:
    """Independent NB2 log-likelihood of ``y`` at its mean and ``alpha``, term by term:
    log NB(y) = Σ_{k<y} log(1 + αk) − log y! + y log μ − (y + 1/α) log(1 + αμ), accurate as
    alpha -> 0 (scipy's pmf in r = 1/alpha loses digits there)."""
    mu = float(y.mean())
    if alpha == 0:
        return float(stats.poisson.logpmf(y, mu).sum())
    total = 0.0
    for v in y.tolist():
        total += (float(np.sum(np.log1p(alpha * np.arange(v)))) - float(special.gammaln(v + 1.0))
                  + (v * np.log(mu) if v else 0.0) - (v + 1.0 / alpha) * float(np.log1p(alpha * mu)))
    return total


def count_score_calls(monkeypatch) -> list[int]:
    """Counts the solver's score evaluations (its per-row tail sums)."""
    from forecast.models import _nbtails

    calls = [0]
    real = _nbtails._Tails.sums

    def counted(self, a, sub):
        calls[0] += 1
        return real(self, a, sub)

    monkeypatch.setattr(_nbtails._Tails, "sums", counted)
    return calls


def test_equidispersed_window_is_rounding_overdispersed():
    y = np.array(EQUI)
    assert np.sum((y - y.mean()) ** 2) == y.sum() or len(y) * np.sum(y * y) - y.sum() ** 2 == len(y) * y.sum()
    assert np.mean((y - y.mean()) ** 2) > y.mean()  # what the solver's test sees


def test_maximum_below_the_bracket_stops_at_the_bound_in_one_look(monkeypatch):
    calls = count_score_calls(monkeypatch)
    y = np.array(EQUI)
    mu, alpha, ll = nb_intercept_mle_batch(y[None, :])
    # Exactly the bound (bisection used to creep to within 1e-10 of it in ~20 rounds).
    assert alpha[0] == np.exp(LOG_ALPHA_BOUNDS[0])
    # One score at the start, one at the bound, one log-likelihood: no bisection rounds.
    assert calls[0] <= 4
    assert mu[0] == y.mean()
    assert ll[0] == pytest.approx(nb_loglik(alpha[0], y), rel=1e-12)
    # Brute force: no alpha of the bracket beats the bound.
    grid = np.exp(np.linspace(LOG_ALPHA_BOUNDS[0], LOG_ALPHA_BOUNDS[1], 400))
    assert ll[0] >= max(nb_loglik(a, y) for a in grid[1:]) - 1e-12 * abs(ll[0])


def test_interior_maxima_match_brute_force_and_batches():
    rng = np.random.default_rng(20261203)
    rows = [rng.negative_binomial(r, r / (r + m), 36) for r, m in
            [(0.5, 3.0), (2.0, 1.0), (5.0, 8.0), (1.0, 0.3), (20.0, 2.0), (0.8, 12.0)] for _ in range(4)]
    Y = np.stack(rows + [np.array(EQUI)])
    mu, alpha, ll = nb_intercept_mle_batch(Y)
    for i, y in enumerate(Y):
        # The same estimate alone as in the batch, to the last bit.
        one = nb_intercept_mle_batch(y[None, :])
        assert (one[1][0], one[2][0]) == (alpha[i], ll[i])
        if np.mean((y - y.mean()) ** 2) <= y.mean():
            assert alpha[i] == 0
            continue
        res = optimize.minimize_scalar(lambda t: -nb_loglik(np.exp(t), y), bounds=LOG_ALPHA_BOUNDS,
                                       method="bounded", options={"xatol": 1e-10})
        ref = max(nb_loglik(np.exp(res.x), y), nb_loglik(np.exp(LOG_ALPHA_BOUNDS[0]), y))
        # The likelihood is flat at its maximum: compare it (1e-12 relative), and alpha to 1e-6.
        assert ll[i] >= ref - 1e-12 * abs(ref)
        if alpha[i] > 1e-8:
            assert alpha[i] == pytest.approx(np.exp(res.x), rel=1e-6)


def test_window_sums_equal_per_series_sums():
    rng = np.random.default_rng(7)
    series = []
    for n in (0, 1, 5, 40, 40, 12):
        y = rng.poisson(3.0, n).astype(np.int64)
        observed = None
        if n == 40 and len(series) == 4:  # one series with missing periods (placeholder 0)
            observed = rng.random(n) > 0.3
            y[~observed] = 0
        series.append(SimpleNamespace(y=y, observed=observed))
    series.append(SimpleNamespace(y=np.array([4, 1, 0])))  # no ``observed`` attribute at all
    windows = np.array([3, 1, 9, 36, 36, 0, 2])
    lengths, totals, W, S = window_sums(series, windows)
    for i, (s, w) in enumerate(zip(series, windows)):
        o = getattr(s, "observed", None)
        o = np.ones(len(s.y), dtype=bool) if o is None else o
        span = min(int(w), len(s.y))
        assert lengths[i] == float(o.sum()) and totals[i] == float(np.sum(s.y))
        assert W[i] == (float(o[len(o) - span:].sum()) if span > 0 else 0.0)
        assert S[i] == (float(np.sum(s.y[len(s.y) - span:])) if span > 0 else 0.0)
    assert all(a.dtype == float for a in (lengths, totals, W, S))
    assert [len(a) for a in window_sums([], np.zeros(0, dtype=int))] == [0, 0, 0, 0]


# Two 36-month windows of simulated series where the score in log alpha rounds to exactly 0 at
# the root: the solver used to stop there at the bisection midpoint it had just computed
# (alpha ~2e-5, log-likelihoods 3.2 and 6.7 below the maximum).
SCORE_ZERO = [
    [4, 4, 2, 2, 1, 4, 4, 6, 7, 8, 4, 6, 3, 1, 2, 4, 4, 5, 6, 2, 13, 6, 11, 1, 4, 5, 0, 3, 4, 3, 5, 5, 0, 7, 8, 3],
    [4, 4, 14, 6, 4, 2, 6, 3, 6, 1, 12, 5, 5, 4, 9, 4, 11, 2, 4, 0, 3, 2, 1, 3, 6, 12, 3, 2, 6, 4, 4, 3, 2, 2, 3, 3],
]


@pytest.mark.parametrize("row", SCORE_ZERO)
def test_a_score_of_exactly_zero_is_the_maximum(row):
    y = np.array(row)
    _, alpha, ll = nb_intercept_mle_batch(y[None, :])
    res = optimize.minimize_scalar(lambda t: -nb_loglik(np.exp(t), y), bounds=LOG_ALPHA_BOUNDS,
                                   method="bounded", options={"xatol": 1e-10})
    assert alpha[0] == pytest.approx(np.exp(res.x), rel=1e-6)
    assert ll[0] == pytest.approx(nb_loglik(alpha[0], y), rel=1e-12)
    assert ll[0] >= -res.fun - 1e-12 * abs(res.fun)
