"""Run independent tasks serially, in local processes (joblib/loky) or on a Dask cluster.

:func:`run_tasks` is the one place that decides where work runs. It takes a
function and a list of argument tuples and returns the results **in task
order**, whatever ran them, so callers (the backtest) assemble identical output
for any ``jobs`` or cluster. Identical *values* are the callers' side of the
contract: every random draw comes from a stream derived from (seed, series,
origin), never from the process, worker or batch that ran the task.

Three ways to run, chosen by the arguments:

- ``jobs=1`` and no ``dask``: a plain loop in this process. Neither joblib nor
  Dask is imported, so the common case (and ``forecast --help``) stays fast.
- ``jobs=N > 1``: ``N`` local worker processes through joblib's loky backend
  (or ``backend``, another joblib backend name).
- ``dask="tcp://host:8786"`` (or a ``distributed.Client``): the tasks are
  submitted to that cluster. The shared keyword arguments and every data argument
  (a chunk of the panel) are scattered to it once, not shipped with every task; each
  result is fetched, handed on and released as its task finishes. The cluster's
  workers set the concurrency (``jobs`` is not used). Dask is an optional dependency.

Warnings a task raises in a worker process are returned with its result and
raised again here, in task order, so every backend shows the same warnings; a
local worker process exits when its parent dies (see :mod:`forecast._workers`).
A cluster given by address is never shut down here: only the client this module
opened is closed, and on an interruption its tasks are cancelled.

Connection problems (Dask missing, scheduler unreachable within
:data:`CONNECT_TIMEOUT` seconds, no workers, workers with another
incident-forecast version) raise :class:`~forecast.exceptions.ConfigError`
with one line saying what to do, which the CLI prints without a traceback.
"""
from __future__ import annotations

import functools
import numbers
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

from forecast._workers import Task, reemit
from forecast.exceptions import ConfigError

#: Seconds to wait for the Dask scheduler to answer (and for a first worker to join).
CONNECT_TIMEOUT: float = 10.0

INSTALL_HINT = 'pip install "incident-forecast[dask]"'

_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")
ADDRESS_EXPECTED = "a Dask scheduler address such as 'tcp://host:8786'"


def is_address(value: Any) -> bool:
    """Whether ``value`` reads as a scheduler address ``[scheme://]host:port`` (no connection is tried)."""
    if not isinstance(value, str):
        return False
    m = _ADDRESS.match(value.strip())
    return bool(m) and (m["scheme"] or "tcp") in _SCHEMES and 1 <= int(m["port"]) <= 65535


def check_address(value: Any) -> str:
    """The address, stripped; :class:`ConfigError` when it is not ``[scheme://]host:port``."""
    if not is_address(value):
        raise ConfigError(f"dask must be {ADDRESS_EXPECTED} (schemes: {', '.join(_SCHEMES)}). "
                          f"Got {value!r} instead.")
    return value.strip()


def _check_jobs(jobs: Any) -> int:  # Integral: a numpy int is a count; bool is not
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1:
        raise ConfigError(f"jobs must be an int >= 1 (local worker processes). Got {jobs!r} instead.")
    return int(jobs)


def _is_client(obj: Any) -> bool:
    # Duck-typed so that checking an argument never imports distributed.
    return all(hasattr(obj, name) for name in ("submit", "scatter", "gather", "scheduler_info"))


def backend_name(jobs: int = 1, dask: Any = None) -> str:
    """Where :func:`run_tasks` runs with these settings: ``"serial"``, ``"loky"`` or ``"dask"`` (for run.json)."""
    return "dask" if dask is not None else "loky" if jobs > 1 else "serial"


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"Running on a Dask cluster needs Dask: {INSTALL_HINT} "
                          f"(or leave dask unset to run on this machine).") from None
    return distributed


@contextmanager
def connect(dask: Any, *, timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``dask``, checked to be usable; closed afterwards if created here.

    Parameters
    ----------
    dask : str or distributed.Client
        A scheduler address (``tcp://host:8786``) or an existing client. A
        client you pass is used as it is and left open.
    timeout : float, optional
        Seconds to wait for the scheduler, and then for a first worker
        (default :data:`CONNECT_TIMEOUT`).

    Yields
    ------
    distributed.Client

    Raises
    ------
    ConfigError
        Dask is not installed; the address is malformed or the scheduler does
        not answer in time; the cluster has no worker; a worker runs another
        version of incident-forecast (results could differ).
    """
    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)
    if _is_client(dask):
        _check_workers(dask, _address_of(dask), timeout)
        yield dask
        return
    address = check_address(dask)
    distributed = _import_distributed()
    try:
        # Not the default client: a client the user made for other work keeps that role.
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"no answer within {timeout:g} s" if why.startswith("Timed out") else why
        raise ConfigError(f"Cannot reach the Dask scheduler at {address} ({why}): check the address and that "
                          f"'dask scheduler' is running there and reachable from this machine.") from None
    try:
        _check_workers(client, address, timeout)
        yield client
    finally:
        client.close()


def _check_workers(client: Any, address: str, timeout: float) -> None:
    """At least one worker, and every worker on this machine's incident-forecast version."""
    import importlib.metadata as md

    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        raise ConfigError(f"The Dask scheduler at {address} has no workers (none joined within {timeout:g} s): "
                          f"start some with 'dask worker {address}' on machines with incident-forecast "
                          f"installed.") from None
    mine = _local_version()
    if mine is None:  # running from a source tree: nothing to compare against
        return
    # importlib.metadata.version is pickled by reference, so this runs even on a
    # worker without incident-forecast, where it reports the missing package.
    theirs = client.run(md.version, "incident-forecast", on_error="return")
    bad = {w: ("not installed" if isinstance(v, Exception) else v) for w, v in theirs.items() if v != mine}
    if bad:
        shown = ", ".join(f"{w}: {v}" for w, v in list(bad.items())[:3]) + (
            f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ConfigError(f"Dask workers at {address} do not run incident-forecast {mine} ({shown}): install "
                          f"this same version on every worker machine, then restart the workers.")


def _local_version() -> str | None:
    import importlib.metadata as md

    try:
        return md.version("incident-forecast")
    except md.PackageNotFoundError:
        return None


class _NoBar:
    """Stands in for tqdm when no bar is wanted (tqdm then is not imported: it warns in some notebooks)."""

    def __init__(self, iterable: Any = None, **_: Any) -> None:
        self._it = iterable

    def __iter__(self):
        return iter(self._it)

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _Reporter(_NoBar):
    """Stands in for tqdm when progress goes to a ``report(done, total)`` callback (the pipeline's)."""

    def __init__(self, iterable: Any = None, *, report: Callable[[int, int], None], total: int = 0,
                 **_: Any) -> None:
        super().__init__(iterable)
        self._report, self.total, self.done = report, total, 0
        report(0, total)

    def __iter__(self):
        for item in self._it:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._report(self.done, self.total)


def run_tasks(func: Callable[..., Any], tasks: Sequence[Sequence[Any]], *, shared: Mapping[str, Any] | None = None,
              jobs: int = 1, dask: Any = None, backend: str | None = None,
              progress: bool | Callable[[int, int], None] | None = None, desc: str = "tasks",
              unit: str = "task", sizes: Sequence[int] | None = None, tick: str | None = None,
              consume: Callable[[int, Any], None] | None = None) -> list | None:
    """Call ``func(*task, **shared)`` for every task; return the results in task order.

    Parameters
    ----------
    func : Callable
        A module-level function (it is pickled by reference for other processes).
    tasks : sequence of tuples
        Positional arguments of each call.
    shared : mapping, optional
        Keyword arguments common to every call (e.g. the panel). On Dask they
        are scattered to the cluster once.
    jobs : int
        Local worker processes; ``1`` runs in this process. Not used with ``dask``,
        where the cluster's workers set the concurrency.
    dask : str or distributed.Client, optional
        Scheduler address (``"tcp://host:8786"``) or client: run on that cluster.
    backend : str, optional
        joblib backend name for ``jobs > 1`` (default ``"loky"``).
    progress : bool or callable, optional
        Show a tqdm progress bar; ``None`` shows it when writing to a terminal. A callable
        ``progress(done, total)`` is called instead, at the start and as each task completes.
    desc, unit : str
        Label and unit of the progress bar.
    sizes : sequence of int, optional
        Units of work in each task (default one each): the bar counts units, so a task of
        12 origins moves it by 12 and the rate (and the time left) is per unit, not per task.
    tick : str, optional
        The keyword through which ``func`` reports each unit as it finishes (``func(...,
        **{tick: advance})``, ``advance(n=1)``). Used when the tasks run in this process, where
        the count then moves unit by unit; tasks in other processes or on a cluster are counted
        by their ``sizes`` when they finish (a callback cannot reach back from them).
    consume : callable, optional
        ``consume(i, result)`` is called with each task's index and result as soon as it is in
        here (on Dask in the order tasks finish, otherwise in task order), and the result is
        not kept: memory then holds what ``consume`` keeps, not every result at once. Each
        task's warnings are still raised here in task order.

    Returns
    -------
    list or None
        ``[func(*tasks[0], **shared), func(*tasks[1], **shared), ...]``; None with ``consume``.

    Raises
    ------
    ConfigError
        Bad ``jobs`` or ``dask``, or a cluster that cannot be used (see :func:`connect`).
        An exception raised by ``func`` propagates as it is.
    """
    jobs = _check_jobs(jobs)
    if dask is not None and not _is_client(dask):
        check_address(dask)  # before any work: a typo fails at once
    tasks = [tuple(t) for t in tasks]
    sizes = [1] * len(tasks) if sizes is None else [int(n) for n in sizes]
    if len(sizes) != len(tasks):
        raise ValueError(f"sizes has {len(sizes)} entries for {len(tasks)} tasks.")
    shared = dict(shared or {})
    if progress is False:
        bar_cls: Any = _NoBar
    elif callable(progress):
        bar_cls = functools.partial(_Reporter, report=progress)
    else:
        from tqdm.auto import tqdm as bar_cls
    bar = dict(total=sum(sizes), desc=desc, unit=unit, disable=None if progress is None else not progress,
               leave=False)
    out: list | None = None
    if consume is None:
        out = [None] * len(tasks)
        consume = out.__setitem__
    if dask is not None:
        _run_dask(func, tasks, shared, dask, bar_cls, bar, sizes, consume)
    elif (jobs == 1 and backend is None) or len(tasks) <= 1:
        _run_here(func, tasks, shared, bar_cls(**bar), sizes, tick, consume)
    else:
        from joblib import Parallel, delayed

        # An ordered generator: joblib holds only the results that finished ahead of an
        # earlier task, and each is handed on (with its warnings shown) as soon as it is in.
        runner = Parallel(n_jobs=min(jobs, len(tasks)), backend=backend or "loky", return_as="generator")
        task = Task(func, watch_parent=True)
        for i, (result, records) in enumerate(_counted(runner(delayed(task)(*t, **shared) for t in tasks),
                                                       bar_cls(**bar), sizes)):
            reemit(records)
            consume(i, result)
    return out


def _run_here(func: Callable, tasks: list[tuple], shared: dict, bar: Any, sizes: list[int],
              tick: str | None, consume: Callable[[int, Any], None]) -> None:
    """The tasks in this process, the bar moved unit by unit through ``tick`` when ``func`` has one."""
    try:
        for i, (t, n) in enumerate(zip(tasks, sizes)):
            if tick is None:
                consume(i, func(*t, **shared))
                bar.update(n)
                continue
            seen = [0]

            def advance(k: int = 1, seen=seen, n=n) -> None:
                k = min(k, n - seen[0])  # never past the task's own size
                if k > 0:
                    seen[0] += k
                    bar.update(k)

            consume(i, func(*t, **shared, **{tick: advance}))
            advance(n)  # a unit the task skipped without reporting still counts as done
    finally:
        bar.close()


def _counted(results: Iterator, bar: Any, sizes: list[int]) -> Iterator:
    """``results`` as they arrive, the bar moved by each one's size."""
    try:
        for r, n in zip(results, sizes):
            yield r
            bar.update(n)
    finally:
        bar.close()


def _address_of(client: Any) -> str:
    return str(getattr(getattr(client, "scheduler", None), "address", None) or "the given client's scheduler")


def _scatter_args(client: Any, tasks: list[tuple]) -> list[tuple]:
    """The tasks with every data argument (a frame or array: anything with ``nbytes`` or
    ``memory_usage``) scattered to the cluster once, however many tasks share it, instead of
    travelling inside each task through the scheduler."""
    data = {id(a): a for t in tasks for a in t if hasattr(a, "nbytes") or hasattr(a, "memory_usage")}
    if not data:
        return tasks
    # hash=False: fresh random keys (equal chunks of two runs on one cluster never clash).
    remote = dict(zip(data, client.scatter(list(data.values()), hash=False)))
    return [tuple(remote.get(id(a), a) for a in t) for t in tasks]


def _run_dask(func: Callable, tasks: list[tuple], shared: dict, dask: Any, bar_cls: Any, bar: dict,
              sizes: list[int], consume: Callable[[int, Any], None]) -> None:
    with connect(dask) as client:
        distributed = _import_distributed()
        address = _address_of(client)
        error: BaseException | None = None
        try:
            # Scattered as a list: a dict's own keys ("frame") would become cluster-wide keys and
            # clash with another run on the same cluster.
            remote = dict(zip(shared, client.scatter(list(shared.values()), hash=False))) if shared else {}
            # pure=False: calls are never merged, and their arguments are not hashed.
            futures = [client.submit(Task(func), *t, **remote, pure=False) for t in _scatter_args(client, tasks)]
            index_of = {f.key: i for i, f in enumerate(futures)}
            progress = bar_cls(**bar)
            # Results are handed on as tasks finish and released on the cluster at once (neither
            # side holds them all); warnings wait for the tasks before theirs, to keep task order.
            records: dict[int, list] = {}
            next_warn = 0
            try:
                for done in distributed.as_completed(futures, loop=client.loop):
                    if done.status == "error":
                        # Keep the task's own exception (a ConfigError stays one), then stop the rest.
                        error = done.exception().with_traceback(done.traceback())
                        client.cancel([f for f in futures if f is not None])
                        break
                    i = index_of[done.key]
                    result, records[i] = done.result()
                    futures[i] = None
                    done.release()
                    while next_warn in records:
                        reemit(records.pop(next_warn))
                        next_warn += 1
                    consume(i, result)
                    progress.update(sizes[i])
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM): take our tasks off the cluster, which may be the
                # user's and is never shut down here; a client we made is closed by connect().
                client.cancel([f for f in futures if f is not None])
                raise
            finally:
                progress.close()
        except distributed.client.CancelledError:
            raise ConfigError(f"The Dask cluster at {address} dropped the work (scheduler or workers restarted or "
                              f"shut down): check the cluster, then rerun.") from None
        except OSError as exc:
            raise ConfigError(f"Lost the connection to the Dask scheduler at {address} ({exc}): check the "
                              f"cluster, then rerun.") from None
    if isinstance(error, distributed.KilledWorker):
        raise ConfigError(f"Dask workers at {address} died repeatedly running one task ({error}); often a "
                          f"worker out of memory: give the workers more memory.") from None
    if error is not None:
        raise error
