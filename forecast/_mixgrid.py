r"""Pmf grids of NB2 mixtures, each row only as wide as its own laws need.

The kernel behind :func:`forecast._pathpmf.path_mixture`: row ``r`` is
:math:`p_r(k) = \sum_j a_j f_j(k)/f_j(0)` over its laws :math:`j` (``a_j`` = weight
:math:`\times (1-\pi_j) f_j(0)`), an NB2 pmf following :math:`f_j(k) = f_j(k-1)\,c_j\,g(k)`,
:math:`c_j = \mu_j/(1+\alpha\mu_j)`, :math:`g(k) = (1+\alpha(k-1))/k`.

**One alpha per row** (every lag model's mixture): :math:`g` is shared, so with the row's
widest law :math:`t` (largest :math:`c`)

.. math:: p(k) = a_t\,H(k) \sum_j \frac{a_j}{a_t}\Big(\frac{c_j}{c_t}\Big)^k,
          \qquad H(k) = \prod_{m\le k} c_t\,g(m),

i.e. the widest law's own pmf (one cumulative product, as for a single NB2 row) times a
sum of decaying exponentials. On a block of ``_B`` counts :math:`k = k_b + i` that sum is
:math:`e^{\sigma_b}\sum_j U_{bj} X_{ji}` with :math:`U_{bj} = e^{l_j + k_b d_j - \sigma_b}`,
:math:`X_{ji} = e^{i d_j}` (:math:`l_j = \log a_j/a_t`, :math:`d_j = \log c_j/c_t \le 0`,
:math:`\sigma_b = \max_j (l_j + k_b d_j) \ge 0`): one small matrix product per row and
chunk, so the cost per row is ~``width x laws`` multiply-adds at BLAS speed and
``width x laws / _B`` exponentials, not a cumulative product per law and count. All terms
are positive and at most 1 (no cancellation); where the widest law's :math:`a_t` is a
normal float its term :math:`e^{-\sigma_b} \ge e^{-700}` never underflows, so a dropped
(underflowed) term is below :math:`e^{-45}` of it (a widest law with a larger mean is
carried in log space, and ``_B`` keeps the exponents of one block close). A row stops
after the chunk where it is past its mode (the widest law's ratio :math:`c_t g(k) < 1`:
every law's ratio is at most that and stays below 1) and below ``_FLOOR``; the rest of
its grid stays 0 (pages never written are never allocated).

**Alpha varying across a row's laws** (per-path dispersion): the law-by-law cumulative
product, a law leaving once past its mode and below ``_FLOOR``.

Every row is computed in chunks of counts from 1 (one-alpha rows: 32, 32, 64, 128, then
``_CHUNK``, :func:`chunk_len`, as most rows stop within a few dozen counts; law by law:
``_CHUNK``), with shapes set by the row alone (its law count rounded up to a power of
two), so its numbers never depend on ``K`` or on the other rows of the call (batching,
jobs). Chunk edges are multiples of ``_B`` past 0, so the blocks and their sums are those
of one long chunk; the chunking only sets where a row may stop. A widest law whose start underflows
(means above ~700) is carried in log space.

**Where the chunks go.** The kernels write into a dense grid or hand each chunk to a sink
(``K``, ``tol``, ``put``): the ragged store of :mod:`forecast._raggedpmf` keeps each row
only up to where, past its mode, the mass beyond is provably below ``tol``: with one alpha
every law's ratio :math:`c_j g(m)` for :math:`m > k` is at most
:math:`\rho = c_t \max(\alpha, g(k+1)) < 1`, so the mass beyond ``k`` is at most
:math:`p(k)\,\rho/(1-\rho)`.
"""
from __future__ import annotations

import numpy as np

from forecast.numerics import _LOG_TINY

_B = 16                    # counts per block of the matrix product
_CHUNK = 256               # counts per chunk (a multiple of _B): rows stop at chunk ends
_FIRST = 32                # counts in a one-alpha row's first two chunks (then 64, 128, _CHUNK)
_CELLS = 1 << 19           # rows x laws x blocks per pass: 4 MB temporaries
_FLOOR = 1e-300            # past its mode and below this a row (or law) adds nothing more
_LOG_FLOOR = np.log(_FLOOR)


class Dense:
    """A sink writing the kernels' chunks into a dense (n, K+1) grid (no early stop by mass)."""

    tol = 0.0

    def __init__(self, pmf: np.ndarray) -> None:
        self.pmf, self.K = pmf, pmf.shape[1] - 1

    def put(self, rows: np.ndarray, k0: int, block: np.ndarray, used: np.ndarray | None = None) -> None:
        self.pmf[rows, k0:k0 + block.shape[1]] = block


def chunk_len(k0: int) -> int:
    """Counts in the chunk from ``k0`` of a one-alpha row: ``_FIRST`` twice, then doubling up to
    ``_CHUNK`` (most rows stop within a few dozen counts: no full chunk for them)."""
    return int(min(_CHUNK, max(_FIRST, k0 - 1)))


def one_alpha_rows(pmf, rows, starts, lead, c, alpha, sel: np.ndarray) -> None:
    """Columns 1..K of rows ``sel`` (one alpha each) into ``pmf``; see the module docstring.

    ``rows``/``starts`` map laws to rows, ``lead`` = log a_j, ``c`` the laws' ratios' scale.
    ``pmf`` is a dense grid or a sink (``K``, ``tol``, ``put``; see :class:`Dense` and
    :mod:`forecast._raggedpmf`): with ``tol > 0`` a row also stops at the first count past
    its mode where the mass beyond is provably below ``tol``.
    """
    pmf = Dense(pmf) if isinstance(pmf, np.ndarray) else pmf
    K = pmf.K
    live = (lead > -np.inf) & (c > 0)  # laws adding nothing beyond 0 (mu = 0, pi = 1) leave here
    cnt = np.add.reduceat(live, starts[:-1])[sel] if sel.size else np.empty(0, int)
    sel, cnt = sel[cnt > 0], cnt[cnt > 0]
    width = np.maximum(1, 1 << np.ceil(np.log2(np.maximum(cnt, 1))).astype(int))
    for A in np.unique(width):
        grp = sel[width == A]
        per = max(1, _CELLS // (int(A) * (_CHUNK // _B)))
        for g0 in range(0, grp.size, per):
            _group(pmf, grp[g0:g0 + per], int(A), rows, starts, lead, c, alpha, live, K)


def _group(pmf, rs, A: int, rows, starts, lead, c, alpha, live, K: int) -> None:
    """Rows ``rs`` with at most ``A`` live laws each: padded (n, A) arrays, chunk by chunk."""
    n = rs.size
    lens = starts[rs + 1] - starts[rs]
    ids = np.repeat(starts[rs] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
    ids = ids[live[ids]]
    rr = np.searchsorted(rs, rows[ids])
    col = np.arange(ids.size) - np.searchsorted(rr, rr)  # position of each law within its row
    L = np.full((n, A), -np.inf)
    C = np.zeros((n, A))
    L[rr, col], C[rr, col] = lead[ids], c[ids]
    t = C.argmax(axis=1)
    ar = np.arange(n)
    l_top, c_top, a = L[ar, t], C[ar, t], alpha[starts[rs]]
    with np.errstate(divide="ignore"):
        d = np.where(np.isfinite(L), np.log(C) - np.log(c_top)[:, None], 0.0)  # pads: l = -inf, d = 0
    lrel = L - l_top[:, None]
    single = A == 1
    X = None if single else np.exp(d[:, :, None] * np.arange(_B))                  # (n, A, B)
    in_logs = l_top < _LOG_TINY
    carry = np.where(in_logs, l_top, np.exp(l_top))  # the widest law at k = 0 (log where tiny)
    k0 = 1
    act, la, da, Xa = ar, lrel, d, X  # the rows still going, and their laws' arrays
    while act.size and k0 <= K:
        cl = chunk_len(k0)
        kk = np.arange(k0, k0 + cl, dtype=float)
        R = a[act, None] * (kk - 1)
        R += 1
        R *= c_top[act, None]
        R /= kk
        past = R[:, -1] < 1
        lg = in_logs[act]
        if lg.any():
            Lg = np.log(R[lg])
            Lg[:, 0] += carry[act[lg]]
            np.cumsum(Lg, axis=1, out=Lg)
        R[:, 0] *= np.where(lg, 1.0, carry[act])
        np.cumprod(R, axis=1, out=R)                      # the widest law's own pmf (linear rows)
        carry[act[~lg]] = R[~lg, -1]
        if not single:
            kb = k0 + _B * np.arange(cl // _B)              # block starts
            E = la[:, None, :] + kb[None, :, None] * da[:, None, :]  # (m, blocks, A)
            sig = E.max(axis=2, keepdims=True)
            E -= sig
            np.exp(E, out=E)
            S = np.matmul(E, Xa).reshape(act.size, cl)  # sum_j U_bj X_ji
            if lg.any():
                sig_c = np.repeat(sig[:, :, 0], _B, axis=1)
                R[lg] = np.exp(Lg + sig_c[lg]) * S[lg]
                R[~lg] *= np.exp(sig_c[~lg]) * S[~lg]
            else:
                R *= np.repeat(np.exp(sig[:, :, 0]), _B, axis=1) * S
        elif lg.any():
            R[lg] = np.exp(Lg)
        k1 = min(k0 + cl, K + 1)
        blk, done = R[:, :k1 - k0], np.zeros(act.size, bool)
        used = None
        if pmf.tol > 0:  # mass beyond count k <= p(k) rho / (1 - rho) once every law's ratio is <= rho < 1
            kb = kk[:k1 - k0]
            g = (1 + a[act, None] * kb) / (kb + 1)           # g(k + 1)
            rho = c_top[act, None] * np.maximum(a[act, None], g)
            stop = (c_top[act, None] * g < 1) & (blk * rho < pmf.tol * (1 - rho))
            done = stop.any(axis=1)
            used = np.where(done, stop.argmax(axis=1) + 1, k1 - k0)
        pmf.put(rs[act], k0, blk, used)
        if lg.any():
            carry[act[lg]] = Lg[:, -1]
        keep = ~((past & (R[:, -1] < _FLOOR)) | done)
        if not keep.all():  # the rows going on, gathered once (not at every chunk)
            act = act[keep]
            la, da, Xa = (la[keep], da[keep], Xa[keep]) if not single else (la, da, Xa)
        k0 += cl


def per_law_rows(pmf, act, rows, c, alpha, lead) -> None:
    """Columns 1..K of the rows of laws ``act`` (whole rows, sorted by row), law by law."""
    pmf = Dense(pmf) if isinstance(pmf, np.ndarray) else pmf
    K = pmf.K
    act = act[(lead[act] > -np.inf) & (c[act] > 0)]
    log = lead[act] < _LOG_TINY
    last = np.where(log, lead[act], np.exp(lead[act]))  # log f for log-space laws, else f
    k0 = 1
    while k0 <= K and act.size:
        k1 = min(k0 + _CHUNK, K + 1)
        kk = np.arange(k0, k1, dtype=float)
        R = alpha[act][:, None] * (kk - 1)
        R += 1
        R *= c[act][:, None]
        R /= kk
        past = R[:, -1] < 1
        if log.any():
            Lg = np.log(R[log])
            Lg[:, 0] += last[log]
            np.cumsum(Lg, axis=1, out=Lg)
        R[:, 0] *= np.where(log, 1.0, last)
        np.cumprod(R, axis=1, out=R)
        if log.any():
            R[log] = np.exp(Lg)
        r = rows[act]
        seg = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        pmf.put(r[seg], k0, np.add.reduceat(R, seg, axis=0))
        last = R[:, -1].copy()
        if log.any():
            last[log] = Lg[:, -1]
        lv = np.where(log, last, np.log(np.maximum(last, 1e-320)))
        keep = ~(past & (lv < _LOG_FLOOR))
        act, last, log = act[keep], last[keep], log[keep]
        k0 = k1
