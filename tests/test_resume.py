"""A killed training run resumes from its checkpoint and ends with the weights an unbroken run gives,
bit for bit on the CPU: for every deep method in the registry, and for HDHash over each level loss
(DPSH's memory of outputs is state outside the network). A damaged, foreign or unsafe checkpoint is
ignored with a warning and the run trains from its first epoch. Tiny settings: ~1 min."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import common.files
from deep import trainer
from methods import create_method, get_method_class, list_methods

DEEP = [name for name in list_methods() if get_method_class(name).deep]
# the losses HDHash can put on its levels besides its own (HashNet's, the default case above)
LEVEL_LOSSES = [name for name in DEEP if name != "hashnet" and "code_loss" in vars(get_method_class(name))]
CASES = [(name, {}) for name in DEEP] + [("hdhash", {"level_loss": loss}) for loss in LEVEL_LOSSES]
EPOCHS, KILLED_IN_EPOCH = 4, 3  # checkpoints after epochs 1 and 2; the kill comes during epoch 3


class Killed(Exception):
    """Stands for the process being killed in the middle of an epoch."""


def _params(name, extra):
    return dict(nbits=16, random_state=3, epochs=EPOCHS, batch_size=64, device="cpu", progress=False,
                cache=True, num_threads=1, patience=None, **extra)


def _fit(name, extra, X, y, cache, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", cache)
    return create_method(name, **_params(name, extra)).fit(X, y)


def _kill_during_epoch(monkeypatch, epoch: int):
    real = trainer._train_epoch
    calls = {"n": 0}

    def train_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", train_epoch)


def _state(method):
    return {k: v.clone() for k, v in method.model_.state_dict().items()}


@pytest.fixture
def every_epoch(monkeypatch):
    monkeypatch.setattr(trainer, "CHECKPOINT_SECONDS", 0.0)


@pytest.mark.parametrize("name,extra", CASES, ids=[n + "".join(f"-{v}" for v in e.values()) for n, e in CASES])
def test_killed_run_resumes_to_the_unbroken_result(name, extra, digits, tmp_path, monkeypatch, every_epoch):
    X, y = digits.part("train")
    Xq, _ = digits.part("query")
    unbroken = _fit(name, extra, X, y, tmp_path / "unbroken", monkeypatch)
    assert not list((tmp_path / "unbroken" / "models").glob("*.checkpoint"))  # removed once the model is cached

    with monkeypatch.context() as patch:
        _kill_during_epoch(patch, KILLED_IN_EPOCH)
        with pytest.raises(Killed):
            _fit(name, extra, X, y, tmp_path / "killed", patch)
    (checkpoint,) = (tmp_path / "killed" / "models").glob("*.checkpoint")
    assert not list((tmp_path / "killed" / "models").glob("*.pt"))

    resumed = _fit(name, extra, X, y, tmp_path / "killed", monkeypatch)
    assert resumed.fit_info["resumed_at_epoch"] == KILLED_IN_EPOCH - 1
    assert resumed.fit_info["cached"] is False and not checkpoint.exists()
    for key in ("epoch", "epochs_run", "val_map"):
        assert resumed.fit_info[key] == unbroken.fit_info[key], key
    assert resumed.loss_history_ == unbroken.loss_history_
    assert resumed.val_map_history_ == unbroken.val_map_history_
    ours, theirs = _state(resumed), _state(unbroken)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours), [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert np.array_equal(resumed.encode(Xq), unbroken.encode(Xq))


def test_resume_needs_the_checkpoint_state_not_luck(digits, tmp_path, monkeypatch, every_epoch):
    """The test above can fail: a resume that forgets DPSH's memory ends elsewhere."""
    X, y = digits.part("train")
    unbroken = _fit("dpsh", {}, X, y, tmp_path / "unbroken", monkeypatch)
    with monkeypatch.context() as patch:
        _kill_during_epoch(patch, KILLED_IN_EPOCH)
        with pytest.raises(Killed):
            _fit("dpsh", {}, X, y, tmp_path / "killed", patch)
    with monkeypatch.context() as patch:
        patch.setattr(get_method_class("dpsh"), "load_training_state", lambda self, state: None)
        forgetful = _fit("dpsh", {}, X, y, tmp_path / "killed", patch)
    assert forgetful.fit_info["resumed_at_epoch"] == KILLED_IN_EPOCH - 1
    assert forgetful.loss_history_[:2] == unbroken.loss_history_[:2]
    assert forgetful.loss_history_[2:] != unbroken.loss_history_[2:]


def _killed_checkpoint(name, X, y, cache, monkeypatch):
    with monkeypatch.context() as patch:
        _kill_during_epoch(patch, KILLED_IN_EPOCH)
        with pytest.raises(Killed):
            _fit(name, {}, X, y, cache, patch)
    (checkpoint,) = (cache / "models").glob("*.checkpoint")
    return checkpoint


class _Payload:
    marker = None

    def __reduce__(self):
        from pathlib import Path

        return (Path.write_text, (Path(self.marker), "code ran"))


@pytest.mark.parametrize("damage", ["truncated", "pickled code", "other run", "wrong shapes"])
def test_bad_checkpoint_is_ignored_with_a_warning(damage, digits, tmp_path, monkeypatch, every_epoch):
    X, y = digits.part("train")
    unbroken = _fit("hashnet", {}, X, y, tmp_path / "unbroken", monkeypatch)
    checkpoint = _killed_checkpoint("hashnet", X, y, tmp_path / "killed", monkeypatch)
    saved = torch.load(checkpoint, weights_only=True)
    marker = tmp_path / "pwned"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:200])
        match = "unreadable training checkpoint"
    elif damage == "pickled code":
        _Payload.marker = str(marker)
        torch.save(dict(saved, model=_Payload()), checkpoint)
        match = "unreadable training checkpoint"
    elif damage == "other run":
        torch.save(dict(saved, config=dict(saved["config"], data="another")), checkpoint)
        match = "not one of this run"
    else:
        torch.save(dict(saved, model={k: v[..., :1] if v.dim() else v for k, v in saved["model"].items()}), checkpoint)
        match = "does not fit hashnet's network"
    with pytest.warns(UserWarning, match=match):
        again = _fit("hashnet", {}, X, y, tmp_path / "killed", monkeypatch)
    assert not marker.exists(), "loading the checkpoint ran the pickle's code"
    assert "resumed_at_epoch" not in again.fit_info
    assert again.loss_history_ == unbroken.loss_history_
    assert all(torch.equal(a, b) for a, b in zip(_state(again).values(), _state(unbroken).values()))


def test_unwritable_checkpoint_costs_the_resume_not_the_run(digits, tmp_path, monkeypatch, every_epoch):
    X, y = digits.part("train")
    unbroken = _fit("hashnet", {}, X, y, tmp_path / "unbroken", monkeypatch)

    def disk_full(obj, path):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "atomic_torch_save", disk_full)  # the checkpoint writer only
        with pytest.warns(UserWarning, match="could not write the training checkpoint") as warned:
            run = _fit("hashnet", {}, X, y, tmp_path / "full", patch)
    assert sum("training checkpoint" in str(w.message) for w in warned) == 1  # once, not every epoch
    assert run.loss_history_ == unbroken.loss_history_
    assert all(torch.equal(a, b) for a, b in zip(_state(run).values(), _state(unbroken).values()))
