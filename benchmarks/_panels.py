"""Panels for the skill benchmark (``bench_skill.py``): the real surveillance panels and the
bundled simulated border log, as long ``unique_id, ds, y`` frames.

Not a benchmark itself. The real panels are not shipped with the package: they are read
from a folder given by the caller (by default ``../shared/data/surveillance`` next to the
repository), and a clear error says so when it is absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Where the real panels live relative to the repository root (the folder holding ``benchmarks/``).
RELATIVE_DATA = Path("..") / "shared" / "data" / "surveillance"


def default_data() -> Path:
    """``../shared/data/surveillance`` next to the repository; for a git worktree kept one
    level deeper (``wt/<name>``), the first such folder beside an enclosing folder."""
    root = Path(__file__).resolve().parents[1]
    for base in [root, *root.parents]:
        cand = base / RELATIVE_DATA
        if cand.is_dir():
            return cand.resolve()
    return (root / RELATIVE_DATA).resolve()


@dataclass(frozen=True)
class Panel:
    """A named long panel (``unique_id, ds, y``) and where it came from."""

    name: str
    frame: pd.DataFrame
    source: str


def read_counts(path: str | Path) -> pd.DataFrame:
    """One ``*_counts.csv`` (``date, region, count`` + extras) as ``unique_id, ds, y``.

    Covariate and bookkeeping columns (``t``, ``sts_year``, ``pop_frac``, ...) are dropped:
    the benchmark compares models on the counts alone.
    """
    raw = pd.read_csv(path)
    missing = [c for c in ("date", "region", "count") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {', '.join(missing)}; expected date, region, count.")
    out = raw.rename(columns={"date": "ds", "region": "unique_id", "count": "y"})[["unique_id", "ds", "y"]]
    out["unique_id"] = out["unique_id"].astype(str)
    out["ds"] = pd.to_datetime(out["ds"])
    return out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def real_panels(data: str | Path | None = None) -> list[Panel]:
    """Every ``*_counts.csv`` in ``data`` (default :func:`default_data`), sorted by name."""
    folder = Path(data) if data is not None else default_data()
    files = sorted(folder.glob("*_counts.csv")) if folder.is_dir() else []
    if not files:
        raise SystemExit(f"error: no *_counts.csv panels in {folder} (the real surveillance panels are not "
                         "shipped with the package). Pass --data DIR pointing at a folder of them, or "
                         "--no-real to run on the simulated border log only.")
    return [Panel(f.name.removesuffix("_counts.csv"), read_counts(f), f.name) for f in files]


def border_panel() -> Panel:
    """The bundled SIMULATED border log as a monthly panel, built as the demo builds it."""
    import warnings

    import forecast

    with warnings.catch_warnings():  # coverage notes about the sample's last days are expected
        warnings.simplefilter("ignore")
        events = forecast.load_sample("border_sim")
        frame = forecast.build_panel(events, freq="month", as_of="2025-12-31", countries=["Tajikistan"])
    return Panel("border_sim", frame[["unique_id", "ds", "y"]].reset_index(drop=True),
                 "forecast.load_sample('border_sim'), monthly, as_of 2025-12-31, Tajikistan")
