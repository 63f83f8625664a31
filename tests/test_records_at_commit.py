"""scripts/records_at_commit.py: which of a table's runs are stored at the table's commit, and which a
grid would skip as stored though another commit made them (scripts/resume-grids.sh reruns those)."""
import importlib.util
import json
from pathlib import Path

from protocols import runner

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "records_at_commit.py"


def _script():
    spec = importlib.util.spec_from_file_location("records_at_commit", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _store(out, method, bits, train_seed, commit, **params):
    """A record of a run as a grid would find it stored (the parameters a run would use now)."""
    dataset = runner.load("digits")
    model = runner.create_for("digits", method, bits, params, random_state=train_seed)
    record = {"dataset": "digits", "method": method, "bits": bits, "search": "hamming", "seed": 0,
              "train_seed": train_seed, "topk": runner.resolve_topk(dataset), "default_search": True, "map": 0.5,
              "split_sha256": dataset.split_sha256, "params": model.get_params(),
              "variant": runner.variant_of(method, bits, model.get_params(), "digits"),
              "git": {"commit": commit, "dirty": False}}
    path = runner.record_path(out, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_runs_stored_at_another_commit_are_listed_to_run_again_and_missing_ones_are_not(tmp_path, capsys):
    script = _script()
    _store(tmp_path, "hashnet", 16, 0, "aaaa111")
    _store(tmp_path, "hashnet", 16, 1, "bbbb222")
    _store(tmp_path, "hashnet", 32, 0, "bbbb222")
    _store(tmp_path, "hashnet", 32, 2, "aaaa111", epochs=3)  # other parameters: not stored for a grid
    assert script.elsewhere(tmp_path, "digits", "bbbb222", "hashnet", "16,32", "0,1,2") == 0
    assert capsys.readouterr().out == "hashnet 16 0\n"
    assert script.elsewhere(tmp_path, "digits", "aaaa111", "hashnet", "16,32", "0,1,2") == 0
    assert capsys.readouterr().out == "hashnet 16 1\nhashnet 32 0\n"
    assert script.main(tmp_path, "digits", "bbbb222", "hashnet", "16,32", "0,1") == 1
    assert capsys.readouterr().out == ("missing at bbbb222: hashnet 16 bits, training seed 0\n"
                                       "missing at bbbb222: hashnet 32 bits, training seed 1\n")
    assert script.main(tmp_path, "digits", "bbbb222", "hashnet", "16", "1") == 0


def test_runs_with_a_parameter_are_asked_about_with_it(tmp_path, capsys):
    script = _script()
    _store(tmp_path, "hashnet", 16, 0, "aaaa111", alpha=0.2)
    _store(tmp_path, "hashnet", 16, 1, "aaaa111")  # the defaults: another run
    assert script.elsewhere(tmp_path, "digits", "bbbb222", "hashnet", "16", "0,1", "alpha=0.2") == 0
    assert capsys.readouterr().out == "hashnet 16 0\n"
    assert script.elsewhere(tmp_path, "digits", "bbbb222", "hashnet", "16", "0,1") == 0
    assert capsys.readouterr().out == "hashnet 16 1\n"
