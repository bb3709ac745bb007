"""Combinations of models, above the backtester: the ensemble and the ``auto`` model.

Both are linear pools of member specs. :class:`Ensemble` weights its members equally or
by their own backtest scores; :class:`Auto` learns stacking weights from the members'
held-out forecasts across all series (:mod:`forecast.stacking`). Importing this package
registers both with :mod:`forecast.specs`, so :func:`load_model` reads their spec files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from forecast.combine.auto import Auto, AutoFitted
from forecast.combine.ensemble import Ensemble, EnsembleFitted, member_items
from forecast.exceptions import ConfigError
from forecast.models.base import ModelSpec
from forecast.specs import load_model, register_spec_type

__all__ = ["Auto", "AutoFitted", "Ensemble", "EnsembleFitted", "load_model", "member_items",
           "register_spec_type", "resolve_models"]


def resolve_models(models: Any) -> dict[str, Any]:
    """Label -> spec object from specs, spec names or ``.toml`` paths (a list, or a dict label -> either).

    Names are loaded once, here, with every spec type known (an ensemble file's members
    included); a name labels its spec, a path its file stem, a spec object its model name.
    """
    if isinstance(models, (ModelSpec, str, Path)):
        models = [models]
    if isinstance(models, Mapping):
        return {str(k): load_model(v) if isinstance(v, (str, Path)) else v for k, v in models.items()}
    out: dict[str, Any] = {}
    for m in models:
        if isinstance(m, (str, Path)):
            label = Path(m).stem if isinstance(m, Path) or str(m).endswith(".toml") else str(m)
            spec = load_model(m)
        else:
            label, spec = getattr(m, "name", str(m)), m
        if label in out:
            raise ConfigError(f"Model label '{label}' is used twice; pass a dict of label -> spec.")
        out[label] = spec
    return out
