"""Coverage gaps: periods where the source recorded nothing at all, although it could not have been quiet.

A source that stops reporting for a period (an outage, a lost batch, a late upload)
leaves every series at 0 for that period. Counted as zeros, such a period looks like
peace; it is a missing period. A period is flagged as a *coverage gap* when its panel
total (all series summed) is 0 while a Poisson with mean equal to the median total of
the :data:`NEIGHBOURS` periods on either side gives a total of 0 a probability below
:data:`P_ZERO` — i.e. exp(−median) < 1e-6, a median above ln(1e6) ≈ 13.8 events a period.
A quiet but plausible period (neighbours with a few events) is kept as a zero.

Pure numerics on arrays (:func:`flag_gaps`) plus the frame step used by
:func:`forecast.panel.build_panel` (:func:`apply_coverage_gaps`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from forecast.exceptions import ConfigError
from forecast.periods import Frequency, parse_freq

#: Periods on either side whose totals set the expected total.
NEIGHBOURS = 4
#: A zero total less likely than this under the neighbours' median rate is a gap.
P_ZERO = 1e-6
#: At least this many neighbouring totals are needed to judge a period.
MIN_NEIGHBOURS = 2
#: What a coverage gap becomes in the panel.
MODES: tuple[str, ...] = ("missing", "zero")


def flag_gaps(totals: np.ndarray, neighbours: int = NEIGHBOURS, p_zero: float = P_ZERO) -> np.ndarray:
    """Which periods of a regular calendar are coverage gaps.

    Parameters
    ----------
    totals : the panel total of each period in calendar order (NaN: a period with no data).
    neighbours : periods on either side whose median total is the Poisson mean.
    p_zero : threshold on P(total = 0) = exp(−median).

    Returns
    -------
    numpy.ndarray
        bool, True where the total is 0 and exp(−median of the neighbours) < ``p_zero``
        (neighbours that are NaN are skipped; fewer than :data:`MIN_NEIGHBOURS`: not flagged).
    """
    t = np.asarray(totals, dtype=float)
    out = np.zeros(len(t), dtype=bool)
    for i in np.flatnonzero(t == 0):
        near = np.r_[t[max(0, i - neighbours):i], t[i + 1:i + 1 + neighbours]]
        near = near[np.isfinite(near)]
        if len(near) >= MIN_NEIGHBOURS:
            # P(0) = exp(-median): compared on the log scale (no underflow for big medians).
            out[i] = -float(np.median(near)) < np.log(p_zero)
    return out


def gap_periods(panel: pd.DataFrame, freq: Frequency | str | None = None) -> list[pd.Timestamp]:
    """The coverage gaps of a long panel (``unique_id, ds, y``; ``aggregate`` rows are not summed).

    Periods absent from the panel and counts that are NaN add nothing to a total; a
    period with no count at all is not a neighbour.
    """
    if not len(panel):
        return []
    fq = parse_freq(freq if freq is not None else panel.attrs["freq"])
    rows = panel if "aggregate" not in panel.columns else panel[~panel["aggregate"].astype(bool)]
    y = pd.to_numeric(rows["y"], errors="coerce")
    by = pd.DataFrame({"ds": pd.to_datetime(rows["ds"]), "y": y}).groupby("ds")["y"].sum(min_count=1)
    calendar = fq.range(by.index.min(), by.index.max())
    totals = by.reindex(calendar).to_numpy(dtype=float)
    return list(calendar[flag_gaps(totals)])


def apply_coverage_gaps(panel: pd.DataFrame, mode: str = "missing",
                        freq: Frequency | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Detect the coverage gaps of ``panel``; with ``mode="missing"`` set their counts to NaN.

    Returns
    -------
    (panel, gaps)
        The panel (a copy when changed; ``y`` becomes float64 with NaN there) and the gap
        periods as ISO dates (recorded whatever the mode).

    Raises
    ------
    ConfigError
        When ``mode`` is not ``"missing"`` or ``"zero"``.
    """
    if mode not in MODES:
        raise ConfigError(f"coverage_gaps must be 'missing' or 'zero'. Got {mode!r} instead.")
    gaps = gap_periods(panel, freq)
    iso = [str(g.date()) for g in gaps]
    if mode == "missing" and gaps:
        attrs = dict(panel.attrs)
        panel = panel.copy()
        hit = pd.to_datetime(panel["ds"]).isin(gaps).to_numpy()
        panel["y"] = np.where(hit, np.nan, panel["y"].to_numpy(dtype=float))
        panel.attrs = attrs
    return panel, iso


__all__: Sequence[str] = ("flag_gaps", "gap_periods", "apply_coverage_gaps", "MODES")
