"""protocols.map end to end on digits, and its bad-input cases (one line, no files)."""
import numpy as np
import pandas as pd
import pytest

from protocols import map as map_protocol


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_map_writes_csv_table_plot_and_codes(tmp_path, capsys):
    out, codes = tmp_path / "results", tmp_path / "codes"
    argv = ["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16,32", "--out", str(out),
            "--save-codes", str(codes)]
    assert map_protocol.main(argv) == 0
    frame = pd.read_csv(out / "map" / "digits.csv")
    required = {"dataset", "method", "bits", "search", "topk", "map", "map_all", "p_r2", "train_s",
                "encode_s", "seed", "split_sha256", "n_query", "n_db", "numpy", "cpu"}
    assert required <= set(frame.columns)
    assert len(frame) == 4 and set(frame["search"]) == {"hamming"}
    assert (out / "map" / "digits.png").stat().st_size > 1000
    table = (out / "map" / "digits.md").read_text()
    assert "| bits | lsh | itq |" in table and "| 32 |" in table  # the paper's Table I order
    saved = np.load(codes / "digits-itq-32.npz")
    assert saved["db_codes"].dtype == np.uint8 and saved["db_codes"].shape == (1697, 4)
    assert saved["query_labels"].shape == (100, 10)

    # a rerun replaces its own rows and keeps the others
    assert map_protocol.main(["--dataset", "digits", "--methods", "itq", "--bits", "32", "--out", str(out)]) == 0
    again = pd.read_csv(out / "map" / "digits.csv")
    assert len(again) == 4
    assert again.set_index(["method", "bits"])["map"].to_dict() == pytest.approx(
        frame.set_index(["method", "bits"])["map"].to_dict())


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "digits", "--methods", "lsh,nope"], "unknown method 'nope'; valid methods: "),
    (["--dataset", "cifar-11", "--methods", "lsh"], "unknown dataset 'cifar-11'; valid datasets: "),
    (["--dataset", "digits", "--methods", "lsh", "--bits", "16,12"], "positive multiple of 8"),
    (["--dataset", "digits", "--methods", "lsh", "--bits", "0"], "positive multiple of 8"),
    (["--dataset", "digits", "--methods", "lsh", "--bits", "a"], "comma-separated integers"),
])
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "results"
    assert map_protocol.main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _files(out) == []


def test_missing_fashion_mnist_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["--dataset", "fashion-mnist", "--methods", "lsh", "--data-root", str(tmp_path / "empty"), "--out", str(out)]
    assert map_protocol.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "apt-get install dataset-fashion-mnist" in err and len(err.splitlines()) == 1
    assert _files(out) == []


def test_failed_method_keeps_finished_runs_and_writes_no_partial_file(tmp_path, capsys, monkeypatch):
    from methods.itq import ITQ

    def diverge(self, X):
        raise ValueError("cannot binarise NaN or infinite outputs")

    monkeypatch.setattr(ITQ, "encode", diverge)
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # the failing run says why in one line and the grid goes on; the command ends with a count
    assert "error: itq at 16 bits, training seed 0 failed: cannot binarise NaN or infinite outputs" in err
    assert err[-1] == "python -m protocols.map: error: 1 runs failed (each said why above); the others are stored"
    frame = pd.read_csv(out / "map" / "digits.csv")
    assert frame["method"].tolist() == ["lsh"]
    assert not [p for p in _files(out) if p.name.endswith(".tmp")]


def test_interrupted_run_keeps_finished_rows_and_says_so(tmp_path, capsys, monkeypatch):
    from methods.itq import ITQ

    def interrupt(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(ITQ, "fit", interrupt)
    out = tmp_path / "results"
    assert map_protocol.main(["--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert "interrupted during itq at 16 bits, training seed 0; the 1 finished rows are stored" in err[-1]
    assert pd.read_csv(out / "map" / "digits.csv")["method"].tolist() == ["lsh"]
    assert not [p for p in _files(out) if ".tmp" in p.name]
