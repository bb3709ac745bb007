r"""The one pass over the pmf behind :mod:`forecast.scoring`: F(y-1), F(y), the RPS,
quantiles and exceedance probabilities of many forecast rows at once.

Scores need the cdf, i.e. row-wise cumulative sums of the pmf. Most rows carry their
mass on a few dozen counts while ``K`` is set by the widest row, so each row is summed
over a prefix ``0..w-1`` only. Its first ``w`` is a guess from its mean and variance
(:func:`_first_width`: a gamma law's quantile at the tail mass the check below wants);
rows sorted by ``w`` are read in blocks at the block's largest ``w`` (:func:`_blocks`),
transposed: one contiguous row of values per count, the pmf recurrence and the cumulative
sums running count by count across all the block's rows (:func:`forecast._leanpmf.cdf_block`),
the same operations in the same order as row-wise ``np.cumprod``/``np.cumsum``, so every
F(k) is bit for bit the one a dense pass computes.

**Truncation.** With :math:`S(k) = P(Y > k) = 1 - F(k)`, a row is accepted at width ``w``
when ``y < w``, ``w`` is at least the largest threshold, :math:`S(w-1)` is below half of
:math:`1 -` the largest quantile level, and

.. math:: S(w-1)\,\big(E[Y] - \textstyle\sum_{k<w} S(k)\big) \le 10^{-13} = \texttt{RPS\_TOL}.

The RPS terms left out are :math:`\sum_{k\ge w} S(k)^2 \le S(w-1)\sum_{k\ge w} S(k)` (``S`` does not
rise), and :math:`\sum_{k\ge w} S(k) = E[(Y-w)^+] = E[Y] - \sum_{k<w} S(k)`, so they add to
at most ``RPS_TOL``. ``E[Y]`` is bounded by ``mean + (K + 1) tail`` (mass beyond ``K``
without a parametric form counts at ``K + 1``), :math:`\sum_{k<w} S(k) = w - \sum_{k<w} F(k)`
is read from the block, and the check adds the sums' rounding (``w`` and ``w^2`` units of
2^-52). PIT values, exceedances and quantiles are unaffected by the columns left out;
rows failing the check go round again at the width where the tail, extrapolated
geometrically from the last two pmf values, passes (:func:`_predict_width`). At ``w = K + 1``
the same product tells whether the terms beyond ``K`` may count: those rows (and outcomes
beyond ``K``) get them from the parametric form (:func:`_beyond_support`).

Every name here is re-exported from :mod:`forecast.scoring`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import special

from forecast._countnum import crps_zinb, rps_beyond, single_component
from forecast._leanpmf import cdf_block, scratch, trim_scratch
from forecast.distributions import QUANTILE_TOL, CountForecast

RPS_TOL = 1e-13          # bound on the RPS mass left out by truncated sums (per row)
_W0 = 24                 # (first width of earlier versions; kept importable)
_W_STEP = 16             # widths of rows going round again are multiples of this
_CELLS = 1 << 18         # rows x width per block at most, unless that is under _ROWS_MIN rows
_ROWS_MIN = 1024         # rows per block at least (per-count numpy calls run over a block's rows) ...
_CELLS_MAX = 1 << 22     # ... unless that passes this many cells (32 MB buffers)
_CELLS_KEPT = 1 << 21    # buffers kept between scans: up to 16 MB each
_COST_K = 250            # cost of a count in a block, in cells (~0.9 us of numpy calls per count)
_COST_BLOCK = 15000      # cost of a block, in cells (its fixed numpy calls)
_CHUNK_K = 128           # counts per partial sum of the RPS
_W_MIN = 8               # narrowest first width
_Z_SCALE = 1.0           # first widths: scale of the gamma law's normal quantile
_EPS = 2.0 ** -52          # slack per term for the rounding of the sums in the truncation check
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
    """(Rows grouped by width into ``queue``: the scan of earlier versions; kept importable.)"""
    order = np.argsort(widths, kind="stable")
    rows, widths = rows[order], widths[order]
    cuts = np.flatnonzero(np.diff(widths)) + 1
    for part, width in zip(np.split(rows, cuts), widths[np.r_[0, cuts]] if rows.size else []):
        queue.setdefault(int(width), []).append(part)


def _first_width(fc: CountForecast, y: np.ndarray, ks: np.ndarray, r_max: np.ndarray) -> np.ndarray:
    """Each row's first width: where a gamma law with the row's mean and variance leaves
    about ``r_max`` beyond (Wilson-Hilferty, or the exponential bound of a shape below 1),
    at least ``y + 1``, ``max(ks)`` and ``_W_MIN``, at most ``K + 1``.

    A guess only: the exact check of :func:`_scan` sends a row guessed too narrow to
    :func:`_predict_width` (one more round); a row guessed too wide costs columns.
    """
    mean = np.maximum(np.asarray(fc.mean, dtype=float), 0)
    var = np.maximum(np.asarray(fc.var, dtype=float), 0)
    z = -special.ndtri(r_max)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h = var / (9 * mean**2)  # 1/(9 shape)
        wh = mean * np.maximum(1 - h + _Z_SCALE * z * np.sqrt(h), 0) ** 3
        expo = var / mean * -np.log(r_max)  # scale x log(1/r): the tail of a shape <= 1
        x = np.where(h > 1 / 9, np.maximum(wh, expo), wh)
    x = np.where(np.isfinite(x), x, mean)
    w = np.maximum(np.ceil(np.minimum(x, fc.K + 1.0)) + 2, np.maximum(y + 1, max(_W_MIN, int(ks.max(initial=0)))))
    return np.minimum(w, fc.K + 1).astype(np.int64)


def _blocks(widths: np.ndarray):
    """``(slice, width)`` blocks of rows sorted by ``widths``, each read at its largest width.

    Each count of a block costs a few numpy calls whatever its rows (``_COST_K`` cells'
    worth), each block some more (``_COST_BLOCK``): a block takes in the next width's rows
    while its padding (all of it) costs less than a block of their own, and
    is cut into pieces of at most ``max(_ROWS_MIN, _CELLS // width)`` rows (and
    ``_CELLS_MAX`` cells: the buffers of very wide blocks stay bounded).
    """
    n = widths.size
    starts = np.r_[0, np.flatnonzero(np.diff(widths)) + 1]
    ends, g, G = np.r_[starts[1:], n], 0, starts.size
    while g < G:
        i, j, w, waste = int(starts[g]), int(ends[g]), int(widths[starts[g]]), 0
        g += 1
        while g < G:
            w2 = int(widths[starts[g]])
            waste += (w2 - w) * (j - i)  # the block's padding if it takes the next width
            if waste > _COST_BLOCK + w2 * _COST_K:
                break
            j, w, g = int(ends[g]), w2, g + 1
        step = max(1, min(max(_ROWS_MIN, _CELLS // w), _CELLS_MAX // w))
        for a in range(i, j, step):
            yield slice(a, min(a + step, j)), w


def _scan(fc: CountForecast, y: np.ndarray, probs: Sequence[float] = (), ks: Sequence[int] = ()) -> dict:
    """One pass over the pmf: F(y-1), F(y), RPS, quantiles ``probs``, P(Y >= k) for ``ks``.

    Returns a dict of ``lo, hi, rps`` (n,), ``q, fq, fq1`` (n, len(probs): the quantiles and F
    at them and one below), ``ge`` (n, len(ks)) and ``redone`` (some quantile was searched
    beyond the support).
    """
    n, K = fc.n_rows, fc.K
    targets = np.asarray(probs, dtype=float) - QUANTILE_TOL
    ks = np.asarray(ks, dtype=np.int64)
    lo, hi, rps = np.empty(n), np.empty(n), np.empty(n)
    q, ge = np.empty((targets.size, n), np.int64), np.empty((ks.size, n))  # rows last: cheap writes
    fq, fq1 = np.empty((targets.size, n)), np.empty((targets.size, n))     # F(q), F(q - 1)
    # E[Y^2] bound for the RPS beyond K (tail mass counted at K + 1: only makes it larger)
    m2 = np.maximum(fc.var, 0) + fc.mean**2 + (K + 1.0) ** 2 * fc.tail
    m1 = np.maximum(fc.mean, 0) + (K + 1.0) * fc.tail  # >= E[Y] (the same convention)
    s_cap = (1 - targets.max(initial=0.0)) / 2  # quantiles need P(Y >= w) below 1 - every level
    k_top = int(ks.max(initial=0))
    live = np.zeros(n, bool)  # rows whose RPS terms beyond K may exceed RPS_TOL
    width = _first_width(fc, y, ks, np.minimum(np.sqrt(RPS_TOL / np.maximum(np.sqrt(np.maximum(fc.var, 0)), 1)), s_cap))
    pending = np.arange(n)
    kk = np.arange(K + 1, dtype=np.int16 if K < 32000 else np.int64)
    while pending.size:
        order = np.argsort(width[pending], kind="stable")
        pending = pending[order]
        sorted_w = width[pending]
        failed: list[np.ndarray] = []
        for sl, w in _blocks(sorted_w):
            rows = pending[sl]
            F, last2 = cdf_block(fc, rows, w)  # (w, rows): one contiguous row per count
            yb = y[rows]
            # the truncation check (module docstring), with the sums' rounding
            s_end = 1 - F[-1] + w * _EPS
            e_plus = np.maximum(m1[rows] - w + F.sum(axis=0), 0) + 2 * w * w * _EPS + 1e-12 * m1[rows]
            short = s_end * e_plus <= RPS_TOL
            if w == K + 1:  # whole support: the RPS terms beyond K are added if they may count
                live[rows] = ~short
            else:
                ok = (yb < w) & short & (s_end <= s_cap) & (w >= k_top)  # (P(Y >= k) reads F(k - 1))
                if not ok.all():
                    bad = ~ok
                    target = np.minimum(RPS_TOL / e_plus[bad], s_cap)
                    width[rows[bad]] = _predict_width(last2[bad], s_end[bad], yb[bad], target, w, K)
                    failed.append(rows[bad])
                    rows, yb, F = rows[ok], yb[ok], F[:, ok]
            m = rows.size
            if not m:
                continue
            flat, r = F.reshape(-1), np.arange(m)
            yc = np.minimum(yb, w - 1)
            lo[rows] = np.where(yb >= 1, flat[np.clip(yb - 1, 0, w - 1) * m + r], 0.0)
            hi[rows] = flat[yc * m + r]
            for j, k in enumerate(ks):
                ge[j, rows] = 1 - F[k - 1] if 1 <= k <= w else float(k <= 0)
            if targets.size:
                _quantiles(F, targets, q, fq, fq1, rows)
            # RPS: sum over k of (F(k) - [k >= y])^2 (int16 comparisons: 4x faster than int64)
            mask = np.greater_equal(kk[:w, None], np.minimum(yb, K + 1).astype(kk.dtype),
                                    out=scratch("mask", F.shape, bool))
            np.subtract(F, mask, out=F)
            rps[rows] = _sum_squares(F)
        pending = np.concatenate(failed) if failed else pending[:0]
    trim_scratch(_CELLS_KEPT)
    q, ge = q.T, ge.T  # (n, len(probs)), (n, len(ks)) views
    q_in = q.copy()
    _beyond_support(fc, y, m2, targets, ks, lo, hi, rps, q, ge, live)
    # F at the quantiles (interval masses) from the same sums; a quantile moved beyond the
    # support, or not found within it, is read through the parametric form
    fq, fq1 = fq.T, fq1.T
    redo = np.flatnonzero(((q != q_in) | (q > K)).any(axis=1)) if targets.size else np.empty(0, np.intp)
    if redo.size:
        sub, qr = _rows_of(fc, redo), q[redo]
        for j in range(targets.size):
            fq[redo, j], fq1[redo, j] = sub.cdf(qr[:, j]), sub.cdf(qr[:, j] - 1)
    return dict(lo=lo, hi=hi, rps=rps, q=q, ge=ge, fq=fq, fq1=fq1, redone=bool(redo.size))


def _sum_squares(D: np.ndarray) -> np.ndarray:
    """Column sums of ``D**2``, by chunks of ``_CHUNK_K`` rows: a sum along the first axis
    runs row after row, so chunks keep its rounding near that of a pairwise sum."""
    out = np.einsum("ij,ij->j", D[:_CHUNK_K], D[:_CHUNK_K])
    for c in range(_CHUNK_K, D.shape[0], _CHUNK_K):
        out += np.einsum("ij,ij->j", D[c:c + _CHUNK_K], D[c:c + _CHUNK_K])
    return out


def _quantiles(F: np.ndarray, targets: np.ndarray, q, fq, fq1, rows: np.ndarray) -> None:
    """Quantiles (the count of F < t, F rising along each column of ``F``) and F at them and
    one below, of a block's accepted ``rows``, into columns ``rows`` of ``q, fq, fq1``.

    Counts below the first k where some row reaches t are k for every row; from the first
    k where every row has reached t on, none counts: only the band between is compared,
    its counts summed as bytes (at most 255 counts at once).
    """
    w, m = F.shape
    top, bottom = F.max(axis=1), F.min(axis=1)
    start, stop = np.searchsorted(top, targets), np.searchsorted(bottom, targets)
    qs = np.repeat(start[:, None], m, axis=1)
    below = scratch("below", (min(w, 255), m), bool)
    for j, t in enumerate(targets):
        for c in range(int(start[j]), int(stop[j]), 255):
            e = min(c + 255, int(stop[j]))
            part = np.less(F[c:e], t, out=below[:e - c])
            qs[j] += np.add.reduce(part.view(np.uint8), axis=0, dtype=np.uint8)
    flat, r = F.reshape(-1), np.arange(m)
    q[:, rows] = qs
    fq[:, rows] = flat[np.minimum(qs, w - 1) * m + r]  # (q = w only at w = K + 1: redone beyond)
    fq1[:, rows] = np.where(qs >= 1, flat[np.clip(qs - 1, 0, w - 1) * m + r], 0.0)


def _rows_of(fc: CountForecast, pos: np.ndarray) -> CountForecast:
    """``fc.subset(pos)`` for the sums and searches of the scan: no index (the costly part
    of a subset), no paths."""
    grid = fc._grid.subset(pos) if fc._grid is not None else fc.pmf[pos]
    return type(fc)(None, fc.model, grid, fc.tail[pos], tuple(a[:, pos] for a in fc.components),
                    fc.mean[pos], fc.var[pos], None, fc.family,
                    None if fc._row_models is None else fc._row_models[pos])


def _beyond_support(fc, y, m2, targets, ks, lo, hi, rps, q, ge, live=None) -> None:
    r"""Fix, in place, every quantity that needs k > K (rows scanned at full width).

    ``live``: the rows whose RPS terms beyond K may exceed ``RPS_TOL`` (from the scan's
    check); by default the rows with :math:`S(K)^{3/2}\sqrt{E Y^2}` above it.
    """
    K = fc.K
    far = y > K
    tail_live = fc.tail**1.5 * np.sqrt(m2) > RPS_TOL if live is None else live
    rows = np.flatnonzero(far | tail_live | (q == K + 1).any(axis=1) | bool((ks > K + 1).any()))
    if not rows.size:
        return
    sub = _rows_of(fc, rows)
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
        lo[rows[f]] = _rows_of(sub, f).cdf(yr[f] - 1)
        hi[rows[f]] = _rows_of(sub, f).cdf(yr[f])
    beyond_k = np.flatnonzero(ks > K + 1)
    for j in beyond_k:
        ge[rows, j] = sub.prob_at_least(ks[j])
    need = np.flatnonzero((q[rows] == K + 1).any(axis=1))
    if need.size and targets.size:
        q[rows[need]] = _rows_of(sub, need).quantile(targets + QUANTILE_TOL).reshape(need.size, -1)


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
