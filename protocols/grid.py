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
others go on.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from common.files import one_line
from protocols import runner


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

    @property
    def label(self) -> str:
        return f"{self.method} at {self.bits} bits, training seed {self.train_seed}"

    def kwargs(self) -> dict:
        return dict(seed=self.seed, train_seed=self.train_seed, params=dict(self.params), topk=self.topk,
                    data_root=self.data_root, features=self.features, device=self.device, save_codes=self.save_codes)


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


def pending(jobs: list[Job], out, dataset) -> tuple[list[Job], int]:
    """``(jobs to run, number already stored)``: a job whose records are all stored is skipped."""
    todo = [job for job in jobs if runner.stored_run(out, dataset, job.method, job.bits, seed=job.seed,
                                                     train_seed=job.train_seed, params=dict(job.params),
                                                     topk=job.topk) is None]
    return todo, len(jobs) - len(todo)


@dataclass
class GridResult:
    records: list = field(default_factory=list)
    failures: list = field(default_factory=list)  # (job, one-line message)


def run_grid(jobs: list[Job], out, *, workers: int = 0, scheduler: str | None = None, client=None,
             dataset=None, on_records=None, store=None, progress: bool = True) -> GridResult:
    """Run ``jobs`` and store each one's records under ``out`` as it finishes (``store(job,
    records)`` instead, where given: a sweep keeps its own file); ``on_records(job, records)`` is
    called after each is stored. Failures are collected, reported as one line each, and do not stop
    the others. In process, ``dataset`` (loaded) saves loading it per job."""
    from tqdm import tqdm

    result = GridResult()
    bar = tqdm(total=len(jobs), desc="grid", unit="run", file=sys.stderr, disable=not progress)

    def finished(job, records=None, error=None):
        if error is not None:
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

    current = "the grid"
    try:
        if not (workers or scheduler or client):
            for job in jobs:
                current = job.label
                bar.set_postfix_str(f"{job.label}, failed {len(result.failures)}")
                try:
                    records = execute(job, dataset)
                except (ValueError, RuntimeError, ArithmeticError, MemoryError, OSError) as exc:
                    finished(job, error=one_line(exc))
                    continue
                finished(job, records)
        else:
            _run_on_dask(jobs, workers, scheduler, client, finished)
    except KeyboardInterrupt:
        bar.close()
        raise KeyboardInterrupt(f"interrupted during {current}; the {len(result.records)} finished rows are stored "
                                "(files are replaced whole, never half-written): rerun the command to resume") from None
    bar.close()
    return result


def _run_on_dask(jobs, workers, scheduler, client, finished):
    from distributed import Client, LocalCluster, as_completed

    own = None
    if client is None:
        if scheduler:
            client = own = Client(scheduler)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   env={"OMP_NUM_THREADS": str(threads)}, resources=_local_resources())
            client = own = Client(cluster)
            jobs = [_with_threads(job, threads) for job in jobs]
    try:
        futures = {}
        for job in jobs:
            gpu = bool(job.device and str(job.device).startswith("cuda"))
            future = client.submit(execute, job, pure=False, resources={"GPU": 1} if gpu else None)
            futures[future] = job
        for future in as_completed(futures):
            job = futures.pop(future)
            try:
                records = future.result()
            except Exception as exc:  # a worker's exception of any type is that task's failure
                finished(job, error=one_line(exc))
                continue
            finished(job, records)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()


def _with_threads(job: Job, threads: int) -> Job:
    from dataclasses import replace

    return replace(job, threads=threads)


def _local_resources() -> dict | None:
    """``GPU=1`` on every local worker when this machine has a GPU, so cuda tasks can run here."""
    try:
        import torch

        return {"GPU": 1} if torch.cuda.is_available() else None
    except ImportError:
        return None
