"""The statsmodels ``SARIMAX`` side of :class:`~forecast.models.arima.Arima`.

Building, fitting and re-filtering one SARIMAX on ``z = log(1 + y)``, and the
annual Fourier regressors of weekly series. Kept apart from the model class so
:mod:`forecast.models.arima` stays about the order search and the count mapping;
every name here is re-exported from there.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from forecast.models.base import Series, SeriesFit
from forecast.models._arma import aicc_observed, fourier_matrix

#: Options of every ``SARIMAX`` built here (the scale is concentrated out of the
#: likelihood: one parameter fewer for the optimiser, 20-65% fewer likelihood calls in trials).
MODEL_OPTIONS: dict[str, Any] = {"enforce_stationarity": True, "enforce_invertibility": True,
                                 "concentrate_scale": True}
#: Options of every ``fit``; ``maxiter`` above statsmodels' 50 because seasonal
#: ARMA(2,2) candidates often need 60-80 L-BFGS iterations.
FIT_OPTIONS: dict[str, Any] = {"disp": False, "maxiter": 100}


def _sarimax(z: np.ndarray, order: tuple, seasonal_order: tuple, trend: str, exog: np.ndarray | None = None):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    options = dict(MODEL_OPTIONS)
    if exog is not None and exog.shape[1] == 0:
        exog = None
    if trend == "n" and exog is None and not any((order[0], order[2], seasonal_order[0], seasonal_order[2])):
        # A random walk without drift has no parameter but the scale, and statsmodels
        # cannot optimise an empty vector: keep sigma2 as an ordinary parameter.
        options["concentrate_scale"] = False
    return SARIMAX(z, exog=exog, order=order, seasonal_order=seasonal_order, trend=trend, **options)


def _fit_candidate(z: np.ndarray, order: tuple, seasonal_order: tuple, trend: str,
                   exog: np.ndarray | None = None) -> dict[str, Any]:
    """Fit one candidate; ``error`` set when it failed (it is then skipped)."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    out: dict[str, Any] = {"order": order, "seasonal_order": seasonal_order, "trend": trend,
                           "aicc": np.inf, "converged": False, "warnings": [], "error": ""}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = _sarimax(z, order, seasonal_order, trend, exog).fit(cov_type="none", **FIT_OPTIONS)
    except Exception as exc:  # noqa: BLE001 - any failing candidate order is skipped
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    # Only the optimiser's own complaints are kept: the "non-stationary starting
    # parameters" notes concern start values, which statsmodels then replaces.
    out["warnings"] = sorted({str(w.message).splitlines()[0] for w in caught
                              if issubclass(w.category, ConvergenceWarning)})
    aicc, scale = (float(res.aicc) if not np.isnan(z).any() else aicc_observed(res, z)), _scale(res)
    if not (np.isfinite(aicc) and np.isfinite(res.llf) and scale > 1e-12):
        out["error"] = "degenerate fit (non-finite AICc or zero innovation variance)"
        return out
    out.update(aicc=aicc, converged=bool(res.mle_retvals.get("converged", True)) and not out["warnings"],
               params=np.asarray(res.params, dtype=float), llf=float(res.llf))
    return out


def _scale(res) -> float:
    """Innovation variance σ² of a SARIMAX result (concentrated or a parameter)."""
    names = list(res.model.param_names)
    return float(res.params[names.index("sigma2")]) if "sigma2" in names else float(res.scale)


def _fourier_exog(s: Series, k: int, h: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Annual Fourier regressors (K pairs) over the series' periods and the next ``h`` (None if K = 0)."""
    if not k:
        return None, None
    return (fourier_matrix(s.freq.year_fraction(s.ds), k),
            fourier_matrix(s.freq.year_fraction(s.future_ds(h)), k))


def z_forecast(fit: SeriesFit, y: np.ndarray, h: int, exog: np.ndarray | None = None,
               exog_future: np.ndarray | None = None, *, observed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the h-step forecasts of ``z = log(1 + y)``.

    The stored parameters are re-filtered through ``y`` (cheap, and the fit
    object then need not keep the filter's large state arrays). ``exog`` and
    ``exog_future``: the Fourier regressors over ``y``'s periods and the next ``h``
    when the fit has them (``state["fourier_k"] > 0``). ``observed``: False at missing
    periods, which the filter skips (NaN), so a missing last value is forecast, not read.
    """
    st = fit.state
    so = (*st["seasonal_order"], st["period"])
    z = np.log1p(np.asarray(y, dtype=float))
    if observed is not None:
        z[~np.asarray(observed, dtype=bool)] = np.nan
    res = _sarimax(z, st["order"], so, st["trend"], exog).filter(st["params"])
    fc = res.get_forecast(h, exog=exog_future)
    return np.asarray(fc.predicted_mean, dtype=float), np.sqrt(np.asarray(fc.var_pred_mean, dtype=float))
