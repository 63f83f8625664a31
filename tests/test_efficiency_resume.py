"""Table II runs that span sessions (issue 30's 10^7 and 10^8 rows take many hours): ``--resume``
keeps every build an earlier run of the same commit finished, including the other builds of an index
it measures again, and ``HASHBENCH_START_UNTIL`` stops the builds (and the paired timing) at a
deadline, so that the next call goes on where this one stopped. Tiny sizes only: nothing here is a
timing."""
import json

import pytest

import common.files
from protocols import efficiency, efficiency_paired, efficiency_records, efficiency_run
from protocols.deadline import START_UNTIL_ENV

ARGV = ["--dataset", "synthetic", "--baseline", "lsh", "--bits", "16", "--db-sizes", "3000", "--topk", "50",
        "--repeats", "1", "--timing-queries", "5", "--single-queries", "2", "--keep-ratios", "0.3,1.0",
        "--tree-method", "hdhash", "--param", "epochs=1", "--param", "progress=False"]
NAME = efficiency_records.table_name("synthetic", 16, "lsh", "hdhash", {"hdhash": "epochs=1", "lsh": ""})


@pytest.fixture
def clean_commit(tmp_path, monkeypatch):
    """A clean tree at one commit (``--resume`` keeps rows by commit) and a model cache of its own."""
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    clean = {"commit": "c0ffee" * 6 + "abcd", "dirty": False}
    monkeypatch.setattr(efficiency_run, "git_state", lambda: clean)
    monkeypatch.setattr("common.provenance.git_state", lambda: clean)
    return tmp_path / "results"


def _stored(out) -> dict:
    return {p.name: json.loads(p.read_text()) for p in (out / "efficiency" / "runs" / NAME).glob("*.json")}


def test_resume_keeps_the_other_builds_of_an_index_it_measures_again(clean_commit):
    """IVF's rows at one size come from three builds (one per nlist), one index family: a run that
    stopped inside the last build measures that build again, and the two it kept stay in the table (they
    were moved aside as an earlier grid's rows before, and the table lost them)."""
    argv = ARGV + ["--skip", "faiss-hnsw,faiss-multihash,faiss-hash,hdhash-tree,hdhash-tree-budget,hdhash-flat,"
                             "exhaustive-full", "--out", str(clean_commit)]
    assert efficiency.main(argv) == 0
    first = _stored(clean_commit)
    ivf = {name: r for name, r in first.items() if r["index"] == "faiss-ivf"}
    nlists = sorted({r["build_params"] for r in ivf.values()}, key=lambda text: int(text.split("=")[1]))
    assert len(nlists) == 3
    cut = sorted(name for name, r in ivf.items() if r["build_params"] == nlists[-1])
    (clean_commit / "efficiency" / "runs" / NAME / cut[0]).unlink()

    assert efficiency.main(argv + ["--resume"]) == 0
    again = _stored(clean_commit)
    assert set(again) == set(first)
    remeasured = {name for name in again if again[name]["timestamp"] != first[name]["timestamp"]}
    assert remeasured == set(cut)
    aside = clean_commit / "efficiency" / "runs" / NAME / efficiency_records.SUPERSEDED
    assert {p.name for p in aside.glob("*.json")} <= set(cut)  # only the first copies of what was measured again


def test_no_index_is_built_past_the_start_deadline_and_resume_goes_on(clean_commit, monkeypatch, capsys):
    """Past ``HASHBENCH_START_UNTIL`` the run builds nothing more and says how many rows are left; the
    next call with ``--resume`` measures only those, then times the headline in pairs at that size
    (the rows of both runs together), and a third call has nothing left to measure or pair."""
    argv = ARGV + ["--skip", "faiss-hnsw,faiss-multihash,faiss-hash,faiss-ivf,hdhash-tree-budget,exhaustive-full",
                   "--out", str(clean_commit)]
    calls = []

    def until_two_builds(until):  # the deadline passes once the run has started two builds
        calls.append(until)
        return len(calls) <= 3  # the check before the models are fitted, then one per build

    monkeypatch.setenv(START_UNTIL_ENV, "2100-01-01T00:00Z")
    monkeypatch.setattr(efficiency_run, "may_start", until_two_builds)
    monkeypatch.setattr(efficiency_paired, "may_start", until_two_builds)
    assert efficiency.main(argv) == 0
    err = capsys.readouterr().err
    assert (f"not started: {START_UNTIL_ENV} (2100-01-01T00:00Z) had passed; run the same command with --resume "
            "to go on") in err
    first = _stored(clean_commit)
    left = int(err.split(" rows not started")[0].split()[-1])
    assert len(first) >= 2 and left >= 2
    assert not any("paired_ratio" in r for r in first.values())  # the deadline stopped the pairing too

    monkeypatch.undo()
    monkeypatch.setattr(common.files, "CACHE_DIR", clean_commit.parent / "cache")
    clean = {"commit": "c0ffee" * 6 + "abcd", "dirty": False}
    monkeypatch.setattr(efficiency_run, "git_state", lambda: clean)
    monkeypatch.setattr("common.provenance.git_state", lambda: clean)
    assert efficiency.main(argv + ["--resume"]) == 0
    assert f"kept {len(first)} of {len(first) + left} rows" in capsys.readouterr().err
    second = _stored(clean_commit)
    assert len(second) == len(first) + left
    assert all(second[name]["timestamp"] == r["timestamp"] for name, r in first.items())
    paired = {name for name, r in second.items() if r.get("paired_ratio") is not None}
    assert paired and all(second[name]["index"] == "hdhash-tree" for name in paired)

    assert efficiency.main(argv + ["--resume"]) == 0
    assert f"kept {len(second)} of {len(second)} rows" in capsys.readouterr().err
    assert _stored(clean_commit) == second  # nothing measured, nothing paired again


def test_a_deadline_already_passed_fits_and_stores_nothing(clean_commit, monkeypatch, capsys):
    def fit(*args, **kwargs):
        raise AssertionError("the command trained a model")

    monkeypatch.setattr("protocols.runner.fit", fit)
    monkeypatch.setenv(START_UNTIL_ENV, "2000-01-01T00:00Z")
    assert efficiency.main(ARGV + ["--out", str(clean_commit)]) == 0
    assert "rows not started: HASHBENCH_START_UNTIL (2000-01-01T00:00Z) had passed" in capsys.readouterr().err
    assert not _stored(clean_commit)


def test_a_start_deadline_that_is_no_time_is_one_line_before_any_work(clean_commit, monkeypatch, capsys):
    monkeypatch.setenv(START_UNTIL_ENV, "half past four")
    assert efficiency.main(ARGV + ["--out", str(clean_commit)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{START_UNTIL_ENV}='half past four' is not a time" in err
