"""``run.json``: what a run read, with which packages and settings, what it warned about, how long it took."""
from __future__ import annotations

import hashlib
import platform
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from forecast._version import __version__


class Timer:
    """Wall-clock seconds per stage: ``with timer("backtest"): ...`` records ``timings["backtest"]``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t, 3)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(cfg, events, panel, diag, warned: list[str], timer: Timer, t_start: float,
             selection=None) -> dict:
    """The run's manifest (``run.json``): resolved config, input hashes, package versions, seed, fallbacks,
    pool weights (``w_<member>`` columns of ``selection``), warnings and timings."""
    import importlib.metadata as md

    from forecast.parallel import backend_name

    inputs = [Path(cfg.data.source)] + ([Path(cfg.data.gazetteer)] if cfg.data.gazetteer else [])
    if cfg.path is not None:
        inputs.append(Path(cfg.path))
    pkgs = {}
    backend = backend_name(cfg.run.jobs, cfg.run.dask)
    extra = {"loky": ("joblib",), "dask": ("dask", "distributed")}.get(backend, ())
    for name in ("incident-forecast", "numpy", "scipy", "pandas", "statsmodels", "matplotlib", "jinja2", *extra):
        try:
            pkgs[name] = md.version(name)
        except md.PackageNotFoundError:
            pkgs[name] = None
    fallbacks = diag.loc[diag["fallback"] != "none", ["unique_id", "model", "fallback", "reason"]]
    # Series whose final forecast means hit the mean cap (a multiple of the largest count seen).
    capped = diag.loc[diag["mean_capped"].fillna(False).astype(bool), "unique_id"] if "mean_capped" in diag else []
    return {
        "tool": f"incident-forecast {__version__}",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "config": cfg.to_dict(),
        "inputs": {str(p): sha256(p) for p in inputs if p.exists()},
        "packages": pkgs,
        "python": platform.python_version(),
        "seed": cfg.run.seed,
        # Where the backtest ran; results do not depend on it. With dask, jobs is not used.
        "execution": {"backend": backend, "jobs": None if backend == "dask" else cfg.run.jobs,
                      "dask": cfg.run.dask},
        "ingest": {k: v for k, v in events.attrs.get("ingest", {}).items() if k != "warnings"},
        "coverage": panel.attrs.get("coverage", {}),
        # Periods with no event at all where the neighbours made that implausible, and what they became.
        "coverage_gaps": {"periods": list(panel.attrs.get("coverage_gaps", [])), "treated_as": cfg.data.coverage_gaps},
        "fallbacks": fallbacks.to_dict("records"),
        "mean_capped": sorted(map(str, capped)),
        "pool_weights": pool_weights(selection),
        "warnings": list(dict.fromkeys(warned)),
        "timings_s": {**timer.timings, "total": round(time.perf_counter() - t_start, 3)},
    }


def pool_weights(selection) -> dict:
    """The pool weights of the series that use a combination (``w_<member>`` columns): the
    members, their mean weight, and each series' weights (rounded to 1e-4)."""
    if selection is None:
        return {}
    cols = [c for c in selection.columns if c.startswith("w_")]
    rows = selection.dropna(subset=cols, how="all") if cols else selection.iloc[:0]
    if rows.empty:
        return {}
    w = rows[cols].fillna(0.0)
    return {"members": [c[2:] for c in cols],
            "mean": {c[2:]: round(float(v), 4) for c, v in w.mean().items()},
            "by_series": {str(u): [round(float(x), 4) for x in r] for u, r in zip(rows["unique_id"], w.to_numpy())}}
