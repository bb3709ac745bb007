"""Rolling-origin backtests: fit at each cutoff on data up to it, forecast, score.

At every origin (cutoff) each model is fitted only on periods ≤ cutoff (all of
them, or the last ``window``), forecasts ``horizon`` periods, and the forecasts
are scored against what was observed, right away, so that a large backtest
never holds every predictive distribution at once (``keep_pmf=False``).

With ``refit_every=k`` the parameters (and ARIMA orders) are re-estimated at
every k-th origin; at the origins between, the last fitted parameters are used
with the data up to the new cutoff (:meth:`FittedModel.update`).

Work is split into independent tasks, one per model, chunk of series and block
of ``k`` origins, so ``jobs > 1`` runs them in parallel with identical results:
every series draws from its own random stream derived from (seed, series, origin).
Each task's result is reduced to compact columns as soon as it is in and the result
frames are built once at the end (:mod:`forecast._backtest_collect`), so the main
process holds about one copy of the result, never every task's frames plus their
concatenation.
"""
from __future__ import annotations

import warnings
from pathlib import PurePath
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from forecast._backtest_block import DIAGNOSTICS, score_block  # noqa: F401 (score_block: public here)
from forecast._backtest_collect import Collector
from forecast._backtest_data import _mase_scales, _truncate  # noqa: F401 (_mase_scales: tests)
from forecast._backtest_result import BacktestResult  # noqa: F401 (public here)
from forecast._progress_tally import Tally, ticking
from forecast.adjacency import as_attr
from forecast.exceptions import ConfigError, ForecastWarning
from forecast.models.base import ModelSpec, infer_freq, warm_starting
from forecast.models.fitted import FittedModel

KEY_COLUMNS = ("country", "province", "event_type")


def _resolve_models(models: Any) -> dict[str, ModelSpec]:
    """Label -> spec from a spec, a list of specs (labelled by model name) or a dict label -> spec.

    Names are not resolved here (this module never reads spec files): the public
    ``forecast.backtest`` (:func:`forecast.pipeline.backtest`) loads them first.
    """
    if isinstance(models, ModelSpec):
        models = [models]
    items = list(models.items()) if isinstance(models, Mapping) else [(getattr(m, "name", m), m) for m in models]
    out: dict[str, ModelSpec] = {}
    for label, spec in items:
        if not isinstance(spec, ModelSpec):
            hint = (" Load spec names with forecast.load_model, or pass them to forecast.backtest."
                    if isinstance(spec, (str, PurePath)) else "")
            raise ConfigError(f"Model '{label}' is not a model spec (got {type(spec).__name__}).{hint}")
        if label in out:
            raise ConfigError(f"Model label '{label}' is used twice; pass a dict of label -> spec.")
        spec.validate()
        out[str(label)] = spec
    if not out:
        raise ConfigError("Give at least one model to backtest.")
    return out


#: Default origins by frequency: one year of periods (five for yearly data, four weeks of days).
DEFAULT_ORIGINS = {"day": 28, "week": 52, "month": 12, "quarter": 4, "year": 5}


def default_origins(freq: Any = None) -> int:
    """The number of origins when none is given: one year of the panel's periods (weekly 52,
    monthly 12, quarterly 4), 5 for yearly data and 28 for daily; 12 when ``freq`` is unknown."""
    return DEFAULT_ORIGINS.get(getattr(freq, "kind", None), 12)


def choose_origins(periods: pd.DatetimeIndex, horizon: int, *, n_origins: int | None = None,
                   origins: Sequence[Any] | None = None, step: int = 1, min_train: int = 3,
                   freq: Any = None) -> list[pd.Timestamp]:
    """Cutoffs for a rolling-origin backtest.

    Explicit ``origins`` must be period starts of the panel. Otherwise the last
    ``n_origins`` cutoffs (default :func:`default_origins` of ``freq``), ``step``
    periods apart, such that every horizon of the last origin is observed and the
    first has ``min_train`` periods. (Each model needs its own minimum, e.g. 10
    for ARIMA, and falls back below it; the backtest keeps the latest origins.)
    """
    if origins is not None:
        cut = [pd.Timestamp(o) for o in origins]
        bad = [str(c.date()) for c in cut if c not in set(periods)]
        if bad:
            raise ConfigError(f"Origins {', '.join(bad)} are not periods of the panel "
                              f"({periods[0].date()} .. {periods[-1].date()}).")
        return sorted(cut)
    n = default_origins(freq) if n_origins is None else int(n_origins)
    if n < 1 or step < 1:
        raise ConfigError(f"n_origins and step must be >= 1. Got {n_origins!r} and {step!r} instead.")
    candidates = periods[min_train - 1: len(periods) - horizon]
    if len(candidates) == 0:
        raise ConfigError(f"The panel has {len(periods)} periods: too few for horizon {horizon} "
                          f"with at least {min_train} training periods.")
    picked = list(candidates[::-1][::step][:n])[::-1]
    return [pd.Timestamp(c) for c in picked]


def backtest(panel: pd.DataFrame, models: Any, horizon: int, n_origins: int | None = None,
             origins: Sequence[Any] | None = None, step: int = 1, window: str | int = "expanding",
             refit_every: int = 1, jobs: int = 1, seed: int = 0, *, levels: Sequence[int] = (50, 80, 95),
             thresholds: Sequence[int] = (1, 5), keep_pmf: bool = True, progress: bool | None = None,
             backend: Any = None, dask: Any = None, adjacency: Any = None,
             keep_member_cells: bool = False) -> BacktestResult:
    """Rolling-origin backtest of one or more models on a long panel.

    Parameters
    ----------
    panel : ``unique_id, ds, y`` (+ keys, exogenous columns); ``build_panel`` output works.
    models : spec, list of specs (labelled by model name), or dict label -> spec. Spec names
        are resolved by ``forecast.backtest`` (:func:`forecast.pipeline.backtest`), not here.
    horizon : periods ahead forecast at every origin.
    n_origins, origins, step : how many cutoffs (the last ones, ``step`` apart) or
        which (period starts); default one year of periods (52 weekly, 12 monthly, 4
        quarterly, 5 yearly: :func:`default_origins`).
    window : ``"expanding"`` (all data ≤ cutoff) or the number of most recent periods.
    refit_every : re-estimate parameters every k origins (see module docstring).
    jobs : local worker processes (joblib/loky); results are identical to ``jobs=1``.
        Not used with ``dask``.
    seed : seed of every random stream (each series' stream at each origin is derived from
        it, see :func:`~forecast.models.series.series_rng`), so the backtest is reproducible.
    keep_pmf : keep every predictive pmf (``result.pmf``); turn off for very large runs.
    progress : show a progress bar (default: when writing to a terminal), or a ``(done, total)``
        callable: one unit per model, origin and chunk of series, combinations' members included.
    backend : a joblib backend name for ``jobs > 1`` (default ``"loky"``).
    dask : a Dask scheduler address (``"tcp://host:8786"``) or ``distributed.Client``: run the
        tasks on that cluster, whose workers then set the parallelism (``jobs`` is not used).
        Needs ``pip install "incident-forecast[dask]"`` and the same incident-forecast
        version on every worker; results are identical to a serial run. See
        :func:`forecast.parallel.run_tasks`.
    adjacency : neighbour pairs (any form :func:`~forecast.adjacency.read_adjacency` accepts)
        for the models with cross-series terms; default: the panel's (``panel.attrs``).
    keep_member_cells : for a combination that learns weights from its members' held-out
        forecasts (``auto``), also backtest its members at the internal cutoffs a fit of it on
        the whole panel uses, and keep those cells (``result.member_cells``) for that fit to
        reuse (a run's final fit does). Changes no score.
    """
    from forecast.models.base import positive_int

    if not positive_int(horizon):
        raise ConfigError(f"The horizon must be an int >= 1. Got {horizon!r} instead.")
    if not positive_int(refit_every):
        raise ConfigError(f"refit_every must be an int >= 1. Got {refit_every!r} instead.")
    if window != "expanding" and not positive_int(window):
        raise ConfigError(f"window must be 'expanding' or an int >= 1. Got {window!r} instead.")
    from forecast.models.params import check_seed

    check_seed(seed)
    specs = {k: v.clone() for k, v in _resolve_models(models).items()}
    frame = panel.copy()
    frame["ds"] = pd.to_datetime(frame["ds"])
    freq = infer_freq(panel)  # a Frequency, carried to the workers on the frame
    frame.attrs = {"freq": freq}
    adj = adjacency if adjacency is not None else panel.attrs.get("adjacency")
    if adj is not None:  # carried to every fit (PanelData.adjacency), so spatial models see it
        frame.attrs["adjacency"] = as_attr(adj)
    # The whole calendar: a period absent from every series (missing) is still a period.
    periods = freq.range(frame["ds"].min(), frame["ds"].max()) if len(frame) else pd.DatetimeIndex([])
    cutoffs = choose_origins(periods, horizon, n_origins=n_origins, origins=origins, step=step, freq=freq)
    for spec in specs.values():
        spec.check_panel(frame)  # validate once, at the edge, not at every origin
    # Exposure is known ahead; other covariates are read as the panel recorded them (oracle).
    foresight = {k: [c for c in v.required_columns() if c != getattr(v, "exposure", None)]
                 for k, v in specs.items()}
    foresight = {k: c for k, c in foresight.items() if c}
    for label, cols in foresight.items():
        warnings.warn(f"backtest of '{label}': the observed future values of {', '.join(cols)} are used at "
                      "every origin (optimistic where they would have to be forecast in a live run)",
                      ForecastWarning, stacklevel=2)
    # A combination that can assemble its backtest from its members' (``backtest_blocks``, the
    # auto model) does so; every other model runs as tasks, one per model and block of origins.
    own = {k: v for k, v in specs.items() if hasattr(v, "backtest_blocks")}
    tasks = _plan({k: v for k, v in specs.items() if k not in own}, frame, cutoffs, refit_every,
                  jobs if dask is None else 2 * max(jobs, 4))
    ctx = dict(horizon=horizon, window=window, refit_every=refit_every, seed=seed, levels=tuple(levels),
               thresholds=tuple(thresholds), keep_pmf=keep_pmf, periods=periods)
    run = dict(ctx, origins=list(cutoffs))  # (tasks also see every origin: where warm chains restart)
    # A progress callback sees one count: every (model, origin, chunk) of the tasks and the member
    # backtests of combinations (run first, so that their units are in the total early on).
    tally = Tally(progress, units := sum(len(t[2]) for t in tasks)) if callable(progress) else None
    # Blocks are reduced to compact columns as they arrive and the result frames built once, in
    # the serial order (model, then cutoff, then series: chunks are in series order).
    collect = Collector([(label, c) for label in specs for c in cutoffs], keep_pmf)
    member_cells = {}  # label -> the members' cells a combination kept for its final fit
    for label, spec in own.items():
        blocks, member_cells[label] = spec.backtest_blocks(label, frame, cutoffs, jobs=jobs, backend=backend,
                                                           dask=dask, progress=tally.part() if tally else progress,
                                                           keep_cells=keep_member_cells, **ctx)
        for n, b in enumerate(blocks):
            collect.add(label, b, (-1, n))

    def consume(i: int, blocks: list[dict]) -> None:
        for n, b in enumerate(blocks):
            collect.add(tasks[i][0], b, (i, n))

    if tasks:
        _run_tasks(tasks, run, jobs, tally.part(units) if tally else progress, backend, dask, consume)
    if tally:
        tally.finish()
    keys = [c for c in KEY_COLUMNS if c in frame.columns]
    fcs, pts, diag, pmfs = collect.result(frame.drop_duplicates("unique_id")[["unique_id", *keys]] if keys else None)
    settings = dict(horizon=horizon, origins=[str(c.date()) for c in cutoffs], step=step, window=window,
                    refit_every=refit_every, seed=seed, models={k: repr(v) for k, v in specs.items()},
                    levels=list(levels), thresholds=list(thresholds), freq=str(freq),
                    covariates_known_ahead=foresight)
    return BacktestResult(fcs, pts, diag, settings, pmfs,
                          member_cells={k: v for k, v in member_cells.items() if v is not None})


def _run_tasks(tasks, ctx, jobs, progress, backend, dask, consume) -> None:
    """``consume(i, _run_block(*tasks[i], **ctx))`` for every task as it finishes (serial, loky or Dask)."""
    from forecast.parallel import run_tasks

    run_tasks(_run_block, tasks, shared=ctx, jobs=jobs, dask=dask, backend=backend, progress=progress,
              desc="backtest", unit="fit", sizes=[len(t[2]) for t in tasks], tick="tick", consume=consume)


#: Series per task. Batched solves stay large while memory stays bounded (a task holds one
#: chunk's designs), and chunks are what parallel workers share out.
SERIES_CHUNK = 500
#: Refit blocks per warm-start chain: a model with ``warm_starts`` starts its solver at each
#: refit from the previous refit's estimates, and cold at every WARM_CHAIN-th block of the
#: backtest; tasks split origins only there, so every plan (jobs 1, jobs N, Dask) starts the
#: same fits warm and gives identical numbers.
WARM_CHAIN = 6
#: Series per task of origins for a model that is not chunked (one pooling every series): more
#: series, fewer origins per task, so that no task returns the whole backtest of a large panel at once.
POOLED_TASK_SERIES = 4000


def _splits_once(spec: ModelSpec) -> bool:
    """Whether the model fits each series on its own (so series can be chunked and the panel
    split once): true for every ModelSpec that keeps the base ``fit``. An ensemble weights
    its members by an internal backtest whose origins depend on the whole panel."""
    return type(spec).fit is ModelSpec.fit or bool(getattr(spec, "splits_once", False))


def _plan(specs: Mapping[str, ModelSpec], frame: pd.DataFrame, cutoffs: list[pd.Timestamp], refit_every: int,
          workers: int) -> list[tuple]:
    """Tasks (label, spec, cutoffs, refit offset, chunk frame), in serial order.

    Series are chunked for models that fit each series alone; blocks of ``refit_every``
    origins are grouped so that there are at least about two tasks per worker, and a
    task of more than ``POOLED_TASK_SERIES`` series covers fewer blocks. Every
    block starts with a fresh fit and every series draws from its own random stream,
    so the split changes no result.
    """
    uids = pd.unique(frame.sort_values("unique_id", kind="stable")["unique_id"])
    blocks = [cutoffs[i:i + refit_every] for i in range(0, len(cutoffs), refit_every)]
    tasks, chunks = [], {}
    for label, spec in specs.items():
        groups = _series_groups(spec, uids)
        per = max(1, min(len(blocks), -(-2 * workers // (len(specs) * len(groups))))) if workers > 1 else 1
        for ids in groups:
            # A task's result is held whole until it returns: a model that reads every series at
            # once (pooling) splits its origins when it has more than POOLED_TASK_SERIES series
            # (not one task per origin: each task rebuilds the series of the whole panel).
            size = -(-len(blocks) // max(per, min(len(blocks), -(-len(ids) // POOLED_TASK_SERIES))))
            if getattr(spec, "warm_starts", False):  # split only where a warm chain restarts
                size = -(-size // WARM_CHAIN) * WARM_CHAIN
            # One frame per chunk of series, shared by every model's tasks (a cluster gets it once).
            key = (ids[0], ids[-1], len(ids)) if len(groups) > 1 else None
            if key not in chunks:
                chunks[key] = frame[frame["unique_id"].isin(ids)] if key else frame
                chunks[key].attrs = dict(frame.attrs)
            chunk = chunks[key]
            for g in range(0, len(blocks), size):
                tasks.append((label, spec, [c for b in blocks[g:g + size] for c in b], chunk))
    return tasks


def _series_groups(spec: ModelSpec, uids: np.ndarray) -> list[np.ndarray]:
    """The series of each task of ``spec``: chunks when it fits series alone (and pools none)."""
    if _splits_once(spec) and not getattr(spec, "pools_series", False):  # pooling reads every series
        return [uids[i:i + SERIES_CHUNK] for i in range(0, len(uids), SERIES_CHUNK)]
    return [uids]


def _run_block(label: str, spec: ModelSpec, cutoffs: list[pd.Timestamp], frame: pd.DataFrame, *, horizon: int,
               window: str | int, refit_every: int, seed: int, levels: tuple, thresholds: tuple, keep_pmf: bool,
               periods: pd.DatetimeIndex, tick: Callable[[], None] | None = None,
               origins: Sequence[pd.Timestamp] | None = None) -> list[dict]:
    """Fit at every ``refit_every``-th cutoff (the first included), update between; forecast
    and score at each. ``cutoffs`` start at a refit. ``tick()`` (in this process) as each is done.

    A model with ``warm_starts`` starts each refit from the previous one, except at the first
    block of each chain of ``WARM_CHAIN`` blocks of ``origins`` (every cutoff of the backtest;
    default ``cutoffs``), which starts cold as the tasks of any plan do."""
    from forecast.models.base import PanelData
    from forecast.scoring import mase_scale

    out, fitted = [], None
    season = frame.attrs["freq"].season_length
    where = {c: n for n, c in enumerate(cutoffs if origins is None else origins)}
    warms = bool(getattr(spec, "warm_starts", False)) and warm_starting()
    full = PanelData.from_frame(frame, spec.required_columns()) if _splits_once(spec) else None
    cache: dict = {}  # (the calendars of ``full``, stacked once for every cutoff)
    obs_frame = frame[["unique_id", "ds", "y"]]
    for i, cutoff in enumerate(ticking(cutoffs, tick)):
        first = None if window == "expanding" else periods[max(0, periods.get_loc(cutoff) - int(window) + 1)]
        refit = i % refit_every == 0
        if full is not None:  # slice the series split once (no frame filtering per origin)
            data, ahead, scale = _truncate(full, cutoff, first, horizon, season, cache)
            if not data.series:
                continue
            # (a chunk may have no series yet at its first cutoffs: fit when they appear)
            if refit or fitted is None:
                chained = warms and fitted is not None and (where[cutoff] // refit_every) % WARM_CHAIN != 0
                fitted = spec.fit_data(data, warm=fitted) if chained else spec.fit_data(data)
            else:
                fitted = fitted.update_data(data)
            fut = None if not spec.required_columns() else _known_ahead(
                frame, [s.uid for s in data.series], np.array([s.ds_values[-1] for s in data.series]),
                spec.required_columns(), horizon)
            fc = fitted.forecast(horizon, seed=seed, future=fut)
            yv = ahead.ravel()
            seen = yv >= 0
            scales = np.repeat(scale, horizon)[seen]
        else:
            train = frame[frame["ds"] <= cutoff]
            if first is not None:
                train = train[train["ds"] >= first]
            train.attrs = frame.attrs
            fitted = spec.fit(train, seed=seed) if refit else fitted.update(train)
            fut = None
            if spec.required_columns():
                last = train.groupby("unique_id", sort=True)["ds"].max()
                fut = _known_ahead(frame, last.index.astype(str).tolist(), last.to_numpy(dtype="datetime64[ns]"),
                                   spec.required_columns(), horizon)
            fc = fitted.forecast(horizon, seed=seed, future=fut)
            idx = fc.index.merge(obs_frame, on=["unique_id", "ds"], how="left")
            seen = idx["y"].notna().to_numpy()
            yv = idx["y"].to_numpy(dtype=float, na_value=-1)
            by_uid = {uid: mase_scale(g["y"].to_numpy(), season) for uid, g in train.groupby("unique_id", sort=False)}
            scales = fc.index["unique_id"].map(by_uid).to_numpy(dtype=float)[seen]
        if not seen.any():
            continue
        if not seen.all():  # (a subset copies the dense pmf: skip it when every row is observed)
            fc = fc.subset(np.flatnonzero(seen))
        # (only the columns a backtest keeps, when the model reports the base diagnostics)
        diag = fitted._diagnostics(DIAGNOSTICS) if type(fitted).diagnostics is FittedModel.diagnostics \
            else fitted.diagnostics()
        out.append(score_block(label, cutoff, fc, yv[seen].astype("int64"), scales, diag,
                               levels=levels, thresholds=thresholds, keep_pmf=keep_pmf))
    return out


def _known_ahead(frame: pd.DataFrame, uids: list[str], last: np.ndarray, cols: Sequence[str],
                 horizon: int) -> pd.DataFrame:
    """Covariates (and exposure) of the ``horizon`` periods after each series' last training
    period, as the panel recorded them: a backtest knows them, a live forecast is given them.

    Periods past a series' end carry its last value forward; forecasts there are never
    observed, so never scored. Right for exposure (population is known ahead); optimistic for
    a covariate that would itself have to be forecast in a live run. ``None`` when the model reads no such column.
    """
    if not cols:
        return None
    cols = list(cols)
    ahead = frame.attrs["freq"].future(last.astype("datetime64[ns]"), horizon)
    want = pd.DataFrame({"unique_id": np.repeat(np.asarray(uids, dtype=object), horizon + 1),
                         "ds": np.concatenate([last.astype("datetime64[ns]")[:, None], ahead], axis=1).ravel()})
    known = frame[["unique_id", "ds", *cols]].assign(unique_id=frame["unique_id"].astype(str))
    got = want.merge(known, on=["unique_id", "ds"], how="left")
    got[cols] = got.groupby("unique_id", sort=False)[cols].ffill()
    return got[np.tile(np.r_[False, np.ones(horizon, dtype=bool)], len(uids))].reset_index(drop=True)
