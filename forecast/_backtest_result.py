"""The result of :func:`forecast.backtesting.backtest` (import it from there).

Kept apart from the backtest loop so each stays a small module; it holds the frames
and derives scores and summaries from them, it runs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError
from forecast.scoring import IMPOSSIBLE_P


def impossible_flags(point_scores: pd.DataFrame) -> np.ndarray | None:
    """1.0 where a forecast gave its outcome probability below ``IMPOSSIBLE_P`` (1e-12), else 0.0.

    From the ``impossible`` column of the point scores; results built without it (by hand,
    or before it existed) fall back to the unfloored ``log`` column. NaN where the forecast
    has no log score; None when neither column exists.
    """
    if "impossible" in point_scores.columns:
        return point_scores["impossible"].to_numpy(dtype=float)
    if "log" in point_scores.columns:
        log = point_scores["log"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(log), np.nan, (log > -np.log(IMPOSSIBLE_P)).astype(float))
    return None


@dataclass
class BacktestResult:
    """Forecasts, observations and per-forecast scores of a rolling-origin backtest.

    Attributes
    ----------
    forecasts : ``unique_id, ds, cutoff, h, model, y, mean, lo-*, hi-*, p_ge_*``
        (+ ``country, province, event_type``), one row per scored forecast. The text
        columns are pandas Categoricals (sorted categories; a large backtest holds millions
        of rows): they compare, sort, group and merge as text, and a subset keeps every
        category (``.cat.remove_unused_categories()`` drops the ones it does not use);
        ``h`` and the interval bounds ``lo-*, hi-*`` are int32.
    point_scores : per-forecast scores aligned with ``forecasts`` rows
        (``log, log_floored, impossible, rps, dss, brier_ge_k, coverage_l, interval_l,
        abs_error, sq_error, bias, mase, pit_lo, pit_hi``). ``log`` is unfloored: ``+inf``
        where a forecast gave its outcome probability 0 (see :mod:`forecast.scoring`).
    diagnostics : per model, cutoff and series: fallback rung and reason.
    member_cells : label of a combination (``auto``) -> its members' held-out cells that a
        fit of it on the same panel learns its weights from (pass them as ``cells=`` to
        its ``fit``, as the pipeline's final fit does, to skip that internal backtest).
    """

    forecasts: pd.DataFrame
    point_scores: pd.DataFrame
    diagnostics: pd.DataFrame
    settings: dict[str, Any]
    _pmfs: list[Any] | None = field(default=None, repr=False)
    member_cells: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def pmf(self) -> np.ndarray:
        """Dense (rows × K+1) predictive pmfs aligned with ``forecasts`` (built on request)."""
        if self._pmfs is None:
            raise ConfigError("This backtest was run with keep_pmf=False; rerun with keep_pmf=True.")
        K = max(f.K for f in self._pmfs)
        return np.concatenate([np.pad(f.pmf, ((0, 0), (0, K - f.K))) for f in self._pmfs])

    def forecast_objects(self) -> list[Any]:
        """The CountForecast of every (model, origin) block, in ``forecasts`` row order."""
        if self._pmfs is None:
            raise ConfigError("This backtest was run with keep_pmf=False.")
        return list(self._pmfs)

    def scores(self, by: Sequence[str] | str | None = ("model", "h"),
               metrics: Iterable[str] | None = None) -> pd.DataFrame:
        """Mean score per group, tidy: ``*by, metric, value, n``.

        ``by`` may name any column of ``forecasts`` (``model, h, cutoff,
        unique_id, province, event_type``…); ``None`` gives per-forecast rows.
        ``mase`` averages only forecasts whose series has a non-zero in-sample
        scale; ``n`` says how many that is.
        """
        by = [by] if isinstance(by, str) else list(by or [])
        cols = [c for c in (metrics or self.point_scores.columns) if not c.startswith("pit_")]
        wide = pd.concat([self.forecasts[by + ["unique_id", "ds", "cutoff", "model"]
                                         if not by else by].reset_index(drop=True),
                          self.point_scores[cols].reset_index(drop=True)], axis=1)
        wide = wide.loc[:, ~wide.columns.duplicated()]
        if not by:
            return wide.melt(id_vars=[c for c in wide.columns if c not in cols], var_name="metric")
        long = wide.melt(id_vars=by, value_vars=cols, var_name="metric")
        g = long.groupby(by + ["metric"], sort=True, observed=True)["value"]
        out = g.mean().to_frame("value").join(g.count().rename("n")).reset_index()
        return out

    def summary(self, metrics: Sequence[str] = ("rps", "log", "mae", "coverage_80")) -> pd.DataFrame:
        """Mean scores per model and horizon as a wide table (``mae`` is the mean absolute error).

        ``n`` is the number of forecasts per (model, h); a column ``n_<metric>`` appears
        when some of them have no score for that metric, so unequal counts show.
        ``n_impossible`` and ``share_impossible`` count the forecasts that gave the observed
        count probability below 1e-12 ("impossible outcomes", a calibration failure). The
        mean log score is the plain mean of the unfloored scores: ``inf`` when any outcome
        had probability 0, always to be read with ``n_impossible``.
        """
        tidy = self.scores(("model", "h"))
        tidy["metric"] = tidy["metric"].replace({"abs_error": "mae"})
        tidy = tidy[tidy["metric"].isin(metrics)]
        wide = tidy.pivot_table(index=["model", "h"], columns="metric", values="value")
        counts = tidy.pivot_table(index=["model", "h"], columns="metric", values="n")
        out = wide[[m for m in metrics if m in wide.columns]]
        n = self.forecasts.groupby(["model", "h"], observed=True).size().reindex(out.index)
        out = out.assign(n=n.to_numpy())
        for m in [m for m in metrics if m in counts.columns]:
            if (counts[m].to_numpy() != n.to_numpy()).any():
                out[f"n_{m}"] = counts[m].to_numpy().astype(np.int64)
        flags = impossible_flags(self.point_scores)
        if flags is not None:
            g = pd.Series(flags, index=self.forecasts.index).groupby(
                [self.forecasts["model"], self.forecasts["h"]], observed=True)
            k = g.sum().reindex(out.index)
            out["n_impossible"] = k.to_numpy().astype(np.int64)
            out["share_impossible"] = (k / g.count().reindex(out.index)).to_numpy()
        return out.reset_index()


def accuracy(result: "BacktestResult", by: Sequence[str] | str = ("model",),
             metrics: Sequence[str] = ("rps", "log", "mae", "rmse", "mase", "coverage_80", "dss")) -> pd.DataFrame:
    """Forecast accuracy of a backtest as one table, one row per ``by`` group (fable's ``accuracy``).

    Parameters
    ----------
    result : what :func:`forecast.backtest` returned.
    by : columns of ``result.forecasts`` to group by (default: per model; e.g.
        ``("model", "h")`` per step ahead).
    metrics : means of the per-forecast scores: ``rps`` (ranked probability score), ``log``
        (unfloored log score), ``mae``, ``rmse`` (root of the mean squared error), ``mase``,
        ``coverage_80`` (share of outcomes inside the 80 % interval), ``dss``, or any score
        column of ``result.point_scores``.

    Returns
    -------
    DataFrame
        ``*by, <metrics>, n`` (n = forecasts per group), lower is better except coverage.
    """
    by = [by] if isinstance(by, str) else list(by)
    wanted = {"mae": "abs_error", "rmse": "sq_error"}
    cols = [wanted.get(m, m) for m in metrics]
    unknown = [m for m, c in zip(metrics, cols) if c not in result.point_scores.columns]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: mae, rmse, "
                         + ", ".join(c for c in result.point_scores.columns if not c.startswith("pit_")))
    frame = pd.concat([result.forecasts[by].reset_index(drop=True),
                       result.point_scores[cols].reset_index(drop=True)], axis=1)
    g = frame.groupby(by, sort=True, observed=True)
    out = g[cols].mean()
    out.columns = list(metrics)
    if "rmse" in out.columns:
        out["rmse"] = np.sqrt(out["rmse"])
    return out.assign(n=g.size()).reset_index()
