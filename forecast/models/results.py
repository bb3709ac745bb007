"""Per-series results of a model: what a fit learned, what a forecast predicts, and the
failure that moves a series down its fallback ladder.

The lowest floor of the model contract: plain data, imported by the numeric guard, the
ladder driver, fitted models and specs alike (it imports none of them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


class FitFailure(Exception):
    """A series cannot be fitted by this rung; the next rung of the ladder is tried."""


@dataclass
class SeriesFit:
    """What a model learned from one series (model-specific ``state``)."""

    spec: Any  # the ModelSpec (rung) that made this fit
    converged: bool = True
    loglik: float = float("nan")
    n_params: int = 0
    n_obs: int = 0
    coef: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # term -> (estimate, std_error)
    state: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    fallback: str = "none"
    reason: str = ""
    engine: str = "per-series"  # "batched", "per-series", or why the batch handed it back

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params


@dataclass
class SeriesForecast:
    """A series' predictive distribution for h periods, in one of the families
    :class:`~forecast.distributions.CountForecast` is built from."""

    family: str  # "poisson", "negbin", "zi", "samples", "pathmix", "pmf"
    mu: np.ndarray | None = None
    alpha: np.ndarray | None = None
    pi: np.ndarray | None = None
    paths: np.ndarray | None = None  # (h, n_paths)
    pmf: np.ndarray | None = None  # (h, K+1)
    # "pathmix": the conditional mean each path drew its count from, (h, n_paths); with
    # alpha and pi (per step) the law of every step given the path's past
    path_mu: np.ndarray | None = None
    #: the paths are joint draws with other series' paths (path p = one world across series)
    joint: bool = False
