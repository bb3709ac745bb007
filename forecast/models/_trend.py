"""The trend column of the log-linear design in the forecast periods (fit and forecast alike).

The design's trend column is t / P (t = 0, 1, … from the series' first period, P periods per
year), and the fit is the same for every trend option; the options differ only in what the
column is in the ``h`` periods after the last training period T = n - 1:

``"linear"``
    t = T + j (j = 1..h): the fitted log-linear trend is extrapolated past the training
    range, so a trend estimated on a short or outbreak-ridden window grows without bound
    (recorded: a note in ``diagnostics()`` and one :class:`~forecast.exceptions.ForecastWarning`).
``"damped"``
    t = T + Σ_{i=1}^{j} φ^i with φ = ``damping`` in [0, 1]: φ = 0 holds the trend at its
    value in the last training period (the default, chosen by measurement), 0 < φ < 1 lets it
    move on by at most φ / (1 - φ) periods' worth, φ = 1 is ``"linear"``.
``"none"``
    no trend column.
"""
from __future__ import annotations

import warnings

import numpy as np

from forecast.exceptions import ForecastWarning

TREND_OPTIONS = ("none", "damped", "linear")
#: The warning a forecast with an extrapolated linear trend gives.
EXTRAPOLATION_WARNING = ("trend='linear': forecasts extrapolate the fitted trend past the training data; "
                         "use trend='damped' to hold it at the last training period, or 'none'.")

#: The note a fit with an extrapolated linear trend carries in ``diagnostics()``.
EXTRAPOLATION_NOTE = ("trend='linear' extrapolates the fitted trend past the training range; "
                      "trend='damped' holds it at the last training period")


def has_trend(trend: str) -> bool:
    """Whether the design has a trend column (it is estimated for 'linear' and 'damped')."""
    return trend in ("linear", "damped")


def future_trend_index(trend: str, damping: float, n: int, h: int) -> np.ndarray:
    """The period index t entering the trend column for the ``h`` periods after ``n`` observed.

    See the module docstring for the equations.
    """
    j = np.arange(1, h + 1, dtype=float)
    if trend == "damped" and damping < 1:
        if damping == 0:
            return np.full(h, n - 1.0)
        # Σ_{i=1}^{j} φ^i = φ (1 - φ^j) / (1 - φ)
        return (n - 1.0) + damping * (1 - damping ** j) / (1 - damping)
    if trend == "linear":
        # A constant message: Python's warning filter then shows it once, not once a series.
        warnings.warn(EXTRAPOLATION_WARNING, ForecastWarning, stacklevel=3)
    return (n - 1.0) + j
