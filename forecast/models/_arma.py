"""Exact Gaussian ARMA likelihood and the order-search helpers behind :class:`~forecast.models.arima.Arima`.

Numerics on arrays (statsmodels only for the KPSS test that picks d): the search ranks
candidate orders by the exact likelihood here, and only the best few are refitted with
``SARIMAX`` (see ``Arima._search``).
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

#: Upper-tail mass left beyond the dense pmf support of the ARIMA forecast (before the support cap).
TAIL = 1e-6

#: 5% critical value of the KPSS level-stationarity test (Kwiatkowski et al. 1992, table 1).
KPSS_CRIT_5PCT = 0.463


def kpss_differences(z: np.ndarray) -> tuple[int, float]:
    """d ∈ {0, 1} from the KPSS level test at 5% (as ``forecast::ndiffs``), and its statistic.

    Lags of the long-run variance: ``trunc(3·sqrt(n)/13)`` (the choice of R's
    ``forecast::ndiffs``). Stationarity is rejected, so d = 1, when the statistic
    exceeds the 5% critical value 0.463.
    """
    from statsmodels.tsa.stattools import kpss

    n = len(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InterpolationWarning: the p-value table is not used
        stat = float(kpss(z, regression="c", nlags=int(3 * np.sqrt(n) / 13))[0])
    return int(stat > KPSS_CRIT_5PCT), stat


def _pacf_to_poly(x: np.ndarray) -> np.ndarray:
    """Lag polynomial ``1 - a_1 L - ... - a_k L^k`` with all roots outside the unit circle.

    ``x`` is unconstrained; ``r = x / sqrt(1 + x²)`` in (-1, 1) are taken as
    partial autocorrelations and turned into coefficients by the Durbin-Levinson
    recursion (Monahan 1984; SARIMAX's ``enforce_stationarity`` uses a map of the
    same kind, so both search the same region), so every ``x`` gives a
    polynomial usable as a stationary AR or an invertible MA side, and the
    search needs no constraints.
    """
    a: list[float] = []
    for v in x:  # plain floats: this runs inside every likelihood evaluation
        r = float(v) / (1.0 + float(v) * float(v)) ** 0.5
        a = [aj - r * ak for aj, ak in zip(a, reversed(a))] + [r]
    return np.array([1.0] + [-aj for aj in a])


def _lag_poly(x: np.ndarray, k: int, K: int, m: int) -> np.ndarray:
    """Non-seasonal factor of degree k times seasonal factor of degree K in L^m, roots outside the unit circle.

    Used for both sides: as φ(L)Φ(L^m) it is stationary, as θ(L)Θ(L^m) invertible
    (only the roots matter, so one map serves both).
    """
    short = _pacf_to_poly(x[:k])
    if not K:
        return short
    long = np.zeros(K * m + 1)
    long[::m] = _pacf_to_poly(x[k:k + K])
    return np.convolve(short, long)


@functools.lru_cache(maxsize=64)
def _yule_walker_index(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions in the (p+1)×(p+1) system of :func:`arma_acov` and the lag i each adds."""
    k, i = np.meshgrid(np.arange(p + 1), np.arange(1, p + 1), indexing="ij")
    return (k * (p + 1) + np.abs(k - i)).ravel(), i.ravel()


def arma_acov(ar: np.ndarray, ma: np.ndarray, n: int) -> np.ndarray:
    """Autocovariances γ_0..γ_{n-1} of the stationary ARMA ``ar(L) x_t = ma(L) e_t``, Var(e) = 1.

    ``ar`` and ``ma`` are lag polynomials with leading 1. With ψ the MA(∞)
    weights and c_k = Σ_j ma_{j+k} ψ_j, γ_k + Σ_i ar_i γ_{|k-i|} = c_k
    (c_k = 0 beyond the MA degree): solved exactly for k = 0..p, then the
    same recursion runs forward from γ_{-j} = γ_j (Brockwell & Davis 1991,
    §3.3, method 3).
    """
    from scipy import signal

    p, q = len(ar) - 1, len(ma) - 1
    psi = signal.lfilter(ma, ar, np.eye(1, q + 1)[0])
    c = np.zeros(max(n, p + 1))
    c[:q + 1] = np.correlate(ma, psi, "full")[q:]
    if p == 0:
        return c[:n]
    pos, lag = _yule_walker_index(p)
    A = np.eye(p + 1).ravel() + np.bincount(pos, weights=ar[lag], minlength=(p + 1) ** 2)
    head = np.linalg.solve(A.reshape(p + 1, p + 1), c[:p + 1])
    # state of lfilter's transposed direct form holding the past γ_{-1..-p} = γ_{1..p}
    zi = -np.array([ar[j + 1:] @ head[1:p - j + 1] for j in range(p)])
    return signal.lfilter([1.0], ar, c[:n], zi=zi)[0]


def arma_exact_llf(w: np.ndarray, ar: np.ndarray, ma: np.ndarray, mean: bool) -> tuple[float, float, float]:
    """Exact Gaussian log-likelihood of a stationary ARMA, with μ and σ² at their ML values.

    w ~ N(μ1, σ²Γ), Γ the Toeplitz matrix of :func:`arma_acov`; with Γ = LL',
    a = L⁻¹w and b = L⁻¹1: μ̂ = a'b / b'b (0 if not ``mean``), σ̂² = |a - μ̂b|²/n
    and llf = -n/2 (log 2πσ̂² + 1) - Σ log L_ii. Returns (llf, μ̂, σ̂²);
    llf = -inf when Γ is not numerically positive definite.
    """
    from scipy.linalg import lapack

    n = len(w)
    g = arma_acov(ar, ma, n)
    # Toeplitz matrix as a strided view of [γ_{n-1} .. γ_1, γ_0 .. γ_{n-1}], copied once.
    full = np.r_[g[:0:-1], g]
    G = np.lib.stride_tricks.as_strided(full[n - 1:], shape=(n, n), strides=(-full.strides[0], full.strides[0]))
    seen = np.isfinite(w)
    if not seen.all():  # missing values (NaN): the exact marginal likelihood of the observed ones
        G, w, n = G[np.ix_(seen, seen)], w[seen], int(seen.sum())
    L, info = lapack.dpotrf(np.array(G), lower=1, clean=0)
    if info != 0:
        return -np.inf, np.nan, np.nan
    rhs = np.column_stack([w, np.ones(n)]) if mean else w[:, None]
    ab, info = lapack.dtrtrs(L, rhs, lower=1)
    a = ab[:, 0]
    mu = float(a @ ab[:, 1] / (ab[:, 1] @ ab[:, 1])) if mean else 0.0
    e = a - mu * ab[:, 1] if mean else a
    sigma2 = float(e @ e / n)
    if not (info == 0 and sigma2 > 0):
        return -np.inf, np.nan, np.nan
    return float(-0.5 * n * (np.log(2 * np.pi * sigma2) + 1) - np.log(np.diag(L)).sum()), mu, sigma2


def _search_candidate(w: np.ndarray, order: tuple, seasonal_order: tuple, trend: str,
                      start: np.ndarray | None = None) -> dict[str, Any]:
    """Exact-ML fit of one candidate on the differenced series ``w``, for the order search.

    The same model and likelihood as the SARIMAX candidate (checked in the
    tests), with the mean/drift and σ² concentrated out, so the optimiser
    only sees the ARMA coefficients, in the same stationary/invertible region
    (:func:`_pacf_to_poly`), ordered (AR, seasonal AR, MA, seasonal MA).
    ``start``: unconstrained start values (see the code for when zeros, white
    noise, are tried as well).
    AICc with k = coefficients + (μ) + σ² and n = len(w), as statsmodels
    counts them; missing values (NaN in ``w``) are left out of the likelihood
    (:func:`arma_exact_llf`) and of n.
    """
    from scipy import optimize

    p, _, q = order
    P, _, Q, m = seasonal_order
    n, k_coef = int(np.isfinite(w).sum()), p + q + P + Q
    k = k_coef + (trend == "c") + 1
    out: dict[str, Any] = {"order": order, "seasonal_order": seasonal_order, "trend": trend,
                           "aicc": np.inf, "converged": False, "error": ""}

    def nll(x: np.ndarray) -> float:
        llf = arma_exact_llf(w, _lag_poly(x[:p + P], p, P, m), _lag_poly(x[p + P:], q, Q, m), trend == "c")[0]
        return -llf if np.isfinite(llf) else 1e10  # finite, so a line search can back off

    try:
        with np.errstate(all="ignore"):
            if k_coef:
                # Bounds keep the partial autocorrelations within ±0.9988: beyond, Γ is singular in floats.
                starts = [np.zeros(k_coef)]
                if start is not None:
                    # Mixed ARMA likelihoods are often multimodal: from the nested fit
                    # and from white noise, keep the better (nested only when pure AR or MA).
                    starts = [np.clip(start, -20, 20)] + (starts if (p + P) and (q + Q) else [])
                res = min((optimize.minimize(nll, x0, method="L-BFGS-B", bounds=[(-20, 20)] * k_coef)
                           for x0 in starts), key=lambda r: r.fun)
                x, llf, converged = res.x, -float(res.fun), bool(res.success)
            else:
                x, llf, converged = np.zeros(0), -nll(np.zeros(0)), True
    except (ValueError, np.linalg.LinAlgError) as exc:  # a failing candidate is only skipped
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    if llf <= -1e10 or n - k - 1 <= 0:
        out["error"] = "no finite likelihood"
        return out
    out.update(aicc=float(-2 * llf + 2 * k + 2 * k * (k + 1) / (n - k - 1)), converged=converged, llf=llf,
               x=x)
    return out


def _nested_start(done: list[dict], order: tuple, seasonal_order: tuple, trend: str) -> np.ndarray | None:
    """Start values from the best-fitting candidate already fitted that ``order`` nests (same trend).

    A zero appended to the partial autocorrelations leaves the other
    coefficients as they were, so the start reproduces that candidate's fit
    and the optimiser can only improve on it: a larger model never ends below
    a smaller one it contains (from zeros, L-BFGS can stop in a poorer local
    optimum).
    """
    p, _, q = order
    P, _, Q, _ = seasonal_order
    nested = [c for c in done if c["trend"] == trend and not c["error"] and "x" in c
              and c["order"][0] <= p and c["order"][2] <= q
              and c["seasonal_order"][0] <= P and c["seasonal_order"][2] <= Q]
    if not nested:
        return None
    c = max(nested, key=lambda c: c["llf"])
    (p0, _, q0), (P0, _, Q0, _), x = c["order"], c["seasonal_order"], c["x"]
    x0 = np.zeros(p + P + q + Q)
    x0[:p0] = x[:p0]
    x0[p:p + P0] = x[p0:p0 + P0]
    x0[p + P:p + P + q0] = x[p0 + P0:p0 + P0 + q0]
    x0[p + P + q:p + P + q + Q0] = x[p0 + P0 + q0:]
    return x0


def _best(tried: list[dict]) -> dict | None:
    """Lowest AICc among converged candidates, else among the unconverged ones."""
    ok = [c for c in tried if not c["error"]]
    pool = [c for c in ok if c["converged"]] or ok
    return min(pool, key=lambda c: c["aicc"]) if pool else None  # min keeps the first of ties


# -- annual Fourier regressors for long seasons (weekly data) ---------------------------------

#: Fourier orders compared when ``Arima(fourier_k=None)`` chooses K (weekly data).
FOURIER_KS = (0, 1, 2)


def aicc_observed(res: Any, z: np.ndarray) -> float:
    """AICc of a SARIMAX result whose series ``z`` has missing values (NaN).

    statsmodels counts missing periods in ``nobs_effective``; the AICc's n here is the
    number of observed values after the likelihood burn-in.
    """
    n = int(np.isfinite(np.asarray(z, dtype=float)[int(res.loglikelihood_burn):]).sum())
    k = int(res.df_model)
    return float(-2 * res.llf + 2 * k + 2 * k * (k + 1) / (n - k - 1)) if n - k - 1 > 0 else float("inf")


def fourier_matrix(u: np.ndarray, k: int) -> np.ndarray:
    """Columns sin(2πju), cos(2πju) for j = 1..k (``u`` the position in the year, in [0, 1))."""
    u = np.asarray(u, dtype=float)
    cols = [f(2 * np.pi * j * u) for j in range(1, k + 1) for f in (np.sin, np.cos)]
    return np.column_stack(cols) if cols else np.empty((len(u), 0))


def choose_fourier_k(z: np.ndarray, u: np.ndarray, d: int, ks: tuple[int, ...] = FOURIER_KS
                     ) -> tuple[int, np.ndarray]:
    """Fourier order K by the AICc of the least-squares regression of (1 - L)^d z on the terms.

    A regression with white-noise errors: cheap (one least-squares solve per K) and
    the errors' autocorrelation is left to the ARMA search that follows on the
    residuals. Returns (K, coefficients of the 2K Fourier columns in levels).
    """
    best = (np.inf, 0, np.empty(0))
    for k in ks:
        F = fourier_matrix(u, k)
        Xd = np.diff(F, n=d, axis=0)
        wd = np.diff(z, n=d)
        X = np.column_stack([np.ones(len(wd)), Xd])
        seen = np.isfinite(wd)  # missing periods (NaN in z) leave their rows out
        X, wd = X[seen], wd[seen]
        coef, *_ = np.linalg.lstsq(X, wd, rcond=None)
        n, p = len(wd), X.shape[1] + 1  # + the variance
        rss = float(np.sum((wd - X @ coef) ** 2))
        if n - p - 1 <= 0 or rss <= 0:
            continue
        aicc = n * np.log(rss / n) + 2 * p + 2 * p * (p + 1) / (n - p - 1)
        if aicc < best[0] - 1e-9:
            best = (aicc, k, coef[1:])
    return best[1], best[2]


def log1p_gaussian_pmf(mean: np.ndarray, sd: np.ndarray, k_cap: int, tail: float = TAIL) -> np.ndarray:
    """Count pmf of ``Y = exp(Z) - 1`` rounded to the nearest integer, ``Z ~ N(mean, sd²)``.

    Parameters
    ----------
    mean, sd : (h,) mean and standard deviation of ``Z`` (``sd > 0``).
    k_cap : largest support point allowed.
    tail : the support ``0..K`` is the smallest for which every row leaves less
        than ``tail`` beyond ``K`` (unless ``K`` reaches ``k_cap``).

    Returns
    -------
    ndarray (h, K+1)
        ``P(0) = Φ((log 1.5 - m)/s)`` (all mass below 0.5, negatives included),
        ``P(k) = Φ((log(k+1.5) - m)/s) - Φ((log(k+0.5) - m)/s)``; rows sum to
        ``1 - P(Y > K)``.
    """
    from scipy import stats  # (here, not at the top: a slow import every CLI call would pay)
    m = np.atleast_1d(np.asarray(mean, dtype=float))
    s = np.atleast_1d(np.asarray(sd, dtype=float))
    if (~np.isfinite(m)).any() or (~np.isfinite(s)).any() or (s <= 0).any():
        raise ValueError("log1p_gaussian_pmf needs finite means and standard deviations > 0.")
    zq = stats.norm.isf(tail)
    # Smallest K with log(K + 1.5) > m + s·zq; computed in floats first so a huge
    # bound (long horizons of a random walk) cannot overflow an int.
    bound = np.exp(np.minimum(m + s * zq, np.log(k_cap + 2.0)))
    K = int(min(k_cap, max(0.0, np.floor(bound.max() - 1.5) + 1)))
    while K < k_cap and (stats.norm.sf((np.log(K + 1.5) - m) / s) >= tail).any():
        K += 1  # guards the float rounding of the bound; at most one or two steps
    upper = (np.log(np.arange(K + 1) + 1.5)[None, :] - m[:, None]) / s[:, None]
    lower = np.concatenate([np.full((len(m), 1), -np.inf), upper[:, :-1]], axis=1)
    # Differences of the survival function above the median keep upper-tail
    # probabilities accurate (1 - Φ would cancel to 0 there).
    return np.where(lower > 0, stats.norm.sf(lower) - stats.norm.sf(upper),
                    stats.norm.cdf(upper) - stats.norm.cdf(lower))
