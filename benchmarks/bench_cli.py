"""Start-up time of ``forecast --help`` vs bare interpreter start and ``import pandas``.

    source <your venv>/bin/activate
    python benchmarks/bench_cli.py [--repeats 5] [--no-importtime]

Each command runs ``--repeats`` times in a fresh subprocess (wall clock around
``subprocess.run``, output captured); best and median are printed. Target: ``forecast
--help`` <= 1 s. Peers, to show what is interpreter and import overhead: ``python -c
pass`` (bare interpreter start; with this venv's site-packages) and ``python -c "import
pandas"``, ``python -c "import typer"`` (the CLI's only heavy import by design). The
ratio line is peer / ours (< 1: ours takes longer than the peer). Then, unless
``--no-importtime``, the slowest imports under ``forecast --help`` from ``-X importtime``.
The peak RSS printed is the largest of the child processes (RUSAGE_CHILDREN). Not a test.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import children_peak_rss_mb, header, ratio_line


def timeit(cmd: list[str], repeats: int) -> tuple[float, float, int]:
    times, rc = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        rc = rc or out.returncode
    return min(times), statistics.median(times), rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-importtime", action="store_true")
    args = ap.parse_args()
    exe = shutil.which("forecast") or str(Path(sys.executable).with_name("forecast"))
    header("bench_cli: forecast --help start-up")
    print(f"console script: {exe}; interpreter: {sys.executable}; {args.repeats} runs each (fresh processes)")
    # warm the OS file cache once, untimed, so the first timed run is not a cold-disk outlier
    subprocess.run([exe, "--help"], capture_output=True)
    subprocess.run([sys.executable, "-c", "import pandas"], capture_output=True)
    cmds = {
        "forecast --help": [exe, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "python -c 'import pandas'": [sys.executable, "-c", "import pandas"],
        "python -c 'import forecast'": [sys.executable, "-c", "import forecast"],
    }
    res = {}
    for label, cmd in cmds.items():
        best, med, rc = timeit(cmd, args.repeats)
        res[label] = (best, med)
        print(f"  {label:<30} best {best * 1000:7.0f} ms   median {med * 1000:7.0f} ms"
              + (f"   (exit code {rc}!)" if rc else ""))
    ours_best, ours_med = res["forecast --help"]
    print(f"forecast --help: best {ours_best:.3f} s, median {ours_med:.3f} s (target <= 1 s: "
          f"{'met' if ours_med <= 1 else 'NOT met'})")
    for label in ("python -c pass", "python -c 'import typer'", "python -c 'import pandas'"):
        ratio_line(f"median, {label} vs forecast --help", res[label][1], ours_med)
    bare, pandas_med = res["python -c pass"][1], res["python -c 'import pandas'"][1]
    print(f"  forecast --help beyond bare interpreter start: {1000 * (ours_med - bare):.0f} ms (median); "
          f"import pandas beyond it: {1000 * (pandas_med - bare):.0f} ms")
    if not args.no_importtime:
        code = "import sys; sys.argv = ['forecast', '--help']\nfrom forecast.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
        rows = []
        for line in out.stderr.splitlines():
            if line.startswith("import time:") and "|" in line and "cumulative" not in line:
                _, cum, raw = line.split(":", 1)[1].split("|")
                depth = (len(raw) - len(raw.lstrip()) - 1) // 2  # importtime indents 2 per level
                rows.append((int(cum), "  " * depth + raw.strip()))
        top = sorted(rows, reverse=True)[:10]
        print("  slowest imports under `forecast --help` (-X importtime, cumulative, any depth; "
              "indent = nesting):")
        for cum, name in top:
            print(f"    {cum / 1000:7.1f} ms  {name}")
        loaded = {ln.split("|")[-1].strip() for ln in out.stderr.splitlines() if ln.startswith("import time:")}
        heavy = [m for m in ("pandas", "numpy", "scipy", "statsmodels", "matplotlib") if m in loaded]
        print(f"  heavy libraries imported by --help: {', '.join(heavy) if heavy else 'none'}")
    print(f"peak RSS: largest child process {children_peak_rss_mb():.0f} MB (ru_maxrss of children)")


if __name__ == "__main__":
    main()
