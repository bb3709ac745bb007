r"""NB2's dispersion profile for a batch of series whose fitted means are fixed per group of
periods (:mod:`~forecast.models._glmgroups`: group designs, where mu_g is each group's
mean at every alpha).

With mu fixed, the log-likelihood in theta = log alpha is, per series (kept rows only),

.. math::
    \ell(\theta) = \sum_t \sum_{k<y_t}\log(1 + \alpha k)
                   - \sum_g \Big[Y_g\log(1 + u_g) + n_g\mu_g\frac{\log(1 + u_g)}{u_g}\Big]
                   + \text{const},\qquad u_g = \alpha\mu_g,

with :math:`Y_g` the group's total and :math:`n_g` its number of periods. The first sum is
:math:`\sum_k N(k)\log(1 + \alpha k)` with :math:`N(k) = \#\{t: y_t > k\}`, so an
evaluation costs one pass over k per series and one over the groups, not one over every
period. Derivatives as the joint objective of :mod:`~forecast.models._glmbatch`:
:math:`d\ell/d\alpha = \sum_k N(k)\,k/(1+\alpha k) + \sum_g[n_g\mu_g^2 h(u_g) - Y_g\mu_g/(1+u_g)]`,
:math:`d^2\ell/d\alpha^2 = -\sum_k N(k)\,k^2/(1+\alpha k)^2 + \sum_g[n_g\mu_g^3 h'(u_g) + Y_g\mu_g^2/(1+u_g)^2]`.
"""
from __future__ import annotations

import numpy as np

from forecast.models._glmstack import _nb_pieces

__all__ = ["AlphaProfile"]


class AlphaProfile:
    """The profile log-likelihood of log alpha of S series, the group means held fixed.

    Parameters
    ----------
    y : (S, n) counts; mask : (S, n) bool kept rows or None; groups : (n,) group of each
    period (0..G-1); mu_g : (S, G) fitted mean of each group.
    """

    def __init__(self, y: np.ndarray, mask: np.ndarray | None, groups: np.ndarray, mu_g: np.ndarray):
        y = np.asarray(y, dtype=np.int64)
        S, G = mu_g.shape
        w = np.ones(y.shape) if mask is None else np.asarray(mask, dtype=float)
        E = np.zeros((groups.size, G))
        E[np.arange(groups.size), groups] = 1.0
        self.mu, self.Y, self.n = mu_g, (w * y) @ E, w @ E
        top = np.where(w > 0, y, 0).max(axis=1, initial=0)
        width = int(top.max(initial=0))
        # N(k) = #{kept t: y_t > k}, k < width: kept periods minus the cumulative histogram
        at = (y + (width + 1) * np.arange(S)[:, None]).ravel()
        hist = np.bincount(at, weights=w.ravel(), minlength=S * (width + 1)).reshape(S, width + 1)
        self.N = w.sum(axis=1)[:, None] - np.cumsum(hist, axis=1)[:, :width]
        # rows by their largest count (powers of two): one busy series does not widen every sum
        bucket = np.ceil(np.log2(top + 1.0)).astype(int)
        self.width = np.zeros(S, dtype=np.int64)  # each row's summation width: its bucket's largest count
        for b in np.unique(bucket):
            r = bucket == b
            self.width[r] = top[r].max(initial=0)
        self._group_rows()

    def _group_rows(self) -> None:
        order = np.argsort(self.width, kind="stable")
        cuts = np.flatnonzero(np.diff(self.width[order])) + 1
        self.buckets = [(r, int(self.width[r[0]])) for r in np.split(order, cuts) if r.size]

    def take(self, rows: np.ndarray) -> "AlphaProfile":
        out = object.__new__(AlphaProfile)
        out.mu, out.Y, out.n, out.N = self.mu[rows], self.Y[rows], self.n[rows], self.N[rows]
        out.width = self.width[rows]
        out._group_rows()
        return out

    def __call__(self, theta: np.ndarray, order: int):
        """Values (order 0), or values, first and second derivatives in theta (order 2)."""
        alpha = np.exp(theta)
        S = alpha.size
        sums = np.zeros((3 if order else 1, S))
        for rows, width in self.buckets:
            if not width:
                continue
            k = np.arange(width, dtype=float)
            ak = alpha[rows, None] * k
            N = self.N[rows, :width]
            sums[0, rows] = np.einsum("sk,sk->s", N, np.log1p(ak))
            if order:
                r = k / (1.0 + ak)
                sums[1, rows] = np.einsum("sk,sk->s", N, r)
                sums[2, rows] = np.einsum("sk,sk->s", N, r * r)
        mu, Y, n = self.mu, self.Y, self.n
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            pieces = _nb_pieces(alpha[:, None] * mu, derivatives=order > 0)
            l1u, ratio = pieces[:2]
            ll = sums[0] - np.sum(Y * l1u + n * mu * ratio, axis=1)
            if order == 0:
                return ll
            q, h, dh = pieces[2:]
            mq = mu * q
            g_a = sums[1] + np.sum(n * mu * mu * h - Y * mq, axis=1)
            h_aa = -sums[2] + np.sum(n * mu * mu * mu * dh + Y * mq * mq, axis=1)
        g = alpha * g_a  # chain rule to theta = log alpha
        return ll, g, alpha * alpha * h_aa + g
