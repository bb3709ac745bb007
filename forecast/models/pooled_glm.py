"""``pooled_negbin``: one NB2 GLM per event type with shared seasonality and trend and
ridge-penalised (random-effect-like) province intercepts, so a sparse province borrows
strength from the others of its type.

The fit stacks the series of a group into one design (shared columns + one indicator per
series) and maximises the penalised NB2 log-likelihood; the per-series results are plain
NB2 GLM fits (intercept β0 + u_i, shared coefficients), so forecasting — closed form, or
joint paths with ``neighbour_lags`` — is the GLMs' own (:class:`~forecast.models.glm.NegBinGLM`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.linalg import LinAlgError
from scipy import special

from forecast.models._pooled import panel_for
from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, positive_int
from forecast.models.design import DesignSpec, build_design, design_params
from forecast.models.glm import NegBinGLM
from forecast.models._neighbours import NEIGHBOUR_PARAMS
from forecast.models.ladder import fit_many

#: Range searched for the ridge weight λ on the province effects when penalty = "auto".
LAMBDA_BOUNDS = (1e-3, 1e4)
LOG_ALPHA_BOUNDS = (-12.0, 4.0)


def _penalty_ok(v: Any) -> bool:
    return v == "auto" or (isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 0)


POOLED_PARAMS: tuple[Param, ...] = (
    *[p for p in design_params(trend="none", seasonality="month", fourier_k=2, lags=False, exposure=False)
      if p.name not in ("exog", "interventions")],
    Param("penalty", "auto", "'auto' or a float >= 0", _penalty_ok,
          "ridge weight λ on the province effects u_i (1/variance of a random intercept); 'auto' picks it "
          "by Laplace-approximate marginal likelihood"),
    Param("n_paths", 1000, "an int >= 1", positive_int, "sample paths for multi-step forecasts with neighbour lags"),
    *NEIGHBOUR_PARAMS,
)


def nb_loglik(y: np.ndarray, eta: np.ndarray, alpha: float) -> np.ndarray:
    """NB2 log pmf per observation (Poisson at alpha = 0), −log y! included."""
    mu = np.exp(eta)
    if alpha <= 0:
        return special.xlogy(y, mu) - mu - special.gammaln(y + 1.0)
    r = 1.0 / alpha
    return (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1.0)
            + r * np.log(r / (r + mu)) + special.xlogy(y, mu / (r + mu)))


def _eta(Xs: np.ndarray, grp: np.ndarray, q: int, theta: np.ndarray) -> np.ndarray:
    return Xs @ theta[:q] + theta[q:][grp]


def _information(Xs: np.ndarray, grp: np.ndarray, S: int, w: np.ndarray, pen: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X'WX + diag(pen) for X = [Xs, indicators of grp] as blocks (A, B, d): shared block A,
    cross block B (q, S) and the province block's diagonal d (it is diagonal: no n x S
    matrix is formed)."""
    q = Xs.shape[1]
    A = (Xs * w[:, None]).T @ Xs + np.diag(pen[:q])
    B = np.stack([np.bincount(grp, weights=w * Xs[:, j], minlength=S) for j in range(q)]) if q else \
        np.zeros((0, S))
    return A, B, np.bincount(grp, weights=w, minlength=S) + pen[q:]


def _solve(H: tuple[np.ndarray, np.ndarray, np.ndarray], g: np.ndarray) -> np.ndarray:
    """H^-1 g through the Schur complement of the diagonal province block (O(q² S))."""
    A, B, d = H
    q = A.shape[0]
    M = A - (B / d) @ B.T
    xs = np.linalg.solve(M, g[:q] - B @ (g[q:] / d)) if q else np.zeros(0)
    return np.r_[xs, (g[q:] - B.T @ xs) / d]


def _dense(H: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    A, B, d = H
    return np.block([[A, B], [B.T, np.diag(d)]])


def fit_penalised_nb(Xs: np.ndarray, grp: np.ndarray, S: int, y: np.ndarray, pen: np.ndarray, alpha: float,
                     theta0: np.ndarray | None = None, tol: float = 1e-9, max_iter: int = 100
                     ) -> tuple[np.ndarray, tuple, float, bool]:
    """Maximise Σ log NB2(y; mu, alpha) − ½ Σ pen_j θ_j² at fixed alpha, log mu = Xs θ_s + θ_u[grp]
    (θ = shared coefficients, then one per group), by damped Newton with the observed
    information. Returns (θ, information incl. penalty as blocks, see :func:`_information`,
    penalised loglik, converged)."""
    q = Xs.shape[1]
    theta = np.zeros(q + S) if theta0 is None else theta0.copy()
    if theta0 is None:
        theta[q:] = np.log(max(y.mean(), 1e-3))

    def objective(th: np.ndarray) -> float:
        return float(np.sum(nb_loglik(y, _eta(Xs, grp, q, th), alpha)) - 0.5 * np.sum(pen * th * th))

    def derivs(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.exp(_eta(Xs, grp, q, th))
        den = 1.0 + alpha * mu
        r = (y - mu) / den
        score = np.r_[Xs.T @ r, np.bincount(grp, weights=r, minlength=S)] - pen * th
        return score, _information(Xs, grp, S, mu * (1.0 + alpha * y) / den ** 2, pen)

    f = objective(theta)
    for _ in range(max_iter):
        score, H = derivs(theta)
        if np.max(np.abs(score)) <= tol:
            return theta, H, f, True
        step = _solve(H, score)
        if score @ step <= 1e-20 * max(1.0, abs(f)):  # Newton decrement at rounding level
            return theta, H, f, bool(np.max(np.abs(score)) <= 1e-6)
        t = 1.0
        while t > 1e-10:
            new = theta + t * step
            fn = objective(new)
            if np.isfinite(fn) and fn >= f - 1e-12 * abs(f):
                break
            t /= 2
        else:
            return theta, H, f, False
        theta, f = new, fn
    score, H = derivs(theta)
    return theta, H, f, bool(np.max(np.abs(score)) <= 1e-6)


def fit_pooled(X_shared: np.ndarray, group: np.ndarray, y: np.ndarray, n_series: int, lam: float | str,
               nb: bool = True) -> dict[str, Any]:
    """The pooled fit of stacked rows: log mu = β0 + u_g(row) + X_shared β, ridge ``lam``/2 Σ u²
    (``lam`` = 0: free intercepts, no β0); alpha by profile likelihood; ``lam = "auto"``: the
    λ maximising the Laplace approximation of the marginal likelihood of λ (u_i ~ N(0, 1/λ)),
    searched at the alpha of a λ = 1 fit, then alpha refitted at that λ.

    Returns θ (β0, β, u — or β, c with lam = 0), its covariance, alpha, λ, converged."""
    from scipy import optimize  # (here, not at the top: a slow import every CLI call would pay)
    free = lam == 0
    Xs = X_shared if free else np.column_stack([np.ones(len(y)), X_shared])
    npen = Xs.shape[1]

    def pen_of(lmb: float) -> np.ndarray:
        return np.r_[np.zeros(npen), np.full(n_series, 0.0 if free else lmb)]

    state: dict[str, Any] = {"theta": None}

    def profile(log_alpha: float, lmb: float) -> float:
        th, H, f, ok = fit_penalised_nb(Xs, group, n_series, y, pen_of(lmb),
                                        float(np.exp(log_alpha)) if nb else 0.0, state["theta"])
        state.update(theta=th, H=H, ok=ok)
        return -f

    def best_alpha(lmb: float) -> float:
        if not nb:
            profile(0.0, lmb)
            return 0.0
        res = optimize.minimize_scalar(profile, bounds=LOG_ALPHA_BOUNDS, args=(lmb,), method="bounded",
                                       options={"xatol": 1e-9})
        profile(res.x, lmb)  # leave the state at the optimum
        return float(np.exp(res.x))

    if lam == "auto":
        alpha = best_alpha(1.0)

        def neg_marginal(log_lam: float) -> float:
            lmb = float(np.exp(log_lam))
            f = -profile(np.log(alpha) if nb else 0.0, lmb)
            H_uu = state["H"][2]  # diagonal: each u_i moves only its own rows
            return -(f + 0.5 * n_series * np.log(lmb) - 0.5 * np.sum(np.log(H_uu)))

        res = optimize.minimize_scalar(neg_marginal, bounds=np.log(LAMBDA_BOUNDS), method="bounded",
                                       options={"xatol": 1e-4})
        lam = float(np.exp(res.x))
    lam = float(lam)
    alpha = best_alpha(lam)
    theta, H = state["theta"], state["H"]
    cov = np.linalg.inv(_dense(H))
    return {"theta": theta, "cov": cov, "alpha": alpha, "lam": lam, "converged": bool(state["ok"]),
            "free": free, "q": npen}


class PooledNegBin(NegBinGLM):
    """NB2 GLM fitted jointly over the series of an event type: shared seasonality and trend,
    ridge-penalised province intercepts (a random intercept's shrinkage).

    Parameters
    ----------
    trend, damping, seasonality, fourier_k : as :class:`~forecast.models.glm.NegBinGLM`, shared.
    penalty : "auto" (default) or float >= 0, ridge weight λ on the province effects.
    n_paths : sample paths for h > 1 with neighbour lags.
    neighbour_lags, neighbour_weights, neighbour_decay : as the GLMs (one shared coefficient).

    Notes
    -----
    log mu_it = β0 + u_i + x_it'β (+ δ log(1 + s_i,t-k)); Y_it ~ NB2(mu_it, alpha), one alpha
    per event type; (β0, β, u, alpha) maximise the log-likelihood − (λ/2) Σ_i u_i², so u
    acts as a random intercept N(0, 1/λ) and a province with few events is shrunk to the
    group level β0 (a province without events gets a small positive rate, never a certain
    zero). penalty = "auto": λ maximises the Laplace approximation of its marginal
    likelihood, l(θ̂_λ) − (λ/2) û'û + (S/2) log λ − ½ Σ_i log(Σ_t w_it + λ), at the alpha of a
    λ = 1 fit (one profile of alpha at the chosen λ follows). penalty = 0: free province
    intercepts (the unpenalised fixed-effects fit; provinces without events go down the
    ladder alone). SEs from the inverse penalised observed information. Event types are
    the panel's ``event_type`` key (one group without it). A group whose joint fit fails
    falls back series by series to ``negbin_glm``, then its ladder.
    """

    name = "pooled_negbin"
    handles_missing = False
    description = "NB2 GLM pooled per event type: shared seasonality, shrunk province intercepts"
    params = POOLED_PARAMS
    pools_series = True  # a joint fit per event type: backtests must not chunk the panel

    def required_columns(self) -> tuple[str, ...]:
        return ()

    def check_panel(self, panel) -> None:
        return None

    def fallback_specs(self) -> list[tuple[str, ModelSpec]]:
        nb = NegBinGLM(**{k: v for k, v in self.get_params().items() if k != "penalty"})
        return [("negbin_glm", nb)] + nb.fallback_specs()

    def _fit_many(self, series: list[Series]) -> list[SeriesFit]:
        panel, groups = panel_for(series)
        want = {s.uid for s in series}
        out: dict[str, SeriesFit] = {}
        failed: list[Series] = []
        reasons: dict[str, str] = {}
        for g in dict.fromkeys(groups):
            members = [s for s, gg in zip(panel, groups) if gg == g]
            try:
                fits = self._fit_group(members)
            except (FitFailure, LinAlgError, FloatingPointError, ValueError) as exc:
                fits = {s.uid: FitFailure(str(exc)) for s in members}
            for s in members:
                if s.uid not in want:
                    continue
                f = fits[s.uid]
                if isinstance(f, FitFailure):
                    failed.append(s)
                    reasons[s.uid] = f"{self.name}: {f}"
                else:
                    out[s.uid] = f
        if failed:
            label, nb = self.fallback_specs()[0]
            for s, f in zip(failed, fit_many(nb, failed)):
                f.fallback = label if f.fallback == "none" else f.fallback
                f.reason = "; ".join(filter(None, [reasons[s.uid], f.reason]))
                out[s.uid] = f
        return [out[s.uid] for s in series]

    def _fit_group(self, members: list[Series]) -> dict[str, SeriesFit | FitFailure]:
        dspec = DesignSpec.from_params(self.get_params())
        lam = self.penalty
        result: dict[str, SeriesFit | FitFailure] = {}
        if lam == 0:  # free intercepts of provinces without events diverge: those go alone
            for s in members:
                if not s.y[dspec.first_row:].any():
                    result[s.uid] = FitFailure("no events in the fit window: a free intercept diverges "
                                               "(use penalty > 0)")
            members = [s for s in members if s.uid not in result]
        if not members:
            return result
        designs = [build_design(dspec, s) for s in members]
        names = designs[0].names
        Xs = np.concatenate([d.X[:, 1:] for d in designs])
        keep = np.ptp(Xs, axis=0) > 0 if len(Xs) else np.zeros(Xs.shape[1], dtype=bool)
        y = np.concatenate([d.y for d in designs])
        grp = np.concatenate([np.full(len(d.y), i) for i, d in enumerate(designs)])
        if len(y) <= keep.sum() + len(members) + 1:
            raise FitFailure(f"too few rows: {len(y)} for {int(keep.sum()) + len(members) + 1} parameters")
        with np.errstate(all="ignore"):
            r = fit_pooled(Xs[:, keep], grp, y, len(members), lam)
        if not r["converged"] or not np.all(np.isfinite(r["theta"])):
            raise FitFailure("the pooled fit did not converge")
        theta, cov, S, k = r["theta"], r["cov"], len(members), int(keep.sum())
        Xq = Xs[:, keep] if r["free"] else np.column_stack([np.ones(len(y)), Xs[:, keep]])
        for i, (s, d) in enumerate(zip(members, designs)):
            # this series' coefficients as a GLM: intercept (β0 + u_i, or c_i) and the shared ones
            A = np.zeros((1 + k, len(theta)))
            q = r["q"]
            A[0, q + i] = 1.0  # the series' own intercept c_i, or its effect u_i ...
            if not r["free"]:
                A[0, 0] = 1.0  # ... added to the group level β0
            A[1:, q - k:q] = np.eye(k)
            b, C = A @ theta, A @ cov @ A.T
            beta = np.zeros(len(names))
            full_cov = np.full((len(names), len(names)), np.nan)
            pos = np.r_[0, 1 + np.flatnonzero(keep)]
            beta[pos] = b
            full_cov[np.ix_(pos, pos)] = C
            se = np.full(len(names), np.nan)
            se[pos] = np.sqrt(np.diag(C))
            rows = grp == i
            loglik = float(np.sum(nb_loglik(y[rows], _eta(Xq[rows], grp[rows], q, theta), r["alpha"])))
            coef = {nm: (float(beta[j]) if keep_j else np.nan, float(se[j]))
                    for j, (nm, keep_j) in enumerate(zip(names, np.r_[True, keep]))}
            coef["alpha"] = (r["alpha"], np.nan)
            if not r["free"]:
                j = q + i
                coef["province_effect"] = (float(theta[j]), float(np.sqrt(cov[j, j])))
            note = f"pooled over {S} series; ridge λ = {r['lam']:.4g} on province effects"
            state = {"beta": beta, "alpha": r["alpha"], "cov": full_cov, "names": names, "lag_sum": 0.0,
                     "lam": r["lam"]}
            fit = SeriesFit(self, converged=True, loglik=loglik, n_params=2 + k, n_obs=int(rows.sum()), coef=coef,
                            state=state, message=note)
            fit.engine = "pooled"
            result[s.uid] = fit
        return result
