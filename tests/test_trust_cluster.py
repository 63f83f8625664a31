"""Issue 29, item 3: a Dask cluster's workers are checked against the client before their records are
stored, and every way a cluster can fail ends in one line instead of a hang or a traceback. Small
local clusters on digits; a mismatched worker is simulated by patching what it reports
(:func:`protocols.grid.worker_state`), a non-scheduler by a socket on 127.0.0.1. Calls that used
to hang run in a thread with a deadline, so a regression fails in seconds instead of waiting."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protocols import grid, runner
from protocols import map as map_protocol
from tests.conftest import write_mini_photos

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """Worker processes read the cache folder from the environment when they start; this process's
    commit is read afresh (a worker thread here reports it as cached, the client as the checkout is)."""
    import common.files
    from common.provenance import git_state

    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    git_state.cache_clear()


@pytest.fixture
def cluster(cache_env):
    """One worker thread in this process (so a patch of this process is what the worker reports)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as local, \
            Client(local) as client:
        yield local, client


def _files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def _bounded(work, seconds: float):
    """``work()``'s value (or the exception it raised, returned), failing the test if it is still
    running after ``seconds``: the old client waited forever in these cases."""
    outcome = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the test, which says what it expected
            outcome["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still waiting after {seconds} s")
    return outcome["value"], time.monotonic() - start


def _error_lines(err: str) -> list[str]:
    """stderr without the progress bar's redraws."""
    return [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not line.startswith("grid:")]


def _state_with(change):
    """A :func:`protocols.grid.worker_state` that reports what the real one does, changed by ``change``."""
    real = grid.worker_state

    def reported(datasets=(), dask_worker=None):
        state = real(datasets)
        change(state)
        return state

    return reported


def _other_commit(state):
    state["git"]["commit"] = "0" * 40


def _flip_dirty(state):
    state["git"]["dirty"] = not state["git"]["dirty"]


def _old_torch(state):
    state["versions"]["torch"] = "0.0.1"


def _other_split(state):
    for hashes in state["data"].values():
        hashes["split_sha256"] = "f" * 64


def _no_package(state):
    raise ModuleNotFoundError("No module named 'protocols'")


@pytest.mark.parametrize("change, message", [
    (_other_commit, "runs commit 000000000000 where this client runs "),
    (_flip_dirty, "uncommitted changes"),
    (_old_torch, "has torch 0.0.1 where this client has torch "),
    (_other_split, "has digits with split_sha256 ffffffffffff where this client has "),
    (_no_package, "cannot import this package (ModuleNotFoundError: No module named 'protocols')"),
], ids=["commit", "dirty", "versions", "data", "import"])
def test_a_worker_unlike_the_client_is_refused_by_name_before_any_run(cluster, tmp_path, monkeypatch, change,
                                                                         message):
    _, client = cluster
    monkeypatch.setattr(grid, "worker_state", _state_with(change))
    (address,) = client.scheduler_info()["workers"]
    jobs = grid.expand("digits", ["lsh"], [16], [0])
    with pytest.raises(RuntimeError) as refused:
        grid.run_grid(jobs, tmp_path / "out", client=client, progress=False)
    text = str(refused.value)
    assert f"worker {address} " in text and message in text and "\n" not in text
    assert _files(tmp_path / "out") == []


def test_records_are_refused_from_a_worker_that_no_longer_matches_when_it_returns_them(cluster, tmp_path,
                                                                                         monkeypatch):
    """The state returned with each task's records is checked, not only the state before the grid
    (a worker that joined late, or was restarted from another checkout)."""
    _, client = cluster
    real, changed = grid.worker_state, _state_with(_other_commit)

    def reported(datasets=(), dask_worker=None):  # the check before the grid (with datasets) passes, the tasks' not
        return real(datasets) if datasets else changed(datasets)

    monkeypatch.setattr(grid, "worker_state", reported)
    (address,) = client.scheduler_info()["workers"]
    jobs = grid.expand("digits", ["lsh", "itq"], [16], [0])
    result = grid.run_grid(jobs, tmp_path / "out", client=client, progress=False)
    assert result.records == [] and len(result.failures) == 2
    for _, message in result.failures:
        assert message.startswith(f"records not stored: worker {address} runs commit 000000000000 ")
    assert _files(tmp_path / "out") == []


def test_records_of_other_data_are_refused(cluster, tmp_path, monkeypatch):
    """A worker whose data (or whose copy of a path) differs gives records with other hashes: not stored."""
    _, client = cluster
    real = runner.run

    def other_data(*args, **kwargs):
        return [dict(record, split_sha256="f" * 64) for record in real(*args, **kwargs)]

    monkeypatch.setattr(runner, "run", other_data)
    (address,) = client.scheduler_info()["workers"]
    result = grid.run_grid(grid.expand("digits", ["lsh"], [16], [0]), tmp_path / "out", client=client,
                           progress=False)
    assert result.records == [] and len(result.failures) == 1
    message = result.failures[0][1]
    assert message.startswith(f"records not stored: worker {address} has digits with split_sha256 ffffffffffff "
                              "where this client has ") and "\n" not in message
    assert _files(tmp_path / "out") == []


def test_a_worker_joining_mid_grid_at_another_commit_stops_the_grid_by_name(cluster, tmp_path, monkeypatch):
    local, client = cluster
    real = grid.worker_state
    first = set(client.scheduler_info()["workers"])

    def reported(datasets=(), dask_worker=None):
        state = real(datasets)
        if dask_worker is not None and dask_worker.address not in first:
            state = dict(state, git=dict(state["git"], commit="0" * 40))
        return state

    release = threading.Event()
    real_run = runner.run

    def held(*args, **kwargs):  # the first worker stays busy until the late one has been seen
        release.wait(40)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(grid, "worker_state", reported)
    monkeypatch.setattr(runner, "run", held)

    def add_worker_once_busy():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(client.processing().values()):
            time.sleep(0.05)
        local.scale(2)

    helper = threading.Thread(target=add_worker_once_busy, daemon=True)
    helper.start()
    try:
        outcome, _ = _bounded(lambda: grid.run_grid(grid.expand("digits", ["lsh", "itq"], [16], [0]),
                                                    tmp_path / "out", client=client, progress=False), 90)
    finally:
        release.set()
        helper.join(30)
    assert isinstance(outcome, RuntimeError), outcome
    (late,) = set(client.scheduler_info()["workers"]) - first
    text = str(outcome)
    assert text.startswith(f"worker {late} of the Dask scheduler at ") and ", which joined mid-grid, runs commit " \
        "000000000000 " in text and text.endswith("0 of 2 runs stored; run the same command again to resume")
    assert "\n" not in text and _files(tmp_path / "out") == []


def test_a_scheduler_without_workers_fails_after_the_timeout_in_one_line(cache_env, tmp_path, monkeypatch, capsys):
    from distributed import LocalCluster

    monkeypatch.setenv("HASHBENCH_WORKER_TIMEOUT", "2")
    argv = ["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(tmp_path / "out")]
    with LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=":0") as empty:
        code, seconds = _bounded(lambda: map_protocol.main(argv + ["--scheduler", empty.scheduler_address]), 60)
    assert code == 1 and seconds < 30
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == (f"python -m protocols.map: error: no Dask worker joined the scheduler at {empty.scheduler_address} "
                    f"in 2 s: start workers (dask worker {empty.scheduler_address}), or wait longer with "
                    "HASHBENCH_WORKER_TIMEOUT=SECONDS")


@pytest.fixture
def not_a_scheduler(request):
    """A port on 127.0.0.1 that sends a banner and closes (an SSH server's), or accepts and says
    nothing (as a dashboard's HTTP server waits for a request)."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            if request.param == "banner":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("not_a_scheduler, why", [
    ("banner", "(it answers in another protocol): give the scheduler's address, e.g. tcp://HOST:8786 (not its "
               "dashboard's port)"),
    ("silent", "(no answer in 2 s): give the scheduler's address, e.g. tcp://HOST:8786 (not its dashboard's port), "
               "or wait longer with HASHBENCH_CONNECT_TIMEOUT=SECONDS"),
], indirect=["not_a_scheduler"], ids=["banner", "silent"])
def test_a_scheduler_address_that_is_not_a_scheduler_is_one_line_quickly(cache_env, not_a_scheduler, why, tmp_path,
                                                                         monkeypatch, capsys):
    monkeypatch.setenv("HASHBENCH_CONNECT_TIMEOUT", "2")
    argv = ["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(tmp_path / "out"),
            "--scheduler", not_a_scheduler]
    code, seconds = _bounded(lambda: map_protocol.main(argv), 60)
    assert code == 1 and seconds < 30
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == f"python -m protocols.map: error: {not_a_scheduler} is not a Dask scheduler {why}"


def test_workers_and_scheduler_together_are_refused_before_any_work(tmp_path, capsys):
    argv = ["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(tmp_path / "out"),
            "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"]
    code, _ = _bounded(lambda: map_protocol.main(argv), 60)
    assert code == 2
    assert capsys.readouterr().err.strip() == ("python -m protocols.map: error: --workers starts a local cluster and "
                                               "--scheduler names an existing one: give one of them")
    assert _files(tmp_path / "out") == []


def test_a_relative_data_root_is_the_clients_folder_on_every_worker(cache_env, tmp_path, monkeypatch):
    """The worker process starts in another folder holding other photos under the same relative name."""
    from distributed import Client, LocalCluster

    write_mini_photos(tmp_path / "worker" / "photos", per_class=(2, 4, 7))
    client_root = write_mini_photos(tmp_path / "client" / "photos")
    monkeypatch.chdir(tmp_path / "worker")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as local, \
            Client(local) as client:
        monkeypatch.chdir(tmp_path / "client")
        jobs = grid.expand("listfile", ["lsh"], [16], [0], data_root="photos", features="pixels")
        result = grid.run_grid(jobs, tmp_path / "out", client=client, progress=False)
    assert not result.failures and len(result.records) == 1
    ours = runner.load("listfile", client_root).info["data_sha256"]
    assert result.records[0]["data_sha256"] == ours


def test_a_scheduler_lost_mid_grid_says_what_is_stored_and_to_rerun(cache_env, tmp_path, capfd):
    """A real scheduler process, killed once the first run is stored: one line, no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not scheduler_file.is_file():
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole before the scheduler listens
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-nanny", "--no-dashboard"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        runs = tmp_path / "out" / "map" / "runs" / "digits"

        def kill_after_the_first_run():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not list(runs.glob("*.json")):
                time.sleep(0.05)
            scheduler.kill()

        killer = threading.Thread(target=kill_after_the_first_run, daemon=True)
        killer.start()
        argv = ["--dataset", "digits", "--methods", "ksh", "--bits", "16,32", "--seeds", "0,1,2", "--out",
                str(tmp_path / "out"), "--scheduler", address]
        code, _ = _bounded(lambda: map_protocol.main(argv), 150)
        killer.join(5)
    finally:
        for process in (scheduler, worker):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    stored = len(list(runs.glob("*.json")))
    err = capfd.readouterr().err
    assert code == 1 and 1 <= stored < 6
    assert "Traceback" not in err and "cancelled" not in err.lower()
    errors = [line for line in _error_lines(err) if "error" in line.lower()]
    assert errors == [f"python -m protocols.map: error: lost the Dask scheduler at {address} mid-grid: {stored} of 6 "
                      "runs stored; run the same command again to resume (stored runs are skipped)"]
