"""``DeepHashMethod``: the base of every deep method; ``fit`` runs the shared trainer, with a cache.

A deep method's file is its head and its loss::

    @register("mymethod")
    class MyMethod(DeepHashMethod):
        def __init__(self, nbits=32, random_state=0, my_weight=1.0, **kwargs):
            super().__init__(nbits=nbits, random_state=random_state, **kwargs)
            self.my_weight = my_weight

        def build_head(self, in_features):          # -> nn.Module: features -> tensor | tuple
            return nn.Linear(in_features, self.nbits)

        def loss(self, outputs, labels, indices, step):   # -> scalar tensor
            ...

A loss on one code (``code_setup``, ``code_extra``, ``code_loss``; :mod:`methods.code_method`)
lets HDHash apply the method's loss per level (``HDHash(level_loss=name)``).

Optional hooks: ``prepare(labels_train)`` (before training, e.g. CNNH's target codes),
``codes_from_outputs(outputs)`` (real values whose sign is the code; default: the outputs,
tuples concatenated), ``configure_optimizer(model, total_steps)`` (default
:func:`deep.trainer.default_optimizer`). Several hash heads: return a tuple from the head and
combine the per-head losses in ``loss``; ``codes_from_outputs`` decides which bits are stored.

Trained models are cached under ``<CACHE_DIR>/models/`` keyed by the method, its parameters (all
but ``device``, ``progress`` and ``cache``), the device type, the method's ``cache_version``, a SHA-256
of the training data and, on the CPU, that subnormals are flushed (``fit`` and ``encode`` run under
:func:`common.threads.subnormals_flushed`), so a second ``fit`` with the same inputs loads instead of
training. ``common.files.CACHE_DIR`` (env ``HASHBENCH_CACHE``) is the root; writes are atomic. A model
in training keeps its progress beside it (``<model>.checkpoint``): a killed ``fit`` resumes (:mod:`deep.trainer`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.files import UnreadableFile, atomic_torch_save, cache_dir, load_torch_plain, one_line
from common.threads import flushes_subnormals, subnormals_flushed, torch_threads
from datasets.images import is_lazy
from deep import trainer
from deep.backbones import create_backbone
from methods.base import Choice, Flag, HashMethod, Int, Real, check_nbits, pack_codes


def _stopped_too_soon(fit_info, epochs: int) -> bool:
    """A cached model from before early stopping waited for the second half of the epochs, which
    stopped where today's trainer would not: its weights are not what training gives now."""
    run = (fit_info or {}).get("epochs_run")
    return isinstance(run, int) and run < epochs and not trainer.past_half(run, epochs)


def data_fingerprint(X: np.ndarray, labels: np.ndarray | None) -> str:
    """SHA-256 of the training data; images decoded on demand (:class:`datasets.images.LazyImages`)
    contribute their file list and transform (``fingerprint()``) instead of their pixels."""
    digest = hashlib.sha256()
    for name, array in (("X", X), ("labels", labels)):
        if array is None:
            digest.update(f"{name}:none;".encode())
            continue
        if is_lazy(array):
            digest.update(f"{name}:lazy:{array.shape};{array.fingerprint()};".encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def models_cache_dir() -> Path:
    return cache_dir() / "models"


@contextlib.contextmanager
def _deterministic(device: torch.device):
    """Deterministic kernels on CUDA for the length of a training run, so a seed gives the same
    model there too (measured on an H200: without this, HashNet, DHN, DNNH and HDHash trained
    twice with one seed gave different codes). cuBLAS needs its workspace setting for that."""
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


def _warn(message: str):
    import warnings

    warnings.warn(message, stacklevel=3)


def _load_cached(path: Path):
    """A cached model's dict, or None (with a one-line warning) when the file is not one: damaged,
    truncated, or holding anything but tensors and plain containers. Loaded with
    ``weights_only=True``, so a file in the cache can never run code; the model is then trained again
    and the file replaced."""
    try:
        saved = load_torch_plain(path)
    except UnreadableFile as exc:
        _warn(f"ignoring unreadable cached model {path} (not a plain weights file: {str(exc)[:100]}); training again")
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        _warn(f"ignoring cached model {path}: no state_dict in it; training again")
        return None
    return saved


def check_lr_steps(name: str, schedule: str, lr_steps, epochs) -> None:
    """``lr_steps``: ``((epoch, factor), ...)`` with increasing epochs inside the run and positive
    factors, given with ``lr_schedule="multistep"`` and only then; else a one-line ``ValueError``."""
    if (schedule == "multistep") != (lr_steps is not None):
        raise ValueError(f"{name} lr_steps goes with lr_schedule='multistep' (both or neither), got "
                         f"lr_schedule={schedule!r}, lr_steps={lr_steps!r}")
    if lr_steps is None:
        return
    try:
        pairs = [(epoch, float(factor)) for epoch, factor in lr_steps]
    except (TypeError, ValueError):
        pairs = None
    if (not pairs or any(not isinstance(e, int) or isinstance(e, bool) or not 1 <= e < epochs or f <= 0
                         for e, f in pairs) or [e for e, _ in pairs] != sorted({e for e, _ in pairs})):
        raise ValueError(f"{name} lr_steps must be (epoch, factor) pairs, epochs increasing within 1..{epochs - 1} "
                         f"and factors > 0, e.g. ((30, 0.1),), got {lr_steps!r}")


class DeepHashMethod(HashMethod):
    """Shared parameters and ``fit``/``encode`` of the deep methods (see the module docstring).

    ``backbone``: a name of :mod:`deep.backbones`; ``pretrained`` / ``weights``: passed to it
    (``None`` = the backbone's default: ImageNet weights for the torchvision models); ``freeze_backbone``: train
    only the head on cached features. ``optimizer`` ``"adam"`` or ``"sgd"``, ``lr`` the backbone's rate,
    ``head_lr_mult`` the head's multiple of it, ``lr_schedule`` ``"cosine" | "step" | "constant" | "multistep"``
    (the last with ``lr_steps``, ``((epoch, factor), ...)``: the rate times each factor from that epoch on, as the
    authors' schedules in ``protocols/settings/authors_schedules.json``). ``val_fraction`` of the training data is
    held out to choose the epoch (``patience`` epochs without improvement stop training, once half the epochs are
    done: :func:`deep.trainer.may_stop` says why); the first ``validate_after`` of the epochs are not validated and
    cannot be chosen (:func:`deep.trainer.first_validated_epoch`).
    ``epochs`` (30): measured on fashion-mnist at 16 bits, seed 0 (``protocols.sweep --param epochs``,
    results/sweeps), the validation MAP at 15 / 30 / 50 epochs was 0.757 / 0.835 / 0.818 for HDHash
    (each level's own bits, its default then; 50 stopped early at epoch 28) and 0.793 / 0.841 /
    0.861 for HashNet: at 15 every model still chose one of its last epochs. 30 (about 2,100
    iterations; the HashNet authors ran 10,000 on pretrained AlexNet) has HDHash's best validation
    MAP of the three and costs about 70 s a run on one CPU thread, 50 about 1.7 times that; HashNet
    still gains past 30, so the deep models are not fully converged at the default.
    ``num_threads``: torch's CPU threads during ``fit`` / ``encode`` (restored afterwards; None
    leaves the caller's setting, e.g. ``protocols.map --threads``). Measured on a 2-core machine
    shared with other jobs: a training step took 0.57 s with 2 threads and 0.018 s with 1.
    """

    deep = True
    supervised = True
    runtime_params = ("device", "progress", "cache", "num_threads")
    param_rules = {"epochs": Int(1), "batch_size": Int(1), "lr": Real(0.0, 1.0), "optimizer": Choice(("adam", "sgd")),
                   "head_lr_mult": Real(0.0), "weight_decay": Real(0.0, closed_low=True),
                   "lr_schedule": Choice(("cosine", "step", "constant", "multistep")), "pretrained": Flag(none=True),
                   "freeze_backbone": Flag(), "augment": Flag(), "val_fraction": Real(0.0, 0.9, closed_low=True),
                   "validate_after": Real(0.0, 0.9, closed_low=True), "patience": Int(1, none=True),
                   "cache": Flag(), "progress": Flag(), "num_threads": Int(1, none=True)}
    cache_version = 1
    #: a parameter added later stays out of the model cache's key at its neutral value (older models found)
    neutral_params = {"lr_steps": None, "validate_after": 0.0}
    # on the CPU in the contract tests wherever they run, so they check the same thing as CI
    fast_params = {"epochs": 2, "batch_size": 64, "progress": False, "cache": False, "num_threads": 1, "device": "cpu"}

    def __init__(self, nbits: int = 32, random_state: int = 0, backbone: str = "compact-cnn", epochs: int = 30,
                 batch_size: int = 64, lr: float = 1e-3, device: str = "auto", optimizer: str = "adam",
                 head_lr_mult: float = 10.0, weight_decay: float = 1e-5, lr_schedule: str = "cosine",
                 pretrained: bool | None = None, weights: str | None = None, freeze_backbone: bool = False,
                 augment: bool = True, val_fraction: float = 0.1, patience: int | None = 5, lr_steps=None,
                 validate_after: float = 0.0, cache: bool = True, progress: bool = True,
                 num_threads: int | None = None):
        super().__init__(nbits=nbits, random_state=random_state)
        self.backbone = backbone
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.optimizer = optimizer
        self.head_lr_mult = head_lr_mult
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.pretrained = pretrained
        self.weights = weights
        self.freeze_backbone = freeze_backbone
        self.augment = augment
        self.val_fraction = val_fraction
        self.patience = patience
        self.lr_steps = lr_steps
        self.validate_after = validate_after
        self.cache = cache
        self.progress = progress
        self.num_threads = num_threads

    # -- hooks a method implements ------------------------------------------------------------
    def build_head(self, in_features: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, outputs, labels: torch.Tensor, indices: torch.Tensor, step: trainer.TrainStep) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, labels_train: np.ndarray):
        """Called with the training part's labels before training (after the validation split)."""

    def codes_from_outputs(self, outputs) -> torch.Tensor:
        """Real values ``(n, nbits)`` whose sign (> 0) gives the bits."""
        return trainer.concat_outputs(outputs)

    # -- a loss on one code, which HDHash applies per level (methods/code_method.py) ---------------
    def code_setup(self, labels_train: np.ndarray, widths: tuple[int, ...], blocks=None):
        """State the code loss needs before training, one entry per code of ``widths`` bits (CSQ's
        hash centres, OrthoHash's codebook, DPSH's memory of outputs); called from ``prepare``.
        ``blocks``: per code, the ``(block, width)`` pieces it is the concatenation of (HDHash's prefix
        code i is levels 1..i); None: each code is a block of its own. Class targets are drawn per
        block (:func:`methods.code_method.targets_per_block`), so codes sharing a block agree on it."""

    def code_extra(self, width: int, n_classes: int) -> nn.Module | None:
        """Trainable parts a code of ``width`` bits needs besides its hash layer (GreedyHash's
        classifier on the code), or None."""
        return None

    def code_loss(self, code: int, z: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                  step: trainer.TrainStep, extra: nn.Module | None = None) -> torch.Tensor:
        """The method's loss on code number ``code``: ``z`` the hash layer's real outputs ``(n, width)``,
        ``extra`` what :meth:`code_extra` gave for it. HDHash calls it once per level."""
        raise NotImplementedError(f"{self.name} has no loss on one code; HDHash cannot use it per level")

    def training_state(self) -> dict:
        """What the loss keeps across steps outside the network (DPSH's memory of outputs), as
        tensors and plain containers, for a training checkpoint; state ``prepare`` rebuilds from the
        seed (CSQ's centres, OrthoHash's codebook) is not needed. Every deep method's resumed run is
        checked against an unbroken one (``tests/test_resume.py``), so state left out here fails there."""
        return {}

    def load_training_state(self, state: dict):
        """Put back what :meth:`training_state` gave (after ``prepare``)."""
        if state:
            raise ValueError(f"{self.name} keeps no training state, got {sorted(state)}")

    def extra_fit_info(self) -> dict:
        """Facts of this method's fit for the record (after training), e.g. CNNH's stage 1."""
        return {}

    def configure_optimizer(self, model: trainer.HashModel, total_steps: int):
        steps_per_epoch = total_steps // max(1, int(self.epochs))
        milestones = [(int(epoch) * steps_per_epoch, float(factor)) for epoch, factor in self.lr_steps or ()]
        return trainer.default_optimizer(model, self.lr, self.head_lr_mult, self.optimizer, self.weight_decay,
                                         self.lr_schedule, total_steps, milestones=milestones)

    # -- fit / encode ---------------------------------------------------------------------------
    def build_model(self, X_shape, pretrained=None) -> trainer.HashModel:
        in_channels, image_size = (X_shape[1], X_shape[-1])
        backbone = create_backbone(self.backbone, in_channels=in_channels, image_size=image_size,
                                   pretrained=self.pretrained if pretrained is None else pretrained,
                                   weights=self.weights if pretrained is None else None)
        return trainer.HashModel(backbone, self.build_head(backbone.out_features))

    def cache_config(self, X, y, device: torch.device) -> dict:
        params = {k: v for k, v in self.cache_params().items() if k not in self.runtime_params}
        flushed = {"subnormals": "flushed"} if device.type == "cpu" and flushes_subnormals() else {}  # another run
        return {"method": self.name, "cache_version": self.cache_version, "params": params, "device": device.type,
                "data": data_fingerprint(X, y), "torch": torch.__version__.split("+")[0], **flushed}

    def cache_path(self, config: dict) -> Path:
        key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
        return models_cache_dir() / f"{self.name}-{self.nbits}b-{key[:24]}.pt"

    @staticmethod
    def checkpoint_path(model_path: Path) -> Path:
        """Where a run of the model cached at ``model_path`` keeps its progress until it finishes
        (:class:`deep.trainer.Checkpoint`)."""
        return model_path.with_suffix(".checkpoint")

    def check_params(self):
        from deep.backbones import list_backbones

        super().check_params()
        Choice(tuple(list_backbones())).check(f"{self.name} backbone", self.backbone)
        device = str(self.device)
        if not (device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:") and device[5:].isdigit()):
            raise ValueError(f"{self.name} device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        check_lr_steps(self.name, self.lr_schedule, self.lr_steps, self.epochs)
        if self.weights is not None and not isinstance(self.weights, str):
            raise ValueError(f"{self.name} weights must be a file path or None, got {self.weights!r}")

    def fit(self, X, y=None):
        self.check_params()
        with torch_threads(self.num_threads), subnormals_flushed():
            return self._fit(X, y)

    def _fit(self, X, y):
        check_nbits(self.nbits)
        if not is_lazy(X):  # images decoded on demand stay lazy (the trainer decodes batches)
            X = np.asarray(X, dtype=np.float32)
        if X.ndim != 4:
            raise ValueError(f"{self.name} takes images (n, channels, height, width), got shape {X.shape}")
        if not is_lazy(X) and not np.all(np.isfinite(X)):
            raise ValueError("input images contain NaN or infinite values; clean the data first")
        if self.supervised and y is None:
            raise ValueError(f"{self.name} is supervised: fit(X, y) needs the label matrix y")
        y = np.asarray(y, dtype=bool) if y is not None else np.zeros((len(X), 1), bool)
        if y.ndim == 1:
            raise ValueError("labels must be a multi-hot matrix (n, n_classes)")
        device = trainer.resolve_device(self.device)
        config = self.cache_config(X, y, device)
        path = self.cache_path(config)
        stored_config = json.loads(json.dumps(config, default=str))  # as it reads back from a saved file

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))
            if self._fit_from_cache(path, stored_config, X.shape, device):
                return self
            checkpoint = (trainer.Checkpoint(self.checkpoint_path(path), stored_config)
                          if self.cache else None)
            resume = checkpoint.read() if checkpoint is not None else None
            model = self.build_model(X.shape)
            with _deterministic(device):
                try:
                    info = trainer.train(self, model, X, y, device, checkpoint=checkpoint, resume=resume)
                except trainer.CheckpointMismatch as exc:
                    _warn(f"ignoring training checkpoint {checkpoint.path}: it does not fit {self.name}'s network "
                          f"or loss ({exc}); training from the first epoch")
                    torch.manual_seed(int(self.random_state))  # as if the checkpoint had never been read
                    model = self.build_model(X.shape)
                    info = trainer.train(self, model, X, y, device, checkpoint=checkpoint)
        info = dict(info, **self.extra_fit_info(), cached=False,
                    backbone_pretrained=bool(getattr(model.backbone, "pretrained", False)))
        if self.cache:
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            try:
                atomic_torch_save({"config": stored_config, "state_dict": state,
                                   "fit_info": info}, path)
                info["cache_path"] = str(path)
                checkpoint.remove()  # the finished model replaces it
            except OSError as exc:
                _warn(f"could not write the model cache {path} ({exc.strerror or exc}); the trained model is kept "
                      "in memory for this run only")
        return self._set_fitted(model, info, device)

    def _fit_from_cache(self, path: Path, stored_config: dict, X_shape, device: torch.device) -> bool:
        """Take the model cached at ``path`` if it is this configuration's and loads; False where it
        must be trained (no file, or one it cannot use: warned in one line). A failed load seeds torch
        again, so the model trained next is the one an empty cache gives."""
        started = time.perf_counter()
        saved = _load_cached(path) if self.cache and path.is_file() else None
        if saved is not None and _stopped_too_soon(saved.get("fit_info"), int(self.epochs)):
            _warn(f"ignoring cached model {path}: it stopped early in the first half of its epochs, which "
                  "the trainer no longer does (deep.trainer.may_stop); training again")
            saved = None
        if saved is None or saved.get("config") != stored_config:
            return False
        model = self.build_model(X_shape, pretrained=False)
        try:
            model.load_state_dict(saved["state_dict"])
            info = dict(saved.get("fit_info") or {}, cached=True, cache_path=str(path),
                        cache_load_seconds=round(time.perf_counter() - started, 3))
            self._set_fitted(model.to(device).eval(), info, device)
            return True
        except (RuntimeError, KeyError, TypeError) as exc:
            _warn(f"ignoring cached model {path}: its weights do not fit {self.name}'s network "
                  f"({one_line(exc)[:120]}); training again")
        torch.manual_seed(int(self.random_state))  # the failed load must not change the trained model
        return False

    def _set_fitted(self, model, info, device):
        self.loss_history_ = info.pop("loss_history", [])
        self.val_map_history_ = info.pop("val_map_history", [])
        self.fit_info_ = info
        self.device_ = device
        self.model_ = model
        return self

    @torch.no_grad()
    def encode_real(self, X, batch_size: int | None = None) -> np.ndarray:
        """The real-valued outputs whose sign is the code, ``(n, nbits)``, batched in eval mode."""
        self._check_fitted("model_")
        if not is_lazy(X):
            X = np.asarray(X, dtype=np.float32)
        with torch_threads(self.num_threads), subnormals_flushed():
            return trainer.forward_in_batches(self.model_, X, self.device_, batch_size,
                                              post=self.codes_from_outputs).numpy()

    def encode(self, X) -> np.ndarray:
        self._check_fitted("model_")
        return pack_codes(self.encode_real(X))
