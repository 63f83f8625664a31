"""Images decoded on demand: :class:`LazyImages`, an array-like over image files.

The photo datasets (ImageNet-100's database alone is ~128,000 images, 77 GB as float32 at 224x224)
cannot be held in memory, so their ``Dataset.X`` is a ``LazyImages``: it has ``len``, ``shape``
``(n, 3, crop, crop)``, ``ndim`` and ``dtype`` like a numpy array, and

- ``X[i]``, ``X[a:b]``, ``X[index_array]`` decode the selected files and return float32 arrays
  (one image ``(3, crop, crop)`` or a batch ``(k, 3, crop, crop)``) in [0, 1], RGB;
- ``X.subset(indices)`` (what ``Dataset.part`` and the trainer use) returns another ``LazyImages``
  over the selected files, decoding nothing;
- ``X.batch(indices, augment, generator)`` gives the training batch as a torch tensor: with
  ``augment`` a random ``crop`` x ``crop`` crop and a horizontal flip with probability 1/2, drawn
  from the torch ``generator`` (so training stays seeded); without, the centre crop;
- ``X.fingerprint()`` is a SHA-256 over the transform, the relative paths and the files' sizes and
  modification times, which the feature cache and the deep methods' model cache use instead of
  hashing pixels (so a replaced image, even of the same size, is encoded and trained on again).

Transforms are HashNet's (its PyTorch code's ``ResizeImage(256)``, ``PlaceCrop(224)`` / random crop
and flip): every image is resized to ``resize`` x ``resize`` (aspect ratio not kept, as HashNet),
then cropped to ``crop`` x ``crop``. The ImageNet normalisation (mean/std) is not applied here: it
is done once, inside the torchvision backbones' input adapter (``deep.backbones.ImageNetAdapter``),
so ``X`` stays in [0, 1] like every other dataset.

An image that cannot be decoded stops with a :class:`datasets.DatasetError` naming the image and the
list file and line it came from. ``np.asarray(X)`` of a whole ``LazyImages`` is refused (it would
decode every image into memory); use a slice or ``subset``.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.files import one_line

#: decoding threads (PIL releases the GIL while decoding and resizing); env HASHBENCH_IMAGE_WORKERS
DEFAULT_WORKERS = int(os.environ.get("HASHBENCH_IMAGE_WORKERS", min(8, os.cpu_count() or 1)))
#: ``np.asarray`` of more than this many images is refused (a batch, not a dataset)
MAX_MATERIALISE = 4096


def is_lazy(X) -> bool:
    return isinstance(X, LazyImages)


def take(X, indices):
    """``X[indices]`` for numpy arrays; a lazy subset (nothing decoded) for :class:`LazyImages`."""
    return X.subset(indices) if is_lazy(X) else X[indices]


@dataclass(frozen=True)
class Transform:
    resize: int = 256
    crop: int = 224

    def describe(self) -> str:
        return f"resize{self.resize}x{self.resize}-crop{self.crop}-rgb01"


class LazyImages:
    """Array-like over image files (see the module docstring)."""

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, root, paths, sources=None, lines=None, transform: Transform = Transform(),
                 workers: int | None = None):
        self.root = Path(root)
        self.paths = np.asarray(paths, dtype=object)
        n = len(self.paths)
        self.sources = np.asarray(sources if sources is not None else ["?"] * n, dtype=object)
        self.lines = np.asarray(lines if lines is not None else np.zeros(n, np.int64), dtype=np.int64)
        self.transform = transform
        self.workers = DEFAULT_WORKERS if workers is None else int(workers)

    # -- array protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple:
        return (len(self), 3, self.transform.crop, self.transform.crop)

    def __repr__(self):
        return f"LazyImages({len(self)} images under {self.root}, {self.transform.describe()})"

    def _positions(self, key) -> np.ndarray:
        if isinstance(key, slice):
            return np.arange(len(self))[key]
        positions = np.asarray(key.cpu().numpy() if hasattr(key, "cpu") else key)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        return positions.astype(np.int64, copy=False)

    def subset(self, indices) -> "LazyImages":
        pos = self._positions(indices)
        return LazyImages(self.root, self.paths[pos], self.sources[pos], self.lines[pos], self.transform, self.workers)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._decode_many(np.array([int(key)]))[0]
        return self._decode_many(self._positions(key))

    def __array__(self, dtype=None, copy=None):
        if len(self) > MAX_MATERIALISE:
            raise MemoryError(f"refusing to decode all {len(self)} images of {self!r} into memory; "
                              "index a batch (X[a:b]) or take a lazy subset (X.subset(indices))")
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- decoding ------------------------------------------------------------------------------
    def path_of(self, position: int) -> Path:
        path = Path(self.paths[position])
        return path if path.is_absolute() else self.root / path

    def _load_resized(self, position: int) -> np.ndarray:
        """The image at ``position`` as uint8 ``(resize, resize, 3)``."""
        from PIL import Image

        from datasets import DatasetError

        path = self.path_of(position)
        size = self.transform.resize
        try:
            with Image.open(path) as image:
                image = image.convert("RGB").resize((size, size), Image.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, SyntaxError)
            raise DatasetError(f"cannot decode image {path} ({self.sources[position]} line "
                               f"{self.lines[position]}): {one_line(exc)}") from None

    def _map(self, fn, positions):
        if self.workers > 1 and len(positions) > 4:
            with ThreadPoolExecutor(self.workers) as pool:
                return list(pool.map(fn, positions))
        return [fn(p) for p in positions]

    def _decode_many(self, positions: np.ndarray, offsets=None, flips=None) -> np.ndarray:
        crop, resize = self.transform.crop, self.transform.resize
        centre = (resize - crop) // 2
        out = np.empty((len(positions), 3, crop, crop), dtype=np.float32)

        def one(i):
            image = self._load_resized(int(positions[i]))
            dy, dx = (centre, centre) if offsets is None else offsets[i]
            image = image[dy:dy + crop, dx:dx + crop]
            if flips is not None and flips[i]:
                image = image[:, ::-1]
            out[i] = image.transpose(2, 0, 1) / np.float32(255.0)

        self._map(one, range(len(positions)))
        return out

    def batch(self, indices, augment: bool = False, generator=None):
        """Training batch as a float32 torch tensor; random crop + flip when ``augment``."""
        import torch

        positions = self._positions(indices)
        if not augment:
            return torch.from_numpy(self._decode_many(positions))
        span = self.transform.resize - self.transform.crop + 1
        offsets = torch.randint(0, span, (len(positions), 2), generator=generator).tolist()
        flips = (torch.rand(len(positions), generator=generator) < 0.5).tolist()
        return torch.from_numpy(self._decode_many(positions, offsets, flips))

    def fingerprint(self) -> str:
        """SHA-256 of the transform, the relative paths and the files' sizes and ``st_mtime_ns`` (no
        pixels read; as the photo datasets' ``data_sha256``, :mod:`datasets.listfile`)."""
        digest = hashlib.sha256(f"LazyImages:{self.transform.describe()}:{len(self)};".encode())
        for position, path in enumerate(self.paths):
            try:
                found = self.path_of(position).stat()
                size, mtime = found.st_size, found.st_mtime_ns
            except OSError:
                size, mtime = -1, -1
            digest.update(f"{path}\t{size}\t{mtime}\n".encode())
        return digest.hexdigest()
