"""The one table of model spec classes, by the name a spec file gives in ``model = "..."``.

Explicit on purpose: a model is loadable from TOML because it is listed here, not because
some import happened to run. Fallback ladders name spec classes directly (``fallbacks``),
so nothing below this module needs the table. Combinations of models (the ensemble) live
above the backtester, in :mod:`forecast.combine`, and are added to the table of spec
types by :mod:`forecast.specs`' callers, never by the models.
"""
from __future__ import annotations

from forecast.models.arima import Arima
from forecast.models.autoregressive import INGARCH
from forecast.models.base import ModelSpec
from forecast.models.baselines import Climatology, Empirical, Naive, SeasonalNaive, Zero
from forecast.models.glm import NegBinGLM, PoissonGLM
from forecast.models.intermittent import TSB, Croston
from forecast.models.log_arma import LogArma
from forecast.models.pooled_glm import PooledNegBin
from forecast.models.spatial import EndemicEpidemic
from forecast.models.zeroinflated import ZINB, ZIP

MODEL_CLASSES: tuple[type[ModelSpec], ...] = (
    Zero, Naive, SeasonalNaive, Climatology, Empirical, PoissonGLM, NegBinGLM, ZIP, ZINB, INGARCH, Arima, Croston,
    TSB, PooledNegBin, LogArma, EndemicEpidemic)

#: Model name -> spec class (the names used by ``model = "..."`` in spec files).
REGISTRY: dict[str, type[ModelSpec]] = {cls.name: cls for cls in MODEL_CLASSES}
