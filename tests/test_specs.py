"""TOML model specs: strict loading, resolution, round trip."""
from __future__ import annotations

from pathlib import Path

import pytest

import forecast
from forecast import ConfigError
from forecast.models import Climatology
from forecast.combine import load_model  # the public loader: also knows combinations (ensemble)
from forecast.specs import available_models, save_model, spec_from_dict, to_toml

BUNDLED = sorted(p.stem for p in (Path(forecast.__file__).parent / "_models").glob("*.toml"))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_spec_loads_validates_and_has_a_comment(name):
    spec = load_model(name)
    spec.validate()
    text = (Path(forecast.__file__).parent / "_models" / f"{name}.toml").read_text()
    assert text.startswith("#"), "each spec file starts with a comment on what it is for"
    assert available_models()[name]


def test_name_resolves_to_models_folder_and_path_works(tmp_path, monkeypatch):
    assert load_model("climatology") == Climatology()  # window: 3 years of the panel (issue 12)
    f = tmp_path / "mine.toml"
    f.write_text('model = "climatology"\nwindow = 12\n')
    assert load_model(f) == Climatology(window=12)
    # a project's own models/ folder wins over the bundled specs
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "climatology.toml").write_text('model = "climatology"\nwindow = 7\n')
    assert load_model("climatology").window == 7


def test_unknown_key_names_it_and_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        spec_from_dict({"model": "climatology", "windows": 3}, source="x.toml")
    msg = str(err.value)
    assert "unknown key 'windows' (did you mean 'window'?)" in msg and "allowed: model, description, window" in msg


def test_unknown_model_and_bad_values():
    with pytest.raises(ConfigError, match="'model' must be one of"):
        spec_from_dict({"model": "prophet"})
    with pytest.raises(ConfigError, match="x.toml: The 'window' parameter of Climatology must be an int >= 1"):
        spec_from_dict({"model": "climatology", "window": 0}, source="x.toml")
    with pytest.raises(ConfigError, match="No model spec named 'climatolgy'. Did you mean 'climatology'"):
        load_model("climatolgy")


def test_invalid_toml_is_a_config_error(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_model(f)


def test_save_and_load_round_trip(tmp_path):
    spec = Climatology(window=9)
    path = save_model(spec, tmp_path / "best.toml", description="winner of the backtest")
    assert load_model(path) == spec
    assert 'description = "winner of the backtest"' in path.read_text()
    with pytest.raises(forecast.OutputExistsError):
        save_model(spec, path)
    assert to_toml(spec).startswith('model = "climatology"')


def test_public_functions_are_not_shadowed_by_submodules():
    import importlib

    import forecast

    for mod in ("forecast.run", "forecast.backtesting", "forecast.interventions", "forecast.cli"):
        importlib.import_module(mod)  # importing a submodule sets an attribute on the package
    for name in ("backtest", "effects", "read_events", "build_panel", "load_model", "load_sample"):
        assert callable(getattr(forecast, name)), name


def test_the_low_level_loader_names_the_public_one_for_combinations(tmp_path):
    """specs sits below combine (layering): asked for an ensemble in a fresh process, it says where to go."""
    import subprocess
    import sys

    code = ("from forecast.specs import load_model\n"
            "try:\n    load_model('ensemble')\nexcept Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ConfigError") and "forecast.load_model" in out
