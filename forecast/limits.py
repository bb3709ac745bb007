"""The ranges every input must lie in, declared once (no imports: the CLI and config use them).

Counts beyond these are typing or export errors, and anything past 2**63 would
wrap around in int64; dates outside pandas' nanosecond timestamps cannot be
represented at all.
"""
from __future__ import annotations

import datetime as dt

#: Largest ``count`` or ``fatalities`` one event row may carry.
MAX_EVENT_COUNT = 10**7
#: Largest ``y`` a panel may hold for one series and period.
MAX_PANEL_COUNT = 10**9
#: First and last dates supported (pandas' datetime64[ns] range, whole days).
FIRST_DATE = dt.date(1678, 1, 1)
LAST_DATE = dt.date(2262, 4, 11)
DATE_RANGE_TEXT = f"{FIRST_DATE} to {LAST_DATE}"
