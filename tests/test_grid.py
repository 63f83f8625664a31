"""Grids on a Dask cluster: the same records as in process, a lost worker or client costs nothing
but time, a failing task is reported while the others finish."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from protocols import grid, runner
from protocols.deadline import START_UNTIL_ENV

DEEP = (("cache", False), ("device", "cpu"), ("epochs", 1), ("num_threads", 1), ("progress", False))


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """Worker processes read the cache folder from the environment when they start."""
    import common.files

    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")


def _maps(out):
    records = [json.loads(p.read_text()) for p in sorted((Path(out) / "map" / "runs" / "digits").glob("*.json"))]
    return {(r["method"], r["bits"], r["search"], r["train_seed"]): (r["map"], r["map_all"]) for r in records}


def _codes(folder):
    return {p.name: np.load(p)["db_codes"] for p in sorted(Path(folder).glob("*.npz"))}


def test_a_local_cluster_gives_the_records_and_codes_of_the_in_process_run(tmp_path, cache_env):
    def jobs(codes):
        shallow = grid.expand("digits", ["lsh", "itq", "sh"], [16], [0, 1], save_codes=str(codes))
        deep = grid.expand("digits", ["hashnet"], [16], [0, 1], save_codes=str(codes), threads=1)
        return shallow + [grid.Job(**dict(vars(j), params=DEEP)) for j in deep]

    here = grid.run_grid(jobs(tmp_path / "codes-here"), tmp_path / "here", progress=False)
    there = grid.run_grid(jobs(tmp_path / "codes-there"), tmp_path / "there", workers=2, progress=False)
    assert not here.failures and not there.failures and len(here.records) == len(there.records) == 8
    assert _maps(tmp_path / "here") == _maps(tmp_path / "there")
    a, b = _codes(tmp_path / "codes-here"), _codes(tmp_path / "codes-there")
    assert sorted(a) == sorted(b) and len(a) == 8 and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_worker_killed_mid_grid_still_completes_the_grid(tmp_path, cache_env):
    from distributed import Client, LocalCluster

    jobs = grid.expand("digits", ["ksh"], [16, 32], [0, 1, 2], params={"max_iter": 50})
    expected = grid.run_grid(jobs, tmp_path / "here", progress=False)
    killed = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)

        def kill_one(job, records):
            if not killed:  # after the first result, while the other worker is busy
                victim = next(pid for pid in pids.values())
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        result = grid.run_grid(jobs, tmp_path / "there", client=client, on_records=kill_one, progress=False)
    assert killed and not result.failures and len(result.records) == len(jobs)
    assert _maps(tmp_path / "there") == _maps(tmp_path / "here") and len(expected.records) == len(jobs)


def test_a_killed_client_resumes_without_rerunning_what_is_stored(tmp_path, cache_env):
    out = tmp_path / "results"
    runs = out / "map" / "runs" / "digits"
    argv = [sys.executable, "-m", "protocols.map", "--dataset", "digits", "--methods", "lsh,itq,sh,ksh",
            "--bits", "16,32", "--seeds", "0,1", "--out", str(out), "--workers", "2"]
    client = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(runs.glob("*.json"))) < 4:
        time.sleep(0.2)
    os.killpg(client.pid, signal.SIGKILL)  # the client and its local cluster, with no chance to clean up
    client.wait()
    stored = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert 4 <= len(stored) < 16, "kill the client mid-grid"
    rerun = subprocess.run(argv[:-2], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-500:]
    assert f"{len(stored)} of 16 runs stored already" in rerun.stderr
    after = {p.name: p.stat().st_mtime_ns for p in runs.glob("*.json")}
    assert len(after) == 16 and all(after[name] == stamp for name, stamp in stored.items())


def test_a_failing_task_is_reported_and_the_others_finish(tmp_path, cache_env):
    jobs = grid.expand("digits", ["lsh", "itq"], [16], [0])
    bad = grid.Job("digits", "itq", 32, params=(("n_iter", -5),))  # refused by the method, on the worker
    result = grid.run_grid(jobs + [bad], tmp_path / "out", workers=2, progress=False)
    assert len(result.records) == 2 and len(result.failures) == 1
    job, message = result.failures[0]
    assert job == bad and "itq n_iter must be an integer >= 0, got -5" in message and "\n" not in message


def test_the_local_cluster_runs_its_workers_without_the_dask_profiler():
    """The profiler takes the GIL from the training thread every 10 ms for a dashboard that is not
    started, and the other settings make the event loop wake less often; a worker the nanny starts
    again after a crash gets the same settings."""
    import dask
    from distributed import Client

    def settings(dask_worker):
        return ("profile" in dask_worker.periodic_callbacks, dask_worker.periodic_callbacks["tick"].callback_time,
                {key: dask.config.get(key) for key in grid.LOCAL_CLUSTER_CONFIG})

    expected = (False, 1000, grid.LOCAL_CLUSTER_CONFIG)
    with dask.config.set(grid.LOCAL_CLUSTER_CONFIG), grid._local_cluster(1, 1) as cluster, Client(cluster) as client:
        assert list(client.run(settings).values()) == [expected]
        client.restart()
        assert list(client.run(settings).values()) == [expected]


def test_only_a_cluster_this_module_starts_gets_its_settings(tmp_path, monkeypatch):
    import dask

    seen = []
    monkeypatch.setattr(grid, "_run_on_cluster", lambda *args: seen.append(
        dask.config.get("distributed.worker.profile.enabled")))
    job = grid.expand("digits", ["lsh"], [16], [0])
    grid.run_grid(job, tmp_path / "local", workers=2, progress=False)
    grid.run_grid(job, tmp_path / "theirs", scheduler="tcp://127.0.0.1:1", progress=False)
    assert seen == [False, dask.config.get("distributed.worker.profile.enabled")] and seen[1] is not False


def test_no_run_starts_past_the_start_deadline_and_the_next_call_resumes(tmp_path, cache_env, monkeypatch, capsys):
    jobs = grid.expand("digits", ["lsh", "itq", "sh"], [16], [0])
    clock = {"now": time.time()}
    monkeypatch.setattr(grid.time, "time", lambda: clock["now"])
    monkeypatch.setenv(START_UNTIL_ENV, "2100-01-01T00:00Z")

    def after_the_first(job, records):
        clock["now"] = 4102444800.0 + 60  # a minute past 2100-01-01T00:00Z: the deadline has passed

    result = grid.run_grid(jobs, tmp_path / "out", on_records=after_the_first, progress=False)
    assert len(result.records) == 1 and not result.failures and result.not_started == jobs[1:]
    assert "2 runs not started: HASHBENCH_START_UNTIL (2100-01-01T00:00Z) had passed" in capsys.readouterr().err
    assert len(list((tmp_path / "out" / "map" / "runs" / "digits").glob("*.json"))) == 1
    monkeypatch.delenv(START_UNTIL_ENV)
    todo, stored = grid.pending(jobs, tmp_path / "out", runner.load("digits"))
    assert todo == jobs[1:] and stored == 1
    assert len(grid.run_grid(todo, tmp_path / "out", progress=False).records) == 2


def test_a_cluster_worker_starts_nothing_past_the_start_deadline(tmp_path, cache_env, monkeypatch):
    monkeypatch.setenv(START_UNTIL_ENV, "2000-01-01T00:00")  # no zone: UTC
    jobs = grid.expand("digits", ["lsh", "itq"], [16], [0])
    result = grid.run_grid(jobs, tmp_path / "out", workers=2, progress=False)
    # in the order the workers answered, which a loaded machine can swap
    assert sorted(result.not_started, key=jobs.index) == jobs and not result.records and not result.failures
    assert not (tmp_path / "out" / "map").exists()


def test_a_start_deadline_that_is_no_time_is_refused_in_one_line(tmp_path, monkeypatch):
    from protocols.runner import UsageError

    monkeypatch.setenv(START_UNTIL_ENV, "half past four")
    with pytest.raises(UsageError, match="^HASHBENCH_START_UNTIL='half past four' is not a time; give one as"):
        grid.run_grid(grid.expand("digits", ["lsh"], [16], [0]), tmp_path / "out", progress=False)
