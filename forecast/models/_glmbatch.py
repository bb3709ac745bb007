"""Batched maximum-likelihood solvers: many Poisson / NB2 GLMs at once, on stacked arrays.

The same estimator as :mod:`forecast.models._glmfit` (same start, same damped Newton
steps, same step-halving rule, same stopping rule max |gradient| <= tol), written over a
leading *series* axis so the arithmetic of thousands of small fits runs in a few numpy
calls instead of thousands of Python loops. Each series stops at its own convergence:
once its gradient is below ``tol`` its parameters are frozen and it leaves the active
set, so a series gets the same answer whether it is fitted alone or in a batch.

The batch handles the regular case only. A series is handed back (``ok = False``) when
anything needs the per-series solver's slower machinery: all-zero counts, aliased
columns, a Hessian that is not negative definite (Levenberg shifts), step-halving that
runs out, no convergence within ``max_iter``, fitted means near 0 where y = 0 (the exact
separation test is a linear programme), or counts too large for the dispersion-sum
table. The caller refits those series one by one with :func:`~forecast.models._glmfit.fit_poisson`
/ :func:`~forecast.models._glmfit.fit_negbin` and records that it did.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from forecast._threads import one_blas_thread
from forecast.models._glmcheck import _SEPARATION_MU, _diverging_columns
# (the intercept-only NB2 fit of the climatology baseline, importable from here)
from forecast.models._nbintercept import LOG_ALPHA_BOUNDS, nb_intercept_mle_batch  # noqa: F401
from forecast.models._glmgroupnb import AlphaProfile
from forecast.models._glmgroups import group_diverging, group_means_start, profile_newton
from forecast.models._glmstack import (_aliased, _clearly_full_rank, _dispersion_sums, _log_alpha_tt, _nb_loglik_rows,
                                       _nb_pieces, _newton, _newton_steps, _spd_inverse, _Stacked)

#: Series whose largest count exceeds this use the per-series solver: the batched
#: dispersion-sum table has one row per series and one column per count value.
BATCH_MAX_Y = 2000

__all__ = ["BatchFit", "fit_batch", "nb_intercept_mle_batch", "BATCH_MAX_Y"]


@dataclass(frozen=True)
class BatchFit:
    """Stacked results of :func:`fit_batch` for S series with p columns.

    ``ok[s]`` is True when series s has a clean fit here; the other rows are undefined
    and must be refitted per series, except those in ``diverging``: their fit
    converged in the gradient while coefficients ran off to -inf, and the exact
    separation test (the per-series solver's linear programme) named those columns. ``boundary[s]`` (NB only): alpha at its boundary 0,
    the Poisson fit returned, ``score0[s]`` the score in alpha at 0 that decided it.
    """

    ok: np.ndarray  # (S,) bool
    coef: np.ndarray  # (S, p)
    std_error: np.ndarray  # (S, p)
    cov: np.ndarray  # (S, p, p)
    alpha: np.ndarray  # (S,)
    alpha_se: np.ndarray  # (S,)
    loglik: np.ndarray  # (S,)
    n_iter: np.ndarray  # (S,) int
    boundary: np.ndarray  # (S,) bool
    score0: np.ndarray  # (S,)
    diverging: dict  # series -> columns whose MLE is infinite (separation; ok is False there)


#: Series per block of an objective evaluation (see :meth:`_Objective.__call__`).
BLOCK = 256


class _Objective:
    """Penalised log-likelihood of a batch in x = beta (Poisson) or (beta, log alpha) (NB)."""

    def __init__(self, X: _Stacked, y, off, pen, lgy, nb: bool, mask: np.ndarray | None = None, yf=None):
        self.X, self.y, self.off, self.pen, self.lgy, self.nb = X, y, off, pen, lgy, nb
        self.p, self.mask = X.p, mask
        self.yf = y.astype(float) if yf is None else yf  # (counts as floats: no cast per product)

    def take(self, rows: np.ndarray) -> "_Objective":
        return _Objective(self.X.take(rows), self.y[rows], self.off[rows], self.pen, self.lgy[rows], self.nb,
                          None if self.mask is None else self.mask[rows], self.yf[rows])

    def w(self, v: np.ndarray) -> np.ndarray:
        """Per-row terms with masked rows (missing periods) at weight 0."""
        return v if self.mask is None else _masked(v, self.mask)

    def rows(self, a: int, b: int) -> "_Objective":
        """The objective of series a..b-1 (views, no copies)."""
        return _Objective(self.X.take(slice(a, b)), self.y[a:b], self.off[a:b], self.pen, self.lgy[a:b], self.nb,
                          None if self.mask is None else self.mask[a:b], self.yf[a:b])

    def __call__(self, x: np.ndarray, order: int):
        """Values (order 0), or values, gradients and information matrices (order 2), per series.

        Evaluated in blocks of :data:`BLOCK` series: the ~40 (block, n) temporaries of the
        NB2 terms then stay in a core's cache instead of streaming megabytes each (which is
        what a busy machine makes slow)."""
        S = len(x)
        if S <= BLOCK:
            return self._eval(x, order)
        parts = [self.rows(a, min(a + BLOCK, S))._eval(x[a:a + BLOCK], order) for a in range(0, S, BLOCK)]
        if order == 0:
            return np.concatenate(parts)
        return tuple(np.concatenate([part[k] for part in parts]) for k in range(3))

    def _eval(self, x: np.ndarray, order: int):
        X, y, pen, p = self.X, self.yf, self.pen, self.p
        beta = x[:, :p]
        ridge = 0.5 * np.sum(pen * beta**2, axis=1)
        eta = X.xb(beta) + self.off
        mu = np.exp(eta)
        if not self.nb:
            ll = np.sum(self.w(y * eta - mu - self.lgy), axis=1) - ridge
            if order == 0:
                return ll
            g = X.xtv(self.w(y - mu)) - pen * beta
            J = X.xtwx(self.w(mu))  # the information, -Hessian
            if pen.any():
                J += np.diag(pen)
            return ll, g, J
        alpha = np.exp(x[:, p])
        a = alpha[:, None]
        u = a * mu
        sums = _dispersion_sums(self.y, alpha, order)
        pieces = _nb_pieces(u, derivatives=order > 0)
        l1u, ratio = pieces[:2]
        ll = np.sum(self.w(sums[0] - self.lgy + y * eta - y * l1u - mu * ratio), axis=1) - ridge
        if order == 0:
            return ll
        q, h, dh = pieces[2:]
        s1, s2 = sums[1], sums[2]
        mq = mu * q
        mu2 = mu * mu
        r = y - mu
        score, w_obs = self.w(r * q), self.w(mq * (1.0 + a * y) * q)
        g_a = np.sum(self.w(s1 + mu2 * h - y * mq), axis=1)
        h_aa = np.sum(self.w(-s2 + mu2 * mu * dh + y * (mq * mq)), axis=1)
        h_ea = self.w(-r * mq * q)
        S = y.shape[0]
        g = np.empty((S, p + 1))
        g[:, :p] = X.xtv(score) - pen * beta
        g_t = alpha * g_a  # chain rule to theta = log alpha
        g[:, p] = g_t
        J = np.empty((S, p + 1, p + 1))  # the information, -Hessian (written in place)
        X.xtwx(w_obs, out=J[:, :p, :p])
        if pen.any():
            J[:, :p, :p] += np.diag(pen)
        j_bt = -alpha[:, None] * X.xtv(h_ea)
        J[:, :p, p] = j_bt
        J[:, p, :p] = j_bt
        J[:, p, p] = -(alpha**2 * h_aa + g_t)
        return ll, g, J


#: A warm NB refit that ends below this dispersion is redone the cold way (see _direct_nb).
WARM_ALPHA_MIN = 1e-4


def _masked(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, v, 0.0)


def fit_batch(X: np.ndarray, y: np.ndarray, off: np.ndarray, *, penalty: float = 0.0, nb: bool = False,
              tol: float = 1e-8, max_iter: int | None = None, rows: np.ndarray | None = None,
              start: np.ndarray | None = None, alpha_start: np.ndarray | None = None) -> BatchFit:
    """Fit S Poisson (``nb=False``) or NB2 log-linear GLMs on stacked designs.

    Parameters
    ----------
    X : (S, n, p) designs, column 0 the intercept (never penalised); or a stacked design
        with ``D`` (n, pd), the columns all series share, ``Z`` (S, n, pz), their own, and
        ``shared`` (p,) bool (:class:`~forecast.models._designbatch.BatchDesign`), which
        spares building and scanning the (S, n, p) stack.
    y : (S, n) counts; off : (S, n) offsets; penalty : ridge weight on columns 1..p-1.
    tol, max_iter : as :func:`~forecast.models._glmfit.fit_poisson` (default 100
        iterations) and :func:`~forecast.models._glmfit.fit_negbin` (200).
    rows : (S, n) bool or None
        Rows each fit uses (False: a missing count, or a lag of one). Masked rows get
        weight 0 in every sum (likelihood, score, information, dispersion, separation and
        rank checks), so a series equals its per-series fit on the kept rows while the
        series still share one calendar design. None: every row (the fast path).
    start, alpha_start : (S, p) and (S,) or None
        Warm start: coefficients (and NB dispersions) to start each series' Newton ascent
        from, e.g. its fit at the previous backtest origin; rows with a non-finite entry
        (and alpha <= 0) start from R's start as without. The optimum is the same to the
        stopping rule, in fewer iterations. NB: a row with ``alpha_start > 0`` goes straight
        to the joint ascent from (``start``, log ``alpha_start``); if that ends below
        ``WARM_ALPHA_MIN`` or stalls, the row is fitted the cold way (the Poisson fit from
        ``start``, whose score in alpha at 0 decides the boundary), so a boundary fit stays one.

    Returns
    -------
    BatchFit
        Rows with ``ok`` equal the per-series solver's fits (same iterations; only the
        floating-point order of sums differs).

    Notes
    -----
    log mu_st = x_st'β_s + o_st; Y_st ~ Poisson(mu_st) or NB2(mu_st, alpha_s). NB: the
    Poisson fit first, then the boundary test (score in alpha at 0,
    ½Σ_t[(y_st - mu_st)² - y_st] <= 0 gives alpha_s = 0), else joint Newton on
    (β_s, log alpha_s) from alpha_0 = 2·score / Σ mu². Covariance (X'WX + P)^-1 with
    W = mu / (1 + alpha mu) (R's ``glm.nb``); SE of alpha from the observed information.
    Runs with one BLAS thread (:func:`~forecast._threads.one_blas_thread`): its products
    are thousands of tiny ones, which threads only slow down.
    """
    with one_blas_thread():
        return _fit_batch(X, y, off, penalty=penalty, nb=nb, tol=tol, max_iter=max_iter, rows=rows, start=start,
                          alpha_start=alpha_start)


def _fit_batch(X, y, off, *, penalty, nb, tol, max_iter, rows, start=None, alpha_start=None) -> BatchFit:
    parts = not isinstance(X, np.ndarray) and hasattr(X, "Z")  # a stacked design (D, Z, shared)
    if parts:
        S, n, p = X.Z.shape[0], X.D.shape[0], len(X.shared)
    else:
        X = np.ascontiguousarray(X, dtype=float)
        S, n, p = X.shape
    y = np.asarray(y, dtype=np.int64)
    off = np.asarray(off, dtype=float)
    max_iter = (200 if nb else 100) if max_iter is None else max_iter
    pen = np.full(p, float(penalty))
    pen[0] = 0.0
    top = int(y.max(initial=0))
    # log y! by table: the same values as gammaln on every cell, one evaluation per count value
    table = y.size and top <= 100 * BATCH_MAX_Y and y.min() >= 0
    lgy = special.gammaln(np.arange(top + 1.0) + 1.0)[y] if table else special.gammaln(y + 1.0)
    out = dict(coef=np.full((S, p), np.nan), std_error=np.full((S, p), np.nan),
               cov=np.full((S, p, p), np.nan), alpha=np.zeros(S), alpha_se=np.full(S, np.nan),
               loglik=np.full(S, np.nan), n_iter=np.zeros(S, dtype=int), boundary=np.zeros(S, dtype=bool),
               score0=np.full(S, np.nan), diverging={})
    mask = None if rows is None else np.asarray(rows, dtype=bool)
    if mask is None:
        ok = y.any(axis=1) & (y.max(axis=1, initial=0) <= BATCH_MAX_Y) & (n > p)
    else:
        ok = (y * mask).any(axis=1) & (y.max(axis=1, initial=0) <= BATCH_MAX_Y) & (mask.sum(axis=1) > p)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return BatchFit(ok=ok, **out)
    whole = rows.size == S  # (every series, in order: no copies of the design below)
    if nb:  # series of like largest counts side by side: a block's dispersion tables then have one
        # or two widths (see _dispersion_sums); results go back by ``rows`` as in any order
        by_top = np.argsort(y.max(axis=1)[rows], kind="stable")
        rows, whole = rows[by_top], whole and bool(np.all(by_top[1:] > by_top[:-1]))
    # Work with shared columns first (order); results are put back in column order below.
    if parts:  # (which columns are shared is known by construction: no (S, n, p) array at all)
        order = np.r_[np.flatnonzero(X.shared), np.flatnonzero(~X.shared)]
        Xr = _Stacked(np.ascontiguousarray(X.D, dtype=float),
                      np.ascontiguousarray(X.Z if whole else X.Z[rows], dtype=float))
    else:
        Xr, order = _Stacked.from_array(X if whole else X[rows])
    back = np.argsort(order)  # column j of the design is column back[j] here
    pen_o = pen[order]
    full_rank = _clearly_full_rank(Xr, pen_o, None if mask is None else mask[rows])
    if not full_rank.all():  # borderline or deficient: R's QR rule decides, as per series
        unsure = np.flatnonzero(~full_rank)
        Xu = Xr.full(unsure)[:, :, back]
        if mask is not None:
            Xu *= mask[rows[unsure]][:, :, None]
        full_rank[unsure] = ~_aliased(Xu, pen)  # (zero rows leave the QR's R unchanged)
        ok[rows[~full_rank]] = False
        rows, Xr = rows[full_rank], Xr.take(np.flatnonzero(full_rank))
    if rows.size == 0:
        return BatchFit(ok=ok, **out)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        yr, offr, lgyr = y[rows], off[rows], lgy[rows]
        mr = None if mask is None else mask[rows]
        wm = (lambda v: v) if mr is None else (lambda v: _masked(v, mr))  # noqa: E731
        # A design of groups of periods (calendar dummies only, unpenalised): the MLE in closed
        # form (each group's mean; _glmgroups), which the ascents below then confirm at once.
        found = group_means_start(Xr.D, yr, offr, mr) if Xr.p == Xr.pd and not pen_o.any() else None
        exact = np.zeros(rows.size, dtype=bool) if found is None else found[1]
        b0, solved = np.empty((rows.size, p)), np.ones(rows.size, dtype=bool)
        if exact.any():
            b0[exact] = found[0][exact]
        need = np.flatnonzero(~exact)
        if need.size:  # R's start: one weighted least-squares step from mu = y + 0.1.
            Xn = Xr if need.size == rows.size else Xr.take(need)
            mu0 = yr[need] + 0.1
            mu0w = mu0 if mr is None else _masked(mu0, mr[need])
            b0[need], solved[need] = _newton_steps(Xn.xtwx(mu0w) + np.diag(pen_o),
                                                   Xn.xtv(mu0w * (np.log(mu0) - offr[need])))
        direct = np.zeros(rows.size, dtype=bool)
        if start is not None:  # warm start where given (in the shared-first column order)
            warm = np.asarray(start, dtype=float)[rows][:, order]
            use = np.all(np.isfinite(warm), axis=1) & ~exact
            b0[use], solved[use] = warm[use], True
            if nb and alpha_start is not None:  # an interior NB fit before: the joint ascent at once
                a_w = np.asarray(alpha_start, dtype=float)[rows]
                direct, d_fit = _direct_nb(Xr, yr, offr, pen_o, lgyr, mr, warm, use & np.isfinite(a_w) & (a_w > 0),
                                           a_w, tol, max_iter)
        rest = np.flatnonzero(~direct & ~exact)  # the Poisson ascent's rows (closed forms need none)
        beta, it0, conv = np.full((rows.size, p), np.nan), np.zeros(rows.size, dtype=int), exact.copy()
        beta[exact] = b0[exact]
        if rest.size:
            pois = _Objective(Xr, yr, offr, pen_o, lgyr, nb=False, mask=mr)
            pois = pois if rest.size == rows.size else pois.take(rest)
            beta[rest], _, _, it0[rest], conv[rest] = _newton(pois, b0[rest], tol, max_iter)
        good = solved & conv
        alpha = np.zeros(rows.size)
        boundary = ~direct
        score0 = np.full(rows.size, np.nan)
        n_iter = it0.copy()
        if direct.any():
            d = np.flatnonzero(direct)
            x_d, J_d, n_iter[d] = d_fit
            beta[d], alpha[d], good[d] = x_d[:, :p], np.exp(x_d[:, p]), True
            out["alpha_se"][rows[d]] = alpha[d] * np.sqrt(_log_alpha_tt(J_d, p))
        if nb and (rest.size or exact.any()):
            mu = np.exp(Xr.xb(beta) + offr)  # (all rows, as without direct ones: the same sums)
            score0 = np.where(direct, np.nan, 0.5 * np.sum(wm((yr - mu) ** 2 - yr), axis=1))
            boundary = ~direct & (score0 <= 0)
            inner = np.flatnonzero(good & ~boundary & ~direct)
            if inner.size:
                a0 = 2 * score0[inner] / np.sum(wm(mu**2)[inner], axis=1)
                if alpha_start is not None:
                    a_warm = np.asarray(alpha_start, dtype=float)[rows[inner]]
                    a0 = np.where(np.isfinite(a_warm) & (a_warm > 0), a_warm, a0)
                ex = exact[inner]
                if ex.any():  # group designs: beta is exact at every alpha, alpha from its profile,
                    # and the information is block diagonal (see _glmgroups)
                    at = inner[ex]
                    groups = found[2]
                    first = np.unique(groups, return_index=True)[1]
                    prof = AlphaProfile(yr[at], None if mr is None else mr[at], groups, mu[at][:, first])
                    th, it_p, ok_p, H_p = profile_newton(prof, np.log(a0[ex]), tol, max_iter)
                    alpha[at], n_iter[at] = np.exp(th), it_p
                    good[at] &= ok_p
                    out["alpha_se"][rows[at]] = alpha[at] * np.sqrt(-1.0 / H_p)
                    inner, a0 = inner[~ex], a0[~ex]
            if inner.size:
                fun = _Objective(Xr.take(inner), yr[inner], offr[inner], pen_o, lgyr[inner], nb=True,
                                 mask=None if mr is None else mr[inner])
                b_nb = beta[inner]
                if start is not None:  # the NB coefficients' own warm start, not the Poisson fit's
                    b_nb = np.where(use[inner][:, None], warm[inner], b_nb)
                x, g2, J2, it, conv2 = _newton(fun, np.c_[b_nb, np.log(a0)], tol, max_iter)
                beta[inner] = x[:, :p]
                alpha[inner] = np.exp(x[:, p])
                n_iter[inner] += it
                good[inner] &= conv2
                out["alpha_se"][rows[inner]] = alpha[inner] * np.sqrt(_log_alpha_tt(J2, p))
        eta = Xr.xb(beta) + offr
        mu = np.exp(eta)
        # Fitted means ~0 where y = 0 may be separation: the per-series solver's LP decides.
        near_zero = np.any((mu < _SEPARATION_MU) & (yr == 0) & (True if mr is None else mr), axis=1)
        good &= np.all(np.isfinite(beta), axis=1)
        for j in np.flatnonzero(good & near_zero):  # the exact test, as the per-series solver runs it
            kr = slice(None) if mr is None else mr[j]  # on the kept rows only
            Xj, yj = Xr.full([j])[0][:, back][kr], yr[j][kr]
            div = group_diverging(Xj, yj, found[2][kr]) if exact[j] else _diverging_columns(Xj, yj, pen == 0)
            if div.size:
                out["diverging"][int(rows[j])] = div
                good[j] = False
        a_col = alpha[:, None]
        terms = yr * eta - mu - lgyr  # Poisson; NB2 rows where alpha > 0
        pos = np.flatnonzero(alpha > 0)
        if pos.size:
            terms[pos] = _nb_loglik_rows(yr[pos], eta[pos], mu[pos], alpha[pos], lgyr[pos])
        ll = wm(terms).sum(axis=1)
        info = Xr.xtwx(wm(mu / (1.0 + a_col * mu))) + np.diag(pen_o)
        cov = np.full((rows.size, p, p), np.nan)
        fine = np.flatnonzero(good)
        if fine.size:  # (the Cholesky factor proves the information positive definite)
            cov[fine], good[fine] = _spd_inverse(info[fine])
        beta, cov = beta[:, back], cov[:, back[:, None], back[None, :]]
    ok[rows] = good
    out["coef"][rows] = beta
    out["cov"][rows] = cov
    with np.errstate(invalid="ignore"):
        out["std_error"][rows] = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    out["alpha"][rows] = alpha
    out["loglik"][rows] = ll
    out["n_iter"][rows] = n_iter
    out["boundary"][rows] = boundary if nb else False
    out["score0"][rows] = score0
    return BatchFit(ok=ok, **out)


def _direct_nb(Xr, yr, offr, pen_o, lgyr, mr, warm, cand, a_w, tol, max_iter):
    """Rows ``cand`` (warm-started from an interior NB fit) by the joint NB ascent from there,
    skipping the Poisson pre-fit. Returns (accepted rows as a mask, (x, J, iterations) of them).

    Accepted: converged with alpha >= ``WARM_ALPHA_MIN``. Where the cold fit would put alpha on
    the boundary 0 (score in alpha at the Poisson fit <= 0), the ascent heads to alpha -> 0 and
    stops only once alpha * |score| < tol, far below that: such rows, and rows that stall, are
    refitted the cold way (Poisson first, then the boundary test), so the decision is the cold
    one."""
    ok = np.zeros(len(cand), dtype=bool)
    c = np.flatnonzero(cand)
    if not c.size:
        return ok, None
    fun = _Objective(Xr.take(c), yr[c], offr[c], pen_o, lgyr[c], nb=True, mask=None if mr is None else mr[c])
    x, _, J, it, conv = _newton(fun, np.c_[warm[c], np.log(a_w[c])], tol, max_iter)
    take = conv & np.all(np.isfinite(x), axis=1) & (np.exp(x[:, -1]) >= WARM_ALPHA_MIN)
    ok[c[take]] = True
    return ok, (x[take], J[take], it[take])
