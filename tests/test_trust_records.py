"""Records you can trust (issue 29, items 5, 6 and 8): a badly typed or NaN record is skipped or
counted with one warning, never a traceback; records carry a schema version, are strict JSON and
stay inside ``--out``; an interrupted report leaves the previous derived set; a run at another
thread count is not taken for a stored one."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import common.files
from protocols import map as map_protocol
from protocols import runner
from protocols.records import SCHEMA_VERSION, read_record
from protocols.report import JOURNAL, STAGING, finish_interrupted, rebuild_all
from protocols.tables import write_map_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    # reports here are about digits: the paper's status pages skip loading Fashion-MNIST (seconds a report)
    (tmp_path / "no-fashion-mnist").mkdir()
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "no-fashion-mnist"))


@pytest.fixture(scope="module")
def lsh_records(tmp_path_factory):
    """LSH at 16 bits on digits, training seeds 0, 1, 2 (one record each), and at 32 bits, seed 0."""
    common.files.CACHE_DIR, before = tmp_path_factory.mktemp("cache"), common.files.CACHE_DIR
    try:
        return [runner.run("digits", "lsh", bits, train_seed=t)[0] for bits, t in ((16, 0), (16, 1), (16, 2), (32, 0))]
    finally:
        common.files.CACHE_DIR = before


def _store(out, records):
    return runner.store([json.loads(json.dumps(r)) for r in records], out)


def _warnings(err: str, needle: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:") and needle in line]


# -- 5. a wrongly typed field: the record is skipped with one warning naming the file and field --------
@pytest.mark.parametrize("field, value", [("map", "0.5"), ("bits", "16"), ("topk", None), ("method", 5)])
def test_5_a_wrongly_typed_field_skips_the_record_with_one_warning(tmp_path, capsys, lsh_records, field, value):
    out = tmp_path / "results"
    good = _store(out, lsh_records[:1])[0]
    bad = good.with_name("bad.json")
    bad.write_text(json.dumps(dict(json.loads(good.read_text()), **{field: value})))
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(out)]) == 0
    rebuild_all(out, readme="none", progress=lambda path: None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warned = _warnings(err, str(bad))
    assert len(warned) == 1 and f"field '{field}'" in warned[0], err  # once, however many readers
    frame = pd.read_csv(out / "map" / "digits.csv")
    assert len(frame) == 1 and frame["map"].notna().all()  # the good run only
    assert bad.is_file()  # never deleted: the user decides


def test_5_a_nan_map_is_warned_about_and_the_cell_says_how_many_seeds_remain(tmp_path, capsys, lsh_records):
    out = tmp_path / "results"
    paths = _store(out, lsh_records[:3])
    nan = paths[1]
    nan.write_text(nan.read_text().replace(f'"map": {lsh_records[1]["map"]!r}', '"map": NaN'))
    assert math.isnan(json.loads(nan.read_text())["map"])
    write_map_report(out, "digits")
    err = capsys.readouterr().err
    assert len(_warnings(err, f"{nan}: map is NaN")) == 1, err
    table = (out / "map" / "digits.md").read_text()
    maps = [lsh_records[0]["map"], lsh_records[2]["map"]]
    mean = sum(maps) / 2
    assert f"{mean:.4f} ± " in table and "(2 of 3)" in table.split("## Tie-aware")[0], table


def test_5_records_carry_a_schema_version_and_a_newer_one_is_skipped(tmp_path, capsys, lsh_records):
    from protocols.efficiency_records import store_rows

    assert all(r["schema_version"] == SCHEMA_VERSION for r in lsh_records)
    row = {"index": "exhaustive", "params": "", "db_size": 100, "topk": 10, "ms_per_query": 0.1, "dataset": "digits"}
    (path,) = store_rows([row], tmp_path / "results", "digits")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    newer = _store(tmp_path / "results", lsh_records[:1])[0]
    newer.write_text(json.dumps(dict(json.loads(newer.read_text()), schema_version=SCHEMA_VERSION + 1)))
    assert read_record(newer) is None
    assert "field 'schema_version'" in capsys.readouterr().err


def test_5_committed_records_are_strict_json_and_new_ones_too(tmp_path):
    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")

    for path in sorted((ROOT / "results").rglob("runs/*/*.json")):
        json.loads(path.read_text(), parse_constant=refuse)  # NaN, Infinity: raise
    written = runner.store([dict(_minimal(), map=float("nan"), p_r2=float("inf"))], tmp_path)[0]
    assert json.loads(written.read_text(), parse_constant=refuse)["map"] is None


def _minimal():
    return {"dataset": "digits", "method": "lsh", "bits": 16, "search": "hamming", "topk": 10, "seed": 0, "map": 0.5}


@pytest.mark.parametrize("field, value", [("dataset", "../../../outside"), ("dataset", "a/b"), ("dataset", ".."),
                                          ("dataset", ""), ("method", "../../x"), ("search", "tree/../../x")])
def test_5_store_refuses_names_that_are_not_plain(tmp_path, field, value):
    out = tmp_path / "deep" / "results"
    with pytest.raises(ValueError) as info:
        runner.store([_minimal(), dict(_minimal(), **{field: value})], out)
    assert "\n" not in str(info.value) and field in str(info.value) and repr(value) in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written, in --out or outside


# -- 6. an interrupted report leaves the previous derived set (or, killed while replacing it, the next one) --
DRIVER = """
import os, signal, sys
# a shell starts a background job with SIGINT ignored, and Python then installs no KeyboardInterrupt
# handler: the Ctrl-C case must not depend on how the suite was launched
signal.signal(signal.SIGINT, signal.default_int_handler)
limit, how = int(sys.argv[2]), sys.argv[4]
calls, real = [0], os.replace
def counting(src, dst):  # every file the report writes, and every move of its commit, is an os.replace
    if calls[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGINT)
    calls[0] += 1
    return real(src, dst)
os.replace = counting
from protocols.report import rebuild_all
try:
    rebuild_all(sys.argv[1], readme=sys.argv[3], progress=lambda path: None)
finally:
    print(calls[0])
"""


def _state(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and STAGING not in p.relative_to(folder).parts}


def test_6_a_report_killed_at_any_point_leaves_one_consistent_set(tmp_path, lsh_records):
    readme_text = "# project\n\n<!-- results:begin -->\nold\n<!-- results:end -->\nafter\n"
    old = tmp_path / "old"
    (old / "README.md").parent.mkdir()
    (old / "README.md").write_text(readme_text)
    _store(old / "results", lsh_records[:1])
    rebuild_all(old / "results", readme=str(old / "README.md"), progress=lambda path: None)
    _store(old / "results", lsh_records[1:])  # two more seeds and 32 bits: the tables and the site change
    (old / "README.md").write_text(readme_text)  # and a README whose block is out of date
    new = tmp_path / "new"
    shutil.copytree(old, new)
    rebuild_all(new / "results", readme=str(new / "README.md"), progress=lambda path: None)
    before, after = _state(old), _state(new)
    derived = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert any(k.startswith("results/site/") for k in derived) and "README.md" in derived
    assert any(k.startswith("results/map/digits.") for k in derived)

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = dict(os.environ, HASHBENCH_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))

    def report(folder, limit, how="kill"):
        return subprocess.run([sys.executable, str(driver), str(folder / "results"), str(limit),
                               str(folder / "README.md"), how], capture_output=True, text=True, env=env, timeout=240)

    done = report(_copy(old, tmp_path / "count"), -1)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _state(tmp_path / "count") == after
    total = int(done.stdout.split()[-1])  # the build's writes, the journal, then the moves
    moves = sum(1 for k in derived if k in after)  # a file the new set no longer has is removed, not moved
    commit = total - moves  # the call that writes the journal is number commit - 1
    # early in the build; writing the journal (killed before its rename); the journal written and one file moved
    for limit in (1, commit - 1, commit + 1):
        folder = _copy(old, tmp_path / f"kill-{limit}")
        killed = report(folder, limit)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert (folder / "results" / STAGING / JOURNAL).is_file() == (limit >= commit)
        if limit < commit:  # killed before the journal: the previous set, untouched
            assert _state(folder) == before, f"killed at write {limit} of {total}"
        finish_interrupted(folder / "results")  # what the next report does first
        assert not (folder / "results" / STAGING).exists()
        assert _state(folder) == (before if limit < commit else after), f"killed at write {limit} of {total}"
    for limit in (commit // 2, commit + 1):  # Ctrl-C: in the build nothing changes; in the commit it completes
        folder = _copy(old, tmp_path / f"interrupt-{limit}")
        interrupted = report(folder, limit, "interrupt")
        assert interrupted.returncode != 0 and "KeyboardInterrupt" in interrupted.stderr
        assert not (folder / "results" / STAGING).exists()
        assert _state(folder) == (before if limit < commit else after), f"interrupted at write {limit} of {total}"


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# -- 8. a run at another thread count is not a stored run ------------------------------------------------
def test_8_a_stored_run_is_reused_only_at_its_thread_count(tmp_path, digits, lsh_records):
    record = json.loads(json.dumps(lsh_records[0]))
    assert record["threads"] == {"blas": 1, "openmp": 1}  # the tests pin one thread (conftest)

    def stored(**threads):
        return runner.stored_run(tmp_path, digits, "lsh", 16, **threads)

    _store(tmp_path, [record])
    assert stored() is not None and stored(threads=1) is not None  # this process runs one thread
    assert stored(threads=2) is None and stored(threads={"blas": 1, "openmp": 2}) is None
    assert stored(threads="any") is not None
    older = {k: v for k, v in record.items() if k != "threads"}  # before `threads`: torch's count stood for all
    _store(tmp_path, [older])
    assert stored(threads=1) is not None and stored(threads=2) is None
    oldest = {k: v for k, v in older.items() if k != "torch_threads"}  # no count at all: reused at any
    _store(tmp_path, [oldest])
    assert stored(threads=1) is not None and stored(threads=2) is not None
