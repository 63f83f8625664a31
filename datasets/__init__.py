"""Dataset registry: ``load_dataset(name, data_root=None, seed=0)`` returns a :class:`Dataset`.

Every dataset has one shape: ``X`` (images ``(n, channels, height, width)`` float32 in [0, 1], or
vectors ``(n, d)``; for the photo datasets a :class:`datasets.images.LazyImages` of that shape that
decodes files on demand), multi-hot ``labels`` ``(n, C)`` bool, and the shared split of PROTOCOL.md
(query / train / database index arrays made from a seed, saved to a file, with their SHA-256).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.files import atomic_savez, cache_dir
from common.registry import Registry, UnknownNameError


class DatasetError(RuntimeError):
    """Data missing or unreadable; the message says what to do."""


class UnknownDatasetError(UnknownNameError):
    pass


_REGISTRY = Registry("dataset", error=UnknownDatasetError)
#: decorator on a loader ``fn(data_root=None, seed=0) -> Dataset``
register_dataset = _REGISTRY.register
list_datasets = _REGISTRY.names


@dataclass
class Split:
    query: np.ndarray
    train: np.ndarray
    database: np.ndarray
    seed: int

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for name in ("query", "train", "database"):
            indices = np.asarray(getattr(self, name), dtype="<i8")
            digest.update(f"{name}:{len(indices)}:".encode())
            digest.update(indices.tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> Path:
        return atomic_savez(path, query=self.query, train=self.train, database=self.database, seed=self.seed)


@dataclass
class Dataset:
    name: str
    X: np.ndarray
    labels: np.ndarray  # multi-hot (n, C) bool
    split: Split
    topk: int | None  # MAP@K of PROTOCOL.md; None = all
    multilabel: bool = False
    info: dict = field(default_factory=dict)

    def part(self, which: str):
        """``(X, labels)`` of ``"query"``, ``"train"`` or ``"database"``. For photo datasets ``X`` is a
        :class:`datasets.images.LazyImages` and the part is a lazy subset (nothing decoded)."""
        from datasets.images import take

        indices = getattr(self.split, which)
        return take(self.X, indices), self.labels[indices]

    @property
    def split_sha256(self) -> str:
        return self.split.sha256


def dataset_name(text: str) -> str:
    """The name ``text`` stands for, as records, folders and caches spell it: a registered name as it
    is; your own dataset ``listfile:NAME`` (or ``listfile-NAME``) as ``listfile-NAME``
    (:mod:`datasets.listfile`). Otherwise :class:`UnknownDatasetError`, one line naming the valid ones."""
    from datasets.listfile import own_dataset_name

    if text in _REGISTRY:
        return text
    try:
        own = own_dataset_name(text)
    except DatasetError as exc:
        raise UnknownDatasetError(str(exc)) from None
    if own is None:
        raise UnknownDatasetError(f"unknown dataset {text!r}; valid datasets: {', '.join(list_datasets())}, "
                                  "or listfile:NAME (your own, in HashNet's list files)")
    return own


def load_dataset(name: str, data_root: str | None = None, seed: int = 0) -> Dataset:
    """Dataset ``name`` (:func:`dataset_name`), its split saved as ``<cache>/splits/<name>-seed<seed>.npz``."""
    from datasets.listfile import load_own_dataset

    name = dataset_name(name)
    loader = _REGISTRY.get(name) if name in _REGISTRY else functools.partial(load_own_dataset, name)
    dataset = loader(data_root=data_root, seed=seed)
    dataset.split.save(cache_dir() / "splits" / f"{name}-seed{seed}.npz")
    return dataset


def one_hot(classes: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.zeros((len(classes), n_classes), dtype=bool)
    labels[np.arange(len(classes)), classes] = True
    return labels


def class_balanced_split(classes: np.ndarray, n_query: int, n_train: int, seed: int) -> Split:
    """PROTOCOL.md's single-label split: per class, ``n_query`` queries and ``n_train`` training
    items drawn with ``default_rng(seed)``; the database is everything but the queries."""
    rng = np.random.default_rng(seed)
    query, train = [], []
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        if len(members) < n_query + n_train:
            raise DatasetError(f"class {c} has {len(members)} items, the split needs {n_query + n_train}")
        query.append(members[:n_query])
        train.append(members[n_query:n_query + n_train])
    query, train = np.sort(np.concatenate(query)), np.sort(np.concatenate(train))
    database = np.setdiff1d(np.arange(len(classes)), query)
    return Split(query=query, train=train, database=database, seed=seed)


def random_split(n: int, n_query: int, n_train: int, seed: int) -> Split:
    """Multi-label split: random queries and training items; the database is all but the queries."""
    perm = np.random.default_rng(seed).permutation(n)
    query, train = np.sort(perm[:n_query]), np.sort(perm[n_query:n_query + n_train])
    return Split(query=query, train=train, database=np.setdiff1d(np.arange(n), query), seed=seed)


# the built-in datasets register themselves on import
from datasets import builtin, listfile, mosaic  # noqa: E402,F401
