r"""Predictive count distributions shared by every model: :class:`CountForecast`.

One object holds the forecast distribution of many rows (row = one series x one
future period): a dense pmf over ``0..K``, the mass beyond ``K`` per row and, where
the model has one, the parametric form, so outcomes above ``K`` still score exactly.

Notes
-----
Every parametric row is a (mixture of) zero-inflated NB2 component(s)

.. math::

    f(k) = \pi\,[k=0] + (1-\pi)\,\frac{\Gamma(k+r)}{\Gamma(r)\,k!}
           \Big(\frac{r}{r+\mu}\Big)^{r}\Big(\frac{\mu}{r+\mu}\Big)^{k}, \qquad r = 1/\alpha,

with mean :math:`(1-\pi)\mu` and variance :math:`(1-\pi)\mu(1+\alpha\mu+\pi\mu)`;
NB2 is :math:`\pi=0` (variance :math:`\mu+\alpha\mu^2`), the Poisson also :math:`\alpha=0`.
``r`` is never formed for the pmf (:mod:`forecast.numerics`): NB2 tends to the Poisson
without cancellation.

**Parametric form.** ``components = (w, mu, alpha, pi)``, four ``(C, n_rows)`` arrays.
Poisson/NB/ZI forecasts have ``C = 1, w = 1``; empirical ones (samples, dense pmf)
``C = 0``; path mixtures (:meth:`CountForecast.from_path_means`) up to 8 of a row's laws,
weighted by their share of paths (so :math:`\sum_c w_c < 1` with more laws); a mixture
stacks its members' components with weights multiplied, so rows pooling an empirical
member have :math:`\sum_c w_c < 1`. Beyond ``K``

.. math:: F(k) = F(K) + \sum_c w_c\,[S_c(K) - S_c(k)], \qquad S_c(k) = P_c(Y>k),

the empirical remainder of the tail having no known location.

**Memory and time.** The pmf is ``n_rows x (K+1)`` float64 (1e6 rows: 1.6 GB at the
default cap ``K = 200``); Poisson/NB/ZI forecasts build it only when it is read
(:mod:`forecast._leanpmf`): scores and quantiles read each row's own prefix. Every pass
works in row blocks. Formulas in :mod:`forecast.numerics`, row helpers in ``_fcrows``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from forecast._fcrows import (  # noqa: F401 (K_CAP_MIN, K_CAP_MAX: re-exported)
    K_CAP_MAX, K_CAP_MIN, _cap, _check_index, _fraction, _no_components, _param, checked_pmf, invert,
    padded, pool, prefix, samples_pmf, stack, subset_pieces,
)
from forecast._leanpmf import ParamGrid, parametric
from forecast._pathpmf import path_forecast
from forecast._stackgrid import LAZY_GRIDS
from forecast.numerics import comp_logpmf, comp_sf, search_beyond

TAIL_TOL = 1e-6         # K: smallest k leaving P(Y > k) < TAIL_TOL on every row
QUANTILE_TOL = 1e-12    # quantile(q) = min{k : F(k) >= q - QUANTILE_TOL}


class CountForecast:
    """Predictive count distribution for many forecast rows.

    Build one with :meth:`poisson`, :meth:`negbin`, :meth:`zero_inflated`,
    :meth:`from_samples`, :meth:`from_path_means`, :meth:`from_pmf`, :meth:`mixture` or :meth:`concat`;
    ``__init__`` takes already-checked arrays and serves those constructors.

    Attributes
    ----------
    index : DataFrame with ``unique_id, ds, h`` (optionally ``cutoff``), RangeIndex.
    model : model name shown by :meth:`to_frame`.
    family : ``poisson, negbin, zip, zinb, samples, pathmix, pmf, mixture`` or ``mixed``.
    n_rows, K : number of rows; the dense support is ``0..K``.
    pmf : (n_rows, K+1) float64 :math:`P(Y=k)`; rows sum to ``1 - tail``. Read-only. Poisson/NB/ZI
        and path-mixture forecasts build it on first read (scores, quantiles and ``to_frame`` do not
        need it; path mixtures keep each row over its own support, :mod:`forecast._raggedpmf`).
    tail : (n_rows,) :math:`P(Y>K)`; below ``TAIL_TOL`` unless ``K`` hit its cap.
    components : ``(w, mu, alpha, pi)``, each (C, n_rows); C = 0 without a parametric form.
    paths : (n_series, horizon, n_paths) ints or None; row = series * horizon + h - 1.
    joint : True when path ``p`` of every series is one world of a model simulating the series
        together (cross-series terms); False: series simulated apart (per-series streams).
    part_paths : without ``paths``, the paths of the series that have them (a stack of parts
        with and without paths): ``(first row of each series, (k, horizon, P), joint)`` tuples.
    mean, var : (n_rows,); closed form where parametric, law of total variance for
        mixtures, else moments of the paths or of the pmf (mass beyond K ignored).
    """

    def __init__(self, index, model, pmf, tail, components, mean, var, paths=None, family="pmf",
                 row_models=None, joint=False, part_paths=()):
        self.index, self.model, self.family = index, str(model), family
        self._grid, self._pmf = (pmf, None) if isinstance(pmf, LAZY_GRIDS) else (None, pmf)  # lazy or built
        self.tail, self.components, self.paths = tail, components, paths
        self.joint = bool(joint) and paths is not None
        self.part_paths = () if paths is not None else tuple(part_paths)
        self.mean, self.var, self._row_models = mean, var, row_models
        self.n_rows, self.K = pmf.shape[0], pmf.shape[1] - 1
        for a in (tail, mean, var, *components) + ((pmf,) if self._grid is None else ()):
            a.flags.writeable = False  # shared by scoring, ensembles and plots: no silent edits

    @property
    def pmf(self) -> np.ndarray:
        if self._pmf is None:  # a parametric forecast's grid, built on the first read
            self._pmf, self._grid = self._grid.full(), None
            self._pmf.flags.writeable = False
        return self._pmf

    # ------------------------------------------------------------------ constructors
    @classmethod
    def _parametric(cls, index, mu, alpha, pi, model, family, history_max) -> CountForecast:
        index = _check_index(index)
        n = len(index)
        mu, alpha, pi = _param(mu, n, "mu"), _param(alpha, n, "alpha"), _param(pi, n, "pi", 1.0)
        return cls(index, model, *parametric(mu, alpha, pi, _cap(history_max), TAIL_TOL), family=family)

    @classmethod
    def poisson(cls, index, mu, *, model: str, history_max: float | None = None) -> CountForecast:
        """Poisson rows, :math:`P(Y=k) = e^{-\\mu}\\mu^k/k!`.

        ``mu`` (scalar or per row) >= 0; ``history_max``, the largest count in the
        history, raises the support cap to ``10 * history_max`` when above 20.
        """
        return cls._parametric(index, mu, 0.0, 0.0, model, "poisson", history_max)

    @classmethod
    def negbin(cls, index, mu, alpha, *, model: str, history_max: float | None = None) -> CountForecast:
        """NB2 rows, :math:`\\operatorname{Var} Y = \\mu + \\alpha\\mu^2`; ``alpha = 0`` is the Poisson."""
        return cls._parametric(index, mu, alpha, 0.0, model, "negbin", history_max)

    @classmethod
    def zero_inflated(cls, index, mu, pi, alpha=None, *, model: str,
                      history_max: float | None = None) -> CountForecast:
        """Zero-inflated Poisson (``alpha=None``) or NB2: :math:`P(0) = \\pi + (1-\\pi)f(0)`."""
        family = "zip" if alpha is None else "zinb"
        return cls._parametric(index, mu, 0.0 if alpha is None else alpha, pi, model, family, history_max)

    @classmethod
    def from_samples(cls, index, paths, *, model: str, history_max: float | None = None,
                     joint: bool = False) -> CountForecast:
        """Empirical distribution of simulated paths, kept for sums over series or periods.

        ``paths`` is an int array (n_series, horizon, n_paths); ``index`` rows run
        series-major then ``h = 1..horizon`` (row = s * horizon + h - 1). ``K`` is the
        largest simulated count, capped as for the parametric families (draws above the
        cap count as ``tail``). Mean and variance are the path moments (ddof 0).
        ``joint``: the paths are joint draws across series (see the class attributes).
        """
        index = _check_index(index)
        paths = np.asarray(paths)
        pmf, tail, mean, var = samples_pmf(index, paths, _cap(history_max))
        kept = paths.view()
        kept.flags.writeable = False  # a read-only view: the caller's array keeps its flags
        return cls(index, model, pmf, tail, _no_components(len(index)), mean, var, kept, "samples", joint=joint)

    @classmethod
    def from_path_means(cls, index, mu_paths, *, alpha=0.0, pi=0.0, paths=None, model: str,
                        history_max: float | None = None, joint: bool = False) -> CountForecast:
        """Simulated paths, each row the average of the paths' conditional laws (Rao-Blackwellised).

        Row ``i`` is :math:`\\frac1P\\sum_p` (ZI)NB2(``mu_paths[i, p]``, ``alpha``, ``pi``), so
        every count has positive probability (:mod:`forecast._pathpmf`); ``mu_paths`` (rows, P)
        or a list of per-series (h, P) blocks in row order; ``alpha``, ``pi`` scalar, per row or
        (rows, P). ``K`` as for the parametric families, ``tail`` exact.
        Up to 8 laws per row (those with the most mass beyond ``K``) are the parametric form.
        ``paths`` (n_series, horizon, P), the draws, are kept as in :meth:`from_samples`;
        ``joint=True`` says path ``p`` is one world across series (a model with cross-series terms).
        """
        index = _check_index(index)
        arrays = path_forecast(index, mu_paths, alpha, pi, paths, _cap(history_max), TAIL_TOL)
        return cls(index, model, *arrays, family="pathmix", joint=joint)

    @classmethod
    def from_pmf(cls, index, pmf, *, model: str, tail=None) -> CountForecast:
        """Dense pmf over ``0..K`` per row (e.g. a discretised Gaussian), copied.

        With ``tail=None`` the mass beyond ``K`` is ``1 - row sum``; rows summing to
        more than 1 by at most 1e-9 (float noise) are renormalised to 1, more than that
        raises ``ValueError``. A given ``tail`` must satisfy ``|row sum + tail - 1| <= 1e-9``
        and rows are rescaled to sum to ``1 - tail``. Mass beyond ``K`` has no known
        location here: quantiles and draws falling there are reported as ``K + 1``.
        """
        index = _check_index(index)
        n = len(index)
        p, t, mean, var = checked_pmf(pmf, tail, n)
        return cls(index, model, p, t, _no_components(n), mean, var)

    @classmethod
    def mixture(cls, members: Sequence[CountForecast], weights, *, model: str) -> CountForecast:
        """Linear pool :math:`\\sum_m w_m p_m` of forecasts of the same rows.

        ``weights`` is (n_members,) or (n_members, n_rows), >= 0, renormalised to sum to
        1 per row; members must match on unique_id/ds/h row by row (``ValueError``).
        Members' parametric components are kept, weights multiplied; ``pmf`` is exact.
        Paths are kept if every member has paths of one shape: path ``j`` of row ``(s, h)``
        is path ``j`` of the member whose cumulative-weight band there holds one ``u_j =
        (j + 0.5) / n_paths`` shared by every series and step (stratified, no rng; each
        row's law is the pool's up to weights rounded to multiples of ``1 / n_paths``).
        With weights equal across series a joint world stays one world (``joint`` if every
        member is); per-series weights make the choice a common-random-numbers coupling,
        not one world (``joint`` False). Where weights vary with ``h`` a path changes member
        where a band edge crosses ``u_j``, so whole-horizon sums join members' steps.
        """
        ref, arrays, joint = pool(list(members), weights)
        return cls(ref, model, *arrays, "mixture", joint=joint)

    @classmethod
    def concat(cls, forecasts: Sequence[CountForecast]) -> CountForecast:
        """Stack forecasts row-wise; ``K`` becomes the largest, parts padded exactly (lazily, see ``_stackgrid``).

        Models may differ (``model`` joins the names, ``to_frame`` labels each row).
        Paths are kept when every part has paths of the same horizon and n_paths (else the
        parts' paths go to ``part_paths``). Parts are independent of each other, so path ``p``
        is still one world (a product of the parts'): ``joint`` if every part is joint.
        """
        *args, joint, pieces = stack(list(forecasts))  # constructor arguments, then the path flags
        return cls(*args, joint=joint, part_paths=pieces)

    def subset(self, mask_or_idx) -> CountForecast:
        """Rows selected by a boolean mask or integer positions; ``K`` is unchanged.

        Paths are kept only if the selection is whole series (every ``h`` of each
        selected series, in order; series may be reordered), else dropped; ``joint``
        is kept with them. Series selected whole keep theirs in ``part_paths`` otherwise.
        """
        sel = np.asarray(mask_or_idx)
        if sel.dtype == bool and sel.shape != (self.n_rows,):
            raise ValueError(f"boolean mask must have shape ({self.n_rows},).")
        pos = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.intp).ravel()
        paths, H = None, 0 if self.paths is None else self.paths.shape[1]
        if H and pos.size % H == 0:
            start = pos[::H]
            if (start % H == 0).all() and np.array_equal(pos.reshape(-1, H), start[:, None] + np.arange(H)):
                paths = self.paths[start // H]
        pieces = self.part_paths if self.paths is None else ((np.arange(len(self.paths)) * H, self.paths, self.joint),)
        pieces = () if paths is not None else subset_pieces(pieces, pos, self.n_rows)
        grid = self._grid.subset(pos) if self._grid is not None else self.pmf[pos]  # a lazy grid stays lazy
        return type(self)(self.index.iloc[pos].reset_index(drop=True), self.model, grid,
                          self.tail[pos], tuple(a[:, pos] for a in self.components), self.mean[pos],
                          self.var[pos], paths, self.family,
                          None if self._row_models is None else self._row_models[pos], self.joint, pieces)

    # ------------------------------------------------------------------ evaluation
    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        paths = None if self.paths is None else self.paths.shape
        return (f"CountForecast(model={self.model!r}, family={self.family!r}, n_rows={self.n_rows}, "
                f"K={self.K}, max_tail={self.tail.max(initial=0):.2e}, paths={paths})")

    def cdf(self, k) -> np.ndarray:
        """:math:`F(k) = P(Y \\le k)` per row, ``k`` scalar or broadcastable to (n_rows,).

        From the pmf up to ``K``; beyond, exact through the parametric form
        (``1 - tail`` where there is none).
        """
        k = self._points(k)
        out = np.zeros(self.n_rows)
        ins = np.flatnonzero((k >= 0) & (k <= self.K))
        out[ins] = self._prefix(k[ins], ins)
        rows = np.flatnonzero(k > self.K)
        if rows.size:
            comps = self._comp(rows)
            gain = np.maximum(comp_sf(self.K, comps) - comp_sf(k[rows], comps), 0).sum(axis=0)
            out[rows] = self._prefix(np.full(rows.size, self.K), rows) + gain
        return np.minimum(out, 1.0)  # rounding in the sums can reach 1 + 2e-16

    def pmf_at(self, y) -> np.ndarray:
        """:math:`P(Y = y_i)` per row for integer ``y``; exact beyond ``K`` where parametric, else 0."""
        y = self._points(y, integer=True)
        out = np.zeros(self.n_rows)
        if isinstance(self._grid, ParamGrid):  # one exact component per row: no grid needed
            ok = np.flatnonzero(y >= 0)
            out[ok] = np.exp(comp_logpmf(y[ok], self._comp(ok)))
            return out
        ins = np.flatnonzero((y >= 0) & (y <= self.K))
        out[ins] = self.pmf[ins, y[ins].astype(np.intp)] if self._grid is None else self._grid.at(ins, y[ins])
        rows = np.flatnonzero(y > self.K)
        if rows.size and self.components[0].shape[0]:
            out[rows] = np.exp(comp_logpmf(y[rows], self._comp(rows)))
        return out

    def logpmf_at(self, y) -> np.ndarray:
        """:math:`\\log P(Y = y_i)`; from the parametric form on fully parametric rows, so it
        stays finite where :math:`P` underflows (the log score needs that)."""
        y = self._points(y, integer=True)
        with np.errstate(divide="ignore"):
            out = np.full(self.n_rows, -np.inf) if isinstance(self._grid, ParamGrid) else np.log(self.pmf_at(y))
        rows = np.flatnonzero((self.components[0].sum(axis=0) >= 1 - 1e-12) & (y >= 0))
        if rows.size:
            out[rows] = comp_logpmf(y[rows], self._comp(rows))
        return out

    def quantile(self, q) -> np.ndarray:
        """Smallest ``k`` with :math:`F(k) \\ge q - 10^{-12}`, int64.

        The tolerance keeps float noise in cumulative sums (0.7999999999999999 for 0.8)
        from moving a quantile up by one. Scalar ``q`` gives (n_rows,), a 1-D sequence
        (n_rows, len(q)). Beyond ``K`` the parametric form is searched.
        """
        qs = np.atleast_1d(np.asarray(q, dtype=float))
        if qs.ndim != 1 or not ((qs >= 0) & (qs <= 1)).all():
            raise ValueError(f"q must be in [0, 1]. Got {q!r} instead.")
        out = invert(self, np.broadcast_to(qs - QUANTILE_TOL, (self.n_rows, qs.size)))
        return out[:, 0] if np.ndim(q) == 0 else out

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval ``(quantile(a), quantile(1 - a))`` with ``a = (1 - level) / 2``.

        ``level`` as 0.8 or 80. :math:`P(lo \\le Y \\le hi) \\ge` level, usually above it
        (the law is discrete), and intervals are nested across levels.
        """
        a = (1 - _fraction(level)) / 2
        qs = self.quantile([a, 1 - a])
        return qs[:, 0], qs[:, 1]

    def prob_at_least(self, k) -> np.ndarray:
        """:math:`P(Y \\ge k) = 1 - F(k-1)` for integer ``k``.

        Values below 1e-6 (where ``1 - F`` would keep only an absolute 1e-16) are
        recomputed as tail plus the upper pmf sum, and beyond ``K`` from the survival
        function, so small exceedance probabilities keep their relative precision.
        """
        s = self._points(k, integer=True) - 1
        out = np.ones(self.n_rows)
        ins = np.flatnonzero((s >= 0) & (s < self.K))
        out[ins] = 1 - self._prefix(s[ins], ins)
        small = ins[out[ins] < 1e-6]
        out[small] = self.tail[small] + self._prefix(s[small] + 1, small, upper=True)
        rows = np.flatnonzero(s >= self.K)
        if rows.size:
            comps = self._comp(rows)
            out[rows] = self._tail_np(rows, comps) + comp_sf(s[rows], comps).sum(axis=0)
        return out

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws per row, (n_rows, n) int64, by inverse CDF on the pmf.

        Draws in the tail come from the parametric form (``K + 1`` where there is none).
        ``rng`` is required: no global random state.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy Generator, e.g. np.random.default_rng(seed).")
        return invert(self, rng.random((self.n_rows, int(n))))

    def ppf(self, u) -> np.ndarray:
        """Smallest ``k`` with :math:`F(k) \\ge u`, ``u`` (n_rows, n) in [0, 1]: :meth:`sample` with
        the caller's uniforms (e.g. a stream per series). int64, (n_rows, n)."""
        u = np.asarray(u, dtype=float)
        if u.ndim != 2 or u.shape[0] != self.n_rows or not ((u >= 0) & (u <= 1)).all():
            raise ValueError(f"u must be in [0, 1] with shape ({self.n_rows}, n); got shape {u.shape}.")
        return invert(self, u)

    def to_frame(self, levels: Sequence[float] = (50, 80, 95), thresholds: Sequence[int] = (1, 5), *,
                 level: Sequence[float] | float | None = None) -> pd.DataFrame:
        """Long frame ``unique_id, ds, [cutoff,] h, model, mean, lo-L, hi-L ..., p_ge_T ...``.

        ``lo``/``hi`` are int64 central-interval bounds, ``p_ge_T`` float64
        :math:`P(Y \\ge T)`; ``cutoff`` appears only when the index has it. ``level`` is
        accepted for ``levels`` (statsforecast's name), one level or several.
        """
        if level is not None:
            levels = [level] if np.ndim(level) == 0 else list(level)  # type: ignore[arg-type]
        fr = [_fraction(lv) for lv in levels]
        Q = self.quantile([q for f in fr for q in ((1 - f) / 2, 1 - (1 - f) / 2)])
        data = {c: self.index[c] for c in ("unique_id", "ds", "cutoff", "h") if c in self.index.columns}
        data["model"] = np.full(self.n_rows, self.model, dtype=object) if self._row_models is None \
            else self._row_models
        data["mean"] = np.asarray(self.mean, dtype=float)
        for i, f in enumerate(fr):
            name = f"{round(f * 100, 6):g}"
            data[f"lo-{name}"], data[f"hi-{name}"] = Q[:, 2 * i], Q[:, 2 * i + 1]
        for t in thresholds:
            data[f"p_ge_{t}"] = self.prob_at_least(t)
        return pd.DataFrame(data).astype({"model": str})

    # ------------------------------------------------------------------ internals
    def _points(self, k, integer: bool = False) -> np.ndarray:
        a = np.asarray(k, dtype=float)
        if not np.isfinite(a).all() or (integer and (a != np.floor(a)).any()):
            raise ValueError(f"expected finite {'integer ' if integer else ''}values, got {k!r}.")
        return np.broadcast_to(np.floor(a), (self.n_rows,))

    def _comp(self, rows: np.ndarray) -> tuple:
        return tuple(a[:, rows] for a in self.components)

    def _prefix(self, k: np.ndarray, rows: np.ndarray, upper: bool = False) -> np.ndarray:
        """F(k_i) on ``rows`` (0 <= k <= K), or with ``upper`` the sum over j >= k_i (``_fcrows.prefix``)."""
        return prefix(self, k, rows, upper)

    def _tail_np(self, rows: np.ndarray, comps: tuple) -> np.ndarray:
        """Tail mass beyond K that no component explains (exactly 0 on fully parametric rows)."""
        rest = self.tail[rows] - comp_sf(self.K, comps).sum(axis=0)
        return np.where(comps[0].sum(axis=0) >= 1 - 1e-12, 0.0, np.maximum(rest, 0.0))

    def _search_beyond(self, rows: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Smallest k > K with F(k) >= target on ``rows`` (see :func:`forecast.numerics.search_beyond`)."""
        comps = self._comp(rows)  # (no components: K + 1, without reading the pmf)
        base = self._prefix(np.full(rows.size, self.K), rows) if comps[0].shape[0] else np.zeros(rows.size)
        return search_beyond(self.K, base, comps, target)

    def _padded(self, K: int, sl: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(pmf on 0..K, tail beyond K) of rows ``sl``, K >= self.K, extended by the parametric form."""
        return padded(self, K, sl)
