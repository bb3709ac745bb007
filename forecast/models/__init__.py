"""Count models. Importing this package registers every model class by name.

Each model is a spec (hyperparameters only) whose ``fit(panel)`` returns an
immutable fitted model; ``forecast(h)`` gives a
:class:`~forecast.distributions.CountForecast`. See :mod:`forecast.models.base`.
"""
from forecast.models.base import REGISTRY, FittedModel, ModelSpec
from forecast.models.baselines import Climatology, Empirical, Naive, SeasonalNaive, Zero

__all__ = ["REGISTRY", "FittedModel", "ModelSpec", "Climatology", "Empirical", "Naive", "SeasonalNaive", "Zero"]
