"""Intervention effects of log-linear count models: rate ratios, tests, change detection.

``effects(fitted)`` turns the intervention coefficients of a fitted GLM-family
model (``poisson_glm``, ``negbin_glm`` and any model whose ``coef`` names its
intervention terms by the intervention names) into a tidy table an analyst can
read: "after the border closure the monthly rate of clashes in Khatlon was
0.62 times what it would otherwise have been (95% CI 0.45-0.85)"; its ``p_holm``
column adjusts the p-values for testing every effect in the table (Holm).

``score_test(panel, spec, date)`` tests an effect at a known date (score and
likelihood-ratio tests, as R tscount's ``interv_test``); ``detect(panel, spec)`` looks
for one at an unknown date (maximum score statistic over the candidate dates, with a
parametric-bootstrap p-value, as ``interv_detect``). The numerics are in
:mod:`forecast._interv_tests`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from forecast._interv_null import check_spec, null_model
from forecast._interv_tests import KINDS, effect_column, holm, score_stats
from forecast.exceptions import ConfigError
from forecast.models.base import FittedModel, ModelSpec
from forecast.models.design import parse_interventions
from forecast.models.series import PanelData, Series

COLUMNS = ["unique_id", "term", "kind", "date", "estimate", "std_error", "rate_ratio", "lo", "hi",
           "p_value", "p_holm", "fallback"]
TEST_COLUMNS = ["unique_id", "date", "kind", "delta", "score_stat", "p_score", "lr_stat", "p_lr", "rate_ratio",
                "lo", "hi", "note"]
DETECT_COLUMNS = ["unique_id", "date", "kind", "delta", "score_stat", "p_value", "B", "n_dates", "note"]


def effects(fitted: FittedModel, level: float = 0.95) -> pd.DataFrame:
    """Estimated intervention effects per series, with Wald intervals and p-values.

    Parameters
    ----------
    fitted : FittedModel
        A fitted model whose spec has an ``interventions`` hyperparameter
        (``poisson_glm``, ``negbin_glm``).
    level : float
        Confidence level of the interval, in (0, 1).

    Returns
    -------
    DataFrame
        One row per series and intervention term: ``unique_id, term, kind,
        date`` (the intervention's date as given), ``estimate`` (β on the
        log-rate scale), ``std_error``,
        ``rate_ratio`` = exp(β), ``lo, hi`` = exp(β ∓ z·se) with z the
        (1 + level)/2 normal quantile, ``p_value`` (two-sided Wald test of
        β = 0), ``p_holm`` (``p_value`` adjusted by Holm's method for
        testing every finite p-value of the table) and ``fallback`` (the rung of the fallback ladder that ran).
        Series whose fit fell back to a model without the term (climatology,
        zero), and terms dropped because their column was constant over the
        fit window (e.g. an intervention after the last observation), get NaN.

    Notes
    -----
    log mu_t = ... + β·z_t, so exp(β) multiplies the expected count:

    * ``step`` (z_t = 1 from the intervention on): the rate ratio after vs before;
    * ``pulse`` (z_t = 1 in the intervention period only): the ratio in that period;
    * ``ramp`` (z_t = periods since the intervention / periods per year): the
      rate ratio **per year since the intervention**, compounding (after two
      years the rate is exp(2β) times the counterfactual).

    With a ridge penalty (the ``penalised`` fallback rung or ``penalty > 0``)
    β is shrunk towards 0 and its SE is the penalised (Bayesian-style) one, so
    the interval and p-value are approximate; the ``fallback`` column says
    when this applies.
    """
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ConfigError(f"The level of effects() must be a float in (0, 1). Got {level!r} instead.")
    params = fitted.spec.get_params()
    if "interventions" not in params:
        raise ConfigError(f"effects() needs a model with interventions (poisson_glm, negbin_glm); "
                          f"'{fitted.model}' has none.")
    ivs = parse_interventions(params["interventions"])
    rows = [(uid, iv.name, iv.kind, iv.date, *fit.coef.get(iv.name, (np.nan, np.nan)), fit.fallback)
            for uid, fit in fitted.fits().items() for iv in ivs]
    out = pd.DataFrame(rows, columns=["unique_id", "term", "kind", "date", "estimate", "std_error", "fallback"])
    out["date"] = pd.to_datetime(out["date"])
    est = out["estimate"].to_numpy(dtype=float)
    se = out["std_error"].to_numpy(dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out["rate_ratio"] = np.exp(est)
        out["lo"], out["hi"] = np.exp(est - z * se), np.exp(est + z * se)
        out["p_value"] = 2 * stats.norm.sf(np.abs(est / se))
    out["p_holm"] = holm(out["p_value"].to_numpy(dtype=float))
    return out[COLUMNS]


def _check_common(delta: float, kind: str, level: float) -> None:
    if not (isinstance(delta, (int, float)) and not isinstance(delta, bool) and 0 <= delta <= 1):
        raise ConfigError(f"delta must be a number in [0, 1] (0 a spike, 1 a level shift, in between a "
                          f"transient shift). Got {delta!r} instead.")
    if kind not in KINDS:
        raise ConfigError(f"kind must be 'internal' or 'external'. Got {kind!r} instead.")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ConfigError(f"level must be a float in (0, 1). Got {level!r} instead.")


def _series(panel: pd.DataFrame, spec: ModelSpec, unique_id) -> list[Series]:
    data = PanelData.from_frame(panel, spec.required_columns())
    spec.check_panel(panel)
    if unique_id is None:
        return data.series
    want = [unique_id] if isinstance(unique_id, str) else list(unique_id)
    have = {s.uid: s for s in data.series}
    missing = [u for u in want if u not in have]
    if missing:
        raise ConfigError(f"unique_id {', '.join(map(repr, missing))} is not in the panel.")
    return [have[u] for u in want]


def _without_period(spec: ModelSpec, s: Series, period: pd.Timestamp) -> ModelSpec:
    """``spec`` without the interventions it declares in ``period``: that effect is the one tested."""
    ivs = parse_interventions(spec.get_params().get("interventions"))
    starts = [pd.Timestamp(s.freq.start(np.array([np.datetime64(iv.date.value, "ns")]))[0]) for iv in ivs]
    keep = tuple(iv for iv, p0 in zip(ivs, starts) if p0 != period)
    return spec if len(keep) == len(ivs) else spec.clone().set_params(interventions=keep)


def score_test(panel: pd.DataFrame, spec: ModelSpec | str, date, *, delta: float = 1.0,
               kind: str = "internal", level: float = 0.95, unique_id: str | list[str] | None = None
               ) -> pd.DataFrame:
    """Score and likelihood-ratio tests for an intervention effect at a known date, per series.

    Parameters
    ----------
    panel : DataFrame
        Long frame ``unique_id, ds, y`` (+ the columns the spec reads).
    spec : ModelSpec or str
        The null model: ``poisson_glm``, ``negbin_glm`` or ``ingarch`` (a name gives the
        defaults). Its whole design is the null, fitted by unpenalised maximum likelihood;
        interventions it declares at other dates stay in the null, one it declares in the
        tested period is the effect tested and is left out.
    date : str or Timestamp
        Any date inside the first affected period τ.
    delta : float
        Shape of the effect x_t = δ^(t−τ) 1{t ≥ τ}: 0 a spike (one period), 1 a level shift,
        in between a transient shift decaying by δ per period.
    kind : {"internal", "external"}
        For ``ingarch`` (a model with feedback): "internal" lets the effect enter the linear
        predictor and propagate through the mean feedback, "external" adds it to the
        observation's log-mean only (Liboschik, Fokianos & Fried 2017). The GLMs have no
        mean feedback, so both give the same test there.
    level : float
        Confidence level of the rate ratio's Wald interval.
    unique_id : str or list of str, optional
        Test these series only (default: every series).

    Returns
    -------
    DataFrame
        One row per series: ``unique_id, date`` (the start of period τ), ``kind, delta``,
        ``score_stat`` (U²/I from the null fit, χ²₁), ``p_score``, ``lr_stat`` = 2(ℓ_alt − ℓ_null),
        ``p_lr`` (χ²₁), ``rate_ratio`` = exp(γ̂) from the alternative fit and its Wald
        interval ``lo, hi``. NaN where the null or alternative fit failed or τ is outside
        the series' fitted periods; ``note`` says why there is no null fit, or which fallback
        was tested (an ``ingarch`` null at its stationarity boundary is tested without mean
        feedback: see :func:`forecast._interv_null.null_model`).

    Notes
    -----
    The score statistic needs only the null fit (see :mod:`forecast._interv_tests`); the
    likelihood-ratio test refits with the covariate (for the external INGARCH effect by
    numerical maximisation). For a spike (δ = 0) the rate ratio is that of the one period.

    Examples
    --------
    >>> score_test(panel, "negbin_glm", "2024-03", delta=1.0)  # doctest: +SKIP
    """
    _check_common(delta, kind, level)
    spec = check_spec(spec)
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for s in _series(panel, spec, unique_id):
        i0 = int(s.freq.index(np.array([np.datetime64(pd.Timestamp(date).value, "ns")]), s.ds[0])[0])
        period = pd.Timestamp(s.freq.start(np.array([np.datetime64(pd.Timestamp(date).value, "ns")]))[0])
        row = {"unique_id": s.uid, "date": period, "kind": kind, "delta": float(delta)}
        nm = null_model(_without_period(spec, s, period), s)
        row["note"] = nm.note
        x = effect_column(nm.fit.pos, i0, delta)
        if nm.fit.converged and np.ptp(x) > 0:
            S = float(score_stats(nm.fit, x[:, None], kind)[0])
            ll, g, se = nm.fit.refit(x, kind)
            lr = max(2 * (ll - nm.fit.loglik), 0.0) if np.isfinite(ll) else np.nan
            if not np.isfinite(ll):
                row["note"] = "; ".join(filter(None, [nm.note, "the fit with the effect did not converge: no LR test"]))
            row |= {"score_stat": S, "p_score": stats.chi2.sf(S, 1), "lr_stat": lr, "p_lr": stats.chi2.sf(lr, 1),
                    "rate_ratio": np.exp(g), "lo": np.exp(g - z * se), "hi": np.exp(g + z * se)}
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=TEST_COLUMNS)


def detect(panel: pd.DataFrame, spec: ModelSpec | str, *, delta: float = 1.0, kind: str = "internal",
           margin: int = 3, B: int = 99, seed: int = 0, unique_id: str | list[str] | None = None
           ) -> pd.DataFrame:
    """Look for an intervention effect at an unknown date: the maximum score statistic over dates.

    Parameters
    ----------
    panel, spec, delta, kind, unique_id
        As in :func:`score_test`.
    margin : int
        Periods left out as candidate dates at both ends of each series' fitted rows.
    B : int
        Parametric-bootstrap replicates.
    seed : int
        Seeds the bootstrap (a numpy Generator; series get independent child streams).

    Returns
    -------
    DataFrame
        One row per series: ``unique_id``, ``date`` (start of the period with the largest
        score statistic), ``kind, delta``, ``score_stat`` (that maximum), ``p_value`` (its
        bootstrap p-value (1 + #{max* ≥ max}) / (1 + B')), ``B`` (B', the replicates whose
        null refit converged), ``n_dates`` (candidate dates) and ``note`` (as in
        :func:`score_test`; replicates are refitted with the model the series was tested with,
        never a fallback of it).

    Notes
    -----
    Each replicate simulates a series from the fitted null (feedback included), refits the
    null to it and takes the maximum score statistic over the same candidate dates from that
    null fit, so the cost is B null refits, not B × dates (tscount's ``interv_detect``
    instead refits the alternative at every date).

    Examples
    --------
    >>> detect(panel, "poisson_glm", delta=1.0, B=199, seed=1)  # doctest: +SKIP
    """
    _check_common(delta, kind, 0.5)
    if not (isinstance(B, int) and B >= 1) or not (isinstance(margin, int) and margin >= 1):
        raise ConfigError(f"B and margin must be ints >= 1. Got B={B!r}, margin={margin!r}.")
    spec = check_spec(spec)
    series = _series(panel, spec, unique_id)
    rngs = np.random.default_rng(seed).spawn(len(series))
    rows = []
    for s, rng in zip(series, rngs):
        nm = null_model(spec, s)
        pos = nm.fit.pos
        cands = np.arange(pos[0] + margin, pos[-1] - margin + 1)
        row = {"unique_id": s.uid, "kind": kind, "delta": float(delta), "n_dates": len(cands), "note": nm.note}
        if not nm.fit.converged or not len(cands):
            rows.append(row)
            continue
        stat = score_stats(nm.fit, effect_column(pos, cands, delta), kind)
        best = int(np.nanargmax(stat))
        peaks = []
        for y in nm.simulate(s, B, rng):
            f = null_model(nm.spec, Series(s.uid, s.ds_values, y, s.freq, s.exog, s.observed), fallback=False).fit
            if f.converged:
                peaks.append(np.nanmax(score_stats(f, effect_column(f.pos, cands, delta), kind), initial=0.0))
        peaks = np.asarray(peaks)
        row |= {"date": s.ds[cands[best]], "score_stat": float(stat[best]),
                "p_value": (1 + np.sum(peaks >= stat[best])) / (1 + len(peaks)), "B": len(peaks)}
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=DETECT_COLUMNS)
