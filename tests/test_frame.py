"""The report side's one aggregation layer: records -> one tidy frame (protocols.frame) -> one function
per statistic (protocols.stats) -> every cell saying what it rests on (protocols.markdown, the site)."""
import json
import math

import pandas as pd
import pytest

from protocols.frame import frame_of, mixed_provenance
from protocols.markdown import best_in_row, cell_text
from protocols.stats import cells, paired_differences, spread


def _record(method, value, train_seed=0, commit="a" * 40, cpu="AMD EPYC", threads=1, device="cpu", **extra):
    from methods import create_method

    return {"dataset": "digits", "method": method, "bits": 16, "search": "hamming", "default_search": True,
            "variant": "", "topk": 10, "seed": 0, "train_seed": train_seed, "map": value, "map_all": value,
            "train_s": 10.0 + train_seed, "n_db": 1000, "n_query": 100, "split_sha256": "ab" * 32,
            "params": create_method(method, nbits=16).get_params(), "fit_info": {"device": device},
            "machine": {"cpu": cpu, "cores": 2}, "torch_threads": threads,
            **({"git": {"commit": commit, "dirty": False}} if commit else {}), **extra}


def test_the_frame_has_one_row_per_record_with_its_provenance_and_block():
    frame = frame_of({"h0": _record("hashnet", 0.80), "h1": _record("hashnet", 0.82, 1, commit=None),
                      "l0": _record("lsh", 0.5, cpu="Intel", threads=2, device="cuda"),
                      "v0": _record("lsh", 0.6, variant="n_iter=0")}).set_index("record_id")
    assert frame.loc["h0", "commit"] == "a" * 10 and pd.isna(frame.loc["h1", "commit"])  # not recorded
    assert frame.loc["l0", "machine"] == "Intel (2 cores)" and frame.loc["l0", "device"] == "cuda"
    assert frame.loc["l0", "thread_counts"] == "2"
    assert frame.loc["h0", "schedule"].startswith(f"{frame.loc['h0', 'schedule'].split()[0]} epochs")
    assert pd.isna(frame.loc["l0", "schedule"])  # a shallow method trains for no epochs
    assert list(frame.loc[["h0", "l0", "v0"], "block"]) == ["table1", "table1", "variant"]
    assert list(frame.loc[["h0", "v0"], "column"]) == ["hashnet", "lsh [n_iter=0]"]
    assert not frame["stale"].any()


def test_a_record_stored_before_a_default_changed_is_stale():
    old = _record("lsh", 0.5)
    old["params"] = dict(old["params"], nbits=16)
    from methods import create_method

    params = create_method("itq", nbits=16).get_params()
    itq = dict(_record("lsh", 0.5), method="itq", params=dict(params, n_iter=params["n_iter"] + 1))
    named = dict(itq, variant=f"n_iter={params['n_iter'] + 1}")  # the variant names it: not stale
    frame = frame_of({"lsh": old, "itq": itq, "named": named}).set_index("record_id")
    assert list(frame.loc[["lsh", "itq", "named"], "stale"]) == [False, True, False]


def test_a_cell_counts_numbers_and_says_what_its_records_mix():
    frame = frame_of({"a": _record("hashnet", 0.80), "b": _record("hashnet", 0.84, 1, commit="b" * 40),
                      "c": _record("hashnet", None, 2), "d": _record("lsh", 0.5)})
    found = cells(frame, "map").set_index("column")
    assert found.loc["hashnet", "n"] == 2 and found.loc["hashnet", "runs"] == 3  # a null MAP is a gap
    assert found.loc["hashnet", "mean"] == pytest.approx(0.82)
    assert found.loc["hashnet", "sd"] == pytest.approx(0.02 * 2 ** 0.5)
    assert found.loc["hashnet", "mixes"] == ("commit",) and found.loc["lsh", "mixes"] == ()
    assert found.loc["hashnet", "records"] == ("a", "b", "c")  # by training seed
    # training time: no gap to flag (older records lack it), and the same record ids
    assert cells(frame, "train_s").set_index("column").loc["hashnet", "runs"] == 3
    # a record that does not say its commit may differ from those that do
    unknown = frame_of({"a": _record("lsh", 0.5), "b": _record("lsh", 0.6, 1, commit=None)})
    assert mixed_provenance(unknown) == ("commit",)
    assert mixed_provenance(frame_of({"a": _record("lsh", 0.5, commit=None)})) == ()


def test_every_cell_shows_n_and_a_single_seed_is_marked_and_never_bold():
    single = {"mean": 0.9, "sd": math.nan, "n": 1, "runs": 1, "mixes": (), "stale": False}
    several = {"mean": 0.8, "sd": 0.01, "n": 3, "runs": 3, "mixes": ("commit", "machine"), "stale": True}
    gap = dict(several, runs=4, mixes=(), stale=False)
    assert cell_text(single) == "0.9000 (1)†"
    assert cell_text(several, bold=True) == "**0.8000 ± 0.0100 (3)**ᶜᵐ*"
    assert cell_text(gap) == "0.8000 ± 0.0100 (3 of 4)"
    assert best_in_row([single, several]) == [False, False]  # the best mean rests on one seed: nothing is best
    assert best_in_row([dict(single, mean=0.7), several]) == [False, True]


def test_one_spread_and_one_paired_difference():
    s = spread([0.8, None, 0.82, float("nan")])
    assert (s.n, s.runs) == (2, 4) and s.mean == pytest.approx(0.81)
    frame = frame_of({f"{m}{t}": _record(m, v, t) for m, values in (("hashnet", [0.80, 0.82, 0.84]),
                                                                      ("lsh", [0.70, 0.71, 0.75]))
                      for t, v in enumerate(values)})
    (row,) = paired_differences(frame).to_dict("records")
    assert row["column"] == "lsh" and row["n"] == 3 and row["verdict"] == "worse"
    assert row["difference"] == pytest.approx(-0.1) and row["se"] == pytest.approx(0.01 / 3 ** 0.5, rel=1e-6)


def test_table_one_marks_single_seeds_mixes_and_schedules(tmp_path):
    from protocols.runner import store
    from protocols.tables import write_map_report

    store([_record("hashnet", 0.80), _record("hashnet", 0.82, 1, commit="b" * 40),
           _record("hashnet", 0.84, 2, commit="b" * 40), _record("lsh", 0.95)], tmp_path)
    write_map_report(tmp_path, "digits")
    text = (tmp_path / "map" / "digits.md").read_text()
    table = text.split("## MAP@all")[0]
    assert "| 16 | 0.8200 ± 0.0200 (3)ᶜ | 0.9500 (1)† |" in table  # lsh's higher mean rests on one seed
    assert "**" not in table
    assert "| schedule |" in table and "epochs" in table.split("| schedule |")[1].split("\n")[0]
    assert "† one training seed" in table and "ᶜ records from more than one commit" in table
    assert "## Training time (s)" in text and "11.0 ± 1.0 (3)ᶜ" in text


def test_the_site_table_one_carries_the_same_marks(tmp_path):
    from protocols.runner import store
    from protocols.site_map import map_page

    store([_record("hashnet", 0.80), _record("hashnet", 0.82, 1, commit="b" * 40), _record("lsh", 0.95)], tmp_path)
    page = map_page(tmp_path, "digits")
    parts = {row.cells[0].parts[-1].text: [p for c in row.cells[3:] for p in c.parts]
             for row in page.values["table1_rows"]}
    marks = {label: [(p.text, p.title) for p in found if p.kind == "mark"] for label, found in parts.items()}
    assert [m for m, _ in marks["hashnet"]] == ["ᶜ"] and [m for m, _ in marks["lsh"]] == ["†"]
    assert [p.text for p in parts["lsh"] if p.kind == "small"] == ["(1)"]
    assert page.values["table1_headers"][:3] == ["method", "family", "schedule"]
    assert json.dumps(page.values["marks"], ensure_ascii=False).count("†") == 1
