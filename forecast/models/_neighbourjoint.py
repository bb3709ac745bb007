"""Joint multi-step simulation for models with neighbour terms, and the fitted model that
runs it.

One-step forecasts of a model with ``neighbour_lags`` are exact: the neighbours' last
counts are known. At h > 1 the neighbours' future counts are not, so every series of the
model is simulated together: at step j all of them draw their count (path p of every
series is one joint world), and step j + 1 reads those draws through both its own lags and
its neighbour sums. Each series draws from its own stream (:func:`series_rng`), in series
order, so a run is reproducible for a seed.

Series the ladder moved to a rung without neighbour terms (climatology, the long-run rate)
are not simulated: as a *source* their future count enters the others' neighbour sums as
their forecast mean (the part of the sum that is exact in expectation; their own forecast
is unchanged). Neighbours whose history ends at another period than the series' own
contribute 0 after their last period, like a missing count. A missing count among the
own lags the first steps read takes the series' observed mean (INGARCH: its conditional
mean, as in its fit) rather than being drawn forward as the single-series simulation does.
Outside a joint simulation (a forecast-time refit of one series by the ladder) neighbour
sums after the last period are held at the last one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import contextvars
from typing import Any, Iterator

import numpy as np
import pandas as pd

from forecast.models._pooled import SEPARATE, pooling_panel
from forecast.models._glmglue import _draw, pathmix, start_history
from forecast.models._glmglue import _check_future
from forecast.models._neighbours import held_neighbour_eta, panel_weights, with_neighbours
from forecast.models.design import DesignSpec, capped_mean, future_design, neighbour_names
from forecast.models.fitted import FittedModel, _guarded_forecast_many
from forecast.models.guard import MEAN_CAP_FACTOR, note_capped, recording_caps
from forecast.models.params import positive_int
from forecast.models.results import SeriesFit, SeriesForecast
from forecast.models.series import PanelData, Series, _future_of
from forecast.models.streams import series_rng

_JOINT: contextvars.ContextVar[tuple[dict[str, SeriesForecast], set] | None] = contextvars.ContextVar(
    "forecast_joint_paths", default=None)


@contextlib.contextmanager
def joint_paths(forecasts: dict[str, SeriesForecast], capped: set = frozenset()) -> Iterator[None]:
    """Inside this block, :func:`joint_forecast` hands out these precomputed forecasts (and
    records, for ``diagnostics()``, the series whose simulated means were capped)."""
    token = _JOINT.set((forecasts, set(capped)))
    try:
        yield
    finally:
        _JOINT.reset(token)


def joint_forecast(uids: list[str]) -> list[SeriesForecast] | None:
    """The joint forecasts of ``uids`` when every one was simulated jointly, else None."""
    value = _JOINT.get()
    if value is None or not all(u in value[0] for u in uids):
        return None
    got, capped = value
    for u in uids:
        if u in capped:
            note_capped(u)
    return [got[u] for u in uids]


def _joint_member(fit: Any) -> bool:
    return bool(getattr(fit.spec, "neighbour_lags", ())) and hasattr(fit.spec, "joint_inputs")


def simulate_joint(data: PanelData, fits: list, h: int, future: Any, seed: int, n_paths: int
                   ) -> dict[str, SeriesForecast]:
    """Joint paths of every series fitted by a rung with neighbour terms (see the module
    docstring): uid -> path-mixture forecast."""
    series = data.series
    members = [i for i, f in enumerate(fits) if _joint_member(f)]
    out: dict[str, SeriesForecast] = {}
    ends: dict[Any, list[int]] = {}
    for i, s in enumerate(series):
        ends.setdefault(s.ds_values[-1], []).append(i)
    for end, cohort in ends.items():
        J = [i for i in cohort if i in set(members)]
        if J:
            out.update(_simulate_cohort(series, fits, J, [i for i in cohort if i not in set(J)], h, future,
                                        seed, n_paths))
    return out


def _source_means(series, fits, F: list[int], h: int, future, seed: int) -> np.ndarray:
    """Forecast means (len(F), h) of the cohort's series without neighbour terms."""
    means = np.zeros((len(F), h))
    groups: dict[int, list[int]] = {}
    for k, i in enumerate(F):
        groups.setdefault(id(fits[i].spec), []).append(k)
    for ks in groups.values():
        idx = [F[k] for k in ks]
        got = _guarded_forecast_many(fits[idx[0]].spec, [fits[i] for i in idx], [series[i] for i in idx], h,
                                     future, seed)
        for k, sf in zip(ks, got):
            m = None if isinstance(sf, str) else _mean_of(sf)
            means[k] = m if m is not None and np.all(np.isfinite(m)) else float(np.mean(series[F[k]].y))
    return means


def _mean_of(sf: SeriesForecast) -> np.ndarray | None:
    if sf.family == "pathmix":
        return np.asarray(sf.path_mu, dtype=float).mean(axis=1)
    if sf.family == "samples":
        return np.asarray(sf.paths, dtype=float).mean(axis=1)
    if sf.family == "zi":
        return (1 - np.asarray(sf.pi)) * np.asarray(sf.mu)
    if sf.family == "pmf":
        return sf.pmf @ np.arange(sf.pmf.shape[1])
    return None if sf.mu is None else np.asarray(sf.mu, dtype=float)


def _simulate_cohort(series, fits, J: list[int], F: list[int], h: int, future, seed: int, P: int
                     ) -> dict[str, SeriesForecast]:
    from scipy import sparse  # (here, not at the top: a slow import every CLI call would pay)
    nJ = len(J)
    inputs = [fits[i].spec.joint_inputs(fits[i], series[i], h, future) for i in J]
    # Sources of the neighbour sums: the simulated series (draws) and the others (means).
    pos = {i: r for r, i in enumerate(J + F)}
    rows, cols, vals = [], [], []
    for c, i in enumerate(J):
        src, w = series[i].links
        for j, wj in zip(src.tolist(), w.tolist()):
            if j in pos:  # a neighbour ending at another period contributes 0 ahead
                rows.append(pos[j])
                cols.append(c)
                vals.append(wj)
    Wc = sparse.csr_matrix((vals, (rows, cols)), shape=(len(pos), nJ)).T.tocsr()  # (nJ, sources)
    with pooling_panel(SEPARATE):  # as FittedModel.forecast runs lower rungs
        fmeans = _source_means(series, fits, F, h, future, seed) if F else np.zeros((0, h))
    L = max([max(inp["lags"], default=0) for inp in inputs] + [1])
    hist = np.empty((nJ, P, L + h))
    for c, i in enumerate(J):
        hist[c, :, :L] = start_history(series[i], L)
    for c, inp in enumerate(inputs):  # own counts the model reads in place of observed ones
        if inp.get("y_hist") is not None:
            k = min(L, len(inp["y_hist"]))
            hist[c, :, L - k:L] = np.asarray(inp["y_hist"], dtype=float)[len(inp["y_hist"]) - k:]
    # INGARCH: past log-means nu enter the recursion (mean lags q with coefficients a_q)
    Q = max([max(inp.get("mean_lags", ()), default=0) for inp in inputs] + [0])
    N = np.zeros((nJ, P, Q + h))
    for c, inp in enumerate(inputs):
        if inp.get("mean_lags"):
            nu_hist = np.asarray(inp["nu_hist"], dtype=float)
            N[c, :, Q - len(nu_hist):Q] = nu_hist
    nsums = np.zeros((nJ, P, h))  # future neighbour sums s_{T+1+t}
    mus = np.empty((nJ, h, P))
    rngs = [series_rng(seed, series[i].uid, series[i].ds_values[-1]) for i in J]
    caps = [MEAN_CAP_FACTOR * max(int(series[i].y.max(initial=0)), 1) for i in J]
    for t in range(h):
        for c, (i, inp) in enumerate(zip(J, inputs)):
            eta = np.full(P, inp["eta"][t])
            for g, k in zip(inp["gamma"], inp["lags"]):
                eta += g * np.log1p(hist[c, :, L + t - k])
            nsum = series[i].nsum
            for d, k in zip(inp["delta"], inp["nlags"]):
                if t - k >= 0:
                    eta += d * np.log1p(nsums[c, :, t - k])
                else:
                    p = len(nsum) + t - k
                    eta += d * np.log1p(nsum[p] if p >= 0 else 0.0)
            for q, aq in zip(inp.get("mean_lags", ()), inp.get("a", ())):
                eta += aq * N[c, :, Q + t - q]
            N[c, :, Q + t] = eta
            mu = np.exp(np.minimum(eta, inp.get("nu_max", np.inf)))
            if not np.all(mu <= caps[c]):
                mu = capped_mean(mu, caps[c], series[i].uid)
            mus[c, t] = mu
            hist[c, :, L + t] = _draw(rngs[c], mu, inp["alpha"])
        if t + 1 < h and Wc.nnz:
            V = np.concatenate([hist[:, :, L + t], np.broadcast_to(fmeans[:, t, None], (len(F), P))])
            nsums[:, :, t] = Wc @ V
    return {series[i].uid: dataclasses.replace(pathmix(hist[c, :, L:].T.astype(np.int64), mus[c], inputs[c]["alpha"]),
                                               joint=True)
            for c, i in enumerate(J)}


class NeighbourFitted(FittedModel):
    """A fitted model with neighbour terms: multi-step forecasts are simulated jointly
    (:func:`simulate_joint`); ``update_data`` rebuilds the neighbour sums from the new data."""

    def __init__(self, spec: Any, data: PanelData, fits: list, rebuild: Any) -> None:
        super().__init__(spec, data, fits)
        self._rebuild = rebuild  # PanelData -> PanelData with neighbour sums

    @classmethod
    def of(cls, fitted: FittedModel, rebuild: Any) -> "NeighbourFitted":
        return cls(fitted._spec, fitted._data, fitted._fits, rebuild)

    def forecast(self, h: int, *, seed: int = 0, future: Any = None, history_max: int | None = None):
        if positive_int(h) and h > 1:
            with recording_caps() as capped:
                joint = simulate_joint(self._data, self._fits, h, future, seed, int(self._spec.n_paths))
            with joint_paths(joint, capped):
                return super().forecast(h, seed=seed, future=future, history_max=history_max)
        return super().forecast(h, seed=seed, future=future, history_max=history_max)

    def update_data(self, data: PanelData) -> "NeighbourFitted":
        return NeighbourFitted.of(super().update_data(self._rebuild(data)), self._rebuild)


class NeighbourTerms:
    """Mixin of the GLM specs for ``neighbour_lags``: the whole-panel neighbour sums at fit
    time, the neighbour part of a forecast's linear predictor, and the inputs of the joint
    simulation. The spec provides ``get_params``, ``neighbour_*`` and ``name``."""

    @property
    def pools_series(self) -> bool:
        """Neighbour sums read every series: backtests must not chunk the panel."""
        return bool(self.neighbour_lags)  # type: ignore[attr-defined]

    def fit_data(self, data: PanelData, *, warm: FittedModel | None = None) -> FittedModel:
        """As :meth:`ModelSpec.fit_data`; with ``neighbour_lags`` the neighbour sums are built from
        the whole panel first and multi-step forecasts are simulated jointly."""
        if not self.neighbour_lags:
            return super().fit_data(data, warm=warm)  # type: ignore[misc]
        params = (self.neighbour_weights, float(self.neighbour_decay), self.name)

        def rebuild(d: PanelData) -> PanelData:
            return with_neighbours(d, panel_weights(d, *params))

        return NeighbourFitted.of(super().fit_data(rebuild(data), warm=warm), rebuild)  # type: ignore[misc]

    def _neighbour_eta(self, fit: SeriesFit, s: Series, h: int) -> np.ndarray:
        """The neighbour part of the next h linear predictors (step 1 exact, later steps held)."""
        names = list(fit.state["names"])
        delta = fit.state["beta"][[names.index(n) for n in neighbour_names(self._dspec())]]
        return held_neighbour_eta(s, delta, self.neighbour_lags, h)

    def _dspec(self) -> DesignSpec:
        design = getattr(self, "_design", None)  # INGARCH maps past_obs to the design's lags
        if design is not None:
            return design()
        return DesignSpec.from_params(self.get_params())  # type: ignore[attr-defined]

    def joint_inputs(self, fit: SeriesFit, s: Series, h: int, future: pd.DataFrame | None) -> dict:
        """What the joint simulation needs of one series: the lag-free linear predictor of the
        next h periods, own-lag and neighbour-lag coefficients, and alpha."""
        dspec = self._dspec()
        fut = None if future is None else _future_of(future, s, h)
        _check_future(dspec, fut, s.uid)
        X, offset, lag_cols = future_design(dspec, s, h, fut)
        beta, names = fit.state["beta"], list(fit.state["names"])
        return {"eta": X @ beta + offset, "gamma": beta[list(lag_cols)], "lags": tuple(dspec.lags),
                "delta": beta[[names.index(n) for n in neighbour_names(dspec)]],
                "nlags": tuple(dspec.neighbour_lags), "alpha": float(fit.state["alpha"])}

