"""The training-budget pilot: its plan expands to the same learning-rate factors for every method,
and its report is derived from stored records alone."""
import json

import pytest

from protocols import pilot


def _plan(**changes):
    return dict(pilot.read_plan(), **changes)


def test_every_entry_runs_at_each_factor_of_its_own_default_rate_without_early_stopping():
    plan = _plan()
    jobs = pilot.pilot_jobs("fashion-mosaic", plan)
    assert len(jobs) == len(plan["methods"]) * len(plan["lr_factors"])
    for job in jobs:
        params = dict(job.params)
        assert params["epochs"] == plan["epochs"] and params["patience"] is None
        assert job.bits == plan["bits"] and job.train_seed == plan["train_seed"]
        factor = params["lr"] / pilot.default_lr(job.method, job.bits)
        assert min(abs(factor - f) for f in plan["lr_factors"]) < 1e-3
    over_loss = [dict(j.params) for j in jobs if j.method == "hdhash" and "level_loss" in dict(j.params)]
    assert len(over_loss) == len(plan["lr_factors"])
    assert {p["level_loss"] for p in over_loss} == {plan["hdhash_level_loss"]["fashion-mosaic"]}


def test_a_dataset_without_a_chosen_level_loss_is_refused():
    with pytest.raises(pilot.UsageError, match="no level loss for digits"):
        pilot.pilot_jobs("digits", _plan(), [pilot.OVER_LOSS])


def test_first_epoch_within_half_a_percent_of_the_best():
    assert pilot.first_within([0.5, 0.8, 0.996, 0.99, 1.0]) == 3
    assert pilot.first_within([None, 0.2, 0.1]) == 2
    assert pilot.first_within([]) is None


def _record(method, lr, history, **params):
    return {"dataset": "digits", "method": method, "bits": 32, "search": "hamming", "topk": 100, "seed": 0,
            "map": 0.5, "default_search": True, "train_s": 10.0, "params": dict(params, lr=lr),
            "fit_info": {"epoch": history.index(max(history)) + 1}, "val_map_history": history,
            "git": {"commit": "abc", "dirty": False}}


def test_report_chooses_the_rate_with_the_best_validation_map(tmp_path):
    folder = tmp_path / "pilot" / "map" / "runs" / "digits"
    folder.mkdir(parents=True)
    runs = [_record("hashnet", 0.0003333, [0.1, 0.3, 0.4]), _record("hashnet", 0.001, [0.2, 0.6, 0.5]),
            _record("hashnet", 0.003, [0.3, 0.4, 0.45]),
            _record("hdhash", 0.003, [0.1, 0.2, 0.7], level_loss="csq")]
    for i, record in enumerate(runs):
        (folder / f"r{i}.json").write_text(json.dumps(record))
    plan = _plan(hdhash_level_loss={"digits": "csq"}, lr_factors=[1 / 3, 1.0, 3.0])
    paths = pilot.write_pilot_report(tmp_path, "digits", plan)
    assert [p.suffix for p in paths] == [".csv", ".md", ".png"]
    chosen = pilot.chosen_rates(pilot.pilot_frame(tmp_path, "digits")).set_index("method")
    assert chosen.loc["hashnet", "lr"] == 0.001 and chosen.loc["hashnet", "best_epoch"] == 2
    assert chosen.loc["hdhash[csq]", "lr_factor"] == 3.0
    table = (tmp_path / "pilot" / "digits.md").read_text()
    assert "| hashnet | 0.4000 | 0.6000 | 0.4500 | x1 (lr 0.001) | 2 | 2 |" in table
    assert "Not yet run:" in table and "hdhash-over-loss" not in table.split("Not yet run:")[1]


def test_command_refuses_an_entry_outside_the_plan_in_one_line(capsys):
    assert pilot.main(["--datasets", "digits", "--methods", "nosuch", "--report-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in the pilot plan" in err[0]
