"""Count models. Importing this package registers every model class by name.

Each model is a spec (hyperparameters only) whose ``fit(panel)`` returns an
immutable fitted model; ``forecast(h)`` gives a
:class:`~forecast.distributions.CountForecast`. See :mod:`forecast.models.base`.
statsmodels is imported only when an ARIMA model is fitted.
"""
from forecast.models.arima import Arima
from forecast.models.autoregressive import INGARCH
from forecast.models.base import REGISTRY, FittedModel, ModelSpec
from forecast.models.baselines import Climatology, Empirical, Naive, SeasonalNaive, Zero
from forecast.models.ensemble import Ensemble
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.intermittent import TSB, Croston
from forecast.models.zeroinflated import ZINB, ZIP

__all__ = ["REGISTRY", "FittedModel", "ModelSpec", "Arima", "INGARCH", "Climatology", "Empirical", "Naive",
           "SeasonalNaive", "Zero", "Ensemble", "NegBinGLM", "PoissonGLM", "TSB", "Croston", "ZINB", "ZIP"]
