"""Results you can trust: every case of the issue that lost, replaced or corrupted results, or ran
code from a file, with the one line the suite now gives. Numbers in the test names are the issue's."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import common.files
from methods import create_method
from protocols import map as map_protocol
from protocols import paper, paper_tables, runner, sweep
from tests.conftest import write_mini_photos

FAST_DEEP = dict(epochs=1, device="cpu", progress=False, num_threads=1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")


def _files(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def _one_line_error(capsys, code, expected, returned):
    """The command returned ``code`` and its stderr ends in one line holding ``expected`` (a progress
    bar may come before it), with no traceback."""
    err = capsys.readouterr().err.strip()
    assert returned == code, err
    assert expected in err.splitlines()[-1], err
    assert "Traceback" not in err, err
    return err


# -- 1. a file in the model cache cannot run code ----------------------------------------------------
class _Payload:
    marker = None

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def test_1_pickled_code_in_the_model_cache_is_never_run(digits, tmp_path):
    X, y = digits.part("train")
    method = create_method("hashnet", nbits=16, cache=True, **FAST_DEEP)
    config = method.cache_config(np.asarray(X, np.float32), np.asarray(y, bool), torch.device("cpu"))
    path = method.cache_path(config)
    path.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    torch.save({"config": json.loads(json.dumps(config, default=str)), "state_dict": _Payload(), "fit_info": {}},
               path)
    with pytest.warns(UserWarning, match="not a plain weights file"):
        fitted = method.fit(X, y)
    assert not marker.exists(), "loading the cache ran the pickle's code"
    assert fitted.fit_info["cached"] is False  # retrained, and the file replaced by plain weights
    again = create_method("hashnet", nbits=16, cache=True, **FAST_DEEP).fit(X, y)
    assert again.fit_info["cached"] is True and not marker.exists()


# -- 2. list files may not name files outside the dataset folder -----------------------------------
@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_photos(tmp_path_factory.mktemp("mini"))


@pytest.mark.parametrize("image", ["../../../../etc/passwd", "/etc/passwd", "test/../../outside.png"])
def test_2_list_paths_leaving_the_folder_are_refused(mini, tmp_path, image):
    import shutil

    from datasets import DatasetError, load_dataset

    root = shutil.copytree(mini, tmp_path / "copy")
    lines = (root / "test.txt").read_text().splitlines()
    lines[2] = f"{image} " + lines[2].split(" ", 1)[1]
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"test.txt line 3: image path .* leaves the dataset folder") as error:
        load_dataset("listfile", data_root=root)
    assert len(str(error.value).splitlines()) == 1


def test_2_duplicate_paths_and_empty_labels_warn_once_and_spaces_are_paths(mini, tmp_path):
    import shutil

    from datasets import load_dataset

    root = shutil.copytree(mini, tmp_path / "copy")
    lines = (root / "database.txt").read_text().splitlines()
    first_path, first_labels = lines[0].split(" ", 1)
    (root / "with space.png").write_bytes((root / first_path).read_bytes())
    lines += [lines[0], lines[1], "with space.png " + " ".join(["0"] * 10), f"with space.png {first_labels}"]
    (root / "database.txt").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning) as caught:
        ds = load_dataset("listfile", data_root=root)
    messages = [str(w.message) for w in caught]
    assert sum("repeat an earlier image path" in m for m in messages) == 1
    assert sum("have no label set" in m for m in messages) == 1
    assert "with space.png" in ds.X.paths


# -- 3. --param: unknown keys, bad values, the seed's one flag, NaN losses, variants ------------------
@pytest.mark.parametrize("methods, param, expected", [
    ("lsh,itq", "foo=1", "--param foo: no selected method (lsh, itq) has that parameter; valid: n_iter"),
    ("sdh", "n_anchors=0", "sdh at 16 bits: sdh n_anchors must be an integer >= 1, got 0"),
    ("sdh", "sigma=1e999", "sdh sigma must be a finite number in (0, inf], got inf"),
    ("hashnet", "lr=1e9", "hashnet lr must be a finite number in (0, 1], got 1000000000.0"),
    ("hashnet", "epochs=0", "hashnet epochs must be an integer >= 1, got 0"),
    ("itq", "n_iter=-5", "itq n_iter must be an integer >= 0, got -5"),
    ("itq", "random_state=5", "--param random_state is set by --seed, not --param"),
])
def test_3_bad_params_are_refused_before_any_work(tmp_path, capsys, methods, param, expected):
    out = tmp_path / "results"
    code = map_protocol.main(["--dataset", "digits", "--methods", methods, "--bits", "16", "--out", str(out),
                              "--param", param])
    _one_line_error(capsys, 2, expected, code)
    assert _files(out) == []


def test_3_a_diverging_loss_stops_with_one_line_and_stores_nothing(tmp_path, capsys, monkeypatch):
    from methods.hashnet import HashNet

    monkeypatch.setattr(HashNet, "loss", lambda self, outputs, labels, indices, step: outputs.sum() * float("nan"))
    out = tmp_path / "results"
    code = map_protocol.main(["--dataset", "digits", "--methods", "hashnet", "--bits", "16", "--out", str(out),
                              "--param", "epochs=1", "--param", "progress=False", "--param", "device=cpu"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "error: hashnet at 16 bits, training seed 0 failed: hashnet: loss became nan" in err
    assert not list((out / "map" / "runs").rglob("*.json")) if (out / "map").exists() else True


def test_3_a_variant_never_replaces_the_default_row_and_table_one_shows_defaults(tmp_path):
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "itq", "--bits", "16", "--out", str(out)]) == 0
    default = (out / "map" / "runs" / "digits" / "itq-16-hamming-top1697-seed0.json").read_text()
    assert map_protocol.main(["--dataset", "digits", "--methods", "itq", "--bits", "16", "--out", str(out),
                              "--param", "n_iter=0"]) == 0
    assert (out / "map" / "runs" / "digits" / "itq-16-hamming-top1697-seed0.json").read_text() == default
    frame = pd.read_csv(out / "map" / "digits.csv", keep_default_na=False)
    assert sorted(frame["variant"]) == ["", "n_iter=0"]
    table = (out / "map" / "digits.md").read_text()
    main_table = table.split("## MAP@all")[0]
    assert f"{json.loads(default)['map']:.4f}" in main_table and "n_iter=0" not in main_table
    assert "## Variants" in table and "itq [n_iter=0]" in table



def test_3_a_changed_default_keeps_the_earlier_default_run_as_its_variant(tmp_path, capsys):
    """A run stored before a method's default changed is rerun at the new default; the earlier run
    is kept as the variant it has become, never written over."""
    out = tmp_path / "results"
    argv = ["--dataset", "digits", "--methods", "itq", "--bits", "16", "--out", str(out)]
    assert map_protocol.main(argv) == 0
    default_path = out / "map" / "runs" / "digits" / "itq-16-hamming-top1697-seed0.json"
    earlier = json.loads(default_path.read_text())
    earlier["params"]["n_iter"] = 0  # as if ITQ's default had been n_iter=0 when it ran
    earlier["map"] = 0.123
    default_path.write_text(json.dumps(earlier))
    capsys.readouterr()
    assert map_protocol.main(argv) == 0
    assert "kept as that variant" in capsys.readouterr().err
    rerun = json.loads(default_path.read_text())
    assert rerun["params"]["n_iter"] != 0 and rerun["map"] != 0.123 and rerun["variant"] == ""
    kept = runner.record_path(out, dict(earlier, variant="n_iter=0"))
    assert kept != default_path and json.loads(kept.read_text())["map"] == 0.123
    assert json.loads(kept.read_text())["variant"] == "n_iter=0"
    frame = pd.read_csv(out / "map" / "digits.csv", keep_default_na=False)
    assert sorted(frame["variant"]) == ["", "n_iter=0"]
    assert map_protocol.main(argv + ["--force"]) == 0  # same parameters: nothing more to keep
    assert len(_files(out / "map" / "runs")) == 2
    # a variant over two training seeds reads mean ± sd (n), as Table I does, not a bare mean
    second = dict(json.loads(kept.read_text()), train_seed=1, map=0.125)
    runner.store([second], out)
    from protocols.tables import write_map_report
    write_map_report(out, "digits")
    variants = (out / "map" / "digits.md").read_text().split("## Variants")[1]
    assert "| 16 | 0.1240 ± 0.0014 (2) |" in variants


# -- 4. a subset rebuild never shrinks the tables; the README is the results' own -----------------------
def test_4_no_run_on_a_subset_keeps_every_stored_row(tmp_path, monkeypatch):
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]) == 0
    argv = ["--datasets", "digits", "--out", str(out), "--no-run", "--efficiency", "", "--readme", "none"]
    assert paper.main(argv) == 0
    full = pd.read_csv(out / "paper" / "table1.csv")
    assert paper.main(argv + ["--methods", "lsh", "--bits", "16"]) == 0
    subset = pd.read_csv(out / "paper" / "table1.csv")
    pd.testing.assert_frame_equal(full, subset)
    assert subset.set_index(["dataset", "method", "bits"])["map"].notna().sum() == 2


def test_4_the_readme_block_is_rewritten_only_for_its_own_results(tmp_path, monkeypatch):
    readme = tmp_path / "project" / "README.md"
    readme.parent.mkdir()
    readme.write_text("x\n<!-- results:begin -->\nOLD-BLOCK\n<!-- results:end -->\n")
    monkeypatch.setattr(paper_tables, "REPO_README", readme)
    elsewhere = tmp_path / "elsewhere" / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(elsewhere)]) == 0
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert paper.main(["--datasets", "digits", "--no-run", "--efficiency", "", "--out", "results"]) == 0
    assert "OLD-BLOCK" in readme.read_text()  # another folder's results never touch the project's README
    own = readme.parent / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(own)]) == 0
    assert paper.main(["--datasets", "digits", "--no-run", "--efficiency", "", "--out", str(own)]) == 0
    assert "OLD-BLOCK" not in readme.read_text()


# -- 5. sweeps: every value checked first, each stored as it finishes, a rerun resumes -------------------
@pytest.mark.parametrize("extra, expected", [
    (["--values", ";"], "--values names no value"),
    (["--values", "1", "--topk", "0"], "--topk must be positive, got 0"),
    (["--values", "1;abc"], "itq n_iter must be an integer >= 0, got 'abc'"),
    (["--values", "1;2.5"], "itq n_iter must be an integer >= 0, got 2.5"),
])
def test_5_bad_sweeps_fail_before_touching_the_stored_sweep(tmp_path, capsys, extra, expected):
    stored = tmp_path / "sweeps" / "digits-itq-16-n_iter.json"
    stored.parent.mkdir()
    stored.write_text('{"records": []}\n')
    code = sweep.main(["--dataset", "digits", "--method", "itq", "--bits", "16", "--param", "n_iter",
                       "--out", str(tmp_path)] + extra)
    _one_line_error(capsys, 2, expected, code)
    assert stored.read_text() == '{"records": []}\n'


def test_5_a_sweep_resumes_from_its_stored_values(tmp_path, monkeypatch):
    argv = ["--dataset", "digits", "--method", "itq", "--bits", "16", "--param", "n_iter", "--out", str(tmp_path)]
    assert sweep.main(argv + ["--values", "0"]) == 0
    calls = []
    real = runner.run
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append(k["params"]) or real(*a, **k))
    assert sweep.main(argv + ["--values", "0;5"]) == 0
    assert calls == [{"n_iter": 5}]  # 0 was stored and kept
    records = json.loads((tmp_path / "sweeps" / "digits-itq-16-n_iter.json").read_text())["records"]
    assert [r["swept"]["n_iter"] for r in records] == [0, 5]


# -- 6. concurrent runs do not collide; orphaned temporary files go ----------------------------------------
def test_6_concurrent_processes_share_the_split_cache(tmp_path):
    code = ("import sys\nfrom datasets import load_dataset\n"
            "for _ in range(40):\n    load_dataset('synthetic')\nprint('ok')\n")
    env = dict(os.environ, HASHBENCH_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-300:] for _, err in results]
    assert not list((tmp_path / "cache" / "splits").glob("*.tmp"))


def test_6_orphaned_temporary_files_are_removed_by_the_next_write(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    orphan = folder / "hashnet-16b-abc.pt.4242.tmp"  # what a killed writer of an older version left
    orphan.write_bytes(b"half")
    recent = folder / ".x.json.99.abc.tmp"  # a live writer's file, seconds old, stays
    recent.write_bytes(b"live")
    old = os.path.getmtime(orphan) - 7200
    os.utime(orphan, (old, old))
    common.files.atomic_write_text(folder / "record.json", "{}")
    assert not orphan.exists() and recent.exists()


# -- 7. corrupt records are skipped with a warning, never fatal, never a blank row ------------------------
@pytest.mark.parametrize("content", ["{not json", "{}", "[]", "null", ""])
def test_7_a_corrupt_record_is_skipped_with_a_warning(tmp_path, capsys, content):
    from protocols.report import rebuild_all

    out = tmp_path / "results"
    bad = out / "map" / "runs" / "digits" / "x.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]) == 0
    assert "skipping" in capsys.readouterr().err
    frame = pd.read_csv(out / "map" / "digits.csv")
    assert sorted(frame["method"]) == ["itq", "lsh"] and frame["map"].notna().all()
    rebuild_all(out, readme="none", progress=lambda path: None)
    assert paper.main(["--datasets", "digits", "--out", str(out), "--dry-run"]) == 0
    assert "2 rows stored" in capsys.readouterr().out
    assert bad.read_text() == content  # never deleted: the user decides


# -- 8. output problems: one line, before any fitting; a failed write keeps the previous file ------------
def test_8_outputs_that_cannot_be_written_are_refused_before_fitting(tmp_path, capsys, monkeypatch):
    from methods.lsh import LSH

    monkeypatch.setattr(LSH, "fit", lambda *a, **k: pytest.fail("fitted before checking the outputs"))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    base = ["--dataset", "digits", "--methods", "lsh", "--bits", "16"]
    code = map_protocol.main(base + ["--out", str(a_file)])
    _one_line_error(capsys, 2, f"--out {a_file} is a file, not a folder", code)
    code = map_protocol.main(base + ["--out", str(a_file / "results")])
    _one_line_error(capsys, 2, "is not writable", code)
    code = map_protocol.main(base + ["--out", str(tmp_path / "ok"), "--save-codes", str(a_file)])
    _one_line_error(capsys, 2, "--save-codes", code)


def test_8_a_full_disk_gives_one_line_and_keeps_the_previous_record(tmp_path, capsys, monkeypatch):
    out = tmp_path / "results"
    argv = ["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(out)]
    assert map_protocol.main(argv) == 0
    record = out / "map" / "runs" / "digits" / "lsh-16-hamming-top1697-seed0.json"
    before = record.read_bytes()

    def full(fd, mode):
        os.close(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(common.files.os, "fdopen", full)
    code = map_protocol.main(argv)
    _one_line_error(capsys, 1, "No space left on device", code)
    assert record.read_bytes() == before
    assert not [p for p in _files(out) if p.name.endswith(".tmp")]


def test_8_an_unwritable_model_cache_keeps_the_model_in_memory(digits, monkeypatch):
    import methods.deep_method as deep_method

    def full(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(deep_method, "atomic_torch_save", full)
    X, y = digits.part("train")
    with pytest.warns(UserWarning, match="could not write the model cache .* kept in memory"):
        method = create_method("hashnet", nbits=16, cache=True, **FAST_DEEP).fit(X, y)
    assert method.encode(digits.part("query")[0]).shape == (len(digits.split.query), 2)


# -- 9. the other tracebacks, now one line -----------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["--methods", "lsh", "--threads", "-1"], "--threads must be a positive integer, got -1"),
    (["--methods", "lsh", "--threads", "0"], "--threads must be a positive integer, got 0"),
    (["--methods", "hashnet", "--device", "bogus"], "hashnet device must be auto, cpu, cuda, cuda:N or mps"),
    (["--methods", "hashnet", "--param", "batch_size=0"], "hashnet batch_size must be an integer >= 1, got 0"),
    (["--methods", "itq", "--param", "n_iter=abc"], "itq n_iter must be an integer >= 0, got 'abc'"),
    (["--methods", "itq", "--param", "n_iter=2.5"], "itq n_iter must be an integer >= 0, got 2.5"),
    (["--methods", "itq", "--param", "nbits=64"], "--param nbits is set by --bits, not --param"),
    (["--methods", "hdhash", "--param", "level_weights=(1e999,1e999)"], "level weights must be finite"),
])
def test_9_map_bad_input_is_one_line(tmp_path, capsys, argv, expected):
    out = tmp_path / "results"
    code = map_protocol.main(["--dataset", "digits", "--bits", "16", "--out", str(out)] + argv)
    _one_line_error(capsys, 2, expected, code)
    assert _files(out) == []


@pytest.mark.parametrize("argv, expected", [
    (["--baseline", "foo"], "unknown method 'foo'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--tree-method", "lsh"], "--tree-method lsh has no tree search"),
])
def test_9_efficiency_bad_input_is_one_line(tmp_path, capsys, argv, expected):
    from protocols import efficiency

    code = efficiency.main(["--out", str(tmp_path / "results")] + argv)
    _one_line_error(capsys, 2, expected, code)


def test_9_sweep_and_paper_bad_input_is_one_line(tmp_path, capsys):
    code = sweep.main(["--dataset", "nope", "--method", "itq", "--bits", "16", "--param", "n_iter", "--values", "1",
                       "--out", str(tmp_path)])
    _one_line_error(capsys, 2, "unknown dataset 'nope'", code)
    code = paper.main(["--datasets", "imagenet-100", "--data-root", f"imagenet100={tmp_path}", "--dry-run"])
    _one_line_error(capsys, 2, "--data-root names 'imagenet100', which is not among --datasets", code)


def test_9_ctrl_c_while_the_dataset_loads_is_one_line(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "load", interrupt)
    code = map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(tmp_path)])
    _one_line_error(capsys, 130, "interrupted", code)


def test_9_a_cached_model_that_does_not_fit_is_named_and_retrained(digits):
    X, y = digits.part("train")
    first = create_method("hashnet", nbits=16, cache=True, **FAST_DEEP).fit(X, y)
    path = Path(first.fit_info["cache_path"])
    saved = torch.load(path, weights_only=True)
    saved["state_dict"] = {k: v[..., :1] if v.ndim else v for k, v in saved["state_dict"].items()}
    torch.save(saved, path)
    with pytest.warns(UserWarning, match=f"ignoring cached model {path}: its weights do not fit"):
        second = create_method("hashnet", nbits=16, cache=True, **FAST_DEEP).fit(X, y)
    assert second.fit_info["cached"] is False
    assert np.array_equal(first.encode(digits.part("query")[0]), second.encode(digits.part("query")[0]))


@pytest.mark.parametrize("damage", ["truncated", "too few rows"])
def test_9_a_damaged_feature_cache_is_named_and_computed_again(mini, damage):
    from datasets import load_dataset
    from deep.features import feature_dataset

    ds = load_dataset("listfile", data_root=mini)
    first = np.asarray(feature_dataset(ds, "pixels").X)
    path = Path(feature_dataset(ds, "pixels").info["features_path"])
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.save(path, first[:5])
    with pytest.warns(UserWarning, match=str(path.name)):
        again = feature_dataset(ds, "pixels")
    assert np.array_equal(np.asarray(again.X), first)


# -- 10. files get the umask's mode; records are strict JSON ------------------------------------------------
def test_10_files_get_the_umask_mode_and_records_are_strict_json(tmp_path):
    previous = os.umask(0o022)
    try:
        path = common.files.atomic_write_json(tmp_path / "r.json", {"val_map": float("-inf"), "x": np.float32("nan")})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}")) == \
        {"val_map": None, "x": None}


# -- 11. one record with its provenance ------------------------------------------------------------------------
def test_11_a_record_carries_its_provenance(tmp_path):
    (record,) = runner.run("digits", "lsh", 16)
    for key in ("seed", "split_sha256", "params", "variant", "versions", "machine", "git", "torch_threads",
                "timestamp", "map", "topk"):
        assert key in record, key
    assert set(record["git"]) == {"commit", "dirty"}
    assert {"cpu", "cores"} <= set(record["machine"]) and {"numpy", "torch", "faiss"} <= set(record["versions"])


def test_11_dirty_means_the_code_differs_not_the_results_a_grid_writes(tmp_path):
    import subprocess

    from common.provenance import git_state

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results" / "table.md").write_text("| 1 |\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    state = git_state.__wrapped__  # uncached: the same folder is asked three times
    assert state(tmp_path)["dirty"] is False and len(state(tmp_path)["commit"]) == 40
    (tmp_path / "results" / "table.md").write_text("| 2 |\n")
    assert state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")
    assert state(tmp_path)["dirty"] is True


def test_11_table_two_rows_are_records_and_a_partial_rerun_keeps_the_others(tmp_path):
    from protocols.efficiency_records import rebuild_csv, store_rows

    def row(index, params, size, ms, order):
        return {"index": index, "params": params, "db_size": size, "topk": 10, "ms_per_query": ms, "order": order}

    store_rows([row("faiss-flat", "", 100, 1.0, 0), row("faiss-ivf", "nprobe=1", 100, 0.5, 1),
                row("faiss-flat", "", 1000, 9.0, 0)], tmp_path, "d")
    store_rows([row("faiss-ivf", "nprobe=1", 100, 0.4, 1)], tmp_path, "d")  # a rerun of one setting
    frame = pd.read_csv(rebuild_csv(tmp_path, "d"), keep_default_na=False)
    assert frame[["index", "db_size", "ms_per_query"]].values.tolist() == [
        ["faiss-flat", 100, 1.0], ["faiss-ivf", 100, 0.4], ["faiss-flat", 1000, 9.0]]


def test_11_a_resumed_run_counts_its_training_before_the_resume(tmp_path, monkeypatch):
    from protocols.frame import records_frame

    real_fit = runner.fit

    def resumed_fit(*args, **kwargs):  # as if the trainer resumed at epoch 83 after 1,500 s of training
        model, _ = real_fit(*args, **kwargs)
        model.fit_info_ = dict(model.fit_info, resumed_at_epoch=83, train_seconds=1500.0)
        return model, 60.0

    monkeypatch.setattr(runner, "fit", resumed_fit)
    (record,) = runner.run("digits", "lsh", 16)
    assert record["train_s"] == 1500.0
    # records stored before that fix have this call's time alone; the tables read the trainer's
    runner.store([dict(record, train_s=60.0)], tmp_path)
    assert records_frame(tmp_path, "digits")["train_s"].tolist() == [1500.0]
