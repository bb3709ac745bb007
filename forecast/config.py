"""The run configuration (TOML) read by ``forecast run CONFIG``.

One file names everything a monthly run needs. Sections ``[data]``,
``[event_types]``, ``[models]``, ``[backtest]``, ``[forecast]``, ``[output]``,
``[run]``, ``[report]``; only ``[data] events`` (an incident log) or ``[data] panel`` (a count panel CSV) is
required, exactly one of them. The starter written by
:func:`write_starter` (``forecast/templates/config.toml``) explains every key
and states its default, which is the dataclass default below.

Validation is strict and complete: each problem (unknown section or key, with
the nearest valid name suggested; wrong type; bad choice; missing file; unknown
model spec) is one line of a single :class:`~forecast.exceptions.ConfigError`.
Relative paths are read from the config file's folder and stored absolute. A
model is a spec name (``<config folder>/models/<name>.toml`` first, then the
rules of :func:`forecast.specs.spec_path`) or a ``.toml`` path. TOML has no
null: ``""`` or ``[]`` means "not set"; :func:`config_from_dict` also takes
``None``, so ``to_dict()`` without its ``path`` entry reads back to an equal config.

CLI flags override the file (:meth:`RunConfig.with_overrides`, or
``load_config(path, overrides=...)`` which applies them before validation). Flat
names are the keys of :data:`OVERRIDES`: every ``[data]`` key, ``models``
(candidates), ``baseline``, ``selection``, ``alpha``, ``horizon`` (forecast *and*
backtest), ``backtest_horizon``, ``origins``, ``step``, ``refit_every``, ``window``,
``levels``, ``thresholds``, ``alert_probability``, ``out`` (output dir), ``force``,
``seed``, ``jobs``, ``dask``, ``quiet``. ``None`` means "flag not given"; ``models``,
``countries`` and ``provinces`` also take comma-separated text; paths in flags
are read from the working directory, as on any command line.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import importlib.resources
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from forecast._config_models import check_models, is_file, label
from forecast._config_rules import (  # noqa: F401 (_Bad, _date: re-exported for the CLI)
    _abs,
    _Bad,
    _bool,
    _date,
    _date_pair,
    _enum,
    _freq_ok,
    _int1,
    _is_int,
    _is_list,
    _is_name,
    _is_num,
    _key,
    _names,
    _PATH,
    _per_country,
    _prob,
    _rule,
    _sorted,
)
from forecast.exceptions import ConfigError
from forecast.parallel import ADDRESS_EXPECTED, is_address


@dataclass(frozen=True)
class DataSection:
    """``[data]``: the events file and how to read it into a panel (see ``read_events``, ``build_panel``),
    or a ready panel CSV (``unique_id, ds, y``; see :mod:`forecast.panel_csv`): exactly one of them.

    ``freq`` unset: monthly periods for an events file, the panel's own frequency for a panel.
    """
    events: Path | None = _key(_rule(_PATH, _is_name, _abs, unset=""), None)
    panel: Path | None = _key(_rule(_PATH, _is_name, _abs, unset=""), None)
    schema: str = _key(_enum("auto", "native", "acled", "ucdp"), "auto")
    as_of: dt.date | None = _key(_rule("a date written YYYY-MM-DD", lambda v: True, _date, unset=""), None)
    gazetteer: Path | None = _key(_rule(_PATH, _is_name, _abs, unset=""), None)
    #: neighbour pairs of the provinces (CSV; forms: forecast.adjacency), for models with neighbour terms
    adjacency: Path | None = _key(_rule(_PATH, _is_name, _abs, unset=""), None)
    #: province boundaries (GeoJSON; see forecast.boundaries): the risk map, and the neighbours
    #: (polygons sharing a border) unless ``adjacency`` is set, which then gives the neighbours
    boundaries: Path | None = _key(_rule(_PATH, _is_name, _abs, unset=""), None)
    #: the feature property holding the province name (geoBoundaries: shapeName)
    boundaries_name: str = _key(_rule("a property name in quotes", _is_name, lambda v, base: v.strip()), "shapeName")
    #: the feature property holding the country (names or ISO codes); unset: provinces matched by name
    boundaries_country: str | None = _key(_rule("a property name in quotes, or ''", _is_name,
                                                lambda v, base: v.strip(), unset=""), None)
    countries: tuple[str, ...] = _key(_names, ())
    #: keep only the events of these countries (read_events' only_countries); empty = all
    only_countries: tuple[str, ...] = _key(_names, ())
    provinces: tuple[str, ...] | dict[str, tuple[str, ...]] = _key(_rule(
        "a list of names in quotes, or a table country = [names]",
        lambda v: isinstance(v, dict) or _is_list(_is_name)(v), _per_country(_names)), ())
    freq: str = _key(_rule("'month', 'week' (weeks from Monday; 'W-SUN' etc. for another day), 'day', "
                           "'quarter' or 'year'",
                           _freq_ok, unset=""), None)
    coverage: tuple[dt.date, dt.date] | dict[str, tuple[dt.date, dt.date]] | None = _key(_rule(
        "[] or [start, end] (dates YYYY-MM-DD), or a table country = [start, end]",
        lambda v: isinstance(v, (list, dict)), _per_country(_date_pair), unset=[]), None)
    max_date_precision: str | None = _key(_enum("day", "week", "month", "year", optional=True), None)
    max_location_precision: str | None = _key(_enum("point", "admin2", "admin1", "region", "country",
                                                    optional=True), None)
    value: str = _key(_enum("events", "fatalities"), "events")
    dayfirst: bool = _key(_bool, True)
    #: a period with no event at all although its neighbours make that implausible (see
    #: forecast.coverage_gaps): "missing" (default) or kept as "zero"
    coverage_gaps: str = _key(_enum("missing", "zero"), "missing")

    @property
    def source(self) -> Path:
        """The input file: the events file or the panel CSV."""
        return self.events if self.events is not None else self.panel  # type: ignore[return-value]


@dataclass(frozen=True)
class ModelsSection:
    """``[models]``: candidates (spec names, or absolute paths of .toml specs) and how to choose."""
    candidates: tuple[str | Path, ...] = _key(_rule(
        "a non-empty list of model spec names or .toml paths", _is_list(_is_name, True),
        lambda v, base: tuple(x.strip() for x in v)), ("auto",))
    baseline: str = _key(_rule("a model spec name or .toml path in quotes", _is_name, lambda v, base: v.strip()),
                         "climatology")
    # "auto" when the candidates hold the auto model and no selection is given, else "series"
    selection: str = _key(_enum("auto", "series", "event_type", "global", "ensemble"), "auto")
    alpha: float = _key(_prob, 0.05)

    def labelled(self) -> dict[str, str | Path]:
        """Label -> spec name or path, as :func:`forecast.backtest` takes ``models``."""
        return {label(c): c for c in self.candidates}


@dataclass(frozen=True)
class BacktestSection:
    """``[backtest]``: the rolling-origin evaluation."""
    horizon: int = _key(_int1, 6)
    # Unset: one year of origins in the panel's periods (forecast.backtesting.default_origins).
    origins: int | None = _key(_rule("an int >= 1, or '' (one year of periods)", _is_int, unset=""), None)
    step: int = _key(_int1, 1)
    refit_every: int = _key(_int1, 1)
    window: str | int = _key(_rule("'expanding' or an int >= 1 (periods)",
                                   lambda v: v == "expanding" or _is_int(v)), "expanding")


@dataclass(frozen=True)
class ForecastSection:
    """``[forecast]``: what the final forecast reports."""
    horizon: int = _key(_int1, 6)
    levels: tuple[float, ...] = _key(_rule("a non-empty list of percentages between 0 and 100 (exclusive)",
                                           _is_list(lambda x: _is_num(x, 0, 100) and 0 < x < 100, True),
                                           _sorted), (50, 80, 95))
    thresholds: tuple[int, ...] = _key(_rule("a non-empty list of ints >= 1", _is_list(_is_int, True), _sorted),
                                       (1, 5))
    alert_probability: float = _key(_prob, 0.5)
    #: counts whose chance the totals give (totals.csv); [] = from the history of each total
    #: (forecast.pipeline.totals.default_thresholds)
    total_thresholds: tuple[int, ...] = _key(_rule("a list of ints >= 1, or [] (from the history of the totals)",
                                                   _is_list(_is_int), _sorted), ())


@dataclass(frozen=True)
class OutputSection:
    """``[output]``: where the report goes (default ``reports/latest`` beside the config)."""
    dir: Path = _key(_rule("a folder path in quotes", _is_name, _abs), Path("reports/latest"))
    force: bool = _key(_bool, False)


@dataclass(frozen=True)
class ReportSection:
    """``[report]``: what the report shows beyond the defaults.

    ``backtest_series``: the series (``unique_id``) drawn in ``figures/backtest.png``;
    empty (default) draws the four with the most events in the backtest window.
    """
    backtest_series: tuple[str, ...] = _key(_names, ())


@dataclass(frozen=True)
class RunSection:
    """``[run]``: reproducibility and resources.

    ``dask`` (a scheduler address) sends the backtest to that Dask cluster, whose
    workers then set the parallelism: ``jobs`` (local processes) is not used.
    """
    seed: int = _key(_rule("an int >= 0", lambda v: _is_int(v, 0)), 0)
    jobs: int = _key(_int1, 1)
    # Only the form is checked here; whether the scheduler answers is known when the run connects.
    dask: str | None = _key(_rule(f"{ADDRESS_EXPECTED}, or '' (run on this machine)", is_address,
                                  lambda v, base: v.strip(), unset=""), None)
    quiet: bool = _key(_bool, False)


SECTIONS: dict[str, type] = {"data": DataSection, "models": ModelsSection, "backtest": BacktestSection,
                             "forecast": ForecastSection, "output": OutputSection, "run": RunSection,
                             "report": ReportSection}
_ALL_SECTIONS = ("data", "event_types", *list(SECTIONS)[1:])
#: Section -> key -> checker, from the dataclass fields.
CHECKS: dict[str, dict[str, Callable]] = {
    name: {f.name: f.metadata["check"] for f in dataclasses.fields(cls)} for name, cls in SECTIONS.items()}
#: Flat override name -> (section, key) pairs it sets (CLI flags).
OVERRIDES: dict[str, tuple[tuple[str, str], ...]] = {
    **{k: (("data", k),) for k in CHECKS["data"]},
    "models": (("models", "candidates"),), "baseline": (("models", "baseline"),),
    "selection": (("models", "selection"),), "alpha": (("models", "alpha"),),
    "horizon": (("forecast", "horizon"), ("backtest", "horizon")), "backtest_horizon": (("backtest", "horizon"),),
    **{k: (("backtest", k),) for k in ("origins", "step", "refit_every", "window")},
    **{k: (("forecast", k),) for k in ("levels", "thresholds", "alert_probability")},
    "out": (("output", "dir"),), "force": (("output", "force"),),
    **{k: (("run", k),) for k in ("seed", "jobs", "dask", "quiet")},
}
_PATH_OVERRIDES = ("events", "panel", "gazetteer", "adjacency", "boundaries", "out")


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration; every path is absolute.

    ``path`` is the config file (None when built from a dict); ``base_dir`` the
    folder relative paths were read from.
    """

    data: DataSection
    event_types: dict[str, str] = field(default_factory=dict)
    models: ModelsSection = ModelsSection()
    backtest: BacktestSection = BacktestSection()
    forecast: ForecastSection = ForecastSection()
    output: OutputSection = OutputSection()
    run: RunSection = RunSection()
    report: ReportSection = ReportSection()
    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (paths and dates as strings, unset as None) for run.json."""
        out: dict[str, Any] = {"path": None if self.path is None else str(self.path)}
        for name in _ALL_SECTIONS:
            sec = getattr(self, name)
            items = sec.items() if name == "event_types" else dataclasses.asdict(sec).items()
            out[name] = {k: _plain(v) for k, v in items}
        return out

    def with_overrides(self, **flat: Any) -> RunConfig:
        """A copy with CLI flags applied (names in :data:`OVERRIDES`; ``None`` = not given)."""
        doc = self.to_dict()
        doc.pop("path")
        new = config_from_dict(_apply_overrides(doc, flat), base_dir=self.base_dir,
                               source="" if self.path is None else str(self.path))
        return dataclasses.replace(new, path=self.path)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run configuration (TOML); every problem is one line of the ConfigError.

    ``overrides`` (flat names, see :data:`OVERRIDES`) are applied before validation, so a
    flag can repair the file (e.g. ``--events`` when the file's events path is missing).
    """
    path = Path(path).expanduser().resolve()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = "not found" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
        raise ConfigError(f"Config file {path} {why}; 'forecast init' writes a commented starter.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    doc = _apply_overrides(doc, overrides or {})
    return dataclasses.replace(config_from_dict(doc, base_dir=path.parent, source=str(path)), path=path)


def _apply_overrides(doc: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in flat if k not in OVERRIDES]
    if unknown:
        raise ConfigError("\n".join(f"unknown override '{k}'{_hint(k, OVERRIDES)}; allowed: "
                                    f"{', '.join(OVERRIDES)}." for k in unknown))
    doc = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items()}
    for k, v in flat.items():
        if v is None:
            continue
        if k in _PATH_OVERRIDES and isinstance(v, (str, Path)) and str(v):
            v = Path.cwd() / Path(v).expanduser()  # a flag's path is read from where the user stands
        if k in ("models", "countries", "provinces") and isinstance(v, str):
            v = [m.strip() for m in v.split(",") if m.strip()]  # a comma-separated flag
        if k == "models":
            v = [Path.cwd() / Path(m).expanduser() if is_file(m) else m for m in v]
            models = doc.get("models")
            if isinstance(models, dict) and models.get("selection") == "auto" and "auto" not in map(str, v):
                models.pop("selection")  # --models without auto: choose among them as before
        for section, key in OVERRIDES[k]:
            if isinstance(doc.setdefault(section, {}), dict):
                doc[section][key] = _plain(v)
    return doc


def config_from_dict(doc: dict[str, Any], *, base_dir: str | Path | None = None, source: str = "") -> RunConfig:
    """Validate a parsed config (as from TOML) into a :class:`RunConfig`.

    Relative paths are read from ``base_dir`` (default: the working directory).
    """
    base = Path.cwd() if base_dir is None else Path(base_dir).expanduser().resolve()
    probs: list[str] = []
    owner = {k: s for s, keys in CHECKS.items() for k in keys}
    for key, val in doc.items():
        if key in _ALL_SECTIONS:
            if not isinstance(val, dict) and val is not None:
                probs.append(f"[{key}] must be a section (a [{key}] header followed by key = value lines).")
        elif not isinstance(val, dict):
            where = f" (did you mean [{owner[key]}] {key}?)" if key in owner else _hint(key, owner)
            probs.append(f"unknown top-level key '{key}'{where}; keys go under a section header such as [data].")
        else:
            probs.append(f"unknown section [{key}]{_hint(key, _ALL_SECTIONS, True)}; "
                         f"allowed sections: {', '.join(f'[{s}]' for s in _ALL_SECTIONS)}.")
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = doc.get(name) or {}
        table = table if isinstance(table, dict) else {}
        checks = CHECKS[name]
        kwargs: dict[str, Any] = {}
        for key, val in table.items():
            if key not in checks:
                elsewhere = f" ('{key}' belongs in [{owner[key]}])" if key in owner else ""
                probs.append(f"[{name}] unknown key '{key}'{_hint(key, checks)}{elsewhere}; "
                             f"allowed: {', '.join(checks)}.")
            elif val is not None:
                try:
                    kwargs[key] = checks[key](val, base)
                except _Bad as exc:
                    probs.append(f"[{name}] {key} must be {exc}. Got {val!r} instead.")
        built[name] = kwargs
    ev = doc.get("event_types") or {}
    if not isinstance(ev, dict) or not all(isinstance(v, str) and v.strip() for v in ev.values()):
        probs.append(f"[event_types] must map source values to event types, e.g. \"Battles\" = \"clash\". "
                     f"Got {ev!r} instead.")
        ev = {}
    event_types = {str(k): v.strip() for k, v in ev.items()}
    data = built["data"]
    given = [k for k in ("events", "panel")
             if data.get(k) is not None or any(p.startswith(f"[data] {k}") for p in probs)]
    if not given:
        probs.append("[data] events is required (or [data] panel): the incident log (CSV or Parquet), "
                     "e.g. events = \"data/border_sim_events.csv\", or a count panel CSV with columns "
                     "unique_id, ds, y, e.g. panel = \"panel.csv\".")
    elif len(given) == 2:
        probs.append("[data] events and [data] panel are both set: give one of them (events: an incident "
                     "log to count; panel: a count panel CSV), and set the other to \"\" or delete it.")
    for key in ("events", "panel", "gazetteer", "adjacency", "boundaries"):
        f = data.get(key)
        if f is not None and not f.is_file():
            probs.append(f"[data] {key}: file {f} not found (relative paths are read from {base}).")
    check_models(built["models"], base, probs, ModelsSection)
    bh, fh = built["backtest"].get("horizon", 6), built["forecast"].get("horizon", 6)
    if bh < fh:
        probs.append(f"[backtest] horizon ({bh}) must be at least [forecast] horizon ({fh}): the backtest "
                     f"chooses the model for every horizon the forecast reports.")
    if built["output"].get("dir") is None:
        built["output"]["dir"] = (base / OutputSection.dir).resolve()
    if probs:
        prefix = f"{source}: " if source else ""
        raise ConfigError("\n".join(prefix + p for p in probs))
    sections = {name: SECTIONS[name](**kw) for name, kw in built.items()}
    return RunConfig(event_types=event_types, path=None, base_dir=base, **sections)


def _hint(key: str, allowed, bracket: bool = False) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    if not close:
        return ""
    return f" (did you mean [{close[0]}]?)" if bracket else f" (did you mean '{close[0]}'?)"


def _plain(v: Any) -> Any:
    """JSON-ready: paths and dates as text, tuples as lists."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return [_plain(x) for x in v] if isinstance(v, (tuple, list)) else str(v) if isinstance(v, (Path, dt.date)) else v


def starter_text() -> str:
    """The commented starter configuration shipped in ``forecast/templates/config.toml``."""
    return (importlib.resources.files("forecast") / "templates" / "config.toml").read_text(encoding="utf-8")


def write_starter(path: str | Path, *, force: bool = False) -> Path:
    """Write the commented starter config to ``path`` (never over a file unless ``force``)."""
    from forecast.outputs import staged_file

    path = Path(path)
    with staged_file(path, force=force) as tmp:
        tmp.write_text(starter_text(), encoding="utf-8")
    return path
