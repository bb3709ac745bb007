"""Intervention effects of a fitted log-linear count model, as rate ratios.

``effects(fitted)`` turns the intervention coefficients of a fitted GLM-family
model (``poisson_glm``, ``negbin_glm`` and any model whose ``coef`` names its
intervention terms by the intervention names) into a tidy table an analyst can
read: "after the border closure the monthly rate of clashes in Khatlon was
0.62 times what it would otherwise have been (95% CI 0.45-0.85)".
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from forecast.exceptions import ConfigError
from forecast.models.base import FittedModel
from forecast.models.design import parse_interventions

COLUMNS = ["unique_id", "term", "kind", "date", "estimate", "std_error", "rate_ratio", "lo", "hi",
           "p_value", "fallback"]


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
        β = 0) and ``fallback`` (the rung of the fallback ladder that ran).
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
    return out[COLUMNS]
