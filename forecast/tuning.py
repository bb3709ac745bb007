"""Tuning a spec's hyperparameters over a grid by a rolling-origin backtest.

:func:`tune` expands a grid of parameter values (sklearn's ``ParameterGrid``),
backtests every candidate together with the spec as given (the *default*) on the
same origins, scores each by its mean **unfloored** log score (or RPS), and tests
whether the best candidate beats the default on the same cells.

Why the log score is recomputed here: the backtest's ``log`` column may be floored
(a forecast that gave the observed count probability 0 would score a finite 27.6);
the tuning table uses :math:`-\\log p(y)` without a floor, so a candidate that ever
declared an observed count impossible scores ``inf`` and ranks last.

Best-of-grid is optimistic: the winner's backtest score is the minimum of many noisy
scores on the same origins, so it overstates how well the winner will do on new data
(selection bias). The paired test against the default is a check that the gain is not
noise on these origins, not an unbiased estimate of the gain; confirm a tuned spec on
later data (or nested origins) before trusting the size of the improvement.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError

#: A forecast gave the observed count "no probability" when p(y) is below this (as in the
#: backtest's count of impossible outcomes).
IMPOSSIBLE = 1e-12
#: The grid key that sets the backtest's training window when the spec has no ``window`` parameter.
WINDOW = "window"
METRICS = ("log", "rps")


@dataclass(frozen=True)
class TuneTest:
    """Does the best candidate beat the default spec? (one-sided paired test on the same cells).

    Attributes
    ----------
    best, default : labels of the two candidates compared (the same when the default won).
    metric : ``"log"`` or ``"rps"``.
    statistic : mean over origins of (best − default) per-origin mean score; negative: best is better.
    p_value : one-sided p-value of "best is better" (studentised moving-block bootstrap over
        origins, :func:`forecast.comparison.block_bootstrap_test`); NaN when no test was possible.
    better : ``p_value < alpha``.
    n_origins, n_cells : origins and cells (series × target period × origin) compared.
    note : how to read the result, including the selection-bias caveat.
    """

    best: str
    default: str
    metric: str
    statistic: float
    p_value: float
    better: bool
    n_origins: int
    n_cells: int
    note: str


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes
    ----------
    table : one row per candidate, best first: the grid parameters as columns, then
        ``label, is_default, log, rps, se, se_diff, n, n_impossible`` (see :func:`tune`).
    best_spec : a clone of the winning spec (the backtest window, when tuned, is
        ``best_window``, not part of the spec).
    test : the paired test of the best against the default.
    scores : per-cell scores of every candidate: ``label, unique_id, ds, cutoff, h, y, log, rps``.
    best_window : the backtest window of the winner (``"expanding"`` or an int).
    """

    table: pd.DataFrame
    best_spec: Any
    test: TuneTest
    scores: pd.DataFrame
    best_window: str | int


def tune(spec: Any, panel: pd.DataFrame, grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
         horizon: int, n_origins: int, *, refit_every: int = 1, window: str | int = "expanding",
         metric: str = "log", seed: int = 0, jobs: int = 1, step: int = 1, alpha: float = 0.05,
         progress: bool | None = False) -> TuneResult:
    """Backtest every combination of ``grid`` values on ``spec`` and pick the best.

    Parameters
    ----------
    spec : a model spec or a spec name / ``.toml`` path (loaded with :func:`forecast.load_model`).
        Evaluated as given too, as the *default* candidate, even when not in the grid.
    panel : long panel ``unique_id, ds, y`` (+ keys, covariates).
    grid : parameter name -> list of values (or a list of such dicts), expanded with
        ``sklearn.model_selection.ParameterGrid``. Every candidate is
        ``spec.clone().set_params(**params)``. The key ``"window"`` — when the spec has no
        parameter of that name — sets the backtest's training window instead (``"expanding"``
        or a number of most recent periods).
    horizon, n_origins, refit_every, window, seed, jobs, step : as in :func:`forecast.backtest`
        (the last ``n_origins`` cutoffs, ``step`` periods apart); ``window`` is the training
        window of candidates whose window is not in the grid.
    metric : ``"log"`` (mean unfloored log score, :math:`-\\log p(y)`) or ``"rps"``; lower is better.
    alpha : level of the paired test of the best against the default.
    progress : show the backtest's progress bar.

    Returns
    -------
    TuneResult
        ``table`` has one row per candidate sorted by ``metric`` (``inf``, from an outcome given
        probability 0, sorts last; ties by fewer impossible outcomes, then RPS): the grid
        parameters, ``label`` (e.g. ``"fourier_k=2, lags=(1,)"``), ``is_default``, ``log`` and
        ``rps`` (means over the ``n`` scored cells), ``se`` (standard error of the mean of
        ``metric``, from the spread of its per-origin means, so that series forecast at the same
        origin count as one draw), ``se_diff`` (the same for the per-origin difference from the
        best: how far apart two rows really are) and ``n_impossible`` (cells whose observed count
        had probability below 1e-12).

    Raises
    ------
    ConfigError
        Every bad grid key, value or combination at once, naming the parameter.

    Notes
    -----
    All candidates share the same origins (one backtest; one per window value when the window
    is tuned, on the same explicit origins) and are scored on the same cells. Every candidate's
    predictive pmfs are kept while scoring, so memory grows with candidates × origins × series.
    The best-of-grid score is optimistic (selection bias): see the module docstring.
    """
    from sklearn.model_selection import ParameterGrid

    from forecast.backtesting import backtest, choose_origins
    from forecast.combine import resolve_models
    from forecast.models.base import ModelSpec

    from forecast.models.base import positive_int

    bad = [f"{name} must be an int >= 1. Got {v!r} instead."
           for name, v in (("horizon", horizon), ("n_origins", n_origins), ("step", step)) if not positive_int(v)]
    if bad:
        raise ConfigError("\n".join(bad))
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}. Got {metric!r} instead.")
    if isinstance(spec, ModelSpec):
        default = spec.clone()
    else:
        default = next(iter(resolve_models(spec).values())).clone()
    default.validate()
    grids = [grid] if isinstance(grid, Mapping) else list(grid)
    window_key = WINDOW not in default.get_params()
    _check_grid(default, grids, window_key)
    cands = _candidates(default, ParameterGrid(grids), window, window_key)
    keys = list(dict.fromkeys(k for g in grids for k in sorted(g)))

    frame = panel.copy()
    frame["ds"] = pd.to_datetime(frame["ds"])
    frame.attrs = dict(panel.attrs)
    periods = pd.DatetimeIndex(sorted(frame["ds"].unique()))
    origins = choose_origins(periods, horizon, n_origins=n_origins, step=step)
    parts = []
    for w in dict.fromkeys(c["window"] for c in cands.values()):
        specs = {label: c["spec"] for label, c in cands.items() if c["window"] == w}
        res = backtest(frame, specs, horizon, origins=origins, window=w, refit_every=refit_every, jobs=jobs,
                       seed=seed, keep_pmf=True, progress=progress)
        parts.append(cell_scores(res))
    scores = pd.concat(parts, ignore_index=True)
    table = _table(cands, scores, keys, metric)
    best_label = str(table["label"].iloc[0])
    default_label = next(label for label, c in cands.items() if c["is_default"])
    test = _paired(scores, best_label, default_label, metric, horizon, alpha, seed)
    return TuneResult(table, cands[best_label]["spec"].clone(), test, scores, cands[best_label]["window"])


def cell_scores(result: Any) -> pd.DataFrame:
    """Per-cell unfloored log score and RPS of a backtest run with ``keep_pmf=True``.

    Returns ``label, unique_id, ds, cutoff, h, y, log, rps`` in ``result.forecasts`` order
    (``label`` is the backtest's model label); ``log`` is :math:`-\\log p(y)`, ``inf`` where
    the forecast gave the observed count probability 0.
    """
    from forecast.scoring import log_score, rps

    fc = result.forecasts
    y = fc["y"].to_numpy(dtype=np.int64)
    logs, rpss, start = [], [], 0
    for block in result.forecast_objects():
        yb = y[start:start + len(block)]
        logs.append(log_score(block, yb, floor=0))
        rpss.append(rps(block, yb))
        start += len(block)
    out = fc[["model", "unique_id", "ds", "cutoff", "h", "y"]].rename(columns={"model": "label"})
    out = out.reset_index(drop=True)
    out["log"] = np.concatenate(logs) if logs else np.empty(0)
    out["rps"] = np.concatenate(rpss) if rpss else np.empty(0)
    return out


def label_of(params: Mapping[str, Any]) -> str:
    """A readable candidate label: ``"fourier_k=2, lags=(1,)"`` (keys in the order given)."""
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "default"


def _check_grid(default: Any, grids: list, window_key: bool) -> None:
    """Raise one ConfigError naming every unknown key, non-list value and invalid value."""
    from forecast.models.base import positive_int

    allowed = set(default.get_params()) | ({WINDOW} if window_key else set())
    owner = type(default).__name__
    bad: list[str] = []
    if not grids:
        bad.append("The grid is empty; give a dict of parameter name -> list of values.")
    for g in grids:
        if not isinstance(g, Mapping):
            bad.append(f"The grid must be a dict of parameter name -> list of values (or a list of such dicts). "
                       f"Got {type(g).__name__} instead.")
            continue
        unknown = [k for k in g if k not in allowed]
        if unknown:
            bad.append(f"{owner} has no parameter {', '.join(map(repr, unknown))}; allowed: "
                       f"{', '.join(sorted(allowed))}.")
        for k, values in g.items():
            if k not in allowed:
                continue
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
                bad.append(f"The grid values of '{k}' must be a list. Got {values!r}; write [{values!r}].")
                continue
            if len(values) == 0:
                bad.append(f"The grid gives no values for '{k}'.")
                continue
            for v in values:
                if k == WINDOW and window_key:
                    if v != "expanding" and not positive_int(v):
                        bad.append(f"The grid value {v!r} of 'window' (the backtest window) must be "
                                   "'expanding' or an int >= 1.")
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        default.clone().set_params(**{k: v}).validate()
                    except ConfigError as e:
                        bad.append(f"Grid value {v!r} of '{k}': {e}")
    if bad:
        raise ConfigError("\n".join(bad))


def _candidates(default: Any, expanded: Any, window: str | int, window_key: bool) -> dict[str, dict]:
    """Label -> {spec, window, params, is_default}, the default included (once)."""
    out: dict[str, dict] = {}
    problems: list[str] = []
    for params in expanded:
        w = params.get(WINDOW, window) if window_key else window
        spec_params = {k: v for k, v in params.items() if not (window_key and k == WINDOW)}
        spec = default.clone().set_params(**spec_params)
        try:
            spec.validate()  # each value was checked alone; this catches bad combinations
        except ConfigError as e:
            problems.append(f"Grid combination {label_of(params)}: {e}")
            continue
        label = label_of(params)
        if label not in out:
            out[label] = dict(spec=spec, window=w, params=dict(params), is_default=spec == default and w == window)
    if problems:
        raise ConfigError("\n".join(problems))
    if not any(c["is_default"] for c in out.values()):
        keys = list(dict.fromkeys(k for c in out.values() for k in c["params"]))
        params = {k: (window if window_key and k == WINDOW else getattr(default, k)) for k in keys}
        label = label_of(params)
        if label in out:  # same values of the grid keys yet a different spec: cannot happen, but stay unique
            label = "default"
        out[label] = dict(spec=default.clone(), window=window, params=params, is_default=True)
    return out


def _table(cands: dict[str, dict], scores: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    by_origin = scores.groupby(["label", "cutoff"], sort=False)[metric].mean().unstack("label")
    rows = []
    for label, c in cands.items():
        s = scores[scores["label"] == label]
        per = by_origin[label].dropna()
        rows.append({**{k: c["params"].get(k, np.nan) for k in keys}, "label": label,
                     "is_default": c["is_default"], "log": s["log"].mean(), "rps": s["rps"].mean(),
                     "se": _se(per.to_numpy()), "n": len(s),
                     "n_impossible": int((s["log"] > -np.log(IMPOSSIBLE)).sum())})
    table = pd.DataFrame(rows)
    order = np.lexsort((table["rps"].to_numpy(), table["n_impossible"].to_numpy(), table[metric].to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    best = by_origin[table["label"].iloc[0]]
    table["se_diff"] = [_se((by_origin[label] - best).dropna().to_numpy()) if label != table["label"].iloc[0]
                        else 0.0 for label in table["label"]]
    cols = [*keys, "label", "is_default", "log", "rps", "se", "se_diff", "n", "n_impossible"]
    return table[cols]


def _se(x: np.ndarray) -> float:
    """Standard error of a mean of per-origin values (inf when any is inf, NaN with one origin)."""
    if len(x) < 2:
        return float("nan")
    if not np.isfinite(x).all():
        return float("inf") if not np.isnan(x).any() else float("nan")
    return float(np.std(x, ddof=1) / np.sqrt(len(x)))


def _paired(scores: pd.DataFrame, best: str, default: str, metric: str, horizon: int, alpha: float,
            seed: int) -> TuneTest:
    """Best vs default on their common cells, by :func:`forecast.comparison.block_bootstrap_test`."""
    from forecast.comparison import block_bootstrap_test

    caveat = ("Best-of-grid is optimistic: its score is the minimum over the grid on these origins (selection "
              "bias); check the tuned spec on later data before relying on the size of the gain.")
    key = ["unique_id", "ds", "cutoff", "h"]
    a = scores[scores["label"] == best].set_index(key)[metric]
    b = scores[scores["label"] == default].set_index(key)[metric]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    n_origins = int(both.index.get_level_values("cutoff").nunique())
    if best == default:
        return TuneTest(best, default, metric, 0.0, float("nan"), False, n_origins, len(both),
                        "The default spec scored best; nothing in the grid improved on it. " + caveat)
    inf_a, inf_b = int(np.isinf(both["a"]).sum()), int(np.isinf(both["b"]).sum())
    if inf_a:  # best sorts first, so every candidate has an impossible outcome
        return TuneTest(best, default, metric, float("nan"), float("nan"), False, n_origins, len(both),
                        f"Every candidate gave probability 0 to an observed count ({best}: {inf_a} cells), so "
                        "their mean log scores are infinite and no test is possible; compare RPS, or widen "
                        "the models (e.g. an overdispersed family). " + caveat)
    if inf_b:
        return TuneTest(best, default, metric, float("-inf"), 0.0, True, n_origins, len(both),
                        f"The default gave probability 0 to {inf_b} observed count(s) (infinite log score); "
                        f"the best did not, so it is better on this metric without a test. " + caveat)
    d = (both["a"] - both["b"]).groupby(level="cutoff").mean().sort_index()
    t = block_bootstrap_test(d.to_numpy(), horizon, seed=seed)
    better = bool(t.p_value < alpha)
    verdict = (f"{best} beats the default (p = {t.p_value:.3g} < {alpha})" if better else
               f"{best} scored better than the default but not significantly (p = {t.p_value:.3g})"
               if t.mean_diff < 0 else f"{best} is no better than the default")
    return TuneTest(best, default, metric, t.mean_diff, t.p_value, better, n_origins, len(both),
                    f"{verdict}: one-sided studentised block bootstrap over {n_origins} origins (blocks of "
                    f"{t.block}) of the per-origin mean {metric} difference. " + caveat)
