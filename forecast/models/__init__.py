"""Count models: the spec classes, listed once in :mod:`forecast.models.registry`.

Each model is a spec (hyperparameters only) whose ``fit(panel)`` returns an
immutable fitted model; ``forecast(h, seed=...)`` gives a
:class:`~forecast.distributions.CountForecast`. See :mod:`forecast.models.base`.
statsmodels is imported only when an ARIMA model is fitted. The ensemble, a
combination of models, lives in :mod:`forecast.combine`.
"""
from forecast.models.arima import Arima
from forecast.models.autoregressive import INGARCH
from forecast.models.base import FittedModel, ModelSpec
from forecast.models.baselines import Climatology, Empirical, Naive, SeasonalNaive, Zero
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.intermittent import TSB, Croston
from forecast.models.registry import MODEL_CLASSES, REGISTRY
from forecast.models.spatial import EndemicEpidemic
from forecast.models.zeroinflated import ZINB, ZIP

__all__ = ["REGISTRY", "MODEL_CLASSES", "FittedModel", "ModelSpec", "Arima", "INGARCH", "Climatology", "Empirical",
           "Naive", "SeasonalNaive", "Zero", "NegBinGLM", "PoissonGLM", "TSB", "Croston", "ZINB", "ZIP",
           "EndemicEpidemic"]
