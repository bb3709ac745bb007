"""Comparing models honestly: skill against a baseline and paired tests across origins.

Forecasts from neighbouring origins overlap (an origin's 3-step forecast and
the next origin's 2-step forecast target the same month), so scores are not
independent across origins. The paired test therefore works on the sequence
of per-origin mean score differences and resamples it in blocks of at least
``horizon`` consecutive origins (moving-block bootstrap, Künsch 1989), which
keeps that dependence inside each block.

**Same cells only.** A mean over 4 forecasts compared with a mean over 12 is no
comparison (a model that failed on the hard cells would look skilful). :func:`compare`
and :func:`select_models` therefore score every model on the cells
(``unique_id, ds, cutoff, h``) where *every* compared model has a finite score; the
rest are counted (``n_excluded``) and, when a model's own missing or non-finite
scores caused the exclusion, named in a :class:`~forecast.exceptions.ForecastWarning`.

**Impossible outcomes and the log score.** The log score is unfloored: a forecast that
gave the observed count probability 0 scores ``+inf``, and one below 1e-12 is an
*impossible outcome* (see :mod:`forecast.scoring`). For the log score (``INFINITE_WORST``)
``+inf`` is a score, the worst there is, not a failure: such cells stay in the comparison,
so the mean log score of a model with an outcome of probability 0 is ``+inf``, and every
row reports the model's ``n_impossible`` (and ``share_impossible``) on the cells compared.
The rules, the same in :func:`compare` and :func:`select_models`:

- the paired test (``mean_diff``, ``p_value``) uses the cells where both scores are finite
  (a difference with an infinite term has no distribution to test);
- a model with any impossible outcome is never "better" than one without, whatever its
  mean or p-value, and more generally never better than one with fewer (not significant
  in :func:`compare`; ranked behind it, so never chosen over it, in :func:`select_models`).
  The finite cells alone would mislead here: they leave out exactly the outcomes the
  over-confident model called impossible (a naive forecast after zeros, measured on weekly
  measles counts, looked significantly better than climatology on its finite cells with
  37 impossible outcomes against 4);
- a model with a finite mean log score beats a baseline whose mean is ``+inf`` (it gave an
  observed count probability 0): that difference is infinite, not a sampling question;
- selection ranks by the number of impossible outcomes first, then by mean score, then
  (between infinite means) by the mean over finite scores.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from forecast._backtest_result import impossible_flags
from forecast.exceptions import ConfigError, ForecastWarning

#: Scores where lower is better (all of ours but coverage, which is reported, not compared).
LOWER_IS_BETTER = ("rps", "log", "log_floored", "dss", "abs_error", "sq_error", "mase", "interval_50", "interval_80",
                   "interval_95", "brier_ge_1", "brier_ge_5")


#: Scores that are ``+inf`` for a forecast that gave the outcome probability 0: there ``+inf``
#: is a valid (the worst) score, kept in the cells compared rather than left out.
INFINITE_WORST = ("log",)

_CELL = ["unique_id", "ds", "cutoff", "h"]


def _scored(values: np.ndarray, metric: str) -> np.ndarray:
    """Which scores count as scored: finite, or also ``+inf`` for an ``INFINITE_WORST`` metric."""
    v = np.asarray(values, dtype=float)
    return (~np.isnan(v) & (v != -np.inf)) if metric in INFINITE_WORST else np.isfinite(v)


def _skill(score: float, base: float) -> float:
    """1 - score / base: -inf for an infinite score against a finite one, 1 for the converse,
    NaN when both are infinite or the baseline scores 0."""
    if not base or np.isnan(base) or np.isnan(score) or (np.isinf(score) and np.isinf(base)):
        return np.nan
    return 1 - score / base


def common_cells(result, metric: str, models: Sequence[str], mask: np.ndarray | None = None,
                 context: str = "") -> tuple[np.ndarray, dict[str, int]]:
    """Rows of ``result.forecasts`` on cells where every one of ``models`` has a score for ``metric``.

    A score is a finite value, or ``+inf`` for an ``INFINITE_WORST`` metric (the log score
    of an outcome given probability 0: the worst score, not a missing one).

    Parameters
    ----------
    result : BacktestResult
    metric : column of ``result.point_scores``.
    models : the models compared; a cell counts only if each has a score there.
    mask : boolean over ``result.forecasts`` rows restricting the cells (a group), or None.
    context : words naming the group, used in the warning.

    Returns
    -------
    keep : boolean over ``result.forecasts`` rows (rows of ``models`` on common cells).
    excluded : per model, how many of its scored-or-attempted cells were left out.

    Warns
    -----
    ForecastWarning
        When a model lacks a finite score (NaN/inf, or no forecast) on cells the others
        scored: the model, how many cells and why. Cells no model scored (e.g. MASE of a
        constant series) are counted in ``excluded`` without a warning.
    """
    fc = result.forecasts
    sel = np.ones(len(fc), bool) if mask is None else np.array(mask, bool)  # a copy: masks stay intact
    sel &= fc["model"].isin(list(models)).to_numpy()
    finite = _scored(result.point_scores[metric].to_numpy(dtype=float), metric)
    cells = pd.MultiIndex.from_frame(fc.loc[sel, _CELL])
    model = fc.loc[sel, "model"].to_numpy()
    f = finite[sel]
    ok = pd.Series(model[f], index=cells[f]).groupby(level=list(range(len(_CELL)))).nunique()
    full = ok.index[ok.to_numpy() == len(set(models))]  # cells scored by every model
    keep = np.zeros(len(fc), bool)
    keep[np.flatnonzero(sel)] = cells.isin(full)
    all_cells = cells.unique()
    excluded, blame = {}, []
    for m in models:
        own = model == m
        excluded[m] = int(own.sum() - keep[np.flatnonzero(sel)][own].sum())
        missing = int(ok.index.difference(cells[own & f]).size)  # scored by someone, not by m
        if missing:
            what = ("no", "NaN score") if metric in INFINITE_WORST else ("no finite", "NaN or infinite score")
            blame.append(f"'{m}' has {what[0]} {metric} on {missing} of {all_cells.size} cells "
                         f"({what[1]}, or no forecast)")
    if blame:
        where = f" ({context})" if context else ""
        warnings.warn(f"Comparing {metric}{where} on the {full.size} cells every model scored: "
                      + "; ".join(blame) + ". Those cells are left out for every model; see n_excluded.",
                      ForecastWarning, stacklevel=3)
    return keep, excluded


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test of model A against model B on one metric."""

    mean_diff: float  # mean over origins of (score A - score B); negative: A is better
    p_value: float  # one-sided: H0 "A is not better", small p: A beats B
    n_origins: int
    block: int


def origin_differences(result, a: str, b: str, metric: str, rows: pd.Series | None = None) -> pd.Series:
    """Per-origin mean of (score A − score B) over the forecasts both models scored finitely.

    Cells where either score is NaN or infinite are left out: an infinite log score (an
    outcome given probability 0) enters the comparison through the rules in
    :func:`compare`, not through a difference that would be infinite or undefined.
    """
    f = result.forecasts[["unique_id", "ds", "cutoff", "h", "model"]].copy()
    f["score"] = result.point_scores[metric].to_numpy()
    if rows is not None:
        f = f[rows.to_numpy()]
    key = ["unique_id", "ds", "cutoff", "h"]
    fa = f[f["model"] == a].set_index(key)["score"]
    fb = f[f["model"] == b].set_index(key)["score"]
    both = pd.concat([fa.rename("a"), fb.rename("b")], axis=1, join="inner")
    both = both[np.isfinite(both.to_numpy(dtype=float)).all(axis=1)]
    if both.empty:
        raise ConfigError(f"Models '{a}' and '{b}' have no forecasts in common for '{metric}'.")
    d = (both["a"] - both["b"]).groupby(level="cutoff").mean()
    return d.sort_index()


def block_bootstrap_test(d: np.ndarray, block: int, *, n_boot: int = 4000, seed: int = 0) -> PairedTest:
    """Studentised moving-block bootstrap test that the mean of ``d`` is below 0.

    The standard error of the mean comes from a moving-block bootstrap of the
    centred differences, with blocks of at least ``block`` origins and at least
    1.5·n^(1/3) (longer blocks keep more of the dependence); the statistic
    mean / SE is referred to Student's t with (number of blocks − 1) degrees of
    freedom. With few origins the plain percentile bootstrap rejects far too
    often (about 10–17% at a nominal 5% in our simulations with 12–40 origins);
    the studentised form keeps the size near 5% for independent and
    moving-average differences, and somewhat above it (6–10%) under strong
    persistence. With fewer than two blocks the test has no power and returns p = 1.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    obs = float(d.mean()) if n else float("nan")
    block = max(1, int(block), int(np.ceil(1.5 * n ** (1 / 3)))) if n else 1
    block = min(block, n) if n else 1
    n_blocks = int(np.ceil(n / block)) if n else 0
    if n_blocks < 2 or n < 3:
        return PairedTest(obs, 1.0, n, block)
    rng = np.random.default_rng(seed)
    centred = d - obs
    starts = rng.integers(0, n - block + 1, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :n]
    se = float(centred[idx].mean(axis=1).std(ddof=1))
    if se == 0.0:  # every origin has the same difference: no sampling variability to test against
        return PairedTest(obs, 0.0 if obs < 0 else 1.0, n, block)
    p = float(stats.t.cdf(obs / se, df=n_blocks - 1))
    return PairedTest(obs, p, n, block)


def paired_test(result, a: str, b: str, metric: str = "rps", *, block: int | None = None, n_boot: int = 4000,
                seed: int = 0, rows: pd.Series | None = None) -> PairedTest:
    """Does model ``a`` beat model ``b`` on ``metric``? (block bootstrap over origins)."""
    d = origin_differences(result, a, b, metric, rows)
    block = block or int(result.settings["horizon"])
    return block_bootstrap_test(d.to_numpy(), block, n_boot=n_boot, seed=seed)


def _impossible_counts(result, rows: np.ndarray, models: Sequence[str]) -> dict[str, float]:
    """Per model, impossible outcomes among ``rows`` (NaN when the result cannot tell)."""
    flags = impossible_flags(result.point_scores)
    model = result.forecasts["model"].to_numpy()
    return {m: (np.nan if flags is None else float(np.nansum(flags[rows & (model == m)]))) for m in models}


def _versus(score: float, base: float, n_imp: float, base_imp: float) -> str | None:
    """The verdict the impossible-outcome rules impose on the log score, or None (test decides)."""
    if n_imp > base_imp or (n_imp > 0 and np.isnan(base_imp)):
        return (f"no better: {int(n_imp)} impossible outcome{'s' if n_imp != 1 else ''}"
                + (f" (baseline: {int(base_imp)})" if base_imp > 0 else ""))
    if np.isinf(base) and np.isfinite(score):
        return "beats baseline (baseline gave an observed outcome probability 0)"
    return None


def compare(result, baseline: str = "climatology", metrics: Sequence[str] = ("rps", "log"),
            by: Sequence[str] = (), alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """Every model against ``baseline``: mean scores, skill, paired p-value, significance.

    Returns one row per (group, model, metric): ``model, metric, score,
    baseline_score, skill`` (1 − score / baseline score; positive is better),
    ``mean_diff, p_value`` (one-sided, "model beats baseline"), ``significant``
    (p < alpha), ``verdict`` in words, ``n`` (cells averaged: the same for every model
    of a group and metric), ``n_excluded`` (that model's cells left out because
    some compared model has no score there; see :func:`common_cells`), and
    ``n_impossible, share_impossible``: the model's forecasts among those ``n`` cells that
    gave the observed count probability below 1e-12.

    On the log score (see the module notes): ``score`` is ``inf`` when the model gave an
    observed count probability 0; ``mean_diff`` and ``p_value`` come from the cells where
    both scores are finite; a model with more impossible outcomes than the baseline is never
    significant against it (verdict "no better: k impossible outcomes"), and a model with a
    finite mean against a baseline whose mean is ``inf`` is (``skill`` 1 there; ``-inf``
    for an infinite score against a finite baseline; NaN when both are infinite).
    """
    models = list(dict.fromkeys(result.forecasts["model"]))
    if baseline not in models:
        raise ConfigError(f"Baseline '{baseline}' is not among the backtested models ({', '.join(models)}).")
    by = list(by)
    groups = [((), None)] if not by else [
        (k if isinstance(k, tuple) else (k,), result.forecasts.index.isin(g.index))
        for k, g in result.forecasts.groupby(by, sort=True)]
    rows = []
    for key, mask in groups:
        sel = np.ones(len(result.forecasts), bool) if mask is None else np.asarray(mask, bool)
        label = ", ".join(f"{c}={v}" for c, v in zip(by, key))
        for metric in metrics:
            keep, excluded = common_cells(result, metric, models, sel, label)
            imp = _impossible_counts(result, keep, models)
            base = result.point_scores.loc[keep & (result.forecasts["model"] == baseline).to_numpy(), metric]
            for m in models:
                score = result.point_scores.loc[keep & (result.forecasts["model"] == m).to_numpy(), metric]
                rec = dict(zip(by, key)) | {"model": m, "metric": metric, "score": score.mean(),
                                            "baseline_score": base.mean(), "n": int(score.size),
                                            "n_excluded": excluded[m], "n_impossible": imp[m],
                                            "share_impossible": imp[m] / score.size if score.size else np.nan}
                rec["skill"] = _skill(rec["score"], rec["baseline_score"])
                ruled = None if metric not in INFINITE_WORST or not score.size else \
                    _versus(rec["score"], rec["baseline_score"], imp[m], imp[baseline])
                if m == baseline:
                    rec |= {"mean_diff": 0.0, "p_value": np.nan, "significant": False, "verdict": "baseline"}
                elif not score.size:
                    rec |= {"mean_diff": np.nan, "p_value": np.nan, "significant": False,
                            "verdict": "no cells scored by every model"}
                else:
                    t = _paired_or_none(result, m, baseline, metric, seed, pd.Series(keep, index=result.forecasts.index))
                    diff, p = (np.nan, np.nan) if t is None else (t.mean_diff, t.p_value)
                    sig = bool(p < alpha)
                    verdict = ("beats baseline" if sig else "better, not significant" if diff < 0 else "no better")
                    if ruled is not None:
                        sig, verdict = ruled.startswith("beats"), ruled
                    rec |= {"mean_diff": diff, "p_value": p, "significant": sig, "verdict": verdict}
                rows.append(rec)
    out = pd.DataFrame(rows)
    if len(out) and out["n_impossible"].notna().all():  # counts print as counts, not 24.0
        out["n_impossible"] = out["n_impossible"].astype(np.int64)
    return out


def _paired_or_none(result, a: str, b: str, metric: str, seed: int, rows: pd.Series) -> PairedTest | None:
    """The paired test on the cells both scored finitely; None when there are none (all infinite)."""
    try:
        return paired_test(result, a, b, metric, seed=seed, rows=rows)
    except ConfigError:
        return None


def select_models(result, baseline: str = "climatology", metric: str = "rps", by: str = "series",
                  alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """The model to use per series, event type or globally, by backtest score.

    A model replaces the baseline only when its improvement is significant
    (paired block-bootstrap test, one-sided, level ``alpha``); otherwise the
    baseline is kept. Models are scored on the cells every model scored (see
    :func:`common_cells`). Returns ``unique_id, model, best_scoring, score,
    baseline_score, p_value, reason, n`` (cells per model in the group),
    ``n_excluded`` (cells left out, summed over models) and ``n_impossible`` (the chosen
    model's impossible outcomes on those cells).

    With ``metric="log"`` the rules of the module notes apply: models rank by their number
    of impossible outcomes, then by mean score (an infinite mean last), then by their mean
    over finite scores (so one is never chosen over a baseline with fewer); a best model with a finite mean
    replaces a baseline whose mean is ``inf`` (``p_value`` is still the test on the cells
    both scored finitely, NaN when there are none).
    """
    level = {"series": "unique_id", "event_type": "event_type", "global": None}
    if by not in level:
        raise ConfigError(f"by must be one of series, event_type, global. Got '{by}' instead.")
    col = level[by]
    fc = result.forecasts
    groups = [(None, np.ones(len(fc), bool))] if col is None else [
        (k, (fc[col] == k).to_numpy()) for k in fc[col].drop_duplicates()]
    out = []
    models = list(dict.fromkeys(fc["model"]))
    honest = metric in INFINITE_WORST
    for key, mask in groups:
        keep, excluded = common_cells(result, metric, models, mask, "" if col is None else f"{col}={key}")
        imp = _impossible_counts(result, keep, models)
        vals = result.point_scores.loc[keep, metric]
        scores = vals.groupby(fc.loc[keep, "model"]).mean()
        n = int(keep[(fc["model"] == baseline).to_numpy()].sum())
        if scores.empty:
            best, choice, p, reason = None, baseline, np.nan, "baseline (no cell scored by every model)"
        else:
            best = _rank(scores, vals, fc.loc[keep, "model"], imp, honest)[0]
            choice, p, reason = baseline, np.nan, "baseline (no model scored better)"
        if best is not None and best != baseline and baseline in scores.index:
            t = _paired_or_none(result, best, baseline, metric, seed, pd.Series(keep, index=fc.index))
            p = np.nan if t is None else t.p_value
            ruled = _versus(scores[best], scores[baseline], imp[best], imp[baseline]) if honest else None
            if ruled is not None and not ruled.startswith("beats"):
                reason = f"{best} ranked first but has {ruled.split(': ', 1)[1]}; kept {baseline}"
            if ruled is not None and ruled.startswith("beats"):
                choice, reason = best, (f"{best} beats {baseline} ({baseline} gave an observed count "
                                        f"probability 0: infinite mean log score)")
            elif ruled is None and p < alpha:
                choice, reason = best, f"{best} beats {baseline} (p = {p:.3f})"
            elif ruled is None:
                reason = f"{best} scored better but not significantly (p = {p:.3f}); kept {baseline}"
        uids = fc.loc[mask, "unique_id"].drop_duplicates()
        for uid in uids:
            out.append({"unique_id": uid, "model": choice, "best_scoring": best, "score": scores.get(choice),
                        "baseline_score": scores.get(baseline), "p_value": p, "reason": reason, "n": n,
                        "n_excluded": sum(excluded.values()), "n_impossible": imp.get(choice, np.nan)})
    return pd.DataFrame(out)


def _rank(scores: pd.Series, vals: pd.Series, model: pd.Series, imp: dict, honest: bool) -> list[str]:
    """Models best first: by mean score; on the log score (``honest``) by the number of
    impossible outcomes first, then mean score, then the mean over finite scores."""
    if not honest:
        return list(scores.sort_values(kind="stable").index)
    v = vals.to_numpy(dtype=float)
    finite_mean = pd.Series(np.where(np.isfinite(v), v, np.nan), index=vals.index).groupby(model).mean()
    key = pd.DataFrame({"count": [imp[m] for m in scores.index], "score": scores.to_numpy(),
                        "finite": finite_mean.reindex(scores.index).to_numpy()}, index=scores.index)
    return list(key.sort_values(["count", "score", "finite"], kind="stable").index)
