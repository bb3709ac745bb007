"""Run the real CLI in a process of its own, forked from a warm one: one process per case.

The hostile-input tests (``test_safety.py``, ``test_cli_fuzz.py``) need a process per case:
only a process shows a hang (it is killed at the timeout), a crash of the interpreter, an exit
code, or a stray print on the real file descriptors. Starting ``python -m forecast.cli`` each time
costs ~0.7 s of interpreter start and imports before the CLI reads a byte, and these files start
~110 of them. So a small server process (this file run as a script, one per calling thread)
imports the CLI and what its commands import once, then forks one child per case, which:

- points its file descriptors 0, 1, 2 at /dev/null and two files (not a terminal, as the pipes of
  ``capture_output`` are not),
- takes the caller's working folder and environment (at the time of the call),
- sets ``sys.argv`` and ``__main__.__package__`` as ``python -m forecast.cli ARGS`` does and runs the entry point
  :func:`forecast.cli.main` (what the console script runs),
- exits as the interpreter would: ``SystemExit`` gives the code, an uncaught exception prints its
  traceback and exits 1, ``atexit`` handlers run.

What is not re-run per case is the interpreter's start and the imports; the tests about those
(``test_cli_imports.py``, ``test_cli.py``, ``test_cli_boundary.py``) start plain subprocesses.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

#: Imported once by the server: the entry point and what its commands import on first use
#: (an import changes no behaviour here, only when its cost is paid).
PRELOAD = ("forecast.cli", "pandas", "forecast.ingest", "forecast.panel", "forecast.config", "forecast.combine",
           "forecast.backtesting", "forecast.comparison", "forecast.pipeline.runner")

_LOCAL = threading.local()


def _child(req: dict) -> None:
    """In the forked child: become ``forecast ARGV`` in the caller's folder; never returns."""
    code = 1
    try:
        import atexit
        import traceback

        os.environ.clear()
        os.environ.update(req["env"])
        for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, req["out"], os.O_WRONLY),
                               (2, req["err"], os.O_WRONLY)):
            f = os.open(path, mode)
            os.dup2(f, fd)
            os.close(f)
        os.chdir(req["cwd"])
        import forecast.cli as cli

        sys.argv = [cli.__file__, *req["argv"]]
        sys.modules["__main__"].__package__ = "forecast"  # as under `-m forecast.cli` (usage lines name it)
        try:
            if req.get("code") is None:
                cli.main()
            else:  # (the runner's own tests: a hang, a crash, an exit code)
                exec(req["code"], {"__name__": "__main__"})
            code = 0
        except SystemExit as exc:  # as the interpreter reads it
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:  # uncaught: the interpreter's traceback, exit 1
            traceback.print_exc()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        os._exit(code)


def _serve() -> None:
    """The server loop: one JSON request per line on stdin; answers ``pid N`` at once and
    ``exit C`` (as ``subprocess`` reports it: -N for signal N) when the child has ended."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        out.write(f"pid {pid}\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
        out.flush()


def _server() -> subprocess.Popen:
    srv = getattr(_LOCAL, "server", None)
    if srv is None or srv.poll() is not None:
        # unbuffered bytes: a line read never takes the next one from the pipe (select() sees it)
        srv = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               bufsize=0)
        if srv.stdout.readline().strip() != b"ready":
            raise RuntimeError("the CLI fork server did not start")
        _LOCAL.server = srv
    return srv


def run_cli(*argv: str, cwd: Path | str, timeout: float, text: bool = True,
            env: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    """``forecast ARGV`` in ``cwd`` in a forked process; like ``subprocess.run(..., capture_output=True,
    stdin=DEVNULL, timeout=timeout)``: ``subprocess.TimeoutExpired`` after ``timeout`` seconds, the
    process killed. ``code``: Python source the child runs instead of the CLI (tests of this runner)."""
    srv = _server()
    with tempfile.TemporaryDirectory(prefix="cli-out-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        out.touch()
        err.touch()
        req = {"argv": list(argv), "cwd": str(cwd), "env": dict(os.environ if env is None else env),
               "out": str(out), "err": str(err), "code": code}
        srv.stdin.write(json.dumps(req).encode() + b"\n")
        pid = int(srv.stdout.readline().split()[1])
        ready, _, _ = select.select([srv.stdout], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            srv.stdout.readline()  # its exit line
            raise subprocess.TimeoutExpired(["forecast", *argv], timeout)
        code = int(srv.stdout.readline().split()[1])
        stdout, stderr = out.read_bytes(), err.read_bytes()
    if text:
        stdout, stderr = stdout.decode(), stderr.decode()
    return subprocess.CompletedProcess(["forecast", *argv], code, stdout, stderr)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
