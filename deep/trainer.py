"""The one trainer every deep hashing method uses.

A method (a :class:`methods.deep_method.DeepHashMethod`) contributes its hash head, its loss and, where it
needs one, a preparation step (CNNH's target codes); :func:`train` does the rest:

- **data**: batches drawn from the ``X`` array given to ``fit`` (images ``(n, C, H, W)``) with a
  seeded shuffle; pairwise and triplet losses use the pairs / triplets inside each batch.
- **augmentation** (``augment=True``): a random translation of up to ``max(1, H // 14)`` pixels
  (zero padding, i.e. 2 px for 28x28 and 1 px for 8x8), the small-image counterpart of the random
  crops HashNet trains with. No flips: they change the meaning of digits. Never applied to the
  validation or encoding passes. Photos decoded on demand (:class:`datasets.images.LazyImages`)
  get HashNet's own augmentation instead: a random 224 crop of the 256x256 image and a horizontal
  flip, drawn from the same seeded generator; only the current batch is ever decoded.
- **optimiser and schedule**: from the method's ``configure_optimizer`` (default: the hash head at
  ``head_lr_mult`` times the backbone's learning rate, as HashNet's new layer at 10x).
- **model selection**: a seeded ``val_fraction`` (10 %) of the training data passed to ``fit`` is
  held out; after each epoch the codes of the held-out items are ranked against the codes of the
  rest (MAP@all, ties by index) and the epoch with the best validation MAP is kept; training
  stops after ``patience`` epochs without improvement, but never in the first half of the epochs
  (:func:`may_stop`). Queries are never seen. ``validate_after`` (a share of the epochs, default 0)
  leaves the first epochs unvalidated and unchosen (:func:`first_validated_epoch`); nothing else of
  the run changes, since validation draws no random numbers and updates no weight or statistic.
- **frozen backbone** (``freeze_backbone=True``): the backbone's features are computed once (no
  augmentation, eval mode) and only the head is trained on them.
- **device** ``"cpu" | "cuda" | "auto"``; **seeds**: torch (inside a forked RNG state, so the caller's
  global state is untouched) and numpy from ``random_state``; on the CPU a run is deterministic.
- a tqdm progress bar (one tick per epoch, loss and validation MAP shown).
- **resume** (a :class:`Checkpoint`, which ``DeepHashMethod.fit`` gives when its model cache is on):
  after an epoch, once ``CHECKPOINT_SECONDS`` have passed since the last write, everything the rest
  of the run depends on is written atomically (weights, optimiser and schedule, the best epoch so
  far, the batch generator's and torch's RNG states, the histories, and the loss's own state such as
  DPSH's memory, :meth:`methods.deep_method.DeepHashMethod.training_state`). A killed run started
  again with the same inputs continues from there and ends with the weights an unbroken run gives
  (on the CPU bit for bit, checked for every deep method in ``tests/test_resume.py``). A run of 150
  epochs on fashion-mosaic takes about an hour here, so a stopped grid used to lose up to an hour a
  run. The file is loaded with ``weights_only=True`` (it can never run code) and is deleted once
  the finished model is cached.

The model is ``HashModel(backbone, head)``; ``head(features)`` may return a tensor or a tuple of
tensors (several hash heads on the shared feature layer, as HDHash's levels); the method's
``codes_from_outputs`` turns them into the real-valued code matrix (default: concatenation).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.allocator import keep_freed_memory
from common.files import UnreadableFile, atomic_torch_save, load_torch_plain, one_line
from common.hamming import rank_by_distance, sign_codes_distances
from common.ranking import mean_average_precision, relevance
from common.threads import subnormals_flushing


@dataclass
class TrainStep:
    """Where training is: the loss may depend on it (HashNet's continuation)."""

    step: int  # optimiser steps taken before this one
    epoch: int  # 0-based
    total_steps: int  # planned steps of the whole run

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)


class HashModel(nn.Module):
    """``head(backbone(x))``; the head may return a tensor or a tuple of tensors."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone(x))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for but torch sees no CUDA device; use device='cpu' or 'auto'")
    return device


def as_outputs_tuple(outputs) -> tuple:
    return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)


def concat_outputs(outputs) -> torch.Tensor:
    parts = as_outputs_tuple(outputs)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def similarity_matrix(labels_a: torch.Tensor, labels_b: torch.Tensor | None = None) -> torch.Tensor:
    """``s_jk = 1`` where items j and k share a label (multi-hot rows), else 0 (float)."""
    labels_b = labels_a if labels_b is None else labels_b
    return (labels_a.float() @ labels_b.float().T > 0).float()


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in each direction (zero padding)."""
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def split_validation(n: int, val_fraction: float, random_state: int):
    """Seeded (train positions, validation positions) of the ``n`` training items."""
    n_val = int(round(n * val_fraction)) if val_fraction > 0 else 0
    if n_val < 2 or n - n_val < 2:
        return np.arange(n), np.arange(0)
    perm = np.random.default_rng(random_state).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def validation_map(query_codes: np.ndarray, query_labels: np.ndarray, db_codes: np.ndarray,
                   db_labels: np.ndarray) -> float:
    """MAP@all of Hamming ranking (ties by ascending index) from real-valued codes (bit = value > 0)."""
    order = rank_by_distance(sign_codes_distances(query_codes, db_codes))
    relevant = np.take_along_axis(relevance(query_labels, db_labels), order, axis=1)
    return mean_average_precision(relevant)


# Eval-mode batch on the CPU. Why not 1024 as on a GPU: on larger images a batch's activations then
# outgrow the caches (1024 mosaics after the first conv: 205 MB). Measured on a 2-core AMD EPYC, one
# thread, beside a 2-worker training grid (so noisy; best of 4): the compact CNN encoding 10,000
# 56x56 mosaics took 3.96-4.14 s at 64 against 5.88-11.38 s at 1024 (validation encodes the training
# part every epoch); on 28x28 images it made no difference (0.93-1.19 s against 1.01-1.08 s).
# Outputs were the same bit for bit at every batch from 8 to 1,024 (and a 3-epoch HashNet and a
# 2-epoch HDHash run gave identical losses, validation MAPs and codes); below 8 they moved by up to 7e-8
# (another matrix-product kernel), hence MIN_EVAL_BATCH.
CPU_EVAL_BATCH, MIN_EVAL_BATCH = 64, 8


def eval_batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each eval batch over ``n`` items: ``batch_size`` each, a last batch
    smaller than ``MIN_EVAL_BATCH`` joined to the one before it."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_EVAL_BATCH:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@torch.no_grad()
def forward_in_batches(module: nn.Module, X, device: torch.device, batch_size: int | None = None, post=None):
    """Eval-mode outputs of ``module`` over ``X`` (numpy or tensor), on the CPU; ``post`` maps each
    batch's outputs first (e.g. to the code matrix). ``batch_size`` defaults to ``CPU_EVAL_BATCH`` on
    the CPU and 1024 on an accelerator."""
    from datasets.images import is_lazy

    keep_freed_memory()
    if batch_size is None:
        batch_size = CPU_EVAL_BATCH if torch.device(device).type == "cpu" else 1024
    if is_lazy(X):  # decoded photos: 128 at 224x224 are 77 MB, 1024 would be 616 MB
        batch_size = min(batch_size, 128)
    was_training = module.training
    module.eval()
    chunks = []
    for start, stop in eval_batch_bounds(len(X), batch_size):
        batch = torch.as_tensor(np.asarray(X[start:stop]) if not torch.is_tensor(X)
                                else X[start:stop]).to(device, torch.float32)
        out = module(batch)
        out = post(out) if post is not None else out
        chunks.append(out.detach().float().cpu())
    module.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)


@dataclass
class _Batches:
    """What an epoch draws its batches from (the training part, prepared once)."""

    inputs: object  # tensor of images or backbone features, or lazily decoded photos
    labels: torch.Tensor
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    lazy: bool
    max_shift: int
    generator: torch.Generator


def _training_inputs(method, model: HashModel, X, train_pos, device, lazy: bool):
    """``(inputs, module trained, max random shift)``: the backbone's features and the head alone for
    a frozen backbone, else the images (lazily decoded photos stay lazy) and the whole model."""
    from datasets.images import take

    if method.freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        return forward_in_batches(model.backbone, take(X, train_pos), device).to(device), model.head, 0
    inputs = X.subset(train_pos) if lazy else torch.from_numpy(X[train_pos])
    return inputs, model, (max(1, X.shape[-1] // 14) if method.augment and X.ndim == 4 and not lazy else 0)


def _train_epoch(method, trained, batches: _Batches, optimizer, scheduler, device, epoch: int, step: int):
    """One pass over shuffled batches (the last incomplete one dropped); ``(mean loss, next step)``.
    A loss that is not finite stops training with one line instead of learning chance codes."""
    perm = torch.randperm(len(batches.labels), generator=batches.generator)
    total, count, size = 0.0, 0, batches.batch_size
    for b in range(batches.steps_per_epoch):
        idx = perm[b * size:(b + 1) * size]
        if method.freeze_backbone:
            batch = batches.inputs[idx.to(batches.inputs.device)]
        elif batches.lazy:
            batch = batches.inputs.batch(idx.numpy(), augment=method.augment, generator=batches.generator)
        else:
            batch = batches.inputs[idx]
        if batches.max_shift:
            batch = random_shift(batch, batches.max_shift, batches.generator)
        outputs = trained(batch.to(device, non_blocking=True))
        loss = method.loss(outputs, batches.labels[idx.to(device)], idx.to(device),
                           TrainStep(step, epoch, batches.total_steps))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{method.name}: loss became {loss.item()} at step {step}; "
                                     "lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        total += float(loss.detach()) * len(idx)
        count += len(idx)
    return total / max(1, count), step


#: a checkpoint is written after an epoch once this many seconds have passed since the last one (or
#: the start): a killed run loses at most about this much, and short runs (tests, digits) write none
CHECKPOINT_SECONDS = 60.0
#: bumped when what a checkpoint holds changes; a checkpoint of another format is ignored
CHECKPOINT_FORMAT = 1


@dataclass
class Checkpoint:
    """Where a run keeps its progress (``path``) and what it is a run of (``config``: the model
    cache's key, compared on resume so a checkpoint never continues another run)."""

    path: Path
    config: dict

    def read(self) -> dict | None:
        """The saved progress, or None (with a one-line warning where a file was there but is not a
        checkpoint of this run: damaged, not plain tensors, another format or configuration)."""
        if not self.path.is_file():
            return None
        try:
            saved = load_torch_plain(self.path)
        except UnreadableFile as exc:
            warnings.warn(f"ignoring unreadable training checkpoint {self.path} ({str(exc)[:100]}); training from "
                          "the first epoch", stacklevel=2)
            return None
        if (not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT
                or saved.get("config") != self.config):
            warnings.warn(f"ignoring training checkpoint {self.path}: not one of this run (another format or "
                          "configuration); training from the first epoch", stacklevel=2)
            return None
        return saved

    def remove(self):
        self.path.unlink(missing_ok=True)


class CheckpointMismatch(ValueError):
    """A checkpoint of this run's configuration that the rebuilt model, optimiser or loss cannot take."""


def _save_checkpoint(checkpoint: Checkpoint, method, model, optimizer, scheduler, batches: _Batches, device,
                     progress: dict) -> bool:
    """Write the run's state; False (with a one-line warning) where the file cannot be written, so a
    full disk costs the resume, not the run."""
    state = {
        "format": CHECKPOINT_FORMAT, "config": checkpoint.config,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generator": batches.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "method_state": method.training_state(),
        **progress,
    }
    try:
        atomic_torch_save(state, checkpoint.path)
    except OSError as exc:
        warnings.warn(f"could not write the training checkpoint {checkpoint.path} ({exc.strerror or exc}); "
                      "training goes on without one (a killed run would start again)", stacklevel=2)
        return False
    return True


def _restore_checkpoint(saved: dict, method, model, optimizer, scheduler, batches: _Batches, device) -> dict:
    """Put the saved run's state back; returns its progress (epochs done, step, best, histories)."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        batches.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        method.load_training_state(saved["method_state"])
        progress = {k: saved[k] for k in ("epochs_done", "step", "since_best", "best_map", "best_epoch",
                                          "best_state", "losses", "val_maps", "seconds")}
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointMismatch(one_line(exc)[:120]) from exc
    return progress


def may_stop(epochs_done: int, epochs: int, since_best: int, patience: int | None) -> bool:
    """Early stopping: ``patience`` epochs without a better validation MAP end training, once more
    than half of the ``epochs`` are done. Why not sooner: in the first half the (cosine) learning
    rate is still high and the validation MAP noisy, and every stored run that stopped there, before
    this rule, scored below the same run taken to the end. CSQ on fashion-mosaic at 32 bits stopped
    at epoch 11 of 30 (best epoch 6, MAP@5000 0.8401); run to the end it kept epoch 29 (0.9140).
    Seven of DPSH's eight runs at patience 5 on Fashion-MNIST stopped between epochs 6 and 72 of 150,
    each 0.009 to 0.344 below its 150-epoch run (worst: 0.4889 against 0.8331). Every other stored
    default run that stopped early did so after epoch 15 of 30, so the rule leaves those runs as
    they were."""
    return patience is not None and since_best >= patience and past_half(epochs_done, epochs)


def first_validated_epoch(epochs: int, validate_after: float) -> int:
    """The first epoch (from 1) a run of ``epochs`` validates, and so the first it may keep:
    the one after ``validate_after`` of them. Why skip any: validation ranks the held-out part against
    the whole training part, 35-40 % of an epoch's time on fashion-mosaic and about a quarter on
    Fashion-MNIST (an epoch 6.9-7.0 s with it, 5.2-5.4 s without: make demo's two runs beside
    another grid), and under the cosine schedule of the training-budget rule every method's best
    epoch came late (the rule's entry says from which epoch on its pilot's runs were all within
    0.5 % of their best)."""
    left_out = math.floor(round(float(validate_after) * int(epochs), 9))  # 0.57 * 100 is 56.99999999999999 in floats
    return min(int(epochs), left_out + 1)


def past_half(epochs_done: int, epochs: int) -> bool:
    """Whether early stopping may end a run of ``epochs`` after ``epochs_done`` (:func:`may_stop`)."""
    return epochs_done > epochs // 2


@dataclass
class _Progress:
    """What a run has done so far: besides the weights, optimiser and RNG states, what a checkpoint
    keeps (:func:`_restore_checkpoint`'s keys). ``seconds``: the training time of the epochs done
    before this process (0 unless resumed)."""

    epochs_done: int = 0
    step: int = 0
    since_best: int = 0
    best_map: float = -math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    losses: list = field(default_factory=list)
    val_maps: list = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def restored(cls, saved: dict) -> _Progress:
        return cls(epochs_done=saved["epochs_done"], step=saved["step"], since_best=saved["since_best"],
                   best_map=saved["best_map"], best_epoch=saved["best_epoch"], best_state=saved["best_state"],
                   losses=list(saved["losses"]), val_maps=list(saved["val_maps"]), seconds=float(saved["seconds"]))

    def end_epoch(self, loss: float, val_map: float, model: HashModel, validated: bool, epochs: int,
                  patience: int | None, skipped: bool = False) -> bool:
        """Record an epoch and keep its weights where its validation MAP is the best so far (without a
        validation part every epoch's, so the last is kept); True where early stopping ends the run.
        A ``skipped`` epoch (before the first validated one) is recorded and never kept."""
        self.epochs_done += 1
        self.losses.append(loss)
        self.val_maps.append(val_map)
        if skipped:
            return False
        if not validated or val_map > self.best_map:
            self.best_map, self.best_epoch, self.since_best = val_map, self.epochs_done, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.since_best += 1
        return may_stop(self.epochs_done, epochs, self.since_best, patience)

    def checkpointed(self, seconds_here: float) -> dict:
        """The progress as a checkpoint holds it (the best weights on the CPU), after ``seconds_here``
        of training in this process."""
        return {"epochs_done": self.epochs_done, "step": self.step, "since_best": self.since_best,
                "best_map": self.best_map, "best_epoch": self.best_epoch, "losses": self.losses,
                "val_maps": self.val_maps,
                "best_state": None if self.best_state is None else {k: v.cpu() for k, v in self.best_state.items()},
                "seconds": self.seconds + seconds_here}


def _batches_for(method, model: HashModel, X, labels: np.ndarray, train_pos, device, lazy: bool):
    """``(batches, module trained)``: the training part's batches, prepared once, with the seeded
    generator that shuffles and augments them; the model is moved to ``device``."""
    generator = torch.Generator().manual_seed(int(method.random_state))
    model.to(device)
    y_train = torch.as_tensor(labels[train_pos]).float().to(device)
    inputs, trained, max_shift = _training_inputs(method, model, X, train_pos, device, lazy)
    batch_size = min(int(method.batch_size), len(train_pos))
    steps_per_epoch = len(train_pos) // batch_size  # the last incomplete batch is dropped
    total_steps = steps_per_epoch * int(method.epochs)
    return _Batches(inputs, y_train, batch_size, steps_per_epoch, total_steps, lazy, max_shift, generator), trained


def _validator(method, model: HashModel, X, labels: np.ndarray, train_pos, val_pos, batches: _Batches, device):
    """The validation step as a function of no arguments: the held-out part's codes ranked against
    the rest of the training part's (:func:`validation_map`); NaN without a held-out part. With a
    frozen backbone both are coded from its features, the held-out part's computed here, once."""
    from datasets.images import take

    if not len(val_pos):
        return lambda: float("nan")
    coded = model.head if method.freeze_backbone else model
    if method.freeze_backbone:
        val_inputs = forward_in_batches(model.backbone, take(X, val_pos), device)
    else:
        val_inputs = take(X, val_pos)

    def codes_of(part_X):
        return forward_in_batches(coded, part_X, device, post=method.codes_from_outputs).numpy()

    def validate() -> float:
        # the training images are taken afresh each epoch rather than held as a second copy
        db_inputs = batches.inputs if method.freeze_backbone else take(X, train_pos)
        return validation_map(codes_of(val_inputs), labels[val_pos], codes_of(db_inputs), labels[train_pos])

    return validate


def _keep_best(model: HashModel, progress: _Progress, n_val: int, device, started: float,
               resumed_at: int | None) -> dict:
    """Put the chosen epoch's weights back (in eval mode); the run's facts for ``fit_info`` and its
    loss and validation histories."""
    if progress.best_state is not None:
        model.load_state_dict(progress.best_state)
    model.eval()
    return {
        "epoch": progress.best_epoch,
        "epochs_run": len(progress.losses),
        "val_map": None if not n_val else round(float(progress.best_map), 6),
        "n_val": int(n_val),
        "device": device.type,
        **({"subnormals": "flushed"} if device.type == "cpu" and subnormals_flushing() else {}),
        "train_seconds": round(progress.seconds + time.perf_counter() - started, 3),
        **({"resumed_at_epoch": resumed_at} if resumed_at is not None else {}),
        "loss_history": [round(float(v), 6) for v in progress.losses],
        "val_map_history": [None if math.isnan(v) else round(float(v), 6) for v in progress.val_maps],
    }


def train(method, model: HashModel, X: np.ndarray, labels: np.ndarray, device: torch.device,
          checkpoint: Checkpoint | None = None, resume: dict | None = None) -> dict:
    """Train ``model`` in place with ``method``'s head, loss and optimiser; keep the best epoch.

    ``method`` provides: ``epochs``, ``batch_size``, ``random_state``, ``val_fraction``, ``validate_after``,
    ``patience``, ``augment``, ``freeze_backbone``, ``progress``, and the hooks ``prepare(labels_train)``,
    ``loss(outputs, labels, indices, step)``, ``codes_from_outputs(outputs)``,
    ``configure_optimizer(model, total_steps)``. ``indices`` are positions in the training part
    (what ``prepare`` saw). Returns the facts for ``fit_info`` plus the loss / validation histories.

    ``checkpoint``: where progress is saved (see the module docstring); ``resume``: what
    :meth:`Checkpoint.read` gave, to continue from (:class:`CheckpointMismatch` if it does not fit).
    """
    from tqdm.auto import tqdm

    from datasets.images import is_lazy

    keep_freed_memory()  # faster epochs on CPU (measured in common.allocator)
    started = time.perf_counter()
    lazy = is_lazy(X)  # photos decoded per batch: X stays a file list, never an array in memory
    if not lazy:
        X = np.asarray(X, dtype=np.float32)
    labels = np.asarray(labels)
    train_pos, val_pos = split_validation(len(X), method.val_fraction, method.random_state)
    method.prepare(labels[train_pos])
    batches, trained = _batches_for(method, model, X, labels, train_pos, device, lazy)
    optimizer, scheduler = method.configure_optimizer(model, batches.total_steps)
    validate = _validator(method, model, X, labels, train_pos, val_pos, batches, device)
    progress = _Progress()
    if resume is not None:
        progress = _Progress.restored(_restore_checkpoint(resume, method, model, optimizer, scheduler, batches, device))
    start_epoch, epochs = progress.epochs_done, int(method.epochs)
    first_validated = first_validated_epoch(epochs, method.validate_after) if len(val_pos) else 1
    last_saved = time.perf_counter()
    bar = tqdm(range(start_epoch, epochs), desc=f"{method.name} {method.nbits}b", leave=False,
               disable=not method.progress, unit="epoch", initial=start_epoch, total=epochs)
    for epoch in bar:
        trained.train()
        if method.freeze_backbone:
            model.backbone.eval()
        loss, progress.step = _train_epoch(method, trained, batches, optimizer, scheduler, device, epoch, progress.step)
        skipped = epoch + 1 < first_validated
        val_map = float("nan") if skipped else validate()
        bar.set_postfix(loss=f"{loss:.4f}", val_map=f"from epoch {first_validated}" if skipped else f"{val_map:.3f}")
        if progress.end_epoch(loss, val_map, model, bool(len(val_pos)), epochs, method.patience, skipped):
            break
        if (checkpoint is not None and epoch + 1 < epochs
                and time.perf_counter() - last_saved >= CHECKPOINT_SECONDS):
            if not _save_checkpoint(checkpoint, method, model, optimizer, scheduler, batches, device,
                                    progress.checkpointed(time.perf_counter() - started)):
                checkpoint = None  # warned once; the run goes on without checkpoints
            last_saved = time.perf_counter()
    bar.close()
    return _keep_best(model, progress, len(val_pos), device, started,
                      resumed_at=start_epoch if resume is not None else None)


def lr_lambda(schedule: str, total_steps: int, milestones=()):
    """Multiplier of the base learning rate at each step.

    ``constant``; ``cosine`` (to 0 over the run); ``step``: halved at each fifth of the run, HashNet's
    authors' schedule (x0.5 every 2,000 of 10,000 iterations) stretched to the run's length;
    ``multistep``: the product of the factors of the ``milestones`` ``(step, factor)`` reached (the
    authors' schedules of DPSH, GreedyHash, CSQ and OrthoHash: x0.1 at epoch 30, x0.7 every 10 ...).
    """
    total = max(1, total_steps)
    if schedule == "constant":
        return lambda s: 1.0
    if schedule == "multistep":
        return lambda s: math.prod(factor for step, factor in milestones if s >= step)
    if schedule == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    if schedule == "step":
        return lambda s: 0.5 ** math.floor(5 * min(s, total - 1) / total)
    raise ValueError(f"unknown lr_schedule {schedule!r}; valid: constant, cosine, step, multistep")


def default_optimizer(model: HashModel, lr: float, head_lr_mult: float, optimizer: str, weight_decay: float,
                      schedule: str, total_steps: int, momentum: float = 0.9, milestones=()):
    """Backbone at ``lr``, head at ``lr * head_lr_mult``; Adam or SGD (Nesterov momentum, as
    HashNet's authors); a LambdaLR with :func:`lr_lambda`."""
    groups = []
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone:
        groups.append({"params": backbone, "lr": lr})
    groups.append({"params": [p for p in model.head.parameters() if p.requires_grad], "lr": lr * head_lr_mult})
    if optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: adam, sgd")
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(schedule, total_steps, milestones))
