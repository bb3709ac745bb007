"""The forked CLI runner of the hostile-input tests (``cli_process.py``) behaves as a fresh process.

It must report what ``subprocess.run([python, -m, forecast.cli, ...])`` reports (exit code, stdout,
stderr) and still show what only a process shows: a hang (killed at the timeout), an uncaught
exception's traceback, an exit code, ``atexit`` handlers, the caller's folder and environment.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cli_process import run_cli

EVENTS = ("event_id,date,country,province,event_type,count\n"
          "1,2024-01-05,Tajikistan,Khatlon,armed_clash,2\n2,2024-02-07,Tajikistan,Sughd,attack,1\n")


@pytest.mark.parametrize("argv", [("validate", "missing.csv"),  # an error line, exit 1
                                  ("panel", "events.csv", "--freq", "fortnight"),  # usage, exit 2
                                  ("predict", "events.csv", "-m", "climatology", "-h", "1", "-o", "f.csv")])
def test_same_exit_code_and_output_as_a_fresh_interpreter(tmp_path, argv):
    results = []
    for how in ("fork", "subprocess"):
        folder = tmp_path / how
        folder.mkdir()
        (folder / "events.csv").write_text(EVENTS)
        if how == "fork":
            proc = run_cli(*argv, cwd=folder, timeout=60)
        else:
            proc = subprocess.run([sys.executable, "-m", "forecast.cli", *argv], cwd=folder, capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL)
        files = sorted(p.name for p in folder.iterdir())
        results.append((proc.returncode, proc.stdout.replace(str(folder), "<dir>"),
                        proc.stderr.replace(str(folder), "<dir>"), files))
    assert results[0] == results[1]


def test_a_hang_is_killed_at_the_timeout(tmp_path):
    t = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli(cwd=tmp_path, timeout=1, code="import time\ntime.sleep(60)")
    assert time.perf_counter() - t < 30
    # the runner still works after a kill
    assert run_cli(cwd=tmp_path, timeout=30, code="import sys\nsys.exit(5)").returncode == 5


def test_exits_as_the_interpreter_does(tmp_path):
    crash = run_cli(cwd=tmp_path, timeout=30, code="raise ValueError('boom')")
    assert crash.returncode == 1 and "Traceback" in crash.stderr and "ValueError: boom" in crash.stderr
    msg = run_cli(cwd=tmp_path, timeout=30, code="import sys\nsys.exit('went wrong')")
    assert (msg.returncode, msg.stderr) == (1, "went wrong\n")
    assert run_cli(cwd=tmp_path, timeout=30, code="import os, signal\nos.kill(os.getpid(), signal.SIGTERM)"
                   ).returncode == -15
    out = run_cli(cwd=tmp_path, timeout=30, code="import atexit, sys\natexit.register(lambda: print('bye'))\n"
                                                 "print('hi')\nprint('err', file=sys.stderr)")
    assert (out.returncode, out.stdout, out.stderr) == (0, "hi\nbye\n", "err\n")


def test_takes_the_callers_folder_environment_and_no_terminal(tmp_path):
    code = ("import os, sys\nprint(os.getcwd())\nprint(os.environ.get('CLI_PROCESS_PROBE'))\n"
            "print(sys.stdin.read() == '', sys.stdout.isatty(), sys.stderr.isatty())")
    proc = run_cli(cwd=tmp_path, timeout=30, env={**os.environ, "CLI_PROCESS_PROBE": "x1"}, code=code)
    assert proc.stdout.splitlines() == [str(tmp_path), "x1", "True False False"]
