"""protocols.seed_spread / protocols.seeds: variants named by their non-default parameters, paired
differences (protocols.stats, the one implementation) with their verdicts."""
import json

from protocols import seed_spread


def _record(method, bits, seed, value, **params):
    from methods import get_method_class

    full = dict(get_method_class(method)(nbits=bits, random_state=seed).get_params(), **params)
    return {"method": method, "bits": bits, "search": "hamming", "map": value, "topk": 1000,
            "split_sha256": "ab" * 32, "fit_info": {"device": "cpu"}, "params": full,
            "swept": {"random_state": seed}}


def test_paired_difference_and_variant_names(tmp_path):
    hashnet = [_record("hashnet", 32, s, v) for s, v in enumerate([0.80, 0.82, 0.84])]
    own = [_record("hdhash", 32, s, v, level_codes="own") for s, v in enumerate([0.79, 0.80, 0.83])]
    (tmp_path / "a.json").write_text(json.dumps({"records": hashnet}))
    (tmp_path / "b.json").write_text(json.dumps({"records": own}))
    assert seed_spread.main([str(tmp_path)]) == 0
    table = (tmp_path / "summary.md").read_text()
    assert "| hashnet | 32 | hamming | 3 | 0.8200 | 0.0200 |  |  |" in table
    # differences -0.01, -0.02, -0.01: mean -0.0133, sd 0.0058, standard error 0.0033: beyond 2 SE
    assert "| hdhash [level_codes=own] | 32 | hamming | 3 | 0.8067 | 0.0208 | -0.0133 ± 0.0033 | worse |" in table


def test_empty_folder_is_a_one_line_error(tmp_path, capsys):
    assert seed_spread.main([str(tmp_path)]) == 1
    assert "no random_state sweep records" in capsys.readouterr().err
    assert not (tmp_path / "summary.md").exists()


def test_table_one_verdict_needs_two_standard_errors_and_three_seeds():
    from protocols.frame import frame_of
    from protocols.stats import paired_differences

    def rows(method, values):
        return [{"method": method, "search": "hamming", "default_search": True, "variant": "", "bits": 32,
                 "seed": 0, "topk": 10, "train_seed": t, "map": v} for t, v in enumerate(values)]

    records = rows("hashnet", [0.80, 0.82, 0.84]) + rows("a", [0.85, 0.86]) + rows("b", [0.81, 0.83, 0.85]) \
        + rows("c", [0.83, 0.82, 0.84]) + rows("d", [0.9])
    frame = frame_of({str(i): r for i, r in enumerate(records)})
    verdict = paired_differences(frame).set_index("column")["verdict"]
    # a: +0.05 and +0.04 over two seeds, far beyond 2 SE (0.005) and still not settled
    assert verdict["a"] == "two seeds: not settled" and verdict["d"] == "one seed: not settled"
    assert verdict["b"] == "better"  # +0.01 each seed: SE 0
    assert verdict["c"] == "within 2 SE"  # +0.03, 0, 0: mean 0.01, SE 0.01
