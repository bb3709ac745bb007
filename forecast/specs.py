"""Model specs as TOML files: load, validate strictly, save.

A spec file names the model and sets its hyperparameters at the top level::

    # Negative-binomial GLM with a trend and month dummies.
    model = "negbin_glm"
    description = "NB2 GLM, the default for busy series"
    trend = "linear"
    seasonality = "month"
    lags = [1]

Any other key is an error naming the key and the allowed ones, except ``seed``:
the seed belongs to the run (``[run] seed``, ``seed=`` of ``forecast``/``backtest``),
so a ``seed`` key in an old spec file is ignored with a warning. A name given to
:func:`load_model` resolves to ``models/<name>.toml`` in the working directory
(the user's own specs) and then to the specs shipped with the package.

The spec types a file may name are the models of :mod:`forecast.models.registry` plus
the combinations registered explicitly with :func:`register_spec_type` (the ensemble,
by :mod:`forecast.combine`, which sits above this module; import it, or use
``forecast.load_model``, to load ensemble files). A combination's member names are
resolved here, when its file is loaded.
"""
from __future__ import annotations

import difflib
import importlib.resources
import tomllib
from pathlib import Path
from typing import Any

from forecast.exceptions import ConfigError

META_KEYS = ("model", "description")

#: Spec types known beyond the models (name -> class), see :func:`register_spec_type`.
_EXTRA_TYPES: dict[str, type] = {}
#: Where the combinations live, for the error when one is loaded before its module is imported.
_COMBINATIONS = {"ensemble": "forecast.combine", "auto": "forecast.combine"}


def register_spec_type(cls: type) -> type:
    """Let spec files name ``cls`` (by ``cls.name``): for spec types above the models.

    A class with a ``from_file_params(params, load)`` classmethod gets its parameters
    through it, with ``load`` = :func:`load_model` for the names it refers to.
    """
    _EXTRA_TYPES[cls.name] = cls
    return cls


def _registry() -> dict[str, type]:
    from forecast.models.registry import REGISTRY

    return {**REGISTRY, **_EXTRA_TYPES}


def bundled_dir() -> Path:
    """The folder of model specs shipped with the package."""
    return Path(str(importlib.resources.files("forecast") / "_models"))


def spec_path(name: str | Path) -> Path:
    """Where a spec name or path points (see module docstring)."""
    p = Path(name)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise ConfigError(f"Model spec file {p} not found.")
        return p
    for folder in (Path.cwd() / "models", bundled_dir()):
        cand = folder / f"{name}.toml"
        if cand.exists():
            return cand
    names = sorted(available_models())
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"No model spec named '{name}'.{hint} Available: {', '.join(names)}.")


def available_models() -> dict[str, str]:
    """Spec name -> description, for the bundled specs and ``./models``."""
    out: dict[str, str] = {}
    for folder in (bundled_dir(), Path.cwd() / "models"):
        if folder.is_dir():
            for f in sorted(folder.glob("*.toml")):
                try:
                    doc = tomllib.loads(f.read_text(encoding="utf-8"))
                except tomllib.TOMLDecodeError:
                    continue
                out[f.stem] = str(doc.get("description", ""))
    return out


def load_model(name: str | Path):
    """Read a model spec from ``models/<name>.toml`` (or a path) into a spec object.

    Raises
    ------
    ConfigError
        For an unknown model, an unknown key (naming the allowed ones), a TOML
        syntax error, or a hyperparameter outside its declared limits.
    """
    path = spec_path(name)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    return spec_from_dict(doc, source=str(path))


def spec_from_dict(doc: dict[str, Any], *, source: str = "spec"):
    """Build a spec from a parsed TOML table (``model`` plus hyperparameters)."""
    reg = _registry()
    model = doc.get("model")
    if model in _COMBINATIONS and model not in reg:
        raise ConfigError(f"{source}: model '{model}' is a combination of models, defined in {_COMBINATIONS[model]}; "
                          f"load it with forecast.load_model (or import {_COMBINATIONS[model]} first).")
    if model not in reg:
        raise ConfigError(f"{source}: 'model' must be one of {', '.join(sorted(reg))}. Got {model!r} instead.")
    cls = reg[model]
    allowed = [p.name for p in cls.params]
    params = {k: v for k, v in doc.items() if k not in META_KEYS}
    if "seed" in params and "seed" not in allowed:
        from forecast.models.params import drop_seed

        params = drop_seed(f"{source} ({cls.__name__})", params)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        msgs = []
        for k in unknown:
            close = difflib.get_close_matches(k, allowed, n=1)
            msgs.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ConfigError(f"{source}: unknown key {', '.join(msgs)} for model '{model}'; "
                          f"allowed: {', '.join(META_KEYS + tuple(allowed))}.")
    # TOML arrays arrive as lists; tuple-valued hyperparameters are stored as tuples.
    for p in cls.params:
        if isinstance(p.default, tuple) and isinstance(params.get(p.name), list):
            params[p.name] = tuple(params[p.name])
    from_file = getattr(cls, "from_file_params", None)
    spec = from_file(params, load_model) if from_file is not None else cls(**params)
    try:
        spec.validate()
    except ConfigError as exc:
        raise ConfigError("\n".join(f"{source}: {line}" for line in str(exc).splitlines())) from None
    return spec


def to_toml(spec: Any, description: str = "") -> str:
    """Serialise a spec (its non-default hyperparameters included) as TOML text."""
    lines = [f"model = {_value(spec.name)}"]
    if description:
        lines.append(f"description = {_value(description)}")
    params = spec.file_params() if hasattr(spec, "file_params") else spec.get_params()
    for k, v in params.items():
        if v is None:
            continue  # TOML has no null: an absent key means the default (None)
        lines.append(f"{k} = {_value(v)}")
    return "\n".join(lines) + "\n"


def save_model(spec: Any, path: str | Path, *, description: str = "", force: bool = False) -> Path:
    """Write a spec as a TOML file that :func:`load_model` reads back to an equal spec."""
    from forecast.outputs import staged_file

    path = Path(path)
    with staged_file(path, force=force) as tmp:
        tmp.write_text(to_toml(spec, description), encoding="utf-8")
    return path


def _value(v: Any) -> str:
    import datetime as _dt

    import pandas as pd

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (pd.Timestamp, _dt.date)):
        return _value(str(pd.Timestamp(v).date()))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + "}"
    if hasattr(v, "__dataclass_fields__"):
        return _value({k: getattr(v, k) for k in v.__dataclass_fields__})
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ConfigError(f"Cannot write {v!r} to TOML.")
