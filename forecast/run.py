"""Moved: the run now lives in :mod:`forecast.pipeline` (``forecast.pipeline.run``).

This module only re-exports it for code that imports ``forecast.run``; the stages are in
:mod:`forecast.pipeline.stages`, the manifest in :mod:`forecast.pipeline.manifest`, the
report context in :mod:`forecast.pipeline.context` and the totals in
:mod:`forecast.pipeline.totals`.
"""
from __future__ import annotations

from forecast.pipeline.context import ACLED_CITATION, UCDP_CITATION, render_run_dir
from forecast.pipeline.runner import run

__all__ = ["run", "render_run_dir", "UCDP_CITATION", "ACLED_CITATION"]
