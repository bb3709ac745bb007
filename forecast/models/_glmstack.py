"""Arithmetic over a leading *series* axis for the batched GLM solver (:mod:`forecast.models._glmbatch`).

Stacked designs whose calendar columns are shared (:class:`_Stacked`), the per-series
dispersion sums of NB2, the damped Newton ascent and its steps for a stack of Hessians,
and the rank tests that decide which series the batch can take.
"""
from __future__ import annotations

import numpy as np
from scipy import special

from forecast.models._glmcheck import _ALIAS_TOL
from forecast.models._glmgroups import unique_rows
from forecast.models._nbpieces import _DH_POLY, _H_POLY, _SERIES_U, _TABLE_MAX_Y, _log1p_ratio

#: Step-halvings allowed per Newton step (as the per-series solver).
_HALVINGS = 40


def _dispersion_sums(y: np.ndarray, alpha: np.ndarray, order: int) -> tuple[np.ndarray, ...]:
    """S_0 = sum_{k<y} log(1 + k a_s), S_1 = sum k/(1 + k a_s), S_2 = sum k²/(1 + k a_s)², row-wise.

    ``y`` (S, n) int, ``alpha`` (S,) > 0. A cumulative table per series (exact as alpha -> 0,
    like the per-series solver's table); ``order`` 0 returns S_0 only. Rows are bucketed by
    their largest count (powers of two), so one busy series does not widen every table.
    """
    out = [np.empty(y.shape) for _ in range(1 if order == 0 else 3)]
    top = y.max(axis=1, initial=0)
    bucket = np.ceil(np.log2(top + 1.0)).astype(int)
    for b in np.unique(bucket):
        rows = np.flatnonzero(bucket == b)
        width = int(top[rows].max())
        if width > _TABLE_MAX_Y:
            # A table as long as the count would be gigabytes: the closed forms by digamma /
            # trigamma (as the per-series solver uses there), which lose digits only as alpha -> 0.
            a, yf = alpha[rows, None], y[rows].astype(float)
            r = 1.0 / a
            parts = [special.gammaln(yf + r) - special.gammaln(r) - yf * np.log(r)]
            if order > 0:
                d0 = special.digamma(yf + r) - special.digamma(r)
                d1 = special.polygamma(1, r) - special.polygamma(1, yf + r)
                parts += [(yf - r * d0) / a, (yf - 2 * r * d0 + r * r * d1) / a**2]
            for o, t in zip(out, parts):
                o[rows] = t
            continue
        k = np.arange(width, dtype=float)
        ak = alpha[rows, None] * k
        terms = [np.log1p(ak)]
        if order > 0:
            r = k / (1.0 + ak)
            terms += [r, r * r]
        # y_st's entry of row s's table, as one flat index for all three tables
        at = y[rows] + (width + 1) * np.arange(rows.size)[:, None]
        table = np.zeros((rows.size, width + 1))
        for o, t in zip(out, terms):
            np.cumsum(t, axis=1, out=table[:, 1:])
            o[rows] = table.ravel()[at]
    return tuple(out)


def _nb_pieces(u: np.ndarray, derivatives: bool = True) -> tuple[np.ndarray, ...]:
    """The per-row functions of u = alpha mu that NB2's log-likelihood and derivatives use,
    from one log1p: log1p(u), log1p(u)/u (1 at u = 0) and, with ``derivatives``,
    q = 1/(1+u), h(u) = (log1p(u) - u q)/u² and h'(u) = q²/u - 2h/u, each as
    :func:`~forecast.models._glmfit._h_and_dh` (its series where u < 0.1, evaluated in place)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        l1u = np.log1p(u)
        ratio = l1u / u
        zero = u == 0
        if zero.any():
            ratio[zero] = 1.0
        if not derivatives:
            return l1u, ratio
        q = 1.0 / (1.0 + u)
        h = (l1u - u * q) / (u * u)
        dh = (q * q - 2.0 * h) / u
    small = u < _SERIES_U
    if small.any():  # (Horner as np.polyval, on the few rows that need the series)
        us = u[small]
        hs, ds = np.full(us.shape, _H_POLY[0]), np.full(us.shape, _DH_POLY[0])
        for c in _H_POLY[1:]:
            hs *= us
            hs += c
        for c in _DH_POLY[1:]:
            ds *= us
            ds += c
        h[small], dh[small] = hs, ds
    return l1u, ratio, q, h, dh


class _Stacked:
    """S designs (n, p) whose first ``pd`` columns are the same for every series.

    Panels share their calendar (intercept, trend, seasonality, interventions), so
    X_s = [D, Z_s]: products with D are single matrix products over all series at
    once (D'W_sD for every s is one (S, n) x (n, <= pd²) product); only the few
    series-specific columns Z_s (lags, covariates) need per-series arithmetic.
    """

    def __init__(self, D: np.ndarray, Z: np.ndarray):
        self.D, self.Z = D, Z
        n, pd_ = D.shape
        self.pd, self.p = pd_, pd_ + Z.shape[2]
        # Only the distinct column products: D_i D_j = D_j D_i, and calendar columns repeat
        # (intercept x month_k = month_k x month_k, month_j x month_k = 0): 26 of 169 for
        # intercept, trend and 11 month dummies. (Row results of a product with a few rows
        # round differently from those of a tall one whatever its width: batch and per-series
        # fits agree to rounding, not bit for bit.)
        DD = (D[:, :, None] * D[:, None, :]).reshape(n, pd_ * pd_)
        uniq, self.DD_at = unique_rows(DD.T)
        self.DD = np.ascontiguousarray(uniq.T)

    @classmethod
    def from_array(cls, X: np.ndarray) -> tuple["_Stacked", np.ndarray]:
        """Split X (S, n, p) into shared and own columns; returns the design and the column
        order used (shared first)."""
        same = np.all(X == X[:1], axis=(0, 1))
        order = np.r_[np.flatnonzero(same), np.flatnonzero(~same)]
        return cls(np.ascontiguousarray(X[0][:, same]), np.ascontiguousarray(X[:, :, ~same])), order

    def full(self, rows) -> np.ndarray:
        """The designs of series ``rows`` as (k, n, p) arrays, shared columns first."""
        Z = self.Z[rows]
        out = np.empty((len(Z), self.D.shape[0], self.p))
        out[:, :, :self.pd] = self.D
        out[:, :, self.pd:] = Z
        return out

    def take(self, rows: np.ndarray) -> "_Stacked":
        out = object.__new__(_Stacked)
        out.D, out.Z, out.pd, out.p, out.DD, out.DD_at = self.D, self.Z[rows], self.pd, self.p, self.DD, self.DD_at
        return out

    def xb(self, b: np.ndarray) -> np.ndarray:
        """X_s b_s for every series: (S, n)."""
        out = b[:, :self.pd] @ self.D.T
        if self.Z.shape[2]:
            out += np.einsum("snz,sz->sn", self.Z, b[:, self.pd:])
        return out

    def xtv(self, v: np.ndarray) -> np.ndarray:
        """X_s' v_s for every series: (S, p)."""
        out = np.empty((v.shape[0], self.p))
        out[:, :self.pd] = v @ self.D
        if self.Z.shape[2]:
            out[:, self.pd:] = np.einsum("snz,sn->sz", self.Z, v)
        return out

    def xtwx(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """X_s' diag(w_s) X_s for every series: (S, p, p), written into ``out`` if given."""
        S, pd_, p = w.shape[0], self.pd, self.p
        out = np.empty((S, p, p)) if out is None else out
        out[:, :pd_, :pd_] = (w @ self.DD)[:, self.DD_at].reshape(S, pd_, pd_)
        if p > pd_:
            Zw = self.Z * w[:, :, None]  # (S, n, pz)
            cross = (Zw.transpose(0, 2, 1).reshape(-1, w.shape[1]) @ self.D).reshape(S, p - pd_, pd_)
            out[:, pd_:, :pd_] = cross
            out[:, :pd_, pd_:] = cross.transpose(0, 2, 1)
            out[:, pd_:, pd_:] = np.matmul(Zw.transpose(0, 2, 1), self.Z)
        return out


def _cholesky(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of a stack of symmetric matrices and which are positive
    definite (the others get the identity as a placeholder factor)."""
    ok = np.ones(len(A), dtype=bool)
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        L = np.empty_like(A)
        for i in range(len(A)):  # rare: find the rows that are not positive definite
            try:
                L[i] = np.linalg.cholesky(A[i])
            except np.linalg.LinAlgError:
                ok[i] = False
                L[i] = np.eye(A.shape[1])  # (any solvable placeholder: the row is not solved)
    return L, ok


def _newton_steps(A: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve A_s d_s = g_s for SPD A_s; (steps, solved) — rows whose A_s is not PD are not solved.

    The Cholesky factor that proves A_s positive definite also solves the system (two
    triangular sweeps over all series at once: far cheaper than a general solver's
    per-matrix LU for thousands of p ~ 15 systems).
    """
    L, ok = _cholesky(A)
    d = _cho_solve(L, g)
    return d, ok & np.all(np.isfinite(d), axis=1)


def _spd_inverse(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses of a stack of SPD matrices and which are positive definite (the other rows
    are NaN): A^-1 = L^-T L^-1 from the Cholesky factor, with L^-1 by forward substitution
    over all series at once (half the time of a general inverse's per-matrix LU)."""
    L, ok = _cholesky(A)
    S, p, _ = L.shape
    Li = np.zeros_like(L)
    d = 1.0 / np.diagonal(L, axis1=1, axis2=2)
    for i in range(p):  # row i of L^-1: (e_i - L[i, :i] L^-1[:i]) / L_ii
        Li[:, i, i] = d[:, i]
        if i:
            Li[:, i, :i] = -np.einsum("sk,skj->sj", L[:, i, :i], Li[:, :i, :i]) * d[:, i, None]
    inv = np.matmul(Li.transpose(0, 2, 1), Li)
    ok &= np.all(np.isfinite(inv), axis=(1, 2))
    inv[~ok] = np.nan
    return inv, ok


def _cho_solve(L: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d_s with L_s L_s' d_s = g_s for lower-triangular L (S, p, p), g (S, p)."""
    p = g.shape[1]
    diag = np.diagonal(L, axis1=1, axis2=2)
    z = np.empty_like(g, dtype=float)
    for i in range(p):  # L z = g
        z[:, i] = (g[:, i] - np.einsum("sj,sj->s", L[:, i, :i], z[:, :i])) / diag[:, i]
    d = np.empty_like(z)
    for i in range(p - 1, -1, -1):  # L' d = z
        d[:, i] = (z[:, i] - np.einsum("sj,sj->s", L[:, i + 1:, i], d[:, i + 1:])) / diag[:, i]
    return d


def _newton(fun, x0: np.ndarray, tol: float, max_iter: int):
    """Damped Newton ascent per series, batched (mirrors ``_glmfit._newton`` without its
    Levenberg shifts: a series whose Hessian is not negative definite is handed back).

    ``fun`` is a ``_glmbatch._Objective``: ``fun(x, 0)`` the values, ``fun(x, 2)`` values,
    gradients and information matrices J = -Hessian (kept in that sign: no negated copies),
    ``fun.take(rows)`` the objective of some series.

    The series still iterating are kept compact (their own arrays and objective), shrunk
    only when some finish or fail: an iteration copies no (S, p, p) stack.

    Returns x, gradient, information J = -Hessian, iterations, converged (per series).
    """
    x = x0.copy()
    f, g, J = fun(x, 2)
    S = len(x)
    n_iter = np.zeros(S, dtype=int)
    converged = np.zeros(S, dtype=bool)
    failed = np.zeros(S, dtype=bool)
    active = np.arange(S)
    # The active series' state, compact: sub is their objective, xa/fa/ga/Ja their values.
    sub, xa, fa, ga, Ja = fun, x.copy(), f, g.copy(), J.copy()

    def leave(keep: np.ndarray) -> None:
        """Write the leaving series back and shrink the compact state to ``keep``."""
        nonlocal sub, xa, fa, ga, Ja, active
        out = ~keep
        idx = active[out]
        x[idx], g[idx], J[idx] = xa[out], ga[out], Ja[out]
        active = active[keep]
        if active.size:
            sub = sub.take(np.flatnonzero(keep))
        xa, fa, ga, Ja = xa[keep], fa[keep], ga[keep], Ja[keep]

    for it in range(max_iter + 1):
        done = np.max(np.abs(ga), axis=1, initial=0.0) <= tol
        bad_f = ~np.isfinite(fa) & ~done
        if it == max_iter:
            failed[active[~done]] = True
            n_iter[active[~done]] = it
            bad_f = ~done
        converged[active[done]] = True
        n_iter[active[done]] = it
        failed[active[bad_f]] = True
        if done.any() or bad_f.any():
            leave(~(done | bad_f))
        if active.size == 0:
            break
        step, solved = _newton_steps(Ja, ga)
        if not solved.all():
            failed[active[~solved]] = True
            step = step[solved]
            leave(solved)
            if active.size == 0:
                break
        f0 = fa
        slack = 1e-12 * (1.0 + np.abs(f0))
        # The full step is almost always taken: evaluate gradient and Hessian with the value
        # at once (the same numbers a second call at the accepted point would give).
        f_new, g_new, J_new = sub(xa + step, 2)
        todo = ~(np.isfinite(f_new) & (f_new >= f0 - slack))
        halved = todo.copy()
        for _ in range(_HALVINGS):
            if not todo.any():
                break
            rows = np.flatnonzero(todo)
            step[rows] /= 2
            f_new[rows] = sub.take(rows)(xa[rows] + step[rows], 0)
            todo[rows] = ~(np.isfinite(f_new[rows]) & (f_new[rows] >= f0[rows] - slack[rows]))
        if halved.any():  # a shorter step was taken: its gradient and Hessian are still to come
            redo = np.flatnonzero(halved & ~todo)
            if redo.size:
                f_new[redo], g_new[redo], J_new[redo] = sub.take(redo)(xa[redo] + step[redo], 2)
        if todo.any():  # step-halving ran out: those series fail where they were
            keep = ~todo
            failed[active[todo]] = True
            xa[keep] += step[keep]
            fa = np.where(keep, f_new, fa)
            ga[keep], Ja[keep] = g_new[keep], J_new[keep]
            leave(keep)
        else:
            xa += step
            fa, ga, Ja = f_new, g_new, J_new
    if active.size:
        x[active], g[active], J[active] = xa, ga, Ja
    return x, g, J, n_iter, converged & ~failed


def _clearly_full_rank(X: _Stacked, pen: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows whose (ridge-augmented) design is far from any aliasing: every pivot of the
    Cholesky factor of X'X + P (the |R_jj| of a QR in that column order) exceeds 1e-4 of
    its column norm, 1000x R's 1e-7 aliasing tolerance, so rounding in the Gram matrix
    cannot matter. The rest go to the exact QR test (:func:`_aliased`)."""
    S = X.Z.shape[0]
    # (with missing periods: the Gram matrix of the kept rows, masked rows at weight 0)
    G = X.xtwx(np.ones((S, X.D.shape[0])) if mask is None else mask.astype(float)) + np.diag(pen)
    norms = np.sqrt(np.maximum(np.diagonal(G, axis1=1, axis2=2), np.finfo(float).tiny))
    try:
        L = np.linalg.cholesky(G)
    except np.linalg.LinAlgError:  # some row is singular: find it (rare), it is not clearly full rank
        L = np.zeros_like(G)
        for i in range(S):
            try:
                L[i] = np.linalg.cholesky(G[i])
            except np.linalg.LinAlgError:
                pass
    piv = np.diagonal(L, axis1=1, axis2=2)
    return np.all(np.isfinite(piv) & (piv > 1e-4 * norms), axis=1)


def _aliased(X: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """Rows whose design has an aliased column (R's QR rule, as the per-series solver)."""
    S, n, p = X.shape
    aug = np.concatenate([X, np.broadcast_to(np.diag(np.sqrt(pen)), (S, p, p))], axis=1)
    r_diag = np.abs(np.diagonal(np.linalg.qr(aug, mode="r"), axis1=1, axis2=2))
    norms = np.maximum(np.linalg.norm(aug, axis=1), np.finfo(float).tiny)
    return np.any(r_diag <= _ALIAS_TOL * norms, axis=1)


def _log_alpha_tt(J: np.ndarray, p: int) -> np.ndarray:
    """[J^-1]_tt of log alpha (last of p + 1 parameters) for each information matrix J = -H:
    alpha's SE by the delta method is alpha * sqrt of it (pseudo-inverse where J is singular,
    as the per-series solver)."""
    e = np.zeros((len(J), p + 1, 1))
    e[:, p] = 1.0
    with np.errstate(all="ignore"):
        try:  # J is positive definite at a converged interior maximum
            tt = np.linalg.solve(J, e)[:, p, 0]
        except np.linalg.LinAlgError:
            tt = np.full(len(J), np.nan)
    bad = ~(np.isfinite(tt) & (tt > 0))
    if bad.any():
        tt[bad] = np.linalg.pinv(J[bad])[:, p, p]
    return tt


def _nb_loglik_rows(y, eta, mu, alpha, lgy) -> np.ndarray:
    a = np.where(alpha > 0, alpha, 1.0)  # rows at alpha = 0 are replaced by the Poisson form
    u = a[:, None] * mu
    s0 = _dispersion_sums(y, a, 0)[0]
    return s0 - lgy + y * eta - y * np.log1p(u) - mu * _log1p_ratio(u)
