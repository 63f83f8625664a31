"""Feature vectors of photo datasets, for the shallow methods (LSH, ITQ, SH, KSH, SDH, OPQ).

Shallow methods take vectors; flattening 150,000 decoded 224x224 photos (77 GB) is not an option.
On the photo datasets (:mod:`datasets.listfile`) they run on features computed once per dataset
and cached (``<CACHE_DIR>/features/<dataset>-<kind>-<fingerprint>.npy``, memory-mapped):

- ``alexnet-fc7`` (default): the 4096-d fc7 activations of the ImageNet-pretrained AlexNet on the
  centre crop, the "DeCAF7" features HashNet and the HDHash paper give their shallow baselines.
  Needs the ImageNet weights (torch hub cache or ``weights=PATH``; see :mod:`deep.backbones`).
- ``pixels``: the image resized to 32x32 RGB, flattened (3,072-d). No weights needed; a weak
  baseline, used by the tests and where the weights are unavailable. Not the paper's setting.

``feature_dataset(dataset, kind)`` returns a :class:`Dataset` with the same labels, split and MAP@K
whose ``X`` is the feature matrix ``(n, d)`` float32; ``features_problem(dataset, kind)`` says in one
line why it could not here (what the commands check once, before any run).
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.files import atomic_save_npy, cache_dir, one_line
from datasets import Dataset
from datasets.images import LazyImages, Transform
from deep.backbones import create_backbone, local_imagenet_weights
from deep.trainer import forward_in_batches, resolve_device

FEATURE_KINDS = ("alexnet-fc7", "pixels")


def feature_path(dataset: Dataset, kind: str, weights=None) -> Path:
    key = hashlib.sha256(f"{kind}:{weights}:{dataset.X.fingerprint()}".encode()).hexdigest()[:16]
    return cache_dir() / "features" / f"{dataset.name}-{kind}-{key}.npy"


def _pixels(X: LazyImages, batch: int = 512) -> np.ndarray:
    small = LazyImages(X.root, X.paths, X.sources, X.lines, Transform(resize=32, crop=32), X.workers)
    out = np.empty((len(small), 3 * 32 * 32), dtype=np.float32)
    for start in range(0, len(small), batch):
        out[start:start + batch] = small[start:start + batch].reshape(-1, 3 * 32 * 32)
    return out


def _alexnet_fc7(X: LazyImages, device: str, weights=None) -> np.ndarray:
    backbone = create_backbone("alexnet", in_channels=3, image_size=X.shape[-1], pretrained=True, weights=weights)
    return forward_in_batches(backbone, X, resolve_device(device)).numpy().astype(np.float32)


def _load_cached(path: Path, n_rows: int):
    """The cached feature matrix, or None (with a warning naming the file) when it is damaged or
    does not have one row per image; it is then computed again and replaced."""
    try:
        features = np.load(path, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        warnings.warn(f"ignoring damaged feature cache {path} ({one_line(exc)}); computing it again",
                      stacklevel=3)
        return None
    if features.ndim != 2 or len(features) != n_rows:
        warnings.warn(f"ignoring feature cache {path}: shape {features.shape}, expected {n_rows} rows; "
                      "computing it again", stacklevel=3)
        return None
    return features


def features_problem(dataset: Dataset, kind: str = "alexnet-fc7", weights=None) -> str | None:
    """Why ``kind`` features of ``dataset`` cannot be had here, in one line, or None: cached already,
    or computable (``pixels`` always; ``alexnet-fc7`` with AlexNet's ImageNet weights at hand). What a
    command checks once before any run, instead of every shallow run failing on its own."""
    if kind not in FEATURE_KINDS:
        return f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}"
    if kind == "pixels" or feature_path(dataset, kind, weights).is_file():
        return None
    path = Path(weights) if weights is not None else local_imagenet_weights("alexnet")
    if path.is_file():
        return None
    return (f"{kind} features of {dataset.name} are not cached and need AlexNet's ImageNet weights, not found at "
            f"{path} (put them there, TORCH_HOME for another folder; see deep/backbones.py)")


def feature_dataset(dataset: Dataset, kind: str = "alexnet-fc7", device: str = "auto", weights=None) -> Dataset:
    """``dataset`` with ``X`` replaced by its ``kind`` features (computed once, then cached)."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; valid: {', '.join(FEATURE_KINDS)}")
    path = feature_path(dataset, kind, weights)
    features = _load_cached(path, len(dataset.X)) if path.is_file() else None
    if features is None:
        features = _pixels(dataset.X) if kind == "pixels" else _alexnet_fc7(dataset.X, device, weights)
        atomic_save_npy(path, features)
    return replace(dataset, X=features, info=dict(dataset.info, features=kind, features_path=str(path)))
