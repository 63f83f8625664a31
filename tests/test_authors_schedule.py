"""The modern methods on their authors' schedules: variant rows, never the default (issue 28 item 4)."""
import json

import pytest

import common.files
from deep.trainer import lr_lambda
from methods import create_method
from protocols import map as map_protocol
from protocols import runner


def test_multistep_multiplies_the_factors_of_the_milestones_reached():
    multiplier = lr_lambda("multistep", 100, [(30, 0.1), (60, 0.5)])
    assert [multiplier(s) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.05, 0.05])


@pytest.mark.parametrize("bits", [16, 32, 48, 64])
def test_every_authors_schedule_is_a_valid_setting_of_its_method(bits):
    schedules = json.loads(runner.AUTHORS_SCHEDULES.read_text())["methods"]
    assert sorted(schedules) == ["csq", "dpsh", "greedyhash", "orthohash"]
    for method in schedules:
        create_method(method, nbits=bits, **runner.authors_schedule(method)).check_params()


@pytest.mark.parametrize("lr_steps, schedule", [(((30, 0.1),), "cosine"), (None, "multistep"),
                                                (((40, 0.1),), "multistep"), (((5, 0.1), (3, 0.1)), "multistep"),
                                                (((5, 0),), "multistep"), ((("a", 0.1),), "multistep")])
def test_bad_lr_steps_are_refused_in_one_line(lr_steps, schedule):
    with pytest.raises(ValueError, match="lr_steps"):
        create_method("csq", epochs=30, lr_schedule=schedule, lr_steps=lr_steps).check_params()


def test_a_method_without_an_authors_schedule_is_refused(capsys, tmp_path):
    code = map_protocol.main(["--dataset", "digits", "--methods", "hashnet", "--schedule", "authors",
                              "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "hashnet has no authors' schedule" in err[0]


def test_an_authors_schedule_run_is_a_variant_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    code = map_protocol.main(["--dataset", "digits", "--methods", "greedyhash", "--bits", "16", "--schedule",
                              "authors", "--param", "epochs=2", "--param", "lr_steps=((1,0.1),)", "--param",
                              "progress=False", "--out", str(tmp_path), "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    (record,) = runner.stored(tmp_path, "digits")
    assert record["params"]["batch_size"] == 32 and record["params"]["optimizer"] == "sgd"
    assert "batch_size=32" in record["variant"] and "lr_schedule='multistep'" in record["variant"]


def test_a_param_of_one_selected_method_is_still_accepted(tmp_path):
    """Checking each method with its own schedule must not refuse a --param only some methods take."""
    for schedule in ("default", "authors"):
        methods = "hdhash,hashnet" if schedule == "default" else "csq,dpsh"
        param = "levels=(8,8)" if schedule == "default" else "lambda_q=0.1"
        args = map_protocol.build_parser().parse_args(["--dataset", "digits", "--methods", methods, "--bits", "16",
                                                       "--param", param, "--schedule", schedule,
                                                       "--out", str(tmp_path)])
        map_protocol.validate(args)
