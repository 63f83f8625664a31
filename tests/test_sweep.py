import json

from protocols import sweep, tables


def test_sweep_records_each_value_and_writes_a_table(tmp_path):
    argv = ["--dataset", "digits", "--method", "itq", "--bits", "16", "--param", "n_iter", "--values", "0;50",
            "--out", str(tmp_path)]
    assert sweep.main(argv) == 0
    records = json.loads((tmp_path / "sweeps" / "digits-itq-16-n_iter.json").read_text())["records"]
    assert [r["swept"]["n_iter"] for r in records] == [0, 50]
    assert records[0]["map"] != records[1]["map"]  # ITQ's rotation changes the codes
    table = (tmp_path / "sweeps" / "digits-itq-16-n_iter.md").read_text()
    assert "| 0 |" in table and "| 50 |" in table
    # the table is derived from the records alone: rebuilding it gives the same text
    (tmp_path / "sweeps" / "digits-itq-16-n_iter.md").unlink()
    assert tables.rebuild_tables(tmp_path / "sweeps") == [tmp_path / "sweeps" / "digits-itq-16-n_iter.md"]
    assert (tmp_path / "sweeps" / "digits-itq-16-n_iter.md").read_text() == table


def test_sweep_refuses_unknown_parameter(tmp_path, capsys):
    argv = ["--method", "itq", "--param", "nope", "--values", "1", "--out", str(tmp_path)]
    assert sweep.main(argv) == 2
    assert "itq has no parameter 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()


def test_sweep_values_are_literals_or_plain_text():
    from protocols.runner import literal_or_text

    assert literal_or_text("(1, 0.5)") == (1, 0.5)
    assert literal_or_text("None") is None
    assert literal_or_text("prefix") == "prefix"
    assert literal_or_text("'own'") == "own"
