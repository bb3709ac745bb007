"""Parallel and distributed execution: same results serially, with jobs=2 and on a Dask cluster.

One local Dask cluster (two worker processes on loopback) serves the whole module:
starting one costs a few seconds.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast
from forecast import ConfigError
from forecast import parallel
from forecast.cli import app
from forecast.parallel import check_address, is_address, run_tasks

runner = CliRunner()
import distributed  # noqa: E402  (in the [test] extra: a missing install must fail, not skip)

PROVINCES = ["Khatlon", "Sughd"]


def _events() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = forecast.load_sample("border_sim")
    return ev[ev["province"].isin(PROVINCES) & (ev["date"] >= "2019-01-01")]


@pytest.fixture(scope="module")
def cluster():
    """Address of a two-process Dask cluster on loopback, shut down after the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "port in use, using another": not our concern here
        lc = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                      dashboard_address=None)
    try:
        yield lc.scheduler_address
    finally:
        lc.close()


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Six series (two provinces x three event types), 2019-2025: small but real."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return forecast.build_panel(_events(), "month", as_of="2025-12-31")


def models() -> dict:
    # Lags make the GLMs forecast by simulated sample paths, so the per-series random
    # streams are exercised: a stream tied to the worker or batch would show here.
    return {"climatology": "climatology",
            "negbin_glm": forecast.load_model("negbin_glm").set_params(lags=(1,), n_paths=200),
            "poisson_glm": forecast.load_model("poisson_glm").set_params(lags=(1,), n_paths=200)}


SETTINGS = dict(horizon=3, n_origins=5, refit_every=2, seed=11, progress=False)


@pytest.fixture(scope="module")
def serial(panel):
    return forecast.backtest(panel, models(), **SETTINGS)


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts, check_exact=True)
    pd.testing.assert_frame_equal(a.point_scores, b.point_scores, check_exact=True)
    pd.testing.assert_frame_equal(a.diagnostics, b.diagnostics, check_exact=True)
    assert np.array_equal(a.pmf, b.pmf)
    assert a.settings == b.settings


def test_the_models_draw_random_paths(panel, serial):
    # Guards the tests below: with another seed the simulated forecasts must change,
    # or "identical to serial" would not test the random streams at all.
    other = forecast.backtest(panel, {k: v for k, v in models().items() if k == "poisson_glm"},
                              **{**SETTINGS, "seed": 12})
    mine = serial.forecasts[serial.forecasts["model"] == "poisson_glm"].reset_index(drop=True)
    assert len(serial.settings["origins"]) == 5 and len(mine) == len(other.forecasts)
    assert not np.allclose(mine["mean"], other.forecasts["mean"])


def test_jobs_2_equals_serial(panel, serial):
    assert_same(serial, forecast.backtest(panel, models(), jobs=2, **SETTINGS))


def test_dask_cluster_equals_serial(panel, serial, cluster):
    assert_same(serial, forecast.backtest(panel, models(), dask=cluster, **SETTINGS))


def test_dask_with_many_chunks_equals_serial(panel, serial, cluster, monkeypatch):
    # Chunks of two series: each model runs as several tasks that finish in any order on the
    # cluster, and their blocks must still come back in the serial order with the same values.
    from forecast import backtesting

    monkeypatch.setattr(backtesting, "SERIES_CHUNK", 2)
    monkeypatch.setattr(backtesting, "POOLED_TASK_SERIES", 2)  # climatology (pooled) splits its origins
    chunked = forecast.backtest(panel, {"climatology": "climatology"}, dask=cluster, **SETTINGS)
    mine = serial.forecasts["model"] == "climatology"
    # (a subset keeps every category of the full result: the categories in use are compared)
    sub = serial.forecasts[mine].reset_index(drop=True)
    for c in sub.select_dtypes("category").columns:
        sub[c] = sub[c].cat.remove_unused_categories()
    pd.testing.assert_frame_equal(chunked.forecasts, sub, check_exact=True)
    assert_same(forecast.backtest(panel, models(), **SETTINGS), forecast.backtest(panel, models(), dask=cluster,
                                                                                  **SETTINGS))


def test_dask_ignores_jobs_and_leaves_a_given_client_open(panel, serial, cluster):
    with distributed.Client(cluster, set_as_default=False) as client:
        res = forecast.backtest(panel, models(), jobs=3, dask=client, **SETTINGS)
        assert client.status == "running"  # a client we did not create is not ours to close
        assert client.submit(sum, [1, 2]).result() == 3
    assert_same(serial, res)


@pytest.mark.parametrize("how", [dict(), dict(jobs=2), dict(dask=True)])
def test_run_tasks_returns_results_in_task_order(how, cluster):
    how = {**how, "dask": cluster} if how.get("dask") else how
    tasks = [(format(i, "x"),) for i in range(40)]
    assert run_tasks(int, tasks, shared={"base": 16}, **how) == list(range(40))
    assert run_tasks(int, [], **how) == []


@pytest.mark.parametrize("how", [dict(), dict(jobs=2), dict(dask=True)])
def test_run_tasks_hands_each_result_to_consume_as_it_finishes(how, cluster):
    import time

    how = {**how, "dask": cluster} if how.get("dask") else how
    got = []
    # The first task is the slowest: on the cluster the others are handed on before it.
    out = run_tasks(time.sleep, [(1.0,), (0.0,), (0.0,)], consume=lambda i, r: got.append((i, r)), **how)
    assert out is None and sorted(got) == [(0, None), (1, None), (2, None)]
    if how.get("dask"):
        assert got[-1][0] == 0, got
    else:  # (here and with joblib: in task order)
        assert [i for i, _ in got] == [0, 1, 2]


def test_data_arguments_are_scattered_once_however_many_tasks_share_them():
    class Client:
        def __init__(self):
            self.sent = []

        def scatter(self, data, hash=True):
            self.sent.append(data)
            return [f"future-{i}" for i in range(len(data))]

    chunk_a, chunk_b = pd.DataFrame({"y": [1]}), pd.DataFrame({"y": [2]})
    client = Client()
    tasks = parallel._scatter_args(client, [("m1", chunk_a), ("m2", chunk_a), ("m1", chunk_b)])
    assert len(client.sent) == 1 and len(client.sent[0]) == 2  # two frames, one call
    assert tasks == [("m1", "future-0"), ("m2", "future-0"), ("m1", "future-1")]
    assert parallel._scatter_args(client, [(1,), ("a",)]) == [(1,), ("a",)] and len(client.sent) == 1


def test_a_task_error_reaches_the_caller_as_raised(cluster):
    with pytest.raises(ValueError, match="invalid literal"):
        run_tasks(int, [("1",), ("not a number",), ("3",)], dask=cluster)


def test_progress_bar_is_shown_only_when_asked(capsys):
    run_tasks(abs, [(-1,), (2,)], progress=True, desc="fitting", unit="fit")
    assert "fitting" in capsys.readouterr().err
    run_tasks(abs, [(-1,), (2,)], progress=False, desc="fitting")
    assert "fitting" not in capsys.readouterr().err


def test_serial_runs_import_neither_joblib_nor_dask():
    code = ("import sys, forecast\n"
            "from forecast.parallel import run_tasks\n"
            "assert run_tasks(abs, [(-1,), (2,)], progress=False) == [1, 2]\n"
            "assert not {'joblib', 'dask', 'distributed'} & set(sys.modules), sorted(sys.modules)\n"
            "import forecast.cli, forecast.config\n"
            "assert not {'joblib', 'dask', 'distributed'} & set(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("good", ["tcp://127.0.0.1:8786", "tls://scheduler.example.org:8786", "10.0.0.5:8786",
                                  " tcp://[::1]:8786 ", "ws://host-1:80"])
def test_scheduler_addresses_that_read_right(good):
    assert is_address(good) and check_address(good) == good.strip()


@pytest.mark.parametrize("bad", ["", "localhost", "tcp://host", "http://host:8786", "tcp://host:0",
                                 "tcp://host:99999", "tcp://host:8786/x", 8786, None])
def test_malformed_addresses_are_refused_before_any_work(bad):
    assert not is_address(bad)
    with pytest.raises(ConfigError, match=r"^dask must be a Dask scheduler address such as 'tcp://host:8786'"):
        check_address(bad)
    if bad is not None:  # None means "no cluster"
        with pytest.raises(ConfigError, match=r"^dask must be a Dask scheduler address"):
            run_tasks(abs, [(1,)], dask=bad)


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True, "2"])
def test_bad_jobs_is_one_clear_error(jobs):
    with pytest.raises(ConfigError, match=r"^jobs must be an int >= 1 \(local worker processes\)\. Got "):
        run_tasks(abs, [(1,)], jobs=jobs)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line_error(monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match=r"Cannot reach the Dask scheduler at .*check the address") as exc:
        run_tasks(abs, [(1,)], dask=address)
    assert len(exc.value.lines()) == 1


def test_a_scheduler_without_workers_is_one_line_error(monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # A scheduler alone (no worker process is started).
        empty = distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None)
    with empty:
        with pytest.raises(ConfigError, match=r"has no workers .*start some with 'dask worker tcp://127\.0\.0\.1"):
            run_tasks(abs, [(1,)], dask=empty.scheduler_address)


def test_workers_on_another_version_are_refused(monkeypatch, cluster):
    monkeypatch.setattr(parallel, "_local_version", lambda: "0.0.0.other")
    with pytest.raises(ConfigError, match=r"do not run incident-forecast 0\.0\.0\.other .*same version on every"):
        run_tasks(abs, [(1,)], dask=cluster)


def test_dask_not_installed_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ConfigError, match=r'pip install "incident-forecast\[dask\]"'):
        run_tasks(abs, [(1,)], dask="tcp://127.0.0.1:8786")


# --- command line -----------------------------------------------------------------------------

def write_inputs(folder: Path) -> list[str]:
    """The events file and a lagged Poisson GLM spec; the common backtest arguments."""
    _events().to_csv(folder / "events.csv", index=False, date_format="%Y-%m-%d")
    spec = forecast.load_model("poisson_glm").set_params(lags=(1,), n_paths=200)
    forecast.save_model(spec, folder / "poisson_lag.toml")
    return [str(folder / "events.csv"), "--models", f"climatology,{folder / 'poisson_lag.toml'}",
            "--horizon", "2", "--origins", "4", "--refit-every", "2", "--as-of", "2025-12-31", "--seed", "5",
            "--quiet"]


def one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_backtest_on_dask_writes_the_serial_files(tmp_path, cluster):
    args = write_inputs(tmp_path)
    assert runner.invoke(app, ["backtest", *args, "--out", str(tmp_path / "serial")]).exit_code == 0
    res = runner.invoke(app, ["backtest", *args, "--out", str(tmp_path / "dask"), "--dask", cluster])
    assert res.exit_code == 0, res.output
    for name in ("backtest.csv", "scores.csv", "comparison.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    assert "poisson_lag" in (tmp_path / "dask" / "scores.csv").read_text()


def test_cli_backtest_with_bad_dask_address_or_no_dask(tmp_path, monkeypatch):
    args = write_inputs(tmp_path)
    one_line_error(runner.invoke(app, ["backtest", *args, "--out", str(tmp_path / "a"), "--dask", "localhost"]),
                   "dask must be a Dask scheduler address")
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    port = free_port()
    one_line_error(runner.invoke(app, ["backtest", *args, "--out", str(tmp_path / "b"),
                                       "--dask", f"tcp://127.0.0.1:{port}"]),
                   f"Cannot reach the Dask scheduler at tcp://127.0.0.1:{port}", "dask scheduler")
    monkeypatch.setitem(sys.modules, "distributed", None)
    one_line_error(runner.invoke(app, ["backtest", *args, "--out", str(tmp_path / "c"),
                                       "--dask", f"tcp://127.0.0.1:{port}"]),
                   'pip install "incident-forecast[dask]"')
    assert not any((tmp_path / d).exists() for d in "abc")


RUN_CONFIG = """
[data]
events = "events.csv"
as_of = "2025-12-31"

[models]
candidates = ["climatology", "poisson_lag"]

[backtest]
horizon = 2
origins = 3
refit_every = 2

[forecast]
horizon = 2

[output]
dir = "{out}"

[run]
seed = 3
dask = "{dask}"
"""


def test_run_with_dask_in_the_config_equals_a_local_run(tmp_path, cluster):
    write_inputs(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "poisson_lag.toml").rename(tmp_path / "models" / "poisson_lag.toml")
    (tmp_path / "local.toml").write_text(RUN_CONFIG.format(out="local", dask=""))
    (tmp_path / "remote.toml").write_text(RUN_CONFIG.format(out="remote", dask=cluster))
    for name in ("local", "remote"):
        res = runner.invoke(app, ["run", str(tmp_path / f"{name}.toml"), "--quiet"])
        assert res.exit_code == 0, res.output
    local, remote = tmp_path / "local", tmp_path / "remote"
    for name in ("scores.csv", "forecasts.csv", "selection.csv", "comparison.csv"):
        assert (local / name).read_bytes() == (remote / name).read_bytes(), name
    manifest = json.loads((remote / "run.json").read_text())
    assert manifest["execution"] == {"backend": "dask", "jobs": None, "dask": cluster}
    assert manifest["config"]["run"]["dask"] == cluster and manifest["packages"]["distributed"]
    assert json.loads((local / "run.json").read_text())["execution"] == {"backend": "serial", "jobs": 1,
                                                                         "dask": None}


def test_run_with_unreachable_dask_fails_in_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1.0)
    write_inputs(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "poisson_lag.toml").rename(tmp_path / "models" / "poisson_lag.toml")
    (tmp_path / "config.toml").write_text(RUN_CONFIG.format(out="out", dask="tcp://127.0.0.1:1"))
    res = runner.invoke(app, ["run", str(tmp_path / "config.toml"), "--quiet"])
    one_line_error(res, "Cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", [dict(jobs=2), dict(dask=True)])
def test_warnings_raised_in_workers_are_raised_again_here_in_task_order(how, cluster):
    how = {**how, "dask": cluster} if how.get("dask") else how
    # warnings.warn itself is the task: a builtin, so it pickles to any worker.
    tasks = [("a", forecast.ForecastWarning), ("b", RuntimeWarning), ("c", forecast.ForecastWarning)]

    def raised(**kw) -> list[tuple[type, str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_tasks(warnings.warn, tasks, progress=False, **kw)
        return [(w.category, str(w.message)) for w in caught]

    serial = raised()
    assert serial == [(forecast.ForecastWarning, "a"), (RuntimeWarning, "b"), (forecast.ForecastWarning, "c")]
    assert raised(**how) == serial
