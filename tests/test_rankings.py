"""Issue 28's verdicts (protocols.rankings): per code length, which method is best under the
training-budget rule, how the ranking stood before it, and where the authors' schedules would place
their methods; read from the records alone, with nothing named best before every method has met it."""

import pytest

from protocols import runner
from protocols.frame import frame_of
from protocols.rankings import AUTHORS, BEFORE, RULE, ranked_rows, rankings, rankings_section

RULE_ENTRY = {"digits": {"epochs": 2, "patience": None, "lr_factor": {"hashnet": 3.0, "dhn": 3.0, "dnnh": 1.0}}}


@pytest.fixture
def rule(budget_rule):
    return budget_rule(RULE_ENTRY)


def _record(method, value, seed, schedule=RULE, dataset="digits", bits=16):
    """A record of ``method`` at ``bits``, training seed ``seed``: under the rule, with the budget its
    method had before it (a variant where the rule lists the dataset), or its authors' schedule."""
    own = runner.authors_schedule(method) if schedule == AUTHORS else {}
    params = runner.create_for(None if schedule == BEFORE else dataset, method, bits, own).get_params()
    return {"dataset": dataset, "method": method, "bits": bits, "search": "hamming", "default_search": True,
            "variant": runner.variant_of(method, bits, params, dataset), "topk": 10, "seed": 0, "train_seed": seed,
            "map": value, "n_db": 1000, "n_query": 100, "split_sha256": "ab" * 32, "params": params,
            "fit_info": {"device": "cpu"}, "machine": {"cpu": "Intel", "cores": 2}, "torch_threads": 1,
            "git": {"commit": "a" * 40, "dirty": False}}


def _frame(rows):
    return frame_of({f"r{i}": record for i, record in enumerate(rows)})


def _seeds(method, base, schedule=RULE, step=(0.0, 0.001, -0.001)):
    return [_record(method, base + d, seed, schedule) for seed, d in enumerate(step)]


def test_the_rule_ranks_and_names_its_best_against_the_ranking_before_it(rule):
    rows = (_seeds("hashnet", 0.80) + _seeds("dhn", 0.78) + _seeds("dnnh", 0.76)
            + _seeds("hashnet", 0.70, BEFORE) + _seeds("dhn", 0.72, BEFORE) + _seeds("dnnh", 0.74, BEFORE)
            + [_record("lsh", 0.5, 0)])
    frame = _frame(rows)
    assert set(frame["block"]) == {"table1", "variant"}  # the rows before the rule are variants here
    found = rankings(ranked_rows(frame, ruled=True)).set_index(["schedule_set", "method_label"])
    assert found.loc[(RULE, "hashnet"), "rank"] == 1 and found.loc[(BEFORE, "hashnet"), "rank"] == 3
    assert found.loc[(RULE, "lsh"), "rank"] == 4 and found.loc[(BEFORE, "lsh"), "rank"] == 4  # shallow: in both
    assert found.loc[(RULE, "hashnet"), "n"] == 3
    text = "\n".join(rankings_section(frame, "digits", "10"))
    assert "| hashnet | 1: 0.8000 (3) | 3: 0.7000 (3) |" in text
    best = next(line for line in text.splitlines() if line.startswith("- 16 bits"))
    assert "hashnet (0.8000, 3 seeds), ahead of dhn (0.7800, 3) by +0.0200 ± 0.0000 over 3 paired seeds" in best
    assert "better" in best and "Before the rule: dnnh (0.7400, 3)" in best
    assert "moved hashnet 3 → 1, dnnh 1 → 3" in best


def _over_loss(value, seed, loss="csq", bits=16):
    """HDHash over ``loss`` with the budget it had before the rule: a variant of its own in the beyond block."""
    record = _record("hdhash", value, seed, BEFORE, bits=bits)
    params = dict(record["params"], level_loss=loss)
    return dict(record, params=params, variant=runner.variant_of("hdhash", bits, params, "digits"))


def test_nothing_is_named_best_while_a_method_has_no_run_under_the_rule(rule):
    """dhn has a run under the rule at 32 bits, not yet at 16: 16 bits is not ranked; an old variant
    the rule's tables do not hold (HDHash over a loss no longer chosen) does not hold a ranking back."""
    rows = (_seeds("hashnet", 0.80) + _seeds("dhn", 0.72, BEFORE) + _seeds("hashnet", 0.70, BEFORE)
            + [_record("dhn", 0.75, 0, bits=32), _record("hashnet", 0.74, 0, bits=32)])
    frame = _frame(rows + [_over_loss(0.9, seed) for seed in range(3)])
    text = "\n".join(rankings_section(frame, "digits", "10"))
    assert "- 16 bits: not ranked yet: dhn has no run under the rule." in text
    assert "| hashnet | 0.8000 (3) | 2: 0.7000 (3) | 2: 0.7400 (1) | – |" in text  # no rank at 16 bits yet
    assert "- 32 bits: best under the rule, dhn (0.7500, 1 seed), ahead of hashnet" in text
    assert "level_loss" not in text


def test_a_method_with_no_run_under_the_rule_at_any_length_holds_every_length_back(rule):
    """Before its first run under the rule (fashion-mosaic's deep methods while only its shallow ones
    had run at the rule's commit), a method still keeps every length unranked: no best is named
    among the methods that happen to have run."""
    rows = _seeds("hashnet", 0.80) + _seeds("dnnh", 0.9, BEFORE) + [_record("dnnh", 0.9, 0, BEFORE, bits=32)]
    rows += [_record("hashnet", 0.74, 0, bits=32)]
    text = "\n".join(rankings_section(_frame(rows), "digits", "10"))
    assert "- 16 bits: not ranked yet: dnnh has no run under the rule." in text
    assert "- 32 bits: not ranked yet: dnnh has no run under the rule." in text
    assert "best under the rule" not in text


def test_a_default_row_not_yet_rerun_under_the_rule_counts_before_it(rule):
    """A default row stored before the rule (stale now) is one of the tables before it, not the rule's."""
    old = dict(_record("hashnet", 0.70, 1, BEFORE), variant="")
    frame = _frame(_seeds("hashnet", 0.80)[:1] + [old])
    assert list(frame["stale"]) == [False, True]
    rows = ranked_rows(frame, ruled=True)
    assert list(zip(rows["schedule_set"], rows["training_seed"])) == [(RULE, 0), (BEFORE, 1)]


def test_the_authors_schedule_is_a_variant_placed_among_the_rules_rows(rule):
    rows = (_seeds("hashnet", 0.80) + _seeds("dpsh", 0.75) + _seeds("dpsh", 0.79, AUTHORS)
            + _seeds("dhn", 0.78))
    frame = _frame(rows)
    assert set(frame.loc[frame["method"] == "dpsh", "block"]) == {"beyond", "variant"}
    text = "\n".join(rankings_section(frame, "digits", "10"))
    line = next(line for line in text.splitlines() if line.startswith("| dpsh | 16 |"))
    # rule: 0.75, rank 3 of 3; the authors' 0.79 would come second, +0.04 on every seed
    assert line == "| dpsh | 16 | 0.7500 (3), rank 3 | 0.7900 (3) | +0.0400 ± 0.0000 (3): better | 2 |"


def test_a_dataset_without_a_rule_is_ranked_at_its_defaults_alone(rule):
    frame = _frame([_record("hashnet", 0.80, 0, dataset="fashion-mosaic"),
                    _record("lsh", 0.50, 0, dataset="fashion-mosaic")])
    text = "\n".join(rankings_section(frame, "fashion-mosaic", "10"))
    assert "does not list this dataset yet" in text and "before" not in text.split("\n\n")[2]
    assert "| hashnet | 1: 0.8000 (1) |" in text
    assert "best under the defaults, hashnet (0.8000, 1 seed), ahead of lsh (0.5000, 1) by +0.3000" in text


def test_a_default_row_with_other_parameters_is_named_not_ranked_and_the_schedules_are_said(rule):
    """On a dataset without a rule: a default row stored before a default changed (stale) is named as
    not ranked, never silently dropped; the deep methods' schedules are said, the commonest as "the others"."""
    from protocols.rankings import ranking_view

    old = _record("dhn", 0.95, 0, dataset="fashion-mosaic")
    old["params"] = dict(old["params"], lr=old["params"]["lr"] * 7)
    frame = _frame([_record("hashnet", 0.80, 0, dataset="fashion-mosaic"), old,
                    *(_record(method, value, 0, dataset="fashion-mosaic") for method, value in (("dpsh", 0.85),
                                                                                              ("dnnh", 0.70)))])
    found = ranking_view(frame, "fashion-mosaic", "10")
    assert [row[0] for row in found.grid] == ["dpsh", "hashnet", "dnnh"]
    assert found.verdicts[-1].startswith("Not ranked: dhn (16 bits): the stored default rows ran with parameters")
    assert found.schedules == "150 epochs, no early stop: dpsh; 30 epochs, patience 5: the others"
