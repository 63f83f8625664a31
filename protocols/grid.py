"""A grid of runs, one task per (dataset, method, bits, training seed, parameters), run in this
process or on a Dask cluster; the client stores each task's records as they arrive.

    jobs = grid.expand("digits", ["lsh", "itq"], [16, 32], train_seeds=[0, 1, 2])
    result = grid.run_grid(jobs, "results", workers=2)          # a local cluster of 2 processes
    result = grid.run_grid(jobs, "results", scheduler="tcp://host:8786")   # an existing cluster

- In process (``workers=0``, the default): one run at a time, nothing to set up.
- ``workers=N``: a local Dask cluster of N worker processes, each with cores / N threads (torch,
  BLAS and faiss pinned to them in the task).
- ``scheduler=ADDRESS``: an existing cluster (``dask scheduler`` and ``dask worker ADDRESS`` on
  other machines, dask-jobqueue, Kubernetes). Workers need the data and the same package versions;
  they return records, and the client writes them (atomically) under ``out``, so no shared file
  system is needed for results. Tasks of runs on a GPU (``device`` cuda) ask for the resource
  ``GPU=1``: start such workers with ``--resources GPU=1``.

A stored run is skipped (resume: :func:`protocols.runner.stored_run`); a task whose worker dies is
run again on another (Dask reschedules it); a task that fails reports its one-line error and the
others go on. Where ``HASHBENCH_START_UNTIL`` is set (a UTC time, ``2026-12-07T04:30Z``), no run
starts after it: those already running finish and are stored, the rest are left for the next call,
which resumes. Why: a machine lent for hours loses the runs it is training when it goes away, so
stopping the starts one run's length before that loses none.

On a cluster nothing is taken on trust (each refusal is one line, :class:`ClusterError`): ``scheduler``
must answer as a Dask scheduler within ``HASHBENCH_CONNECT_TIMEOUT`` seconds (default 10); a worker must
join within ``HASHBENCH_WORKER_TIMEOUT`` (default 30); before the first task every worker must have the
client's git commit and dirty flag and library versions (:mod:`common.provenance`), import the package
and load each dataset to the client's split and data hashes (:func:`worker_state`); a worker that joins
mid-grid is checked the same way, and every task returns its worker's state with its records, which are
refused unless it matches and the records' hashes are the client's. Paths (``data_root``,
``save_codes``) are made absolute here, so a worker never reads them relative to its own folder. A
scheduler lost mid-grid stops the grid with what was stored and "run the same command again".
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from common.files import one_line
from protocols import runner
from protocols.deadline import may_start, not_started, start_until


@dataclass(frozen=True)
class Job:
    """One run of the grid; what a worker needs to do it alone (the dataset by name)."""

    dataset: str
    method: str
    bits: int
    seed: int = 0
    train_seed: int = 0
    params: tuple = ()  # sorted (name, value) pairs, so a job is hashable and prints the same
    topk: int | None = None
    data_root: str | None = None
    features: str = "alexnet-fc7"
    device: str | None = None
    save_codes: str | None = None  # a folder on the machine that runs the job
    threads: int | None = field(default=None, compare=False)
    protocol: str = "standard"  # or "unseen": classes held out of training (runner.evaluations)
    class_seed: int = 0  # the unseen-class protocol's class split

    @property
    def label(self) -> str:
        return f"{self.method} at {self.bits} bits, training seed {self.train_seed}"

    def kwargs(self) -> dict:
        return dict(seed=self.seed, train_seed=self.train_seed, params=dict(self.params), topk=self.topk,
                    data_root=self.data_root, features=self.features, device=self.device, save_codes=self.save_codes,
                    protocol=self.protocol, class_seed=self.class_seed)


def expand(dataset: str, methods, bits, train_seeds=(0,), *, seed: int = 0, params: dict | None = None, **options):
    """Every (method, bits, training seed) as a :class:`Job`, seed by seed, so a grid cut short
    holds whole seeds of the table."""
    pairs = tuple(sorted((params or {}).items()))
    return [Job(dataset, m, b, seed, t, pairs, **options) for t in train_seeds for m in methods for b in bits]


def execute(job: Job, dataset=None) -> list[dict]:
    """Run one job (on a worker, or here): threads pinned, the dataset loaded by name unless given."""
    if job.threads:
        from common.threads import pin_threads

        pin_threads(job.threads)
    return runner.run(dataset if dataset is not None else job.dataset, job.method, job.bits, **job.kwargs())


def local_worker_threads(workers: int) -> int:
    """The threads each process of a local cluster of ``workers`` gets (torch, BLAS and OpenMP)."""
    return max(1, (os.cpu_count() or 1) // workers)


def pending(jobs: list[Job], out, dataset, *, workers: int = 0, scheduler: str | None = None) -> tuple[list[Job], int]:
    """``(jobs to run, number already stored)``: a job whose records are all stored, at the thread
    counts the grid will run it with (:func:`protocols.runner.stored_run`), is skipped: this process's
    in process, :func:`local_worker_threads` on a local cluster, not compared on an existing one
    (its workers' counts are theirs to set)."""
    threads = "any" if scheduler else local_worker_threads(workers) if workers else None
    todo = [job for job in jobs if runner.stored_run(out, dataset, job.method, job.bits, seed=job.seed,
                                                     train_seed=job.train_seed, params=dict(job.params),
                                                     topk=job.topk, threads=threads, protocol=job.protocol,
                                                     class_seed=job.class_seed) is None]
    return todo, len(jobs) - len(todo)


@dataclass
class GridResult:
    records: list = field(default_factory=list)
    failures: list = field(default_factory=list)  # (job, one-line message)
    not_started: list = field(default_factory=list)  # jobs left because HASHBENCH_START_UNTIL had passed


class ClusterError(RuntimeError):
    """The cluster cannot run this grid as the client would (another commit, versions or data, no
    worker, not a scheduler), or was lost during it; the message is one line and says what to do."""


WORKER_TIMEOUT_ENV, CONNECT_TIMEOUT_ENV = "HASHBENCH_WORKER_TIMEOUT", "HASHBENCH_CONNECT_TIMEOUT"
WORKER_TIMEOUT_S, CONNECT_TIMEOUT_S = 30.0, 10.0
TICK_S = 2.0  # how often the client looks for joined or missing workers while it waits for results
#: Dask settings of the local cluster this module starts (a scheduler of the user's keeps its own): its
#: processes' event loops wake less often. Each wake-up takes the GIL that a worker's training thread
#: needs between torch's operations, and on a machine whose cores all train the thread holding it may
#: wait for a core. The profiler (every 10 ms: every thread's stack sampled) feeds only the dashboard,
#: which this cluster does not start; the event loop's tick (20 ms) only times the loop itself; the
#: memory monitor (100 ms) and the system monitor (500 ms) still run, every second and every 2 s.
#: Measured in the fashion-mosaic pilot (2 workers, 2-core Intel Xeon), Dask's defaults, then the
#: profiler off, then all four: a worker's event loop used 3.9 %, 1.9 %, 0.3 % of a core (the client's
#: process, scheduler and nannies: -, 3.7 %, 1.0 %); a training thread ran 94 %, 96 %, 98.5 % of the
#: time and waited for the GIL 9.0 %, 8.0 %, 2.8 % of it (py-spy). What that is worth in wall time is
#: below this machine's noise: short trainings on 2 workers, the pilot paused, Dask's defaults against
#: these in alternating order gave 44.6-46.3 s and 42.6-49.1 s for 3 epochs, 14.3-17.8 s and
#: 14.9-16.8 s for 1 (two run_grid calls of HashNet, one with LOCAL_CLUSTER_CONFIG set to {}).
#: The settings stay for the CPU they leave to training.
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                        "distributed.worker.memory.monitor-interval": "1s",
                        "distributed.admin.system-monitor.interval": "2s"}


def run_grid(jobs: list[Job], out, *, workers: int = 0, scheduler: str | None = None, client=None,
             dataset=None, on_records=None, store=None, progress: bool = True,
             worker_timeout: float | None = None, connect_timeout: float | None = None) -> GridResult:
    """Run ``jobs`` and store each one's records under ``out`` as it finishes (``store(job,
    records)`` instead, where given: a sweep keeps its own file); ``on_records(job, records)`` is
    called after each is stored. Failures are collected, reported as one line each, and do not stop
    the others. In process, ``dataset`` (loaded) saves loading it per job; on a cluster it is what
    the workers' data must hash to. ``worker_timeout`` / ``connect_timeout`` (seconds; default the
    environment's ``HASHBENCH_WORKER_TIMEOUT`` / ``HASHBENCH_CONNECT_TIMEOUT``, else 30 / 10) bound
    the wait for a usable worker and for the scheduler's answer (module docstring)."""
    from tqdm import tqdm

    until = start_until()
    result = GridResult()
    bar = tqdm(total=len(jobs), desc="grid", unit="run", file=sys.stderr, disable=not progress)

    def finished(job, records=None, error=None):
        if records is None and error is None:  # not started: past the start deadline
            result.not_started.append(job)
        elif error is not None:
            result.failures.append((job, error))
            bar.write(f"error: {job.label} failed: {error}", file=sys.stderr)
        else:
            if store is not None:
                store(job, records)
            else:
                runner.store(records, out)
            result.records.extend(records)
            if on_records:
                on_records(job, records)
        bar.update(1)
        bar.set_postfix_str(f"failed {len(result.failures)}")

    current = ["the grid"]  # the run under way, for the message of an interrupt
    try:
        if not (workers or scheduler or client):
            _run_in_process(jobs, dataset, until, finished, bar, result, current)
        else:
            timeouts = (_seconds(worker_timeout, WORKER_TIMEOUT_ENV, WORKER_TIMEOUT_S),
                        _seconds(connect_timeout, CONNECT_TIMEOUT_ENV, CONNECT_TIMEOUT_S))
            _run_on_dask(jobs, workers, scheduler, client, finished, dataset, until, *timeouts)
        if result.not_started:
            bar.write(not_started(f"{len(result.not_started)} runs", "run the same command again to resume"),
                      file=sys.stderr)
    except KeyboardInterrupt:
        bar.close()
        raise KeyboardInterrupt(f"interrupted during {current[0]}; the {len(result.records)} finished rows are stored "
                                "(files are replaced whole, never half-written): rerun the command to resume") from None
    finally:
        bar.close()  # before the caller prints a one-line error, not after it on the bar's line
    return result


def _run_in_process(jobs, dataset, until, finished, bar, result: GridResult, current: list) -> None:
    for job in jobs:
        if not may_start(until):
            finished(job)
            continue
        current[0] = job.label
        bar.set_postfix_str(f"{job.label}, failed {len(result.failures)}")
        try:
            records = execute(job, dataset)
        except (ValueError, RuntimeError, ArithmeticError, MemoryError, OSError) as exc:
            finished(job, error=one_line(exc))
            continue
        finished(job, records)


def worker_state(datasets=(), dask_worker=None) -> dict:
    """What the client compares before it trusts a worker (this runs on the worker): its git commit
    and dirty flag and library versions (what a record notes, :mod:`common.provenance`) and, for each
    ``(name, data_root, seed)`` of ``datasets``, the split and data hashes of the dataset it loads (or
    the one-line error loading gave). Importing this function is the package import check."""
    state = _identity()
    state["data"] = {}
    for key in datasets:
        try:
            state["data"][key] = _hashes(runner.load(*key))
        except Exception as exc:  # reported to the client as this worker's problem, in one line
            state["data"][key] = {"error": f"{type(exc).__name__}: {one_line(exc)}"}
    return state


def execute_on_worker(job: Job, until: float | None = None) -> dict:
    """:func:`execute` on a Dask worker, returned with the worker's address and state, so the client
    checks the worker that ran it (one that joined late, or was replaced) before storing its records.
    Past ``until`` (the client's start deadline) the job is not started: its records are None."""
    from distributed import get_worker

    worker = get_worker()
    if not may_start(until):
        return {"worker": worker.address, "records": None}  # nothing ran, so nothing to check
    return {"worker": worker.address, "state": worker_state(dask_worker=worker), "records": execute(job)}


def _identity(now: bool = False) -> dict:
    """Commit, dirty flag and versions as this process's records note them (``git_state`` is cached at
    its first call), or, ``now``, as the checkout is now: the client's, which a worker started now imports."""
    from common.provenance import git_state, library_versions

    return {"git": dict(git_state.__wrapped__() if now else git_state()), "versions": dict(library_versions())}


def _hashes(dataset) -> dict:
    return {"split_sha256": dataset.split_sha256, "data_sha256": dataset.info.get("data_sha256")}


def _seconds(value, env: str, default: float) -> float:
    if value is None:
        text = os.environ.get(env, "").strip()
        try:
            value = float(text) if text else default
        except ValueError:
            raise ClusterError(f"{env} must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ClusterError(f"{env} must be a positive number of seconds, got {value!r}")
    return float(value)


def _absolute(job: Job) -> Job:
    """``job`` with its paths absolute on this machine: a worker resolves a relative one in its own folder."""
    paths = {name: os.path.abspath(os.path.expanduser(getattr(job, name)))
             for name in ("data_root", "save_codes") if getattr(job, name)}
    return replace(job, **paths) if paths else job


def _data_key(job: Job) -> tuple:
    return job.dataset, job.data_root, job.seed


def _client_hashes(keys, dataset) -> dict:
    """The split and data hashes the workers must match, per ``(name, data_root, seed)``: of
    ``dataset`` where it is that dataset, else of the dataset loaded here."""
    hashes = {}
    for key in keys:
        name, data_root, seed = key
        given = dataset is not None and dataset.name == name and dataset.split.seed == seed
        hashes[key] = _hashes(dataset if given else runner.load(name, data_root, seed))
    return hashes


def _short(value) -> str:
    return "none" if value is None else str(value)[:12]


def _difference(state: dict, here: dict) -> str | None:
    """How a worker's state differs from this client's in what its records would note, or None."""
    theirs, ours = state.get("git") or {}, here["git"]
    if theirs.get("commit") != ours.get("commit"):
        return f"runs commit {_short(theirs.get('commit'))} where this client runs {_short(ours.get('commit'))}"
    if theirs.get("dirty") != ours.get("dirty"):
        has = {True: "uncommitted changes", False: "no uncommitted changes", None: "no git checkout"}
        return (f"has {has[theirs.get('dirty')]} to commit {_short(ours.get('commit'))} where this client has "
                f"{has[ours.get('dirty')]}")
    versions = state.get("versions") or {}
    for name, version in here["versions"].items():
        if versions.get(name) != version:
            return f"has {name} {versions.get(name)} where this client has {name} {version}"
    return None


def _data_difference(theirs: dict, ours: dict, name: str) -> str | None:
    if "error" in theirs:
        return f"cannot load {name}: {theirs['error']}"
    # a photo dataset's data_sha256 covers its images' modification times (datasets/listfile.py)
    for key, causes in (("split_sha256", "other data"),
                        ("data_sha256", "other data, images copied without their modification times")):
        if theirs.get(key) != ours.get(key):
            return (f"has {name} with {key} {_short(theirs.get(key))} where this client has {_short(ours.get(key))} "
                    f"({causes}, or a path or environment variable that differs there)")
    return None


def _problem(state, here: dict, hashes: dict) -> str | None:
    """What makes a worker unusable, from what :func:`worker_state` returned there (or raised), or None."""
    if isinstance(state, BaseException):  # distributed wraps an error it could not unpickle in an Exception
        text = one_line(state) if type(state) is Exception else f"{type(state).__name__}: {one_line(state)}"
        if isinstance(state, ImportError) or "ModuleNotFoundError" in text or "ImportError" in text:
            return f"cannot import this package ({text})"
        return f"failed the check ({text})"
    difference = _difference(state, here)
    if difference:
        return difference
    for key, ours in hashes.items():
        difference = _data_difference(state.get("data", {}).get(key, {"error": "not checked"}), ours, key[0])
        if difference:
            return difference
    return None


def _refusal(problems: dict, where: str, when: str = "") -> str:
    """One line for the workers in ``problems`` ({address: problem}), the first one named."""
    address, problem = next(iter(sorted(problems.items())))
    others = f" (and {len(problems) - 1} other workers)" if len(problems) > 1 else ""
    return (f"worker {address}{others} of the Dask scheduler at {where}{when} {problem}: start every worker from "
            "this client's commit (in its checkout: PYTHONPATH=CHECKOUT dask worker ...), versions and data")


@contextmanager
def _quiet():
    """Silence distributed's logging (its tracebacks for a lost scheduler or a failed check), so what
    the user reads is the one line this module raises."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _check_scheduler(address: str, timeout: float) -> None:
    """Ask ``address`` who it is, with a deadline: :class:`ClusterError` unless a Dask scheduler answers.
    ``Client(address)`` alone waits forever on a port that accepts and says nothing (the dashboard's)
    and dies of a ``MemoryError`` where a banner's bytes are read as a frame length."""
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def ask():
        return await asyncio.wait_for(identity(), timeout)

    why, longer = None, ""
    try:
        with _quiet(), ThreadPoolExecutor(1) as pool:  # an event loop of its own, whatever this thread runs
            reply = pool.submit(asyncio.run, ask()).result()
    except (TimeoutError, asyncio.TimeoutError):
        why, longer = f"no answer in {timeout:g} s", f", or wait longer with {CONNECT_TIMEOUT_ENV}=SECONDS"
    except MemoryError:  # what distributed makes of a banner: its first bytes read as a frame's length
        why = "it answers in another protocol"
    except Exception as exc:  # OSError, a protocol error: all mean "not a scheduler"
        why = f"{type(exc).__name__}: {one_line(exc)}"
    else:
        kind = reply.get("type") if isinstance(reply, dict) else None
        if kind != "Scheduler":
            why = f"it answers as a Dask {kind}" if kind else "its answer is not a Dask scheduler's"
    if why:
        raise ClusterError(f"{address} is not a Dask scheduler ({why}): give the scheduler's address, e.g. "
                           f"tcp://HOST:8786 (not its dashboard's port){longer}")


def _connect(scheduler: str, timeout: float):
    from distributed import Client

    _check_scheduler(scheduler, timeout)
    try:
        return Client(scheduler, timeout=timeout)
    except Exception as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {type(exc).__name__}: "
                           f"{one_line(exc)}") from None


def _run_on_dask(jobs, workers, scheduler, client, *args):
    import dask
    import distributed  # noqa: F401  its defaults join dask's settings first: leaving the block below
    # would otherwise remove every distributed setting, not only the one it set

    # set while the local cluster lives: a worker's nanny reads the settings again to start one that died
    with dask.config.set(LOCAL_CLUSTER_CONFIG if client is None and not scheduler else {}):
        _run_on_cluster(jobs, workers, scheduler, client, *args)


def _run_on_cluster(jobs, workers, scheduler, client, finished, dataset, until, worker_timeout, connect_timeout):
    own = None
    if client is None:
        if scheduler:
            client = own = _connect(scheduler, connect_timeout)
        else:
            from distributed import Client

            threads = local_worker_threads(workers)
            client = own = Client(_local_cluster(workers, threads))
            jobs = [_with_threads(job, threads) for job in jobs]
    where = scheduler or client.scheduler.address
    futures = {}  # future -> (submission order, job, its dataset's key in hashes) until its result is handled
    try:
        sent = [(job, _absolute(job)) for job in jobs]
        hashes = _client_hashes(sorted({_data_key(absolute) for _, absolute in sent}, key=repr), dataset)
        check = _WorkerCheck(client, _identity(now=True), hashes, where, worker_timeout)
        check.first()
        for n, (job, absolute) in enumerate(sent):
            gpu = bool(job.device and str(job.device).startswith("cuda"))
            future = client.submit(execute_on_worker, absolute, until, pure=False,
                                   resources={"GPU": 1} if gpu else None)
            futures[future] = (n, job, _data_key(absolute))
        _collect(futures, finished, check, hashes, where, len(jobs))
    finally:
        if futures and client.status == "running":
            client.cancel(list(futures))  # a grid that stops leaves nothing of its own running on the cluster
        if own is not None:
            cluster = getattr(own, "cluster", None)
            with _quiet():
                own.close()
                if cluster is not None:
                    cluster.close()


class _WorkerCheck:
    """The client's check of the workers: all of them before the first task, then each one that joins."""

    def __init__(self, client, here: dict, hashes: dict, where: str, timeout: float):
        self.client, self.here, self.hashes, self.where, self.timeout = client, here, hashes, where, timeout
        self.checked: set = set()
        self.missing_since = None

    def _run(self, workers=None) -> dict:
        with _quiet():  # the scheduler logs a failed check with a traceback; the refusal says it in one line
            states = self.client.run(worker_state, list(self.hashes), workers=workers, on_error="return")
        self.checked |= set(states)
        return {address: problem for address, state in states.items()
                if (problem := _problem(state, self.here, self.hashes))}

    def first(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise ClusterError(f"no Dask worker joined the scheduler at {self.where} in {self.timeout:g} s: start "
                               f"workers (dask worker {self.where}), or wait longer with {WORKER_TIMEOUT_ENV}=SECONDS"
                               ) from None
        problems = self._run()
        if problems:
            raise ClusterError(_refusal(problems, self.where))

    def during(self, stored: int, total: int) -> None:
        """Between results: a worker that joined is checked (the grid stops on one that fails: its
        tasks would be refused, or never end where it cannot import the package), and a cluster left
        without workers for the timeout stops the grid."""
        if self.client.status != "running":
            return
        try:
            workers = set(self.client.scheduler_info()["workers"])
        except Exception:  # the scheduler going away shows as cancelled tasks, next
            return
        resume = f"{stored} of {total} runs stored; run the same command again to resume"
        if not workers:
            self.missing_since = self.missing_since or time.monotonic()
            if time.monotonic() - self.missing_since > self.timeout:
                raise ClusterError(f"no Dask worker at the scheduler at {self.where} for {self.timeout:g} s: "
                                   f"{resume} once workers are back")
            return
        self.missing_since = None
        joined = sorted(workers - self.checked)
        problems = self._run(joined) if joined else {}
        if problems:
            raise ClusterError(f"{_refusal(problems, self.where, ', which joined mid-grid,')}; {resume}")


def _collect(futures: dict, finished, check: _WorkerCheck, hashes: dict, where: str, total: int) -> None:
    """Store each task's records as it finishes, after checking the worker that ran it and the data it
    used; each handled future leaves ``futures``. :class:`ClusterError` when the scheduler is lost."""
    from concurrent.futures import CancelledError

    from distributed import wait

    lost = (f"lost the Dask scheduler at {where} mid-grid: {{}} of {total} runs stored; run the same command again "
            "to resume (stored runs are skipped)")
    stored, last_check = 0, time.monotonic()
    while futures:
        try:
            done = wait(list(futures), timeout=TICK_S, return_when="FIRST_COMPLETED").done
        except CancelledError:
            raise ClusterError(lost.format(stored)) from None
        except (TimeoutError, asyncio.TimeoutError):
            done = set()
        for future in sorted(done, key=lambda f: futures[f][0]):
            _, job, key = futures.pop(future)
            try:
                reply = future.result()
            except CancelledError:
                raise ClusterError(lost.format(stored)) from None
            except Exception as exc:  # a worker's exception of any type is that task's failure
                finished(job, error=one_line(exc))
                continue
            if reply["records"] is None:  # not started: past the start deadline
                finished(job)
                continue
            problem = _difference(reply["state"], check.here) or next(
                (d for record in reply["records"] if (d := _data_difference(record, hashes[key], job.dataset))), None)
            if problem:
                finished(job, error=f"records not stored: worker {reply['worker']} {problem}")
                continue
            finished(job, reply["records"])
            stored += 1
        if futures and time.monotonic() - last_check >= TICK_S:
            check.during(stored, total)
            last_check = time.monotonic()


def _with_threads(job: Job, threads: int) -> Job:
    return replace(job, threads=threads)


def _local_cluster(workers: int, threads: int):
    """A cluster of ``workers`` processes on this machine, one task each with ``threads`` threads, no
    dashboard. Start it while :data:`LOCAL_CLUSTER_CONFIG` is set and keep it set while the cluster
    lives: a worker's nanny hands it the Dask settings in force when it starts the worker, also when
    it starts one again after a crash (its copy of them shares their nested dictionaries)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                        env={"OMP_NUM_THREADS": str(threads)}, resources=_local_resources())


def _local_resources() -> dict | None:
    """``GPU=1`` on every local worker when this machine has a GPU, so cuda tasks can run here."""
    try:
        import torch

        return {"GPU": 1} if torch.cuda.is_available() else None
    except ImportError:
        return None
