"""Input checks of the per-series GLM solvers (:mod:`forecast.models._glmfit`): aliasing and separation.

Both follow R: columns are aliased by the QR rule of ``glm`` (``dqrdc2``, relative
tolerance 1e-7), and an infinite MLE (separation) is confirmed by an exact linear programme.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


# Same relative tolerance as R's glm QR (dqrdc2), so the same columns count as aliased.
_ALIAS_TOL = 1e-7
# A y = 0 row with a fitted mean below this prompts the exact separation check (an LP).
_SEPARATION_MU = 1e-5


def _prepare(X, y, offset, penalty, penalize_intercept):
    """Validate inputs; return arrays, per-column penalty and the non-aliased columns."""
    yf = np.asarray(y, dtype=float)
    if yf.ndim != 1 or not np.all(np.isfinite(yf)) or np.any(yf < 0) or np.any(yf != np.floor(yf)):
        raise ValueError("y must be a 1-D array of finite non-negative integer counts.")
    n = yf.size
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] != n or X.shape[1] == 0 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, p) array with n = len(y) = {n}; got {X.shape}.")
    off = np.zeros(n) if offset is None else np.broadcast_to(np.asarray(offset, float), (n,)).copy()
    if not np.all(np.isfinite(off)) or not (np.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"offset must be finite and penalty a finite float >= 0; got penalty={penalty!r}.")
    pen = np.full(X.shape[1], float(penalty))
    if not penalize_intercept:
        pen[0] = 0.0
    # Aliasing in column order as R's QR does it; penalised columns are never aliased.
    aug = np.vstack([X, np.diag(np.sqrt(pen))])
    r_diag = np.abs(np.diag(np.linalg.qr(aug, mode="r")))
    kept = r_diag > _ALIAS_TOL * np.maximum(np.linalg.norm(aug, axis=0), np.finfo(float).tiny)
    return X, yf.astype(np.int64), off, pen, kept


def _diverging_columns(X: np.ndarray, y: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Columns whose MLE is infinite (separation), by an exact LP test; empty if none.

    The log-likelihood rises without bound along d iff X d <= 0 on every row, = 0 where
    y > 0 and < 0 somewhere (those rows get mu -> 0). Only unpenalised columns (``free``)
    can move that way. Coefficients not pinned down by the remaining rows diverge.
    Two exact shortcuts come first (see :func:`_separating_rows`); the LP runs only when
    neither decides.
    """
    zero = y == 0
    A, B = X[zero][:, free], X[~zero][:, free]
    if A.shape[0] == 0 or A.shape[1] == 0:
        return np.zeros(0, dtype=int)
    neg = _separating_rows(A, B)
    if neg is None:
        neg = _lp_separating_rows(A, B)
    if neg is None or not neg.any():
        return np.zeros(0, dtype=int)
    return _unpinned(X, zero, neg, free)


def _full_column_rank(B: np.ndarray) -> bool:
    if B.shape[0] < B.shape[1]:
        return False
    if B.shape[1] == 0:
        return True
    s = linalg.svdvals(B)
    return bool(s[0] > 0 and s[-1] > 1e-9 * s[0])


def _null_space(B: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rows spanning the null space of B (relative rank tolerance 1e-9, as
    :func:`_full_column_rank`), and whether that rank is clear: no singular value within
    1e-12 .. 1e-6 of the largest, so rounding cannot move a direction in or out."""
    _, s, vt = linalg.svd(B, full_matrices=B.shape[0] < B.shape[1])
    if not s.size or not s[0] > 0:
        return vt, False
    rel = s / s[0]
    return vt[np.sum(rel > 1e-9):], not np.any((rel > 1e-12) & (rel < 1e-6))


def _separating_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
    """Rows of A (the y = 0 rows) that some separating direction sends to mu -> 0, decided
    without an LP where that is exact; None when the LP must decide.

    1. B (the y > 0 rows) of full column rank: B d = 0 forces d = 0, no row separates.
    2. Columns J that are 0 on every y > 0 row and of one sign (a month dummy whose month
       never saw a count), no two of them non-zero on the same row, and B without J of
       full column rank. Then B d = 0 forces d = 0 off J, so a direction moves J only,
       and each column of J separately: the LP's optimum is unique, d_j = -sign / max|X_j|,
       and it sends exactly the rows where J is non-zero to mu -> 0 (each row by at least
       1e-6 of the largest, which the LP's 1e-7 threshold counts).
    3. B d = 0 has a one-dimensional solution space d = t v (clearly: see :func:`_null_space`).
       With a = A v, the LP's constraints -1 <= t a_i <= 0 leave only t = 0 when a has
       entries of both signs (no row separates), else the unique optimum t = -1 / max |a|
       (sign chosen) sends exactly the rows with a_i != 0 to mu -> 0. Decided here only
       when every a_i is clearly 0 (<= 1e-10 of the largest) or clearly not (>= 1e-6).
    """
    if B.shape[0] >= B.shape[1]:
        null, clear_rank = _null_space(B)
        if clear_rank and null.shape[0] == 0:
            return np.zeros(A.shape[0], dtype=bool)
    else:
        null, clear_rank = np.zeros((2, A.shape[1])), False
    if not clear_rank and _full_column_rank(B):
        return np.zeros(A.shape[0], dtype=bool)
    mag = np.abs(A)
    top = mag.max(axis=0)
    nz = mag > 0
    one_sign = np.all(A >= 0, axis=0) | np.all(A <= 0, axis=0)
    clear = np.all(~nz | (mag >= 1e-6 * top), axis=0)
    J = ~np.any(B != 0, axis=0) & one_sign & (top > 0) & clear
    if J.any() and np.all(nz[:, J].sum(axis=1) <= 1) and _full_column_rank(B[:, ~J]):
        return nz[:, J].any(axis=1)
    if clear_rank and null.shape[0] == 1:
        a = A @ null[0]
        scale = np.abs(a).max(initial=0.0)
        if scale == 0:
            return np.zeros(A.shape[0], dtype=bool)
        zero, big = np.abs(a) <= 1e-10 * scale, np.abs(a) >= 1e-6 * scale
        if np.all(zero | big):
            if np.all(a[big] > 0) or np.all(a[big] < 0):
                return big
            return np.zeros(A.shape[0], dtype=bool)
    return None


def _lp_separating_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
    """The LP: maximise the total push -sum(A d) with -1 <= A d <= 0 and B d = 0."""
    from scipy import optimize  # (here, not at the top: a slow import every CLI call would pay)
    res = optimize.linprog(A.sum(axis=0), A_ub=np.vstack([A, -A]),
                           b_ub=np.r_[np.zeros(len(A)), np.ones(len(A))],
                           A_eq=B if B.shape[0] else None, b_eq=np.zeros(len(B)) if B.shape[0] else None,
                           bounds=(None, None), method="highs")
    if res.status != 0 or -res.fun <= 1e-7:
        return None
    return A @ res.x < -1e-7


def _unpinned(X: np.ndarray, zero: np.ndarray, neg: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Free columns that the rows left after dropping the separated ones (``neg``, among
    the y = 0 rows) do not pin down."""
    fixed_rows = np.ones(len(zero), dtype=bool)
    fixed_rows[np.flatnonzero(zero)[neg]] = False
    rest = X[fixed_rows][:, free]
    if rest.shape[0] == 0:
        return np.flatnonzero(free)
    # (only V is needed: U in full would be n x n; it is needed in full only when n < p)
    _, s, vt = linalg.svd(rest, full_matrices=rest.shape[0] < rest.shape[1])
    null = vt[np.sum(s > 1e-9 * s[0]):] if s.size and s[0] > 0 else vt
    return np.flatnonzero(free)[np.linalg.norm(null, axis=0) > 1e-6]


def _alias_note(kept: np.ndarray) -> str:
    """Message naming the aliased columns (``kept`` False), as R reports NA coefficients."""
    return (f"rank-deficient design (rank {kept.sum()} < {kept.size}): column(s) "
            f"{', '.join(map(str, np.flatnonzero(~kept)))} aliased, coefficient set to 0")


def _separation(X: np.ndarray, y: np.ndarray, free: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, str]:
    """Diverging columns of ``X`` (the kept columns), numbered in the full design, and the
    message naming them ('' when there are none)."""
    div = np.flatnonzero(kept)[_diverging_columns(X, y, free)]
    if not div.size:
        return div, ""
    word = "coefficient of column" if div.size == 1 else "coefficients of columns"
    verb = "diverges" if div.size == 1 else "diverge"
    return div, (f"separation: {word} {', '.join(map(str, div))} {verb} (mu -> 0 where "
                 "y = 0); the MLE does not exist, use penalty > 0")
