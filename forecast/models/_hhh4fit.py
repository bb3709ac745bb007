"""Maximum likelihood for the endemic–epidemic (hhh4-type) count model, arrays in.

For region i at period t (Meyer, Held & Höhle 2017, *J. Stat. Softw.* 77(11))::

    mu_it = e_it nu_it + lambda y_i,t-L + phi sum_j w_ji y_j,t-L
    log nu_it = alpha_i + x_t' beta          (region intercepts, Fourier terms, trend)

with Y_it | past ~ NB(mu_it, psi) (Var = mu + psi mu^2; one psi, or one per region) or
Poisson. ``w_ji`` is the weight region j *sends* to region i: each source's weights sum to
1 (hhh4's ``normalize = TRUE``), first order (1/deg(j) for neighbours) or a power law
o_ji^(-d) over the orders up to ``maxlag`` (Meyer & Held 2014), d > 0 estimated as log d.

The log likelihood, its score and the *observed* information (the negative Hessian, which
is what hhh4 inverts for its standard errors) are analytic and vectorised over the rows
that enter the likelihood; ``scipy.optimize.minimize(method="trust-exact")`` maximises.
Only numpy/scipy here: :mod:`forecast.models.spatial` builds the arrays from a panel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln, polygamma


@dataclass
class Problem:
    """The arrays of one joint fit (T periods, n regions).

    ``Y`` counts (missing entries hold any value, ``obs`` says which are observed);
    ``orders`` (n, n) neighbourhood orders, 0 = not linked; ``log_e`` (T, n) offsets;
    ``X`` (T, k) time terms of the endemic part shared by the regions (no intercept);
    ``weights`` "first_order" | "powerlaw"; ``family`` "negbin" | "poisson";
    ``overdispersion`` "shared" | "region"; ``lag`` the autoregressive lag L.
    """

    Y: np.ndarray
    obs: np.ndarray
    orders: np.ndarray
    log_e: np.ndarray
    X: np.ndarray
    x_names: list[str]
    region_names: list[str]
    weights: str = "powerlaw"
    family: str = "negbin"
    overdispersion: str = "shared"
    lag: int = 1
    maxlag: int | None = None
    #: which regions have parameters (default: those with an event in the likelihood rows); a
    #: forecast on newer data passes the fit's, so the parameter layout stays the fit's
    active: np.ndarray | None = None

    def __post_init__(self) -> None:
        from scipy import sparse  # (here, not at the top: a slow import every CLI call would pay)
        T, n = self.Y.shape
        o = np.where(self.orders > 0, self.orders, 0)
        if self.maxlag is not None:
            o = np.where(o <= self.maxlag, o, 0)
        self.orders = o
        # Missing counts feed no lag: a missing neighbour contributes 0 (as hhh4).
        self.Yz = np.where(self.obs, self.Y, 0).astype(float)
        self.Ylag = np.zeros((T, n))
        self.Ylag[self.lag:] = self.Yz[:-self.lag] if self.lag < T else 0.0
        lag_obs = np.zeros((T, n), dtype=bool)
        lag_obs[self.lag:] = self.obs[:-self.lag] if self.lag < T else False
        # Rows in the likelihood: observed, past the first L periods, own lag observed.
        use = self.obs & lag_obs
        # A region without an event in those rows has no finite endemic level (its MLE is -inf):
        # it leaves the likelihood and has no parameters, and stays in the graph as a source
        # (of the zeros it had) and for the weights' normalisation.
        if self.active is None:
            self.active = np.where(use, self.Yz, 0).sum(axis=0) > 0
        self.active = np.asarray(self.active, dtype=bool)
        use &= self.active[None, :]
        self.rows_t, self.rows_i = np.nonzero(use)
        self.n_own_lag_missing = int((self.obs & ~lag_obs)[self.lag:].sum())
        linked = (o > 0).any(axis=0)  # regions that receive weight from someone
        miss_src = np.zeros((T, n), dtype=bool)
        miss_src[self.lag:] = ~self.obs[:-self.lag] if self.lag < T else False
        # Missing neighbour counts that would have entered a used row's neighbour sum.
        self.n_neighbour_missing = int(((miss_src.astype(float) @ (o > 0).astype(float)) * use).sum())
        self.has_ne = bool(linked.any())
        self.has_d = self.has_ne and self.weights == "powerlaw" and len(np.unique(o[o > 0])) > 1
        self.n = n
        self.act = np.flatnonzero(self.active)
        self.na = len(self.act)
        self.pos = np.full(n, -1)
        self.pos[self.act] = np.arange(self.na)
        self.rows_a = self.pos[self.rows_i]  # parameter index of each row's region
        self.n_psi = 0 if self.family == "poisson" else (1 if self.overdispersion == "shared" else self.na)
        self.M = sparse.csr_matrix((np.ones(len(self.rows_i)), (self.rows_a, np.arange(len(self.rows_i)))),
                                   shape=(self.na, len(self.rows_i)))
        self.y = self.Y[self.rows_t, self.rows_i].astype(float)
        self.lgy1 = gammaln(self.y + 1.0)

    # parameter layout ----------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        active = [self.region_names[j] for j in self.act]
        out = [f"end.1.{r}" for r in active] + [f"end.{x}" for x in self.x_names] + ["ar.1"]
        if self.has_ne:
            out.append("ne.1")
        if self.has_d:
            out.append("neweights.logd")
        if self.n_psi == 1:
            out.append("log_overdisp")
        elif self.n_psi:
            out += [f"log_overdisp.{r}" for r in active]
        return out

    def split(self, theta: np.ndarray) -> dict:
        n, k = self.na, self.X.shape[1]
        alpha = np.full(self.n, -np.inf)  # regions without events: no endemic part
        alpha[self.act] = theta[:n]
        p = {"alpha": alpha, "beta": theta[n:n + k], "ar": theta[n + k]}
        j = n + k + 1
        p["ne"] = theta[j] if self.has_ne else -np.inf
        j += self.has_ne
        p["logd"] = theta[j] if self.has_d else 0.0
        j += self.has_d
        p["omega"] = theta[j:j + self.n_psi]
        return p

    def psi(self, theta: np.ndarray) -> np.ndarray:
        """ψ per region (zeros for the Poisson)."""
        om = self.split(theta)["omega"]
        if not self.n_psi:
            return np.zeros(self.n)
        if self.n_psi == 1:
            return np.full(self.n, np.exp(om[0]))
        out = np.full(self.n, np.exp(np.median(om)))  # (a region without events: the median ψ)
        out[self.act] = np.exp(om)
        return out


def weight_matrix(orders: np.ndarray, kind: str, d: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W[j, i] (weight source j sends to i, rows summing to 1 or 0) and its first and second
    derivatives with respect to d (zero for first-order weights)."""
    linked = orders > 0
    if kind == "first_order":
        raw = (orders == 1).astype(float)
    else:
        raw = np.where(linked, np.where(linked, orders, 1.0) ** (-d), 0.0)
    tot = raw.sum(axis=1, keepdims=True)
    W = np.divide(raw, tot, out=np.zeros_like(raw), where=tot > 0)  # a source without neighbours sends nothing
    if kind == "first_order":
        z = np.zeros_like(W)
        return W, z, z
    L = np.log(np.where(linked, orders, 1.0))
    m = (W * L).sum(axis=1, keepdims=True)
    V = (W * L * L).sum(axis=1, keepdims=True) - m * m
    dW = W * (m - L)
    d2W = W * ((m - L) ** 2 - V)
    return W, dW, d2W


def components(pr: Problem, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(endemic, own, neighbour) means over the whole (T, n) grid (first L rows: own/ne 0)."""
    p = pr.split(theta)
    end = np.exp(p["alpha"][None, :] + (pr.X @ p["beta"])[:, None] + pr.log_e)
    own = np.exp(p["ar"]) * pr.Ylag
    if pr.has_ne:
        W = weight_matrix(pr.orders, pr.weights, np.exp(p["logd"]))[0]
        nbr = np.exp(p["ne"]) * (pr.Ylag @ W)
    else:
        nbr = np.zeros_like(own)
    return end, own, nbr


def loglik_parts(pr: Problem, theta: np.ndarray, hessian: bool = True) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Log likelihood (full NB/Poisson log pmf), score and Hessian at ``theta``."""
    p = pr.split(theta)
    t, i = pr.rows_t, pr.rows_i
    n, k = pr.na, pr.X.shape[1]
    Xr = pr.X[t]
    nu = np.exp(p["alpha"][i] + Xr @ p["beta"] + pr.log_e[t, i])
    lam = np.exp(p["ar"])
    ylag = pr.Ylag[t, i]
    cols = [nu[:, None] * Xr, (lam * ylag)[:, None]]  # dmu/d(small params)
    mu = nu + lam * ylag
    if pr.has_ne:
        d = np.exp(p["logd"])
        W, dW, d2W = weight_matrix(pr.orders, pr.weights, d)
        phi = np.exp(p["ne"])
        s = (pr.Ylag @ W)[t, i]
        mu = mu + phi * s
        cols.append((phi * s)[:, None])
        if pr.has_d:
            sd = (pr.Ylag @ dW)[t, i] * d  # d s / d log d
            sdd = (pr.Ylag @ d2W)[t, i] * d * d + sd
            cols.append((phi * sd)[:, None])
    Gs = np.hstack(cols)  # (N, q)
    q = Gs.shape[1]
    y = pr.y
    if pr.n_psi:
        psi = np.exp(p["omega"])[0 if pr.n_psi == 1 else pr.rows_a] * np.ones_like(y)
        r = 1.0 / psi
        # special functions once per distinct value (counts are integers, ψ shared or per region)
        zu, zi = np.unique(y + r, return_inverse=True)
        ru, ri = np.unique(r, return_inverse=True)
        ll = gammaln(zu)[zi] - gammaln(ru)[ri] - pr.lgy1 + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))
        u = y / mu - (y + r) / (r + mu)
        v = -y / mu ** 2 + (y + r) / (r + mu) ** 2
        l_r = digamma(zu)[zi] - digamma(ru)[ri] + np.log(r / (r + mu)) + (mu - y) / (r + mu)
        g_om = -r * l_r
    else:
        ll = y * np.log(mu) - mu - pr.lgy1
        u = y / mu - 1.0
        v = -y / mu ** 2
    M = pr.M
    g_alpha = M @ (u * nu)
    g_small = Gs.T @ u
    grads = [g_alpha, g_small]
    if pr.n_psi:
        grads.append(np.array([g_om.sum()]) if pr.n_psi == 1 else M @ g_om)
    grad = np.concatenate(grads)
    if not hessian:
        return float(ll.sum()), grad, None
    P = len(theta)
    H = np.zeros((P, P))
    H[np.arange(n), np.arange(n)] = M @ (v * nu * nu + u * nu)
    H_as = M @ ((v * nu)[:, None] * Gs)
    H_as[:, :k] += M @ ((u * nu)[:, None] * Xr)  # d2 nu / d alpha_i d beta = nu x
    H[:n, n:n + q] = H_as
    H[n:n + q, :n] = H_as.T
    Hss = Gs.T @ (v[:, None] * Gs)
    # second derivatives of mu, weighted by the score u
    Hss[:k, :k] += (Xr * (u * nu)[:, None]).T @ Xr
    Hss[k, k] += np.sum(u * lam * ylag)
    if pr.has_ne:
        Hss[k + 1, k + 1] += np.sum(u * phi * s)
        if pr.has_d:
            Hss[k + 1, k + 2] += np.sum(u * phi * sd)
            Hss[k + 2, k + 1] += np.sum(u * phi * sd)
            Hss[k + 2, k + 2] += np.sum(u * phi * sdd)
    H[n:n + q, n:n + q] = Hss
    if pr.n_psi:
        r2 = r * r
        h_mo = -r * (y - mu) / (r + mu) ** 2
        l_rr = (polygamma(1, zu)[zi] - polygamma(1, ru)[ri] + 1.0 / r - 1.0 / (r + mu) - (mu - y) / (r + mu) ** 2)
        l_oo = r2 * l_rr + r * l_r
        o = n + q
        if pr.n_psi == 1:
            H[:n, o] = H[o, :n] = M @ (h_mo * nu)
            H[n:o, o] = H[o, n:o] = Gs.T @ h_mo
            H[o, o] = l_oo.sum()
        else:
            idx = np.arange(n)
            H[idx, o + idx] = H[o + idx, idx] = M @ (h_mo * nu)
            H_so = (M @ (h_mo[:, None] * Gs)).T  # (q, n)
            H[n:o, o:] = H_so
            H[o:, n:o] = H_so.T
            H[o + idx, o + idx] = M @ l_oo
    return float(ll.sum()), grad, H


@dataclass
class Fit:
    """What the joint fit learned (``theta`` in the layout of ``Problem.names``)."""

    theta: np.ndarray
    names: list[str]
    cov: np.ndarray
    loglik: float
    converged: bool
    message: str
    n_obs: int
    n_iter: int
    extra: dict = field(default_factory=dict)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * len(self.theta)


def start_values(pr: Problem) -> np.ndarray:
    """Endemic intercepts at a share of each region's mean rate; epidemic parts small."""
    t, i = pr.rows_t, pr.rows_i
    ysum = np.bincount(pr.rows_a, weights=pr.y, minlength=pr.na)
    esum = np.bincount(pr.rows_a, weights=np.exp(pr.log_e[t, i]), minlength=pr.na)
    alpha = np.log((0.5 * ysum + 0.1) / np.maximum(esum, 1e-12))
    theta = [alpha, np.zeros(pr.X.shape[1]), [np.log(0.2)]]
    if pr.has_ne:
        theta.append([np.log(0.1)])
    if pr.has_d:
        theta.append([np.log(1.5)])
    theta.append(np.zeros(pr.n_psi))
    return np.concatenate([np.asarray(a, dtype=float) for a in theta])


def fit(pr: Problem, start: np.ndarray | None = None, maxiter: int = 200, gtol: float = 1e-6) -> Fit:
    """Maximum likelihood by a trust-region Newton method on the exact Hessian.

    Convergence: the optimiser's success flag, or a score that is small relative to the
    number of rows. ``cov`` is the inverse observed information (as hhh4 reports).
    """
    from scipy import optimize  # (here, not at the top: a slow import every CLI call would pay)
    theta0 = start_values(pr) if start is None else np.asarray(start, dtype=float)
    cache: dict = {}

    def parts(th):
        key = th.tobytes()
        if key not in cache:
            cache.clear()
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                cache[key] = loglik_parts(pr, th)
        return cache[key]

    def f(th):
        ll = parts(th)[0]
        return -ll if np.isfinite(ll) else np.inf

    res = optimize.minimize(f, theta0, jac=lambda th: -parts(th)[1], hess=lambda th: -parts(th)[2],
                            method="trust-exact", options={"maxiter": maxiter, "gtol": gtol})
    ll, grad, H = parts(res.x)
    n_obs = len(pr.y)
    small = np.all(np.isfinite(grad)) and np.max(np.abs(grad)) < 1e-4 * max(1.0, np.sqrt(n_obs))
    converged = bool(np.isfinite(ll) and (res.success or small))
    try:
        cov = np.linalg.inv(-H)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
            raise np.linalg.LinAlgError("information not positive definite")
    except np.linalg.LinAlgError as exc:
        cov = np.full_like(H, np.nan)
        converged, msg = False, f"singular information matrix ({exc})"
    else:
        msg = "" if converged else str(res.message)
    return Fit(res.x, pr.names, cov, ll, converged, msg, n_obs, int(res.nit),
               extra={"n_neighbour_missing": pr.n_neighbour_missing, "n_own_lag_missing": pr.n_own_lag_missing})


def epidemic_matrix(pr: Problem, theta: np.ndarray) -> np.ndarray:
    """Λ with E[y_t | past] = endemic_t + Λ y_{t-L}: λ I + φ Wᵀ."""
    p = pr.split(theta)
    A = np.exp(p["ar"]) * np.eye(pr.n)
    if pr.has_ne:
        A = A + np.exp(p["ne"]) * weight_matrix(pr.orders, pr.weights, np.exp(p["logd"]))[0].T
    return A


def spectral_radius(pr: Problem, theta: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(epidemic_matrix(pr, theta))))) if pr.n else 0.0
