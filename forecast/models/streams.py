"""Every random stream of a run, derived from the run's one seed.

The seed belongs to the run (``[run] seed``, ``seed=`` of ``forecast`` and
``backtest``), never to a model spec. Each consumer of random numbers gets its own
stream from the seed and words naming what it is for, so that adding draws in one
place never shifts the draws of another, and results do not depend on batching,
chunking or workers.
"""
from __future__ import annotations

import zlib

import numpy as np

#: Second seed word of the stream of the run's country and whole-area totals. Series
#: streams have three seed words, so no series stream can equal it. (7919, the 1000th
#: prime, was the run's totals salt before this module existed; kept so results stay
#: the same.)
TOTALS_STREAM = 7919


def series_rng(seed: int, uid: str, origin) -> np.random.Generator:
    """The random stream of one series at one forecast origin.

    Derived from (seed, series id, origin), never from batching or worker, so a
    series' draws are the same whether it is fitted alone, in a panel, or in
    another job.
    """
    day = int(np.datetime64(origin, "D").astype(np.int64))  # days since 1970-01-01, whatever the unit
    # Seed words must be >= 0: origins before 1970 wrap (no collision with any plausible later date).
    return np.random.default_rng([int(seed), zlib.crc32(uid.encode()), day % 2**32])


def totals_rng(seed: int) -> np.random.Generator:
    """The stream of the summed draws behind the run's country and whole-area totals."""
    return np.random.default_rng([int(seed), TOTALS_STREAM])
