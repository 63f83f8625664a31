"""Your own dataset (issue 31): ``--dataset listfile:NAME`` keeps its own records, reuse follows the
images as well as the lists, a shallow run that cannot get its features is refused once before any
run, and the project installs no top-level package that could overwrite or be shadowed by another
distribution's (Hugging Face's ``datasets``)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import common.files
from datasets import UnknownDatasetError, dataset_name, load_dataset
from protocols import map as map_protocol
from protocols import runner
from tests.conftest import write_mini_photos

ROOT = Path(__file__).resolve().parent.parent
PIXELS = ["--methods", "lsh", "--bits", "16", "--features", "pixels"]


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("LISTFILE_ROOT", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no ImageNet weights, on any machine


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_photos(tmp_path_factory.mktemp("own"))


def _copy(mini, tmp_path) -> Path:
    return shutil.copytree(mini, tmp_path / "photos")  # copy2: sizes and modification times kept


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


def test_a_named_dataset_stores_under_its_own_name_and_the_name_round_trips(mini, tmp_path, capsys):
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "listfile:mine", "--data-root", str(mini), *PIXELS, "--out", str(out)]) == 0
    assert f"wrote {out}/map/listfile-mine.csv" in capsys.readouterr().out
    (folder,) = (out / "map" / "runs").iterdir()  # not runs/listfile/, which plain listfile keeps
    record = json.loads((folder / "lsh-16-hamming-top60-seed0.json").read_text())
    assert folder.name == record["dataset"] == "listfile-mine"
    assert (common.files.CACHE_DIR / "splits" / "listfile-mine-seed0.npz").is_file()
    assert list((common.files.CACHE_DIR / "features").glob("listfile-mine-pixels-*.npy"))
    # the folder's name is a name every command takes, and means the same dataset (its runs are stored)
    assert dataset_name(folder.name) == folder.name
    assert map_protocol.main(["--dataset", folder.name, "--data-root", str(mini), *PIXELS, "--out", str(out)]) == 0
    assert "1 of 1 runs stored already" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["listfile:../up", "listfile:", "listfile:my photos", "listfile:" + "x" * 92])
def test_a_name_that_cannot_be_a_folder_is_one_line(name, tmp_path, capsys):
    assert map_protocol.main(["--dataset", name, *PIXELS, "--out", str(tmp_path / "out")]) == 2
    errors = _errors(capsys.readouterr().err)
    assert len(errors) == 1 and "NAME of listfile:NAME becomes a folder name" in errors[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnknownDatasetError, match="or listfile:NAME"):
        dataset_name("listfile.mine")


def test_a_changed_image_makes_stored_runs_stale_and_a_kept_copy_does_not(mini, tmp_path):
    root = _copy(mini, tmp_path)
    out = tmp_path / "results"
    dataset = runner.load("listfile:mine", root)
    runner.store(runner.run(dataset, "lsh", 16, features="pixels"), out)
    assert runner.stored_run(out, dataset, "lsh", 16) is not None
    # a copy elsewhere that keeps the modification times is the same data (a cluster worker's, too)
    elsewhere = runner.load("listfile:mine", shutil.copytree(root, tmp_path / "elsewhere"))
    assert elsewhere.info["data_sha256"] == dataset.info["data_sha256"]
    # the same lists, one image rewritten in place, its size unchanged: a new data hash, the runs are stale
    image, fingerprint = root / "database" / "c3" / "1.png", dataset.X.fingerprint()
    before = image.stat()
    image.write_bytes(image.read_bytes())
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert image.stat().st_size == before.st_size
    changed = runner.load("listfile:mine", root)
    assert changed.info["lists_sha256"] == dataset.info["lists_sha256"]
    assert changed.info["data_sha256"] != dataset.info["data_sha256"]
    assert changed.split_sha256 == dataset.split_sha256  # the split alone could not tell
    assert changed.X.fingerprint() != fingerprint  # the feature and model caches' key moves with it
    assert runner.stored_run(out, changed, "lsh", 16) is None


def test_missing_feature_weights_refuse_once_before_any_run(mini, tmp_path, capsys, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(runner, "run", no_run)
    out = tmp_path / "results"
    argv = ["--dataset", "listfile:mine", "--data-root", str(mini), "--methods", "lsh,itq,sh", "--bits", "16,32",
            "--seeds", "0,1", "--out", str(out)]  # --features alexnet-fc7, the default
    assert map_protocol.main(argv) == 2
    captured = capsys.readouterr()
    errors = _errors(captured.err)
    assert len(errors) == 1 and len(captured.err.strip().splitlines()) == 1, captured.err
    assert "lsh, itq, sh run on feature vectors here" in errors[0] and "ImageNet weights" in errors[0]
    assert str(tmp_path / "torch-home") in errors[0] and "--features pixels" in errors[0]
    assert "wrote" not in captured.out and not [path for path in out.rglob("*") if path.is_file()]


def test_cached_features_or_deep_methods_need_no_weights(mini):
    from deep.features import feature_path, features_problem

    dataset = load_dataset("listfile:mine", data_root=mini)
    assert "ImageNet weights" in features_problem(dataset, "alexnet-fc7")
    assert features_problem(dataset, "pixels") is None
    runner.check_features(dataset, runner.method_classes(["hashnet"]), "alexnet-fc7")  # takes the images
    path = feature_path(dataset, "alexnet-fc7")
    path.parent.mkdir(parents=True)
    np.save(path, np.zeros((len(dataset.X), 4), np.float32))
    assert features_problem(dataset, "alexnet-fc7") is None
    runner.check_features(dataset, runner.method_classes(["lsh"]), "alexnet-fc7")


def test_no_wrote_line_for_tables_that_were_not_written(tmp_path, capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("this run fails")

    monkeypatch.setattr(runner, "run", failing)
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh", "--bits", "16", "--out", str(out)]) == 1
    printed = capsys.readouterr().out.splitlines()
    assert not [line for line in printed if line.startswith("wrote")]
    assert printed == [f"no table written: no run of digits is stored in {out}"]
    assert not (out / "map" / "digits.csv").exists()


# -- installing ----------------------------------------------------------------------------------
def test_installing_writes_no_top_level_package():
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest's own TOML reader
        import tomli as tomllib

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert settings["tool"]["setuptools"]["packages"] == []
    assert "package-data" not in settings["tool"]["setuptools"]
    assert settings["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]


def test_a_foreign_datasets_first_on_the_path_is_one_line(tmp_path):
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("def load_dataset(*args, **kwargs):\n    raise SystemExit('the wrong one')\n")
    env = dict(os.environ, PYTHONPATH=f"{fake.parent}{os.pathsep}{ROOT}")
    command = [sys.executable, "-m", "protocols.map", "--help"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert f"package 'datasets' is found at {fake}, not in this checkout {ROOT}" in line
    assert f"PYTHONPATH={ROOT}" in line and "Traceback" not in line
    # from the checkout's root, the root comes first on the path: ours, whatever PYTHONPATH holds
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "listfile:NAME" in done.stdout, done.stderr


def test_the_paper_command_names_your_dataset_as_every_command_does(mini, tmp_path, capsys):
    """``protocols.paper --datasets listfile:NAME`` takes your own dataset under its name (it refused it)."""
    from protocols import paper

    out = tmp_path / "results"
    assert paper.main(["--datasets", "listfile:mine", "--data-root", f"listfile:mine={mini}", "--methods", "lsh",
                       "--bits", "16", "--dry-run", "--out", str(out), "--readme", "none"]) == 0
    text = capsys.readouterr().out
    assert "listfile-mine: available" in text and "1 to run: lsh@16" in text
    assert paper.main(["--datasets", "listfile:../up", "--dry-run", "--out", str(out)]) == 2
    assert "NAME of listfile:NAME becomes a folder name" in capsys.readouterr().err
