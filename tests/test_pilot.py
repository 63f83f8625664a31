"""The training-budget pilot: its plan expands to the same learning-rate factors for every method,
and its report is derived from stored records alone."""
import json
from pathlib import Path

import pandas as pd
import pytest

from deep import trainer
from protocols import pilot, pilot_plan, pilot_report, runner
from protocols.runner import UsageError


def _plan(**changes):
    return dict(pilot_plan.read_plan(), **changes)


def test_every_entry_runs_at_each_factor_of_its_own_default_rate_without_early_stopping():
    plan = _plan()
    jobs = pilot_plan.pilot_jobs("fashion-mosaic", plan)
    assert len(jobs) == len(plan["methods"]) * len(plan["lr_factors"])
    for job in jobs:
        params = dict(job.params)
        assert params["epochs"] == plan["epochs"] and params["patience"] is None
        assert job.bits == plan["bits"] and job.train_seed == plan["train_seed"]
        factor = params["lr"] / pilot_plan.default_lr(job.method, job.bits)
        assert min(abs(factor - f) for f in plan["lr_factors"]) < 1e-3
    over_loss = [dict(j.params) for j in jobs if j.method == "hdhash" and "level_loss" in dict(j.params)]
    assert len(over_loss) == len(plan["lr_factors"])
    assert {p["level_loss"] for p in over_loss} == {plan["hdhash_level_loss"]["fashion-mosaic"]}


def test_a_dataset_without_a_chosen_level_loss_is_refused():
    with pytest.raises(UsageError, match="no level loss for digits"):
        pilot_plan.pilot_jobs("digits", _plan(), [pilot_plan.OVER_LOSS])


def test_first_epoch_within_half_a_percent_of_the_best():
    assert pilot_report.first_within([0.5, 0.8, 0.996, 0.99, 1.0]) == 3
    assert pilot_report.first_within([None, 0.2, 0.1]) == 2
    assert pilot_report.first_within([]) is None


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
            dict(_record("hdhash", 0.003, [0.1, 0.2, 0.7], level_loss="csq"), machine={"cpu": "model A"})]
    for i, record in enumerate(runs):
        (folder / f"r{i}.json").write_text(json.dumps(record))
    plan = _plan(hdhash_level_loss={"digits": "csq"}, lr_factors=[1 / 3, 1.0, 3.0])
    paths = pilot_report.write_pilot_report(tmp_path, "digits", plan)
    assert [p.suffix for p in paths] == [".csv", ".md", ".png"]
    chosen = pilot_report.chosen_rates(pilot_report.pilot_frame(tmp_path, "digits")).set_index("method")
    assert chosen.loc["hashnet", "lr"] == 0.001 and chosen.loc["hashnet", "best_epoch"] == 2
    assert chosen.loc["hdhash[csq]", "lr_factor"] == 3.0
    table = (tmp_path / "pilot" / "digits.md").read_text()
    assert "| hashnet | 0.4000 | 0.6000 | 0.4500 | x1 (lr 0.001) | 2 | 2 |" in table
    assert "Not yet run:" in table and "hdhash-over-loss" not in table.split("Not yet run:")[1]
    assert "Runs by CPU model: machine not recorded: 3 (hashnet x1/3, hashnet x1, hashnet x3); " \
        "model A: 1 (hdhash[csq] x3). Commits: abc." in table
    assert "Rates compared across CPU models" not in table  # each method's rates ran on one
    (folder / "r1.json").write_text(json.dumps(dict(runs[1], machine={"cpu": "model A"})))
    pilot_report.write_pilot_report(tmp_path, "digits", plan)
    assert "Rates compared across CPU models (a model's weights differ between them, so the choice carries that " \
        "difference too): hashnet (machine not recorded: x1/3, x3; model A: x1)." in \
        (tmp_path / "pilot" / "digits.md").read_text()


def test_report_says_where_the_runs_trained_when_one_machine_ran_them_all(tmp_path):
    folder = tmp_path / "pilot" / "map" / "runs" / "digits"
    folder.mkdir(parents=True)
    for i, lr in enumerate((0.001, 0.003)):
        (folder / f"r{i}.json").write_text(json.dumps(dict(_record("hashnet", lr, [0.1, 0.2]), machine={"cpu": "B"})))
    pilot_report.write_pilot_report(tmp_path, "digits", _plan(lr_factors=[1.0, 3.0]))
    assert "Runs by CPU model: all 2 on B. Commits: abc." in (tmp_path / "pilot" / "digits.md").read_text()
    # the same CPU model with subnormals flushed is another machine for the comparison
    flushed = _record("hashnet", 0.003, [0.1, 0.2])
    flushed = dict(flushed, machine={"cpu": "B"}, fit_info=dict(flushed["fit_info"], subnormals="flushed"))
    (folder / "r1.json").write_text(json.dumps(flushed))
    pilot_report.write_pilot_report(tmp_path, "digits", _plan(lr_factors=[1.0, 3.0]))
    assert "Runs by CPU model: B: 1 (hashnet x1); B, subnormals flushed: 1 (hashnet x3). " \
        "Commits: abc." in (table := (tmp_path / "pilot" / "digits.md").read_text())
    assert "Rates compared across CPU models or subnormal modes (a model's weights differ between them, so the " \
        "choice carries that difference too): hashnet (B: x1; B, subnormals flushed: x3)." in table


def test_command_refuses_an_entry_outside_the_plan_in_one_line(capsys):
    assert pilot.main(["--datasets", "digits", "--methods", "nosuch", "--report-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in the pilot plan" in err[0]


def test_adequacy_counts_only_table1_runs_under_the_rule(tmp_path):
    pilot_folder = tmp_path / "pilot" / "map" / "runs" / "digits"
    table1 = tmp_path / "map" / "runs" / "digits"
    pilot_folder.mkdir(parents=True)
    table1.mkdir(parents=True)
    lr = runner.scaled_lr("hashnet", 32, 3.0)
    pilot_runs = [_record("hashnet", runner.scaled_lr("hashnet", 32, 1.0), [0.2, 0.5, 0.5]),
                  _record("hashnet", lr, [0.3, 0.6, 0.8]),
                  _record("dhn", runner.scaled_lr("dhn", 32, 1.0), [0.3, 0.6, 0.5])]
    for i, record in enumerate(pilot_runs):
        (pilot_folder / f"r{i}.json").write_text(json.dumps(record))
    # under the rule (epochs 3, no early stopping, x3) it reached 0.797 = 99.6 % of the pilot's 0.8; the
    # old default run (30 epochs) of the same method says variant "" too but is not under the rule
    under = _record("hashnet", lr, [0.5, 0.797, 0.7], epochs=3, patience=None)
    old = _record("hashnet", 0.001, [0.9, 0.95], epochs=30, patience=5)
    (table1 / "under.json").write_text(json.dumps(under))
    (table1 / "old.json").write_text(json.dumps(old))
    budget = {"digits": {"epochs": 3, "patience": None, "lr_factor": {"hashnet": 3.0, "dhn": 1.0}}}
    plan = _plan(lr_factors=[1.0, 3.0])
    frame = pilot_report.pilot_frame(tmp_path, "digits")
    adequacy = pilot_report.rule_adequacy(tmp_path, "digits", frame, plan, budget).set_index("method")
    assert adequacy.loc["hashnet", "rule_val_map"] == 0.797
    assert abs(adequacy.loc["hashnet", "share"] - 0.797 / 0.8) < 1e-12
    assert pd.isna(adequacy.loc["dhn", "rule_val_map"])  # its run under the rule is not stored yet
    table = "\n".join(pilot_report.adequacy_markdown(adequacy.reset_index(), "digits", budget["digits"]))
    assert "validated from epoch" not in table  # every epoch validated: nothing to say
    late = "\n".join(pilot_report.adequacy_markdown(adequacy.reset_index(), "digits",
                                                    {**budget["digits"], "epochs": 150, "validate_after": 0.6}))
    assert "## The rule's adequacy: 150 epochs, no early stopping, validated from epoch 91" in late
    assert "| hashnet | x3 | x3 | 0.8000 | 0.7970 | 2 | 99.62% | yes |" in table
    assert "| dhn | x1 | x1 | 0.6000 |  |  |  |  |" in table
    assert pilot_report.rule_adequacy(tmp_path, "digits", frame, plan, {}).empty
    budget["digits"]["lr_factor"]["hashnet"] = 1.0  # the rule's rate no longer matches the stored run
    assert pd.isna(pilot_report.rule_adequacy(tmp_path, "digits", frame, plan, budget).set_index("method").loc[
        "hashnet", "rule_val_map"])


def test_command_names_datasets_as_every_command_does(capsys):
    assert pilot.main(["--datasets", "nosuch", "--report-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset 'nosuch'" in err[0] and "listfile:NAME" in err[0]
    # your own dataset is a dataset name here too (stored as listfile-NAME); the plan has no level loss for it
    assert pilot.main(["--datasets", "listfile:mine", "--report-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no level loss for listfile-mine" in err[0]


def test_the_edge_rule_tries_past_an_edge_until_the_best_is_inside():
    """One rule for every method (pilot.json's edge_step, edge_extensions): a best at the top (bottom)
    rate adds the rate x3 (/3) past it, at most twice per side; nothing is added on a guess."""
    plan = _plan(lr_factors=[1 / 3, 1.0, 3.0, 9.0], edge_step=3.0, edge_extensions=2)
    dnnh = {0.3333: 0.8856, 1.0: 0.9102, 3.0: 0.9126, 9.0: 0.9280}  # Fashion-MNIST's pilot
    assert pilot_plan.rate_factors(plan, dnnh) == [1 / 3, 1.0, 3.0, 9.0, 27.0]
    assert pilot_plan.rate_factors(plan, {**dnnh, 27.0: 0.93}) == [1 / 3, 1.0, 3.0, 9.0, 27.0, 81.0]
    assert pilot_plan.rate_factors(plan, {**dnnh, 27.0: 0.93, 81.0: 0.94}) == [1 / 3, 1.0, 3.0, 9.0, 27.0, 81.0]
    assert pilot_plan.rate_factors(plan, {**dnnh, 27.0: 0.92}) == [1 / 3, 1.0, 3.0, 9.0, 27.0]  # inside now
    hashnet = {0.3333: 0.9234, 1.0: 0.9224, 3.0: 0.9337, 9.0: 0.9225}
    assert pilot_plan.rate_factors(plan, hashnet) == [1 / 3, 1.0, 3.0, 9.0]
    low = {0.3333: 0.95, 1.0: 0.9, 3.0: 0.8, 9.0: 0.7}
    assert pilot_plan.rate_factors(plan, low)[0] == 1 / 9
    assert pilot_plan.rate_factors(plan, {1.0: 0.9, 3.0: 0.8, 9.0: 0.95}) == [1 / 3, 1.0, 3.0, 9.0]  # x1/3 not run
    assert pilot_plan.rate_factors(dict(plan, edge_extensions=0), dnnh) == [1 / 3, 1.0, 3.0, 9.0]


def test_the_plan_adds_only_the_runs_the_edge_rule_asks_for():
    plan = _plan()
    stored = {"dnnh": {0.3333: 0.8856, 1.0: 0.9102, 3.0: 0.9126, 9.0: 0.9280},
              "hashnet": {0.3333: 0.9234, 1.0: 0.9224, 3.0: 0.9337, 9.0: 0.9225}}
    base = pilot_plan.pilot_jobs("fashion-mnist", plan)
    jobs = pilot_plan.pilot_jobs("fashion-mnist", plan, stored=stored)
    added = [j for j in jobs if j not in base]
    assert len(jobs) == len(base) + 1 and [j.method for j in added] == ["dnnh"]
    assert dict(added[0].params)["lr"] == runner.scaled_lr("dnnh", plan["bits"], 27.0)


def _edge_store(tmp_path):
    """Pilot records of digits where DNNH's best lies at the top rate (x3: x9 owed) and HashNet's inside;
    the folder and the plan (1/3, 1, 3 and the edge rule)."""
    folder = tmp_path / "pilot" / "map" / "runs" / "digits"
    folder.mkdir(parents=True)
    runs = [_record(m, runner.scaled_lr(m, 32, f), [0.1, v])
            for m, f, v in [("dnnh", 1 / 3, 0.4), ("dnnh", 1.0, 0.5), ("dnnh", 3.0, 0.6),
                            ("hashnet", 1 / 3, 0.6), ("hashnet", 1.0, 0.7), ("hashnet", 3.0, 0.65)]]
    for i, record in enumerate(runs):
        (folder / f"r{i}.json").write_text(json.dumps(record))
    plan = _plan(lr_factors=[1 / 3, 1.0, 3.0], edge_step=3.0, edge_extensions=2, methods=["dnnh", "hashnet"])
    return folder, plan


def test_the_report_shows_a_rate_past_the_edge_for_the_method_that_ran_it(tmp_path):
    folder, plan = _edge_store(tmp_path)
    pilot_report.write_pilot_report(tmp_path, "digits", plan)
    table = (tmp_path / "pilot" / "digits.md").read_text()
    assert "| dnnh | 0.4000 | 0.5000 | 0.6000 | x3 (lr 0.003, 3 of 4 rates run) |" in table  # x9 is owed
    assert "| hashnet | 0.6000 | 0.7000 | 0.6500 | x1 (lr 0.001) |" in table
    (folder / "r9.json").write_text(json.dumps(_record("dnnh", runner.scaled_lr("dnnh", 32, 9.0), [0.1, 0.55])))
    pilot_report.write_pilot_report(tmp_path, "digits", plan)
    table = (tmp_path / "pilot" / "digits.md").read_text()
    assert "| method | val MAP x1/3 | val MAP x1 | val MAP x3 | val MAP x9 | chosen |" in table
    assert "and x9 where" in table
    assert "| dnnh | 0.4000 | 0.5000 | 0.6000 | 0.5500 | x3 (lr 0.003) |" in table
    assert "| hashnet | 0.6000 | 0.7000 | 0.6500 |  | x1 (lr 0.001) |" in table


def test_the_rule_proposed_is_the_pilots_choice_once_every_planned_run_is_stored(tmp_path):
    folder, plan = _edge_store(tmp_path)
    assert pilot_report.proposed_rule(tmp_path, "digits", plan) == (None, 1)  # DNNH's best is at x3, an edge: x9 owed
    (folder / "r9.json").write_text(json.dumps(_record("dnnh", runner.scaled_lr("dnnh", 32, 9.0), [0.1, 0.55])))
    entry, missing = pilot_report.proposed_rule(tmp_path, "digits", plan)
    assert missing == 0 and entry == {"epochs": plan["epochs"], "patience": None, "validate_after": 0.0,
                                      "lr_factor": {"dnnh": 3.0, "hashnet": 1.0}}
    (folder / "r0.json").write_text(json.dumps(_record("dnnh", runner.scaled_lr("dnnh", 32, 1 / 3), [0.1, 0.9])))
    entry, _ = pilot_report.proposed_rule(tmp_path, "digits", plan)  # best at x1/3 now: x1/9 is owed
    assert entry is None
    (folder / "r10.json").write_text(json.dumps(_record("dnnh", runner.scaled_lr("dnnh", 32, 1 / 9), [0.1, 0.3])))
    entry, _ = pilot_report.proposed_rule(tmp_path, "digits", plan)
    assert entry["lr_factor"]["dnnh"] == 1 / 3  # the plan's factor itself, not the record's rounded 0.3333


def test_the_committed_rule_is_the_pilots_choice_for_every_dataset_it_lists():
    """The rule's rates are the pilot's (a complete pilot's best validation MAP per method), never
    typed: a rule entry for a dataset whose stored pilot supports another, or is not complete, fails."""

    results = Path(__file__).resolve().parent.parent / "results"
    for dataset, entry in runner.training_budget().items():
        proposed, missing = pilot_report.proposed_rule(results, dataset, pilot_plan.read_plan())
        assert missing == 0, f"{dataset}: the rule lists it but {missing} pilot runs are not stored"
        assert entry == proposed, dataset


def test_propose_rule_says_what_is_missing_before_the_pilot_is_complete(tmp_path, capsys):
    plan = pilot_plan.read_plan()
    assert pilot.main(["--datasets", "fashion-mosaic", "--propose-rule", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    missing = len(plan["methods"]) * len(plan["lr_factors"])
    assert captured.out == "" and f"fashion-mosaic: the pilot is not complete ({missing} planned runs" in captured.err


def _store_pilot_run(out, job, dataset):
    """A pilot record of ``job`` as a run on ``dataset`` (the rule in force then) writes it; returns its model."""
    model = runner.create_for(dataset.name, job.method, job.bits, dict(job.params), random_state=0)
    record = dict(_record(job.method, dict(job.params)["lr"], [0.1, 0.2]), params=model.get_params(),
                  split_sha256=dataset.split_sha256, train_seed=0, topk=runner.resolve_topk(dataset),
                  variant=runner.variant_of(job.method, job.bits, model.get_params(), dataset.name))
    path = runner.record_path(Path(out) / "pilot", record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return model


def test_a_stored_pilot_run_stays_stored_once_a_rule_for_its_dataset_lands(tmp_path, budget_rule):
    """The rule committed from a pilot renames its runs' variants (they are named against the rule's
    defaults): the command must still find them by their parameters, not train the pilot again."""
    from protocols import grid

    dataset = runner.load("digits")
    plan = _plan(lr_factors=[1.0, 3.0], edge_step=3.0, edge_extensions=0, methods=["hashnet"], bits=32)
    jobs = pilot_plan.pilot_jobs("digits", plan)
    assert len(jobs) == 2
    budget_rule({})
    _store_pilot_run(tmp_path, jobs[0], dataset)  # one of the two stored, where a run would write it
    assert pilot.pending_runs(jobs, tmp_path, dataset) == (jobs[1:], 1)
    assert len(grid.pending(jobs, tmp_path / "pilot", dataset)[0]) == 1  # stored where a run writes it
    budget_rule({"digits": {"epochs": 30, "patience": 5, "lr_factor": {"hashnet": 3.0}}})
    assert len(grid.pending(jobs, tmp_path / "pilot", dataset)[0]) == 2  # by file name: both would rerun
    assert pilot.pending_runs(jobs, tmp_path, dataset) == (jobs[1:], 1)
    changed = dict(jobs[0].params, lr=0.5)  # a run of other parameters is not the stored one
    assert len(pilot.pending_runs([grid.Job(**dict(vars(jobs[0]), params=tuple(sorted(changed.items()))))],
                                  tmp_path, dataset)[0]) == 1


def test_the_rule_validates_from_the_earliest_epoch_a_chosen_run_came_within_half_a_percent_of_its_best():
    assert pilot_report.validate_after([98, 105, 122], 150) == 0.6  # epoch 91 on: 98 is validated
    assert pilot_report.validate_after([91], 150) == 0.6 and pilot_report.validate_after([90], 150) == 0.5
    assert pilot_report.validate_after([1, 140], 150) == 0.0
    assert pilot_report.validate_after([30], 30) == 0.9  # at most nine tenths are left out
    for earliest in range(1, 151):
        share = pilot_report.validate_after([earliest], 150)
        assert trainer.first_validated_epoch(150, share) <= earliest
        assert share == 0.9 or earliest < trainer.first_validated_epoch(150, round(share + 0.1, 1))  # the largest tenth


@pytest.mark.timeout(60)
def test_the_command_ends_when_the_grid_may_start_no_more_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHBENCH_START_UNTIL", "2000-01-01T00:00Z")  # passed: nothing may start
    assert pilot.main(["--datasets", "digits", "--methods", "hashnet", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "digits: 0 pilot runs stored, 4 to run" in err and "4 runs not started: HASHBENCH_START_UNTIL" in err
    assert err.count("pilot runs stored") == 1  # not asked again: the edge rule has nothing new to read


def test_a_pilot_run_on_a_dataset_the_rule_lists_keeps_its_whole_history_and_is_found_stored(tmp_path, budget_rule):
    """A pilot entry added after the rule (a newly chosen level loss) trains on a dataset whose rule
    validates from a later epoch: the pilot's run must still validate every epoch, and its record,
    written with the rule's other defaults, must count as stored (else the command trains it again)."""
    dataset = runner.load("digits")
    budget_rule({"digits": {"epochs": 30, "patience": None, "validate_after": 0.6, "lr_factor": {"hashnet": 3.0}}})
    plan = _plan(lr_factors=[1.0], edge_extensions=0, methods=["hashnet"], bits=32)
    [job] = pilot_plan.pilot_jobs("digits", plan)
    model = _store_pilot_run(tmp_path, job, dataset)
    assert model.validate_after == 0.0 and model.epochs == plan["epochs"]
    assert pilot.pending_runs([job], tmp_path, dataset) == ([], 1)


def _store_table1_run(out, method, bits, val_map, lr_factor=1.0, epochs=30, seed=0):
    """A Table I record of ``method`` on digits whose trainer's best validation MAP is ``val_map``."""
    params = {"lr": runner.scaled_lr(method, bits, lr_factor), "epochs": epochs, "patience": None}
    record = dict(_record(method, params["lr"], [val_map / 2, val_map]), bits=bits, params=params, train_seed=seed)
    folder = Path(out) / "map" / "runs" / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{method}-{bits}-{lr_factor}-{epochs}-{seed}.json").write_text(json.dumps(record))


def test_hdhash_takes_the_level_loss_with_the_best_mean_validation_map_of_its_runs_under_the_rule(
        tmp_path, budget_rule, capsys):
    budget_rule({"digits": {"epochs": 30, "patience": None, "lr_factor": {
        "dpsh": 1.0, "greedyhash": 1.0, "csq": 3.0, "orthohash": 1.0, "hdhash[csq]": 1.0}}})
    best = {"dpsh": 0.5, "greedyhash": 0.6, "csq": 0.7, "orthohash": 0.65}
    for method, value in best.items():
        for bits in (16, 32, 48, 64):
            _store_table1_run(tmp_path, method, bits, value + (0.2 if method == "greedyhash" and bits == 32 else 0),
                              lr_factor=3.0 if method == "csq" else 1.0)
    _store_table1_run(tmp_path, "orthohash", 16, 0.99, epochs=29)  # not under the rule: not counted
    _store_table1_run(tmp_path, "orthohash", 48, 0.99, seed=1)  # another training seed: not counted
    choice, values, missing = pilot_report.level_loss_choice(tmp_path, "digits")
    assert (choice, missing) == ("csq", []) and values["greedyhash"][32] == pytest.approx(0.8)
    assert values["greedyhash"]["mean"] == pytest.approx(0.65) and values["orthohash"]["mean"] == pytest.approx(0.65)
    plan = _plan(hdhash_level_loss={"digits": "csq"})
    assert pilot.check_level_loss(tmp_path, plan, ["digits"]) == 0
    assert "digits: csq (mean validation MAP 0.7000), as the plan names it" in capsys.readouterr().out
    assert pilot.check_level_loss(tmp_path, _plan(hdhash_level_loss={"digits": "dpsh"}), ["digits"]) == 1
    assert "choose csq (mean validation MAP 0.7000), the plan names dpsh" in capsys.readouterr().out
    lines = "\n".join(pilot_report.level_loss_lines(tmp_path, "digits", plan))
    assert "| csq | 0.7000 | 0.7000 | 0.7000 | 0.7000 | 0.7000 |" in lines and "Chosen: csq, as the plan" in lines
    (tmp_path / "map" / "runs" / "digits" / "csq-64-3.0-30-0.json").unlink()
    choice, values, missing = pilot_report.level_loss_choice(tmp_path, "digits")
    assert choice is None and missing == ["csq 64 bits"] and "mean" not in values["csq"]
    assert pilot.check_level_loss(tmp_path, plan, ["digits"]) == 1
    assert "not chosen yet: 1 of its training-seed-0 runs under the rule are not stored (csq 64 bits)" in \
        capsys.readouterr().out
    budget_rule({"digits": {"epochs": 30, "patience": None, "lr_factor": {}}})  # no rate: no run is under it
    assert pilot_report.level_loss_choice(tmp_path, "digits")[0] is None
    budget_rule({})
    assert pilot.check_level_loss(tmp_path, plan, ["digits"]) == 0
    assert "digits: no training-budget rule: HDHash over csq trains on that loss's own schedule" in \
        capsys.readouterr().out


def test_the_committed_level_loss_is_the_choice_of_the_runs_under_the_rule_wherever_they_are_stored():
    results = Path(__file__).resolve().parent.parent / "results"
    checked = []
    for dataset, loss in pilot_plan.read_plan()["hdhash_level_loss"].items():
        choice, values, _ = pilot_report.level_loss_choice(results, dataset)
        if choice is not None:
            assert loss == choice, (dataset, {name: v["mean"] for name, v in values.items()})
            checked.append(dataset)
    assert "fashion-mnist" in checked  # its runs under the rule are stored
