"""The endemic–epidemic spatial count model (R surveillance's ``hhh4`` family): spec and fitted model.

Series of one event type are fitted *jointly*: a region's mean adds to its endemic level a
share of its own last count and of its neighbours' last counts, weighted by the panel's
adjacency (:mod:`forecast.adjacency`). The solver is :mod:`forecast.models._hhh4fit`; the
joint forecasts (exact one-step laws, jointly simulated paths beyond) are
:mod:`forecast.models._spatialsim`. Aggregate series (province or country ``(all)``) are
not part of the joint fit and, like every series of a group whose joint fit fails, are
fitted by the fallback ladder (``negbin_glm`` ... climatology), recorded per series. A series
with no event in the fit window has no finite endemic level: it leaves the likelihood and
falls back alone, while its zeros stay in its neighbours' terms (and the weights' normalisation).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from forecast.adjacency import series_orders
from forecast.exceptions import ConfigError
from forecast.models import _hhh4fit as hh
from forecast.models._spatialsim import forecast_group, grid, time_design
from forecast.models.base import FitFailure, ModelSpec, Param, Series, SeriesFit, one_of, optional_str, positive_int
from forecast.models.baselines import Climatology, Zero
from forecast.models.design import DesignSpec, check_design_columns
from forecast.models.fitted import FittedModel
from forecast.models.glm import NegBinGLM
from forecast.models.guard import describe, is_numeric_error
from forecast.models.ladder import fit_many
from forecast.models.series import PanelData
from forecast.schema import ALL_LABEL

#: The message when no adjacency reaches the model.
NEEDS_ADJACENCY = ("endemic_epidemic needs an adjacency: pass build_panel(adjacency=...) or [data] adjacency "
                   "(or fit(panel, adjacency=...))")

#: A power-law decay beyond this (weights of order 2 below 2^-20 of order 1) that fails to
#: converge is taken at its limit, first-order weights.
LOGD_LIMIT = 20.0


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def _optional_positive_int(v: Any) -> bool:
    return v is None or positive_int(v)


@dataclass
class GroupFit:
    """One joint fit: the series it covers (in fit order) and what the solver learned."""

    label: str
    uids: list[str]
    problem: hh.Problem
    fit: hh.Fit
    t0: np.datetime64  # the first period of the fit grid (t = 0 of the Fourier terms)
    period: float
    series: list[Series]
    spectral_radius: float
    spec_view: Any  # the spec (seasonality, fourier_k, trend) for the time terms


class EndemicEpidemic(ModelSpec):
    """Endemic–epidemic NB (or Poisson) model fitted jointly over the regions of an event type.

    Parameters
    ----------
    weights : "powerlaw" (default; w_ji ∝ o_ji^(-d), d > 0 estimated) or "first_order"
        (1/deg(j) for the neighbours j ~ i); each source region's weights sum to 1.
    seasonality : bool, Fourier terms of the annual cycle in the endemic part.
    fourier_k : harmonics of the annual cycle (sin/cos(2πk t/period), k = 1..fourier_k).
    trend : bool, a linear trend (per year) in the endemic part.
    exposure : None or a column used as offset of the endemic part (e.g. "population_share").
    distribution : "negbin" (Var = μ + ψμ²) or "poisson".
    overdispersion : "shared" (one ψ, hhh4's NegBin1) or "region" (ψ per region, NegBinM).
    ar_lag : lag L of the own and neighbour terms.
    maxlag : largest neighbourhood order with a weight (None: the largest order).
    cross_type : link series of different event types (default: each type is its own fit).
    n_paths : jointly simulated paths for forecasts beyond one step.

    Notes
    -----
    μ_it = e_it ν_it + λ y_i,t−L + φ Σ_j w_ji y_j,t−L with log ν_it = α_i + seasonal + trend terms;
    Y_it | past ~ NB(μ_it, ψ), Var = μ + ψμ² (Meyer, Held & Höhle 2017).

    Needs an adjacency (``build_panel(adjacency=...)``, ``[data] adjacency`` or
    ``fit(panel, adjacency=...)``). Estimates, standard errors (inverse observed
    information), log likelihood, AIC and the spectral radius of λI + φWᵀ are in
    ``coef()`` and ``diagnostics()`` of the fitted model.
    """

    name = "endemic_epidemic"
    description = "Endemic-epidemic spatial NB model (hhh4): own and neighbour lags, fitted jointly"
    params = (
        Param("weights", "powerlaw", "one of 'powerlaw', 'first_order'", one_of("powerlaw", "first_order")),
        Param("seasonality", True, "a bool", _is_bool),
        Param("fourier_k", 1, "an int >= 1", positive_int),
        Param("trend", False, "a bool", _is_bool),
        Param("exposure", None, "None or a column name", optional_str),
        Param("distribution", "negbin", "one of 'negbin', 'poisson'", one_of("negbin", "poisson")),
        Param("overdispersion", "shared", "one of 'shared', 'region'", one_of("shared", "region")),
        Param("ar_lag", 1, "an int >= 1", positive_int),
        Param("maxlag", None, "None or an int >= 1", _optional_positive_int),
        Param("cross_type", False, "a bool", _is_bool),
        Param("n_paths", 1000, "an int >= 1", positive_int, "joint sample paths for forecasts beyond one step"),
    )
    handles_missing = True
    #: a joint fit reads every series of the panel: backtests must not chunk it
    pools_series = True
    #: ``fit`` is the base one: backtests may split the panel once and call fit_data
    splits_once = True

    def required_columns(self) -> tuple[str, ...]:
        return (self.exposure,) if self.exposure else ()

    def check_panel(self, panel: pd.DataFrame) -> None:
        """The exposure column must be a finite number > 0 on every row."""
        if self.exposure:
            check_design_columns(panel, DesignSpec(exposure=self.exposure))

    def fallback_specs(self) -> list[tuple[str, ModelSpec]]:
        return [("negbin_glm", NegBinGLM()), ("climatology", Climatology()), ("zero", Zero())]

    def _fit_series(self, s: Series) -> SeriesFit:
        raise FitFailure("endemic_epidemic fits the series of an event type jointly, not one alone")

    def fit_data(self, data: PanelData) -> "SpatialFitted":
        if data.adjacency is None:
            raise ConfigError(NEEDS_ADJACENCY)
        self.validate()
        spec = self.clone()
        fits: list[SeriesFit | None] = [None] * len(data.series)
        groups: list[GroupFit] = []
        for label, idx, aggregate in _groups(data, spec.cross_type):
            series = [data.series[i] for i in idx]
            if aggregate:
                why = "aggregate series are not part of the joint fit"
            else:
                try:
                    g = _fit_group(spec, data, label, series)
                    per_series = _series_fits(spec, g)
                    groups.append(g)
                    quiet = [k for k, sf in enumerate(per_series) if sf is None]
                    for i, sf in zip(idx, per_series):
                        fits[i] = sf
                    if quiet:  # no event in the fit window: no endemic level to estimate
                        why = ("no event in the fit window, so no endemic level (its zeros enter its "
                               "neighbours' terms)")
                        for k, sf in zip(quiet, _fallback_fits([series[k] for k in quiet], why)):
                            fits[idx[k]] = sf
                    continue
                except FitFailure as exc:
                    why = f"joint fit failed: {exc}"
                except Exception as exc:
                    if not is_numeric_error(exc):
                        raise
                    why = f"joint fit failed: {describe(exc)}"
            for i, sf in zip(idx, _fallback_fits(series, why)):
                fits[i] = sf
        return SpatialFitted(spec, data, fits, groups)  # type: ignore[arg-type]

    def _forecast_many(self, fits: list[SeriesFit], series: list[Series], h: int, future: pd.DataFrame | None,
                       seed: int) -> list:
        by_group: dict[int, list[int]] = {}
        for k, f in enumerate(fits):
            by_group.setdefault(id(f.state["group"]), []).append(k)
        out: list = [None] * len(fits)
        for ks in by_group.values():
            g = fits[ks[0]].state["group"]
            got = forecast_group(g, {series[k].uid: series[k] for k in ks}, h, future, seed, self.n_paths,
                                 self.exposure)
            for k in ks:
                out[k] = got[series[k].uid]
        return out


def _groups(data: PanelData, cross_type: bool) -> list[tuple[str, list[int], bool]]:
    """(label, series positions, is aggregate) per joint fit: one per event type (all series
    when there are no key columns or ``cross_type``), aggregates apart."""
    keys = data.keys
    uids = [s.uid for s in data.series]
    if keys is None:
        return [("", list(range(len(uids))), False)]
    k = keys.reindex(uids)
    agg = ((k["province"].astype(str) == ALL_LABEL) | (k["country"].astype(str) == ALL_LABEL)).to_numpy()
    types = ["" if cross_type else str(t) for t in k["event_type"]]
    out: dict[tuple[str, bool], list[int]] = {}
    for i, (t, a) in enumerate(zip(types, agg)):
        out.setdefault((t, bool(a)), []).append(i)
    return [(t, idx, a) for (t, a), idx in out.items()]


def _fit_group(spec: EndemicEpidemic, data: PanelData, label: str, series: list[Series]) -> GroupFit:
    ends = {s.ds_values[-1] for s in series}
    if len(ends) > 1:
        raise FitFailure("the series of the group end at different periods")
    freq = data.freq
    Y, obs, log_e, t0 = grid(series, freq, spec.exposure)
    T, n = Y.shape
    period = freq.periods_per_year
    X, names = time_design(np.arange(T), spec, period, freq.season_length)
    uids = [s.uid for s in series]
    adj = data.adjacency
    known = list(zip(adj["country_a"], adj["region_a"])) + list(zip(adj["country_b"], adj["region_b"]))
    orders = series_orders(uids, data.keys, adj, cross_type=spec.cross_type, maxlag=spec.maxlag, known=known)
    pr = hh.Problem(Y, obs, orders, log_e, X, names, uids, weights=spec.weights, family=spec.distribution,
                    overdispersion=spec.overdispersion, lag=spec.ar_lag, maxlag=spec.maxlag)
    if len(pr.y) <= len(pr.names):
        raise FitFailure(f"{len(pr.y)} counts in the likelihood for {len(pr.names)} parameters")
    if pr.na == 0:
        raise FitFailure("no event in any series of the group")
    f = hh.fit(pr)
    if not f.converged and pr.has_d and f.theta[pr.names.index("neweights.logd")] > np.log(LOGD_LIMIT):
        # d ran off to infinity: the likelihood's supremum is its limit, first-order weights
        pr = hh.Problem(Y, obs, orders, log_e, X, names, uids, weights="first_order", family=spec.distribution,
                        overdispersion=spec.overdispersion, lag=spec.ar_lag, maxlag=spec.maxlag)
        f = hh.fit(pr)
        f.message = "power-law decay d ran off to infinity: fitted with first-order weights, its limit"
    if not f.converged:
        raise FitFailure(f.message or "did not converge")
    if not (np.all(np.isfinite(f.theta)) and np.all(np.isfinite(f.se)) and np.isfinite(f.loglik)):
        raise FitFailure("non-finite estimates or standard errors")
    return GroupFit(label, uids, pr, f, t0, period, series, hh.spectral_radius(pr, f.theta), spec)


def _series_fits(spec: EndemicEpidemic, g: GroupFit) -> list[SeriesFit | None]:
    """One SeriesFit per series of a joint fit: its own terms and the shared ones, its share
    of the log likelihood (None for a series without events, which has no parameters)."""
    pr, f = g.problem, g.fit
    mu = sum(hh.components(pr, f.theta))[pr.rows_t, pr.rows_i]
    psi = pr.psi(f.theta)[pr.rows_i]
    y = pr.y
    if pr.n_psi:
        r = 1.0 / psi
        ll = gammaln(y + r) - gammaln(r) - pr.lgy1 + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))
    else:
        ll = y * np.log(mu) - mu - pr.lgy1
    ll_i = np.bincount(pr.rows_i, weights=ll, minlength=pr.n)  # (regions without events: 0 rows)
    n_i = np.bincount(pr.rows_i, minlength=pr.n)
    est = dict(zip(f.names, zip(f.theta, f.se)))
    own = {f"end.1.{u}" for u in g.uids} | {f"log_overdisp.{u}" for u in g.uids}
    shared = {k: v for k, v in est.items() if k not in own}
    out: list[SeriesFit | None] = []
    for j, u in enumerate(g.uids):
        if not pr.active[j]:
            out.append(None)
            continue
        coef = {"end.1": est[f"end.1.{u}"], **shared}
        if f"log_overdisp.{u}" in est:
            coef["log_overdisp"] = est[f"log_overdisp.{u}"]
        out.append(SeriesFit(spec=spec, converged=True, loglik=float(ll_i[j]), n_params=1 + (pr.n_psi > 1),
                             n_obs=int(n_i[j]), coef=coef, state={"group": g, "pos": j},
                             message="; ".join(m for m in (f"joint fit of {len(g.uids)} series", f.message) if m)))
    return out


def _fallback_fits(series: list[Series], why: str) -> list[SeriesFit]:
    """The ladder below the joint model for series it does not cover: ``negbin_glm`` (climatology
    for series with missing periods, which the GLM does not handle), then climatology."""
    out: list[SeriesFit | None] = [None] * len(series)
    complete = [i for i, s in enumerate(series) if s.observed is None]
    gaps = [i for i, s in enumerate(series) if s.observed is not None]
    for top, idx in ((NegBinGLM(), complete), (Climatology(), gaps)):
        if not idx:
            continue
        for i, res in zip(idx, fit_many(top, [series[i] for i in idx])):
            res.fallback = top.name if res.fallback == "none" else res.fallback
            res.reason = "; ".join(r for r in (f"endemic_epidemic: {why}", res.reason) if r)
            out[i] = res
    return out  # type: ignore[return-value]


class SpatialFitted(FittedModel):
    """A fitted :class:`EndemicEpidemic`: the per-series view of :class:`FittedModel` plus the
    joint fits (``coef``, ``components``, group columns in ``diagnostics``)."""

    def __init__(self, spec: EndemicEpidemic, data: PanelData, fits: list[SeriesFit], groups: list[GroupFit]):
        super().__init__(spec, data, fits)
        self._groups = groups

    def update_data(self, data: PanelData) -> "SpatialFitted":
        base = super().update_data(data)
        # The joint forecasts read every series of a group, those fitted by a fallback too:
        # the groups see the new data (same parameters).
        now = {s.uid: s for s in data.series}
        groups = [replace(g, series=[now.get(u, s) for u, s in zip(g.uids, g.series)]) for g in self._groups]
        new = {id(g): h for g, h in zip(self._groups, groups)}
        fits = [replace(f, state={**f.state, "group": new[id(f.state["group"])]})
                if isinstance(f.state.get("group"), GroupFit) else f for f in base._fits]
        return SpatialFitted(self._spec, data, fits, groups)

    def coef(self) -> pd.DataFrame:
        """``group, term, estimate, std_error`` of every joint fit (log scale for ar, ne, d, ψ)."""
        rows = [(g.label, term, est, se) for g in self._groups for term, est, se in zip(g.fit.names, g.fit.theta,
                                                                                          g.fit.se)]
        return pd.DataFrame(rows, columns=["group", "term", "estimate", "std_error"])

    def diagnostics(self) -> pd.DataFrame:
        """:meth:`FittedModel.diagnostics` plus, per series, its joint fit: ``group``,
        ``group_loglik``, ``group_aic``, ``spectral_radius`` (of λI + φWᵀ),
        ``n_neighbour_missing`` (missing neighbour counts read as 0)."""
        out = super().diagnostics()
        where = {u: g for g in self._groups for u in g.uids}
        fitted = [isinstance(f.state.get("group"), GroupFit) for f in self._fits]
        out["group"] = [where[u].label if ok else None for u, ok in zip(out["unique_id"], fitted)]
        for col, get in (("group_loglik", lambda g: g.fit.loglik), ("group_aic", lambda g: g.fit.aic),
                         ("spectral_radius", lambda g: g.spectral_radius),
                         ("n_neighbour_missing", lambda g: g.fit.extra["n_neighbour_missing"])):
            out[col] = [get(where[u]) if ok else np.nan for u, ok in zip(out["unique_id"], fitted)]
        return out

    def components(self) -> pd.DataFrame:
        """Fitted means split into ``endemic, own, neighbour`` for every jointly fitted series
        and period of the fit window after the first ``ar_lag`` (the spill-over figure)."""
        parts = []
        for g in self._groups:
            end, own, nbr = hh.components(g.problem, g.fit.theta)
            L = g.problem.lag
            T, n = end.shape
            ds = self._data.freq.steps(np.array([g.t0]), L, T - L)[0]
            parts.append(pd.DataFrame({"unique_id": np.repeat(g.uids, T - L), "ds": np.tile(ds, n),
                                       "endemic": end[L:].T.ravel(), "own": own[L:].T.ravel(),
                                       "neighbour": nbr[L:].T.ravel()}))
        if not parts:
            return pd.DataFrame(columns=["unique_id", "ds", "endemic", "own", "neighbour"])
        return pd.concat(parts, ignore_index=True)
