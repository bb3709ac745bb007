r"""The one pass over the pmf behind :mod:`forecast.scoring`: F(y-1), F(y), the RPS,
quantiles and exceedance probabilities of many forecast rows at once.

Scores need the cdf, i.e. row-wise cumulative sums of the pmf. Most rows
carry their mass on a few dozen counts while ``K`` is set by the widest row, so each
row is summed over a prefix ``0..w-1`` only: ``w = 24`` first, or at once a wider
``w`` when the last two pmf values at 24 already show (extrapolated geometrically)
too much mass beyond. A row is accepted at width ``w`` when ``y < w`` and at most
:math:`R = \min(10^{-9}, (10^{-13}/\sqrt{EY^2})^{2/3})` of its mass lies beyond;
the others are regrouped at their predicted width (multiples of 16, up to ``K + 1``).
Dropping the columns beyond ``w`` changes the RPS by at most
:math:`\sum_{k\ge w} S(k)^2 \le R\,E[(Y-w)^+] \le R^{3/2}\sqrt{E Y^2} \le 10^{-13}`
(:math:`S = 1 - F`, Cauchy-Schwarz); PIT values, exceedances (``w`` is at least the
largest threshold) and quantiles (every level is below :math:`1 - R`) are unaffected.
Work proceeds in blocks of about ``_CELLS`` cells, so temporaries stay small.

Every name here is re-exported from :mod:`forecast.scoring`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from forecast._countnum import crps_zinb, rps_beyond, single_component
from forecast._leanpmf import block
from forecast.distributions import QUANTILE_TOL, CountForecast

RPS_TOL = 1e-13          # bound on the RPS mass left out by truncated sums (per row)
_W0 = 24                 # first width tried for every row
_W_STEP = 16             # later widths are multiples of this (rows grouped by width)
_CELLS = 1 << 16         # rows x width per block: temporaries stay in cache
_SUM_TERMS = 2000        # beyond this many tail terms a single-component row uses the closed form


def _predict_width(last2: np.ndarray, R: np.ndarray, y: np.ndarray, r_max: np.ndarray, w: int, K: int):
    """Width at which rows left with mass ``R`` beyond ``w`` should pass (``> w``, ``<= K + 1``).

    The mass beyond ``w`` is extrapolated geometrically with the ratio of the last two
    pmf values ``last2`` (NB tails are asymptotically geometric); rows also need
    ``y < width``. A wrong guess costs one more round, never a wrong score.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rho = last2[:, 1] / last2[:, 0]
        steps = np.log(np.minimum(r_max / np.maximum(R, 1e-300), 1)) / np.log(rho)
    steps = np.where((rho > 0) & (rho < 1) & np.isfinite(steps), steps, w)
    need = np.maximum(np.maximum(w + np.ceil(1.2 * steps) + 2, y + 1), w + _W_STEP // 2)
    return np.minimum(np.ceil(need / _W_STEP) * _W_STEP, K + 1).astype(np.int64)


def _enqueue(queue: dict, rows: np.ndarray, widths: np.ndarray) -> None:
    order = np.argsort(widths, kind="stable")
    rows, widths = rows[order], widths[order]
    cuts = np.flatnonzero(np.diff(widths)) + 1
    for part, width in zip(np.split(rows, cuts), widths[np.r_[0, cuts]] if rows.size else []):
        queue.setdefault(int(width), []).append(part)


def _scan(fc: CountForecast, y: np.ndarray, probs: Sequence[float] = (), ks: Sequence[int] = ()) -> dict:
    """One pass over the pmf: F(y-1), F(y), RPS, quantiles ``probs``, P(Y >= k) for ``ks``."""
    n, K = fc.n_rows, fc.K
    targets = np.asarray(probs, dtype=float) - QUANTILE_TOL
    ks = np.asarray(ks, dtype=np.int64)
    lo, hi, rps = np.empty(n), np.empty(n), np.empty(n)
    q, ge = np.empty((targets.size, n), np.int64), np.empty((ks.size, n))  # rows last: cheap writes
    fq, fq1 = np.empty((targets.size, n)), np.empty((targets.size, n))     # F(q), F(q - 1)
    # E[Y^2] bound for the truncation check (tail mass counted at K + 1: only makes it larger)
    m2 = np.maximum(fc.var, 0) + fc.mean**2 + (K + 1.0) ** 2 * fc.tail
    r_max = np.minimum(1e-9, (RPS_TOL / np.sqrt(np.maximum(m2, 1e-300))) ** (2 / 3))
    # Every row is tried at width w0 (>= max k: P(Y >= k) reads F(k - 1)) unless the pmf's
    # last two columns there already show too much mass beyond (extrapolated geometrically):
    # those rows, and rows failing the exact check, are queued at their predicted width.
    queue: dict[int, list] = {}
    w0 = min(max(_W0, int(ks.max(initial=0))), K + 1)
    first = None  # every row's first w0 columns: read once, kept for the rows scanned at w0
    if w0 < K + 1 and w0 >= 2:
        first = block(fc, np.arange(n), w0)
        last2 = first[:, -2:]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = last2[:, 1] / last2[:, 0]
            R_est = np.where(last2[:, 1] == 0, 0.0, np.where(rho < 1, last2[:, 1] * rho / (1 - rho), np.inf))
        doomed = (y >= w0) | (R_est > 10 * r_max)
        _enqueue(queue, np.flatnonzero(doomed), _predict_width(last2[doomed], R_est[doomed], y[doomed],
                                                               r_max[doomed], w0, K))
        queue.setdefault(w0, []).append(np.flatnonzero(~doomed))
    else:
        queue[w0] = [np.arange(n)]
    while queue:
        w = min(queue)
        pending = np.concatenate(queue.pop(w))
        full, step, col = w == K + 1, max(1, _CELLS // w), np.arange(w)
        failed: list[tuple] = []
        for start in range(0, pending.size, step):
            rows = pending[start:start + step]
            # a grid not built yet: only these columns, from the recurrence (at w0: already read)
            P = first[rows] if first is not None and w == w0 else block(fc, rows, w)
            F = np.cumsum(P, axis=1)
            yb = y[rows]
            ok = np.ones(rows.size, bool) if full else (yb < w) & (1 - F[:, -1] <= r_max[rows])
            if not ok.all():
                bad = ~ok
                failed.append((rows[bad], _predict_width(P[:, -2:][bad], 1 - F[bad, -1], yb[bad],
                                                         r_max[rows[bad]], w, K)))
                rows, yb, F = rows[ok], yb[ok], F[ok]
            r = np.arange(rows.size)
            lo[rows] = np.where(yb >= 1, F[r, np.clip(yb - 1, 0, w - 1)], 0.0)
            hi[rows] = F[r, np.minimum(yb, w - 1)]
            for j, k in enumerate(ks):
                ge[j, rows] = 1 - F[:, k - 1] if 1 <= k <= w else float(k <= 0)
            if targets.size:  # F rises along rows: the count of F < t is the quantile, and
                # beyond the first column where every row has reached t nothing counts
                cols = np.searchsorted(F.min(axis=0, initial=1.0), targets) + 1
                for j, t in enumerate(targets):
                    qj = (F[:, :cols[j]] < t).sum(axis=1)
                    q[j, rows] = qj
                    fq[j, rows] = F[r, np.minimum(qj, w - 1)]  # (q = w only at w = K + 1: redone beyond)
                    fq1[j, rows] = np.where(qj >= 1, F[r, np.clip(qj - 1, 0, w - 1)], 0.0)
            D = np.subtract(F, col >= yb[:, None], out=F)
            rps[rows] = np.einsum("ij,ij->i", D, D)
        if failed:
            _enqueue(queue, np.concatenate([f[0] for f in failed]), np.concatenate([f[1] for f in failed]))
    q, ge = q.T, ge.T  # (n, len(probs)), (n, len(ks)) views
    q_in = q.copy()
    _beyond_support(fc, y, m2, targets, ks, lo, hi, rps, q, ge)
    # F at the quantiles (interval masses) from the same sums; a quantile moved beyond the
    # support, or not found within it, is read through the parametric form
    fq, fq1 = fq.T, fq1.T
    redo = np.flatnonzero(((q != q_in) | (q > K)).any(axis=1)) if targets.size else np.empty(0, np.intp)
    if redo.size:
        sub, qr = fc.subset(redo), q[redo]
        for j in range(targets.size):
            fq[redo, j], fq1[redo, j] = sub.cdf(qr[:, j]), sub.cdf(qr[:, j] - 1)
    return dict(lo=lo, hi=hi, rps=rps, q=q, ge=ge, fq=fq, fq1=fq1, redone=bool(redo.size))


def _beyond_support(fc, y, m2, targets, ks, lo, hi, rps, q, ge) -> None:
    """Fix, in place, every quantity that needs k > K (rows scanned at full width)."""
    K = fc.K
    far = y > K
    tail_live = fc.tail**1.5 * np.sqrt(m2) > RPS_TOL
    rows = np.flatnonzero(far | tail_live | (q == K + 1).any(axis=1) | bool((ks > K + 1).any()))
    if not rows.size:
        return
    sub = fc.subset(rows)
    yr = y[rows]
    # One (zero-inflated) Poisson/NB component with a long tail beyond K: the closed form
    # (~15 us a row, whatever the mean) replaces the whole sum; short tails, and mixtures,
    # add their terms beyond K by summation (~10 ns a term).
    long_tail = np.maximum(fc.mean[rows] - K, 0) + 40 * np.sqrt(np.maximum(fc.var[rows], 0)) > _SUM_TERMS
    one = single_component(sub.components) & long_tail
    c = tuple(a[:, one] for a in sub.components)
    if one.any():
        first = c[0].argmax(axis=0), np.arange(c[0].shape[1])
        rps[rows[one]] = crps_zinb(yr[one], c[1][first], c[2][first], c[3][first])
    mix = ~one
    if mix.any():
        rps[rows[mix]] += rps_beyond(tuple(a[:, mix] for a in sub.components), K, yr[mix], m2[rows[mix]], RPS_TOL)
    f = np.flatnonzero(far[rows])
    if f.size:
        lo[rows[f]] = sub.subset(f).cdf(yr[f] - 1)
        hi[rows[f]] = sub.subset(f).cdf(yr[f])
    beyond_k = np.flatnonzero(ks > K + 1)
    for j in beyond_k:
        ge[rows, j] = sub.prob_at_least(ks[j])
    need = np.flatnonzero((q[rows] == K + 1).any(axis=1))
    if need.size and targets.size:
        q[rows[need]] = sub.subset(need).quantile(targets + QUANTILE_TOL).reshape(need.size, -1)


#: Quantiles read from the scan's sums equal :meth:`CountForecast.quantile`'s unless some F(k)
#: lies this close to a target: ``invert`` compares F and targets offset by up to 511 (rounded
#: to 2^-44), the scan compares them exactly. Such a near-tie sends the block to ``quantile``.
_TIE = 2.0 ** -42


def table_columns(fc: CountForecast, sc: dict, levels: Sequence[float], thresholds: Sequence[int]) -> dict:
    """The number columns of ``fc.to_frame(levels, thresholds)`` (``mean, lo-L, hi-L, p_ge_T``)
    from a :func:`_scan` pass at the levels' quantiles and the thresholds (``sc`` with its
    ``probs`` and ``ks``), bit for bit what ``to_frame`` computes on its own.

    Quantiles: the scan's, unless a row has a near-tie (:data:`_TIE`) or was resolved beyond
    the support, when the whole block's come from :meth:`CountForecast.quantile` (rare).
    Exceedances ``P(Y >= T)``, ``1 <= T <= K``: ``1 - F(T - 1)`` from the same cumulative sums,
    with :meth:`~CountForecast.prob_at_least`'s recomputation of values below 1e-6; other
    ``T`` through ``prob_at_least``.
    """
    from forecast._fcrows import _fraction

    t = sc["probs"] - QUANTILE_TOL
    q = sc["q"]
    if q.size:
        near = ((sc["fq"] - t < _TIE) | (t - sc["fq1"] < _TIE)).any(axis=1) | (q > fc.K).any(axis=1)
        if near.any() or sc.get("redone", False):
            q = fc.quantile(sc["probs"])
    out: dict[str, np.ndarray] = {"mean": np.asarray(fc.mean, dtype=float)}
    for i, lv in enumerate(levels):
        name = f"{round(_fraction(lv) * 100, 6):g}"
        out[f"lo-{name}"], out[f"hi-{name}"] = q[:, 2 * i], q[:, 2 * i + 1]
    for j, k in enumerate(thresholds):
        if 1 <= k <= fc.K:
            p = sc["ge"][:, j].copy()  # 1 - F(k - 1), the sums prob_at_least reads
            small = np.flatnonzero(p < 1e-6)
            if small.size:  # (as prob_at_least: tail plus the upper sum keeps their relative precision)
                p[small] = fc.tail[small] + fc._prefix(np.full(small.size, k, dtype=float), small, upper=True)
            out[f"p_ge_{k}"] = p
        else:
            out[f"p_ge_{k}"] = fc.prob_at_least(k)
    return out
