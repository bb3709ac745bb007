"""Fitted models: what a spec learned from every series, and its forecasts.

:class:`SeriesFit` and :class:`SeriesForecast` (:mod:`forecast.models.results`) are
per-series results in model-specific form; :class:`FittedModel` holds them for a panel, forecasts every series (grouped by the
ladder rung that fitted it, so batched forecasts can serve each group) and reports
coefficients and diagnostics.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError
from forecast.models._plainfc import id_array, index_frame, stack_plain, unguarded
from forecast.models._pooled import SEPARATE, groups_of, pooling_panel
from forecast.models.guard import (MEAN_CAP_FACTOR, MEAN_FLOOR_FRACTION, bad_forecast, cap_many, describe,
                                   floor_many, is_numeric_error, recording_caps, screen)
from forecast.models.ladder import batched_engine, batching, guarded_fit_many, rungs_of
from forecast.models.params import check_seed, positive_int
from forecast.models.results import FitFailure, SeriesFit, SeriesForecast
from forecast.models.series import PanelData, check_no_missing, count_summaries, future_dates

# ``spec`` below is a :class:`~forecast.models.base.ModelSpec`; it is used only through its
# methods, so this module does not import base (base imports it).
ModelSpec = Any


#: The columns of :meth:`FittedModel.diagnostics`, in order.
DIAGNOSTIC_COLUMNS = ("unique_id", "converged", "fallback", "reason", "model_used", "loglik", "aic", "n_obs",
                      "message", "engine", "mean_capped", "mean_floored")


class FittedModel:
    """A spec fitted to every series of a panel. Immutable; ``forecast`` has no side effects."""

    def __init__(self, spec: ModelSpec, data: PanelData, fits: list[SeriesFit]) -> None:
        self._spec, self._data, self._fits = spec, data, fits
        # What the last forecast() call had to do per series (reported by diagnostics()):
        # a rung that replaced an unusable forecast, and whether a mean was capped.
        self._forecast_fallback: dict[int, tuple[str, str, str]] = {}
        self._capped = np.zeros(len(fits), dtype=bool)
        self._floored = np.zeros(len(fits), dtype=bool)

    @property
    def spec(self) -> ModelSpec:
        return self._spec.clone()

    @property
    def model(self) -> str:
        return self._spec.name

    @property
    def unique_ids(self) -> list[str]:
        return [s.uid for s in self._data.series]

    def fits(self) -> dict[str, SeriesFit]:
        """Per-series fit objects (read-only use)."""
        return {s.uid: f for s, f in zip(self._data.series, self._fits)}

    def forecast(self, h: int, *, seed: int = 0, future: pd.DataFrame | None = None,
                 history_max: int | None = None):
        """Predictive count distributions for the next ``h`` periods of every series.

        Parameters
        ----------
        h : horizon (periods ahead), >= 1.
        seed : int >= 0, seed of the per-series random streams (simulated paths); each
            series draws from :func:`~forecast.models.series.series_rng` (seed, series,
            last period), so results do not depend on batching, chunking or workers.
        future : values known ahead (exogenous columns, exposure) with ``unique_id, ds``
            for every series and future period the model needs them for.

        Returns
        -------
        CountForecast
            Rows ordered by series (as fitted), then ``h``.
        """
        from forecast.distributions import CountForecast

        if not positive_int(h):
            raise ConfigError(f"The horizon h must be an int >= 1. Got {h!r} instead.")
        check_seed(seed)
        series, fits = self._data.series, self._fits
        sfs: list[SeriesForecast | str | None] = [None] * len(fits)
        groups: dict[int, list[int]] = {}
        for i, fit in enumerate(fits):  # rungs of a ladder are separate specs: forecast each group together
            groups.setdefault(id(fit.spec), []).append(i)  # one spec object per rung and fit call
        fallbacks: dict[int, tuple[str, str, str]] = {}
        ymax, ymean = count_summaries(series)
        caps = MEAN_CAP_FACTOR * np.maximum(ymax.astype(float), 1.0)
        # No certain zero for a series that had events: means that underflow are floored
        # (by every rung that floors; a forecast-time fallback rung always does).
        floors = MEAN_FLOOR_FRACTION * ymean
        # (a forecast-time refit of a lower rung pools the series alone, as the fit's ladder does)
        with recording_caps() as capped_uids, pooling_panel(SEPARATE):
            for idx in groups.values():
                spec = fits[idx[0]].spec
                got = _guarded_forecast_many(spec, [fits[i] for i in idx], [series[i] for i in idx], h, future,
                                             seed)
                for i, sf in zip(idx, got):
                    sfs[i] = sf
            apply = np.ones(len(fits), dtype=bool)
            for idx in groups.values():
                apply[idx] = getattr(fits[idx[0]].spec, "floors_mean", True)
            # The usual call: every forecast Poisson/NB2 and inside its guards, checked stacked.
            plain = stack_plain(sfs, h)
            if plain is not None and not unguarded(plain, caps, np.where(apply, floors, 0.0)):
                plain = None
            if plain is None:
                for i, why in enumerate(screen(sfs)):  # unusable forecasts: the series moves down its ladder
                    if why:
                        sfs[i], label, used, note = _ladder_forecast(self._spec, fits[i], series[i], h, future,
                                                                     seed, why)
                        fallbacks[i] = (label, used, note)
        # The mean cap holds for every model, whether or not the model capped inside.
        if plain is None:
            sfs, capped = cap_many(sfs, caps)
            apply[list(fallbacks)] = True
            sfs, floored = floor_many(sfs, floors, apply)
        else:
            capped, floored = np.zeros(len(fits), dtype=bool), np.zeros(len(fits), dtype=bool)
        if capped_uids:
            capped |= np.array([s.uid in capped_uids for s in series], dtype=bool)
        self._forecast_fallback, self._capped, self._floored = fallbacks, capped, floored
        hmaxes = np.maximum(ymax, 1) if history_max is None else np.full(len(fits), history_max)
        ahead = future_dates(np.array([s.ds_values[-1] for s in series]).astype("datetime64[ns]"), h,
                             self._data.freq)
        uids = id_array(series)
        # One CountForecast per distribution family (vectorised over its series),
        # then back to the fitted series order.
        families = plain.family if plain is not None else [sf.family for sf in sfs]
        parts, order = [], []
        for family in dict.fromkeys(families):
            idx = [i for i, f in enumerate(families) if f == family]
            rows = np.asarray(idx, dtype=np.intp)
            index = index_frame(uids, rows, ahead)
            top = hmaxes[rows].max().item()
            if plain is not None:
                mu = plain.mu[rows].ravel()
                parts.append(CountForecast.poisson(index, mu, model=self.model, history_max=top)
                             if family == "poisson" else
                             CountForecast.negbin(index, mu, plain.alpha[rows].ravel(), model=self.model,
                                                  history_max=top))
            else:
                parts.append(_stacked_forecast(family, [sfs[i] for i in idx], index, self.model, top))
            order += idx
        out = CountForecast.concat(parts) if len(parts) > 1 else parts[0]
        if order != sorted(order):
            rows = np.argsort(np.asarray(order), kind="stable")
            out = out.subset((rows[:, None] * h + np.arange(h)).ravel())
        return out

    def update(self, panel: pd.DataFrame) -> "FittedModel":
        """The same fitted parameters applied to newer data (no re-estimation).

        Used by backtests with ``refit_every > 1``: between refits, forecasts use
        the last estimated parameters with the data up to the new cutoff (lags,
        last values, trend index and dates come from ``panel``). Series absent
        from the original fit are fitted afresh.
        """
        return self.update_data(PanelData.from_frame(panel, self._spec.required_columns()))

    def update_data(self, data: PanelData) -> "FittedModel":
        """:meth:`update` on series already split and validated (backtests split the panel once)."""
        if not self._spec.handles_missing:  # newer data may bring missing periods the fit never saw
            check_no_missing(self._spec.name or type(self._spec).__name__, data)
        old = self.fits()
        new = [s for s in data.series if s.uid not in old]
        fresh = {}
        if new:
            with pooling_panel(data.series, groups_of(data)):
                fresh = dict(zip((s.uid for s in new), self._spec._fit_many(new)))
        fits = [old[s.uid] if s.uid in old else fresh[s.uid] for s in data.series]
        return FittedModel(spec=self._spec, data=data, fits=fits)

    def coefficients(self) -> pd.DataFrame:
        """Tidy ``unique_id, term, estimate, std_error`` for every series."""
        rows = [(s.uid, term, est, se) for s, f in zip(self._data.series, self._fits)
                for term, (est, se) in f.coef.items()]
        return pd.DataFrame(rows, columns=["unique_id", "term", "estimate", "std_error"])

    def diagnostics(self) -> pd.DataFrame:
        """Per series: ``unique_id, converged, fallback, reason, model_used, loglik, aic, n_obs,
        message, engine, mean_capped, mean_floored``.

        ``engine``: "batched", or "per-series" and why the batch handed it back.
        ``fallback`` / ``model_used`` name the rung whose forecast was used: when the
        last :meth:`forecast` found the fitted rung's forecast unusable (a numeric error,
        non-finite means), the rung that replaced it, with ``reason`` ending in
        ``forecast: ...``. ``mean_capped``: whether the last forecast capped a mean at
        ``MEAN_CAP_FACTOR x max(largest count, 1)`` (False before any forecast).
        ``mean_floored``: whether the last forecast raised a mean below
        ``MEAN_FLOOR_FRACTION x the series' mean count`` to that floor (an underflow, e.g. a
        fitted mean of 0 after past events; a point mass at 0 became Poisson(floor)).
        """
        return self._diagnostics(DIAGNOSTIC_COLUMNS)

    def _diagnostics(self, columns: tuple[str, ...]) -> pd.DataFrame:
        """:meth:`diagnostics` with only ``columns`` (in the order of :data:`DIAGNOSTIC_COLUMNS`):
        a backtest keeps six of them at every origin, and the others are not built."""
        fits = self._fits
        if not fits:
            return pd.DataFrame([])
        want = [c for c in DIAGNOSTIC_COLUMNS if c in columns]
        # (built column by column: the same frame as from one dict per series, at a fraction of the cost)
        make = {"unique_id": lambda: [s.uid for s in self._data.series],
                "converged": lambda: [f.converged for f in fits],
                "loglik": lambda: [f.loglik for f in fits], "aic": lambda: [f.aic for f in fits],
                "n_obs": lambda: [f.n_obs for f in fits], "message": lambda: [f.message for f in fits],
                "engine": lambda: [f.engine for f in fits],
                "mean_capped": lambda: self._capped.astype(bool).tolist(),
                "mean_floored": lambda: self._floored.astype(bool).tolist()}
        cols = {}
        if {"fallback", "reason", "model_used"} & set(want):
            fallback, used, reason = [f.fallback for f in fits], [f.spec.name for f in fits], [f.reason for f in fits]
            for i, (label, name, note) in self._forecast_fallback.items():
                fallback[i], used[i] = label, name
                reason[i] = "; ".join(r for r in (reason[i], f"forecast: {note}") if r)
            make.update(fallback=lambda: fallback, reason=lambda: reason, model_used=lambda: used)
        for c in want:
            cols[c] = make[c]()
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        n_fb = sum(f.fallback != "none" for f in self._fits)
        return f"Fitted {self._spec!r} on {len(self._fits)} series ({n_fb} fell back)"


def _guarded_forecast_many(spec: ModelSpec, fits: list[SeriesFit], series: list, h: int,
                           future: pd.DataFrame | None, seed: int) -> list[SeriesForecast | str]:
    """``spec._forecast_many`` where no series can fail another: a numeric error for the
    whole group is retried series by series; a series that still raises gets the reason
    (a string) in place of its forecast."""
    try:
        return list(spec._forecast_many(fits, series, h, future, seed))
    except Exception as exc:
        if not is_numeric_error(exc):
            raise
        if len(series) == 1:
            if not batching():
                return [describe(exc)]
            with batched_engine(False):  # the per-series path (same results when both work)
                return _guarded_forecast_many(spec, fits, series, h, future, seed)
        return [_guarded_forecast_many(spec, [f], [s], h, future, seed)[0] for f, s in zip(fits, series)]


def _ladder_forecast(top: ModelSpec, fit: SeriesFit, s, h: int, future: pd.DataFrame | None, seed: int,
                     why: str) -> tuple[SeriesForecast, str, str, str]:
    """A usable forecast for a series whose fitted rung gave none: the rungs below it, each
    fitted to this series and forecast, until one works (the long-run rung at the end).

    Returns (forecast, rung label, model name, note naming every failure on the way).
    """
    rungs = rungs_of(top)
    labels = [label for label, _ in rungs]
    notes = [f"{fit.spec.name}: {why}"]
    start = labels.index(fit.fallback) + 1 if fit.fallback in labels else len(rungs)
    for r in range(start, len(rungs)):
        label, spec = rungs[r]
        name = spec.name if label == "none" else label
        res = guarded_fit_many(spec, [s])[0]
        if isinstance(res, FitFailure) or (not res.converged and r < len(rungs) - 1):
            notes.append(f"{name}: {res if isinstance(res, FitFailure) else res.message or 'did not converge'}")
            continue
        sf = _guarded_forecast_many(spec, [res], [s], h, future, seed)[0]
        bad = sf if isinstance(sf, str) else bad_forecast(sf)
        if bad:
            notes.append(f"{name}: {bad}")
            continue
        return sf, label, spec.name, "; ".join(notes) + f"; used {name}"
    # Every rung failed (cannot happen with the long-run rung; kept so no series is ever lost):
    # the series' mean count (a finite Poisson; the floor guard never sees a certain zero).
    mean = float(np.mean(s.y)) if len(s.y) else 0.0
    return SeriesForecast("poisson", mu=np.full(h, mean)), "mean", "mean", "; ".join(notes) + "; used the mean count"


def _stacked_forecast(family: str, sfs: list[SeriesForecast], index: pd.DataFrame, model: str,
                      history_max: int):
    from forecast.distributions import CountForecast

    def cat(name: str) -> np.ndarray:
        parts = [getattr(sf, name) for sf in sfs]
        if all(isinstance(p, np.ndarray) and p.shape == sf.mu.shape for p, sf in zip(parts, sfs)):
            return np.concatenate(parts)  # the usual case: no broadcasting needed
        return np.concatenate([np.broadcast_to(p, sf.mu.shape if sf.mu is not None else ())
                               for p, sf in zip(parts, sfs)])

    if family == "poisson":
        return CountForecast.poisson(index, cat("mu"), model=model, history_max=history_max)
    if family == "negbin":
        return CountForecast.negbin(index, cat("mu"), cat("alpha"), model=model, history_max=history_max)
    if family == "zi":
        alpha = None if all(sf.alpha is None for sf in sfs) else np.concatenate(
            [np.broadcast_to(0.0 if sf.alpha is None else sf.alpha, sf.mu.shape) for sf in sfs])
        return CountForecast.zero_inflated(index, cat("mu"), cat("pi"), alpha, model=model, history_max=history_max)
    if family == "samples":
        return CountForecast.from_samples(index, np.stack([sf.paths for sf in sfs]), model=model,
                                          history_max=history_max)
    if family == "pathmix":  # one forecast per number of paths (rungs may differ), then stacked
        H = len(index) // len(sfs)
        parts = []
        for P in dict.fromkeys(sf.path_mu.shape[1] for sf in sfs):
            idx = [i for i, sf in enumerate(sfs) if sf.path_mu.shape[1] == P]
            sub = [sfs[i] for i in idx]
            rows = (np.asarray(idx)[:, None] * H + np.arange(H)).ravel()
            per_step = {n: np.concatenate([np.broadcast_to(0.0 if getattr(sf, n) is None else getattr(sf, n), (H,))
                                           for sf in sub]) for n in ("alpha", "pi")}
            parts.append((rows, CountForecast.from_path_means(
                index.iloc[rows], [sf.path_mu for sf in sub], **per_step,  # blocks: no (n, P) copy
                paths=np.stack([sf.paths for sf in sub]), model=model, history_max=history_max,
                joint=all(sf.joint for sf in sub))))
        if len(parts) == 1:
            return parts[0][1]
        out = CountForecast.concat([f for _, f in parts])
        return out.subset(np.argsort(np.concatenate([r for r, _ in parts]), kind="stable"))
    if family == "pmf":
        width = max(sf.pmf.shape[1] for sf in sfs)
        pmf = np.concatenate([np.pad(sf.pmf, ((0, 0), (0, width - sf.pmf.shape[1]))) for sf in sfs])
        return CountForecast.from_pmf(index, pmf, model=model)
    raise ValueError(f"unknown family {family}")  # pragma: no cover
