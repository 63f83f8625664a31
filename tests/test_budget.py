"""The training-budget rule (protocols/settings/training_budget.json): a run on a dataset the rule
lists takes its epochs, patience and learning rate as defaults, and such a run is the default row."""
import json

import pytest

from datasets import list_datasets
from methods import get_method_class, list_methods
from methods.hdhash import LEVEL_LOSSES
from protocols import runner

RULE = {"digits": {"epochs": 2, "patience": None, "lr_factor": {"hashnet": 3.0, "hdhash[csq]": 0.5}}}


@pytest.fixture
def rule(budget_rule):
    return budget_rule(RULE)


def test_the_rule_sets_a_deep_methods_defaults_on_its_datasets_only(rule):
    assert runner.budget_params("digits", "hashnet", 16) == {"epochs": 2, "patience": None, "lr": 0.003}
    assert runner.budget_params("digits", "dhn", 16) == {"epochs": 2, "patience": None}
    assert runner.budget_params("digits", "itq", 16) == {}
    assert runner.budget_params("fashion-mnist", "hashnet", 16) == {}
    assert runner.budget_params("digits", "hdhash", 16, {"level_loss": "csq"})["lr"] == 0.0005
    assert "lr" not in runner.budget_params("digits", "hdhash", 16)


def test_a_run_under_the_rule_is_the_default_row_and_resumes(rule, digits):
    records = runner.run(digits, "hashnet", 16, params={"progress": False, "num_threads": 1, "device": "cpu"})
    assert records[0]["params"]["epochs"] == 2 and records[0]["params"]["lr"] == 0.003
    assert records[0]["variant"] == "" and records[0]["fit_info"]["epochs_run"] == 2
    # off the dataset the rule lists, the same parameters are a variant
    assert runner.variant_of("hashnet", 16, records[0]["params"]) != ""
    out = rule.parent / "results"
    runner.store(records, out)
    assert runner.stored_run(out, digits, "hashnet", 16) is not None
    # a changed rule makes the stored run stale: the next run is the new rule's, the old one a variant
    rule.write_text(json.dumps({"datasets": {"digits": dict(RULE["digits"], epochs=3)}}))
    assert runner.stored_run(out, digits, "hashnet", 16) is None
    assert runner.changed_params(records[0]) == {"epochs": (2, 3)}


def test_the_committed_rule_names_known_datasets_methods_and_values():
    rule = runner.training_budget()
    deep = {name for name in list_methods() if get_method_class(name).deep}
    labels = deep | {f"hdhash[{loss}]" for loss in LEVEL_LOSSES if loss != "hashnet"}
    for dataset, entry in rule.items():
        assert dataset in list_datasets()
        assert set(entry) <= {"epochs", "patience", "validate_after", "lr_factor"}
        assert 0 <= entry.get("validate_after", 0) <= 0.9
        assert isinstance(entry.get("epochs", 1), int) and entry.get("epochs", 1) >= 1
        assert entry.get("patience") is None or entry["patience"] >= 1
        assert set(entry.get("lr_factor", {})) <= labels
        assert all(factor > 0 for factor in entry.get("lr_factor", {}).values())


def test_under_the_rule_hdhash_over_a_loss_is_beyond_on_the_rules_schedule_not_the_losss(rule):
    """Where the rule lists a dataset every deep method trains under it, HDHash over DPSH's loss too:
    its beyond-the-paper row is the run with the level loss alone, and DPSH's own 150 epochs without
    early stopping is a variant there (and still the row on a dataset the rule does not list)."""
    from protocols.frame import is_beyond

    assert runner.beyond_schedule("dpsh", 16, "digits") == {"level_loss": "dpsh"}
    assert runner.beyond_schedule("dpsh", 16, "fashion-mnist") == {"level_loss": "dpsh", "epochs": 150,
                                                                   "patience": None}
    params = runner.create_for("digits", "hdhash", 16, {"level_loss": "csq"}).get_params()
    assert params["epochs"] == 2 and params["lr"] == 0.0005  # the rule's epochs and hdhash[csq]'s factor
    row = {"method": "hdhash", "bits": 16, "dataset": "digits"}
    assert is_beyond(dict(row, variant=runner.variant_of("hdhash", 16, params, "digits")))
    assert is_beyond(dict(row, variant="level_loss='dpsh'"))
    assert not is_beyond(dict(row, variant="epochs=150,level_loss='dpsh',patience=None"))
    assert is_beyond(dict(row, dataset="fashion-mnist", variant="epochs=150,level_loss='dpsh',patience=None"))
    assert not is_beyond(dict(row, dataset="fashion-mnist", variant="level_loss='dpsh'"))
