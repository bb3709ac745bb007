"""The CLI's error boundary: exit codes, no traceback, no hang, warnings as they occur, no orphans.

Most checks run the CLI in a subprocess with a timeout: an in-process runner can
see neither a hang nor what a signal does.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from forecast._boundary import WarningPrinter, crash_log_path, escape, printing_warnings
from forecast.exceptions import ForecastWarning
from forecast.parallel import run_tasks

DEMO = str(Path(__file__).resolve().parents[1] / "forecast" / "templates" / "demo.toml")
HEADER = "event_id,date,country,province,event_type,count\n"


def cli(*args: str, timeout: float = 60, code: str | None = None, **kw) -> subprocess.CompletedProcess:
    """Run ``forecast ARGS`` (or the Python ``code`` ending in ``main()``) in a subprocess."""
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "forecast.cli"]
    if "stdout" not in kw:
        kw["capture_output"] = True
    return subprocess.run(cmd + list(args), text=True, timeout=timeout, **kw)


def test_huge_count_exits_instead_of_looping_on_its_own_warning(tmp_path):
    # 1e300 makes numpy warn while the file is read; re-showing recorded warnings inside the
    # recording block appended to the list being iterated: the command never ended.
    f = tmp_path / "big.csv"
    f.write_text(HEADER + "1,2024-01-05,Tajikistan,Khatlon,armed_clash,1e300\n")
    proc = cli("validate", str(f), timeout=30)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    assert all(ln.startswith(("error:", "warning:")) for ln in proc.stderr.splitlines()), proc.stderr


def test_warning_printer_prints_each_message_once_on_one_escaped_line():
    out = io.StringIO()
    show = WarningPrinter(stream=out)
    for _ in range(3):
        show(ForecastWarning("province 'Kha\nerror: forged\x1b[31m' has no events"), ForecastWarning, "f.py", 1)
    show(RuntimeWarning("overflow encountered in exp\nsecond line"), RuntimeWarning, "g.py", 2)
    show(RuntimeWarning("overflow encountered in exp\nsecond line"), RuntimeWarning, "g.py", 9)
    assert out.getvalue().splitlines() == [
        "warning: province 'Kha\\nerror: forged\\x1b[31m' has no events",
        "warning: RuntimeWarning: overflow encountered in exp"]
    quiet = io.StringIO()
    WarningPrinter(quiet=True, stream=quiet)(ForecastWarning("x"), ForecastWarning, "f.py", 1)
    assert quiet.getvalue() == ""


def test_escape_keeps_letters_of_any_script_and_escapes_what_a_terminal_acts_on():
    assert escape("Хатлон\tSughd\r\n\x00\u2028é") == "Хатлон\\tSughd\\r\\n\\x00\\u2028é"


def test_validate_shows_a_province_with_a_newline_escaped(tmp_path):
    f = tmp_path / "nl.csv"
    f.write_bytes((HEADER + '1,2024-01-05,Tajikistan,"Kha\nerror: forged",armed_clash,1\n').encode())
    proc = cli("validate", str(f), timeout=60)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr
    assert not any(ln.startswith("error: forged") for ln in proc.stderr.splitlines()), proc.stderr
    assert all(ln.startswith(("error:", "warning:")) for ln in proc.stderr.splitlines()), proc.stderr


@pytest.mark.slow(10)
def test_a_warning_raised_inside_run_is_shown_when_raised_once_and_recorded(tmp_path):
    # as_of mid-month: the panel warns that the last month is incomplete and dropped. It must be
    # shown once, as soon as it is raised (so before "report:"), and be listed in run.json.
    cfg = tmp_path / "c.toml"
    events = tmp_path / "ev.csv"
    rows = [f"{i},{2023 + (i // 12)}-{i % 12 + 1:02d}-10,Tajikistan,Khatlon,armed_clash,{i % 3}" for i in range(36)]
    events.write_text(HEADER + "\n".join(rows) + "\n")
    cfg.write_text(textwrap.dedent(f"""
        [data]
        events = "{events.as_posix()}"
        as_of = "2025-12-15"
        [models]
        candidates = ["climatology"]
        baseline = "climatology"
        [backtest]
        horizon = 2
        origins = 2
        [forecast]
        horizon = 2
    """))
    out = tmp_path / "run"
    # one stream, so the order of stdout and stderr lines is the order they were written in
    proc = cli("run", str(cfg), "--out", str(out), timeout=120, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    warn = [ln for ln in lines if ln.startswith("warning:")]
    assert any("only covered up to 2025-12-15" in w for w in warn), proc.stdout
    assert len(warn) == len(set(warn)), proc.stdout
    # shown when raised (building the panel), not held back until the run is over
    panel = next(i for i, ln in enumerate(lines) if ln.startswith("panel:"))
    assert all(i < panel for i, ln in enumerate(lines) if ln.startswith("warning:")), proc.stdout
    recorded = json.loads((out / "run.json").read_text())["warnings"]
    assert any("only covered up to 2025-12-15" in w for w in recorded)
    assert set(recorded) <= {w[len("warning: "):] for w in warn}


CRASH = """
import sys
import forecast.ingest
def boom(*a, **k):
    raise KeyError("boom\\nsecond line")
forecast.ingest.read_events = boom
from forecast.cli import main
sys.argv[0] = "forecast"
main()
"""


def test_an_internal_error_exits_3_with_one_line_and_a_crash_log(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(HEADER)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = cli("validate", str(f), code=CRASH, env=env)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    m = re.fullmatch(r"error: internal error \(KeyError: 'boom\\nsecond line'\); details in (.+)", lines[0])
    assert m, lines[0]
    log = Path(m[1])
    assert log.parent == tmp_path / "incident-forecast"
    assert re.fullmatch(r"crash-\d{8}T\d{6}Z-\d+\.log", log.name)
    text = log.read_text()
    from forecast import __version__

    assert __version__ in text and "validate" in text and str(f) in text
    assert "Traceback" in text and "in boom" in text


def test_debug_shows_the_traceback_instead_still_exit_3(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(HEADER)
    proc = cli("--debug", "validate", str(f), code=CRASH, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr and "in boom" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: internal error (KeyError")
    assert not (tmp_path / "incident-forecast").exists()


def test_crash_log_path_is_utc_stamped_per_process():
    p = crash_log_path(0)
    assert p.name == f"crash-19700101T000000Z-{os.getpid()}.log"


def test_a_missing_file_is_one_line_exit_1(tmp_path):
    proc = cli("validate", str(tmp_path / "nope.csv"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "nope.csv" in proc.stderr


def test_undecodable_bytes_are_input_errors_not_bugs(tmp_path):
    # report_context.json is read without a check of its own: the boundary is the net
    run = tmp_path / "run"
    run.mkdir()
    # Marked as ours, so the ownership check lets 'report' read the broken context.
    (run / ".incident-forecast.json").write_text('{"tool": "incident-forecast", "command": "run"}')
    (run / "report_context.json").write_bytes(b"\xff\xfe{not json")
    proc = cli("report", str(run))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "decode" in proc.stderr


@pytest.mark.parametrize("args", [["predict", "x.csv", "-m", "climatology", "-o", "o.csv", "--seed", "-1"],
                                  ["backtest", "x.csv", "-o", "bt", "--seed", "-1"],
                                  ["run", "c.toml", "--seed", "-1"]])
def test_negative_seed_is_a_usage_error(args, tmp_path):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and "--seed" in proc.stderr and "Traceback" not in proc.stderr


def test_as_of_is_checked_like_the_config(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text(HEADER + "1,2024-01-05,Tajikistan,Khatlon,armed_clash,1\n")
    proc = cli("validate", str(f), "--as-of", "2025-02-30")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--as-of" in proc.stderr and "YYYY-MM-DD" in proc.stderr and "2025-02-30" in proc.stderr
    ok = cli("validate", str(f), "--as-of", "2025-02-28")
    assert ok.returncode == 0, ok.stderr


def _staging(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_exits_with_its_code_and_leaves_no_staging(sig, code, tmp_path):
    out = tmp_path / "r"
    # SIGINT's Python handler is reinstated: a shell may start background jobs with SIGINT ignored.
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'forecast'; from forecast.cli import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", start, "run", DEMO, "--out", str(out), "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _staging(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert _staging(tmp_path), "the run never started writing"
        time.sleep(1.0)  # into the backtest, with worker processes busy
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.splitlines()[-1] in ("error: terminated", "error: interrupted")
    assert _staging(tmp_path) == [] and not out.exists()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited; only its reaper is missing
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


ORPHAN = """
import os, sys, time
from forecast.parallel import run_tasks

def sleepy(folder, i):
    open(os.path.join(folder, f"{os.getpid()}.pid"), "w").close()
    time.sleep(120)

run_tasks(sleepy, [(sys.argv[1], i) for i in range(2)], jobs=2, progress=False)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_do_not_outlive_a_killed_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN, str(tmp_path)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
        workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert len(workers) == 2, parent.stderr.read() if parent.poll() is not None else "workers never started"
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in workers if _alive(pid)]
    finally:
        if parent.poll() is None:
            parent.kill()
    for pid in left:  # don't leave them behind for the rest of the suite either
        os.kill(pid, signal.SIGKILL)
    assert left == [], "worker processes outlived their killed parent"


def _task_warnings(**how) -> list[tuple[str, str]]:
    # warnings.warn itself is the task: a builtin, so it pickles to any worker process.
    tasks = [("first", ForecastWarning), ("overflow", RuntimeWarning), ("first", ForecastWarning)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_tasks(warnings.warn, tasks, progress=False, **how) == [None, None, None]
    return [(w.category.__name__, str(w.message)) for w in caught]


def test_warnings_raised_in_worker_processes_reach_the_parent_as_in_a_serial_run():
    serial = _task_warnings()
    assert serial == [("ForecastWarning", "first"), ("RuntimeWarning", "overflow"), ("ForecastWarning", "first")]
    assert _task_warnings(jobs=2) == serial


def test_jobs_2_prints_what_jobs_1_prints(capsys):
    printed = []
    for jobs in (1, 2):
        with printing_warnings():
            run_tasks(warnings.warn, [("Khatlon: no events", ForecastWarning), ("overflow", RuntimeWarning)],
                      jobs=jobs, progress=False)
        printed.append(capsys.readouterr().err)
    assert printed[0] == printed[1] == "warning: Khatlon: no events\nwarning: RuntimeWarning: overflow\n"


def test_a_config_nested_too_deep_for_the_parser_is_an_input_error(tmp_path):
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "\n")
    proc = cli("run", "deep.toml", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: deep.toml: ") and "internal error" not in proc.stderr
