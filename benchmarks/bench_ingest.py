"""Ingest + panel of 1,000,000 native events: wall time and peak memory.

Target (Foundation issue): <= 10 s and <= 2 GB on 2 cores. Not a test.

    python benchmarks/bench_ingest.py [--rows 1000000]

The events file is generated first (not timed): random dates over 2000-2025,
the 5 Tajik units + 34 Afghan provinces with a mix of spellings (aliases,
Cyrillic, UCDP-style "X province") so the gazetteer does real work, three
event types, counts 1-3. Then one fresh process times read_events + build_panel
and reports its peak resident memory (ru_maxrss), which includes the Python
interpreter and the imported libraries.

Peer, measured in the same run in its own fresh process on the same file: plain
``pandas.read_csv`` (default C engine, no validation, no name normalisation) +
``groupby(country, province, month)["count"].sum()`` zero-filled into a long monthly
panel -- the floor of what a no-checks pipeline costs. Prints the ratio peer / ours
and both processes' peak RSS.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import machine_line, ratio_line


def make_events(n: int, path: Path, seed: int = 0) -> None:
    from forecast.gazetteer import Gazetteer

    rng = np.random.default_rng(seed)
    table = Gazetteer.default().table
    table = table[table["country"].isin(["Tajikistan", "Afghanistan"])]
    names = table[["country", "alias"]].drop_duplicates().to_numpy()
    pick = rng.integers(0, len(names), n)
    days = rng.integers(0, (pd.Timestamp("2025-12-31") - pd.Timestamp("2000-01-01")).days + 1, n)
    dates = (np.datetime64("2000-01-01") + days.astype("timedelta64[D]")).astype(str)
    frame = pd.DataFrame({
        "event_id": np.char.add("E", np.arange(n).astype(str)),
        "date": dates,
        "country": names[pick, 0],
        "province": names[pick, 1],
        "event_type": rng.choice(["clash", "attack", "seizure"], n),
        "count": rng.integers(1, 4, n),
        "fatalities": rng.poisson(0.5, n),
    })
    frame.to_csv(path, index=False)


CHILD = r"""
import json, resource, sys, time, warnings
t0 = time.perf_counter()
import forecast
from forecast import read_events, build_panel
t1 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ev = read_events(sys.argv[1], as_of="2026-01-01")
    t2 = time.perf_counter()
    panel = build_panel(ev, "month", as_of="2025-12-31")
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "read_validate_s": t2 - t1, "panel_s": t3 - t2,
                  "total_s": t3 - t1, "rows": len(ev), "series": int(panel["unique_id"].nunique()),
                  "panel_rows": len(panel), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PEER_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
t1 = time.perf_counter()
ev = pd.read_csv(sys.argv[1])
t2 = time.perf_counter()
month = pd.to_datetime(ev["date"], format="%Y-%m-%d").dt.to_period("M").dt.to_timestamp()
wide = ev.groupby(["country", "province", month])["count"].sum().unstack(fill_value=0)
panel = wide.stack().rename("y").reset_index()
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "read_s": t2 - t1, "panel_s": t3 - t2, "total_s": t3 - t1,
                  "rows": len(ev), "series": len(wide), "panel_rows": len(panel),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.csv"
        t = time.perf_counter()
        make_events(args.rows, path)
        print(f"generated {args.rows:,} events ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        print(f"   {machine_line()}")
        res = _child(CHILD, path)
        peer = _child(PEER_CHILD, path)
    print(f"read + validate: {res['read_validate_s']:.2f} s")
    print(f"panel:           {res['panel_s']:.2f} s  ({res['series']} series, {res['panel_rows']:,} rows)")
    print(f"total:           {res['total_s']:.2f} s  (target <= 10 s)   [import {res['import_s']:.2f} s not counted]")
    print(f"peak RSS:        {res['peak_rss_mb']:.0f} MB (target <= 2048 MB)")
    print(f"peer (pandas.read_csv C engine + groupby sum, no validation/normalisation, own process): "
          f"read {peer['read_s']:.2f} s, panel {peer['panel_s']:.2f} s ({peer['series']} series -- raw "
          f"spellings, not merged -- {peer['panel_rows']:,} rows), total {peer['total_s']:.2f} s "
          f"[import {peer['import_s']:.2f} s not counted]")
    ratio_line("ingest + panel", peer["total_s"], res["total_s"])
    print(f"peak RSS (per process, ru_maxrss, incl. interpreter and libraries): ours {res['peak_rss_mb']:.0f} MB, "
          f"peer {peer['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
