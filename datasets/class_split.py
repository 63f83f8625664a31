"""The unseen-class protocol's data: a seeded class split and what it makes of a :class:`Dataset`.

Sablayrolles, Douze, Usunier & Jégou, "How should we evaluate supervised hashing?" (ICASSP 2017):
on the standard split queries and database share the training classes, so MAP mostly measures
classification; holding classes out of training measures retrieval of classes the codes never saw.
PROTOCOL.md's unseen-class split of a single-label dataset:

- the class split: ``round(0.7 * n_classes)`` classes seen in training (at least one, and at least
  one left unseen), drawn with ``default_rng(class_seed)``, a seed of its own (default 0), apart
  from the dataset's split seed and from the training seed, so every method and training seed sees
  the same classes; its SHA-256 (:attr:`ClassSplit.sha256`) goes into every record;
- training: the items of the dataset's training split whose classes are all seen (the deep trainer
  holds its validation items out of these, so validation sees seen classes only), their labels cut
  to the seen classes' columns (a method is not told how many classes it never sees);
- queries: the items of the dataset's query split whose classes are all unseen;
- two databases (:data:`DATABASES`): ``unseen``, the unseen-class items of the dataset's database
  (unseen@unseen); ``all``, the whole database (unseen@all, where the seen classes are distractors).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from datasets import Dataset, Split

#: the share of a dataset's classes seen in training (PROTOCOL.md: 25-30 % held out, 3 of 10)
SEEN_SHARE = 0.7
#: the unseen-class protocol's databases: the unseen-class items only (unseen@unseen), every item (unseen@all)
DATABASES = ("unseen", "all")


@dataclass(frozen=True)
class ClassSplit:
    """Which classes (label columns) are seen in training and which are held out."""

    n_classes: int
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    seed: int

    @property
    def sha256(self) -> str:
        """SHA-256 of the content (the class count, then the seen and unseen ids as little-endian int64,
        each prefixed by its name and length, as :attr:`datasets.Split.sha256`); the seed is not in it."""
        digest = hashlib.sha256(f"classes:{self.n_classes}:".encode())
        for name in ("seen", "unseen"):
            ids = np.asarray(getattr(self, name), dtype="<i8")
            digest.update(f"{name}:{len(ids)}:".encode())
            digest.update(ids.tobytes())
        return digest.hexdigest()

    def record_fields(self) -> dict:
        """What every record of the protocol says about its class split."""
        return {"class_seed": self.seed, "class_split_sha256": self.sha256, "seen_classes": list(self.seen),
                "unseen_classes": list(self.unseen)}


def class_split(n_classes: int, seed: int = 0) -> ClassSplit:
    """``round(0.7 * n_classes)`` seen classes (at least 1, at most ``n_classes - 1``), the rest unseen:
    the first ``n_unseen`` classes of ``default_rng(seed).permutation(n_classes)`` are held out."""
    if n_classes < 2:
        raise ValueError(f"a class split needs at least 2 classes (one seen, one unseen), got {n_classes}")
    n_seen = min(n_classes - 1, max(1, round(SEEN_SHARE * n_classes)))
    unseen = np.sort(np.random.default_rng(seed).permutation(n_classes)[:n_classes - n_seen])
    seen = np.setdiff1d(np.arange(n_classes), unseen)
    return ClassSplit(n_classes, tuple(int(c) for c in seen), tuple(int(c) for c in unseen), int(seed))


@dataclass
class UnseenClassData:
    """The unseen-class protocol's parts of ``dataset`` (indices into it, like a :class:`Split`)."""

    dataset: Dataset
    classes: ClassSplit
    train: np.ndarray
    query: np.ndarray
    databases: dict  # {"unseen": indices, "all": indices}

    def training_part(self):
        """``(X, labels)`` to train on: the seen-class training items, labels cut to the seen columns."""
        from datasets.images import take

        return take(self.dataset.X, self.train), self.dataset.labels[self.train][:, list(self.classes.seen)]

    def view(self, database: str) -> Dataset:
        """``dataset`` as evaluated against ``database``: its split's query and database parts are the
        protocol's (labels whole, so relevance is a shared class as everywhere else)."""
        split = Split(query=self.query, train=self.train, database=self.databases[database],
                      seed=self.dataset.split.seed)
        return Dataset(self.dataset.name, self.dataset.X, self.dataset.labels, split, self.dataset.topk,
                       self.dataset.multilabel, self.dataset.info)

    def database_positions(self, database: str) -> np.ndarray:
        """Where ``database``'s items are in the dataset's database part (every database is inside it),
        so the database is encoded once for both."""
        where = np.full(len(self.dataset.labels), -1, dtype=np.int64)
        where[self.dataset.split.database] = np.arange(len(self.dataset.split.database))
        return where[self.databases[database]]


def unseen_class_data(dataset: Dataset, class_seed: int = 0) -> UnseenClassData:
    """The unseen-class protocol's training items, queries and databases of ``dataset`` under the
    class split of ``class_seed`` (module docstring). A one-line ``ValueError`` for a multi-label
    dataset (an item of a seen and an unseen class would be on both sides), for fewer than two classes,
    or where a part comes out empty."""
    labels = np.asarray(dataset.labels, dtype=bool)
    if dataset.multilabel or labels.ndim != 2 or (labels.sum(axis=1) > 1).any():
        raise ValueError(f"{dataset.name} is multi-label; the unseen-class protocol needs a single-label dataset "
                         "(an item of a seen and an unseen class would be on both sides of the class split)")
    classes = class_split(labels.shape[1], class_seed)
    in_seen = labels[:, list(classes.seen)].any(axis=1)
    in_unseen = labels[:, list(classes.unseen)].any(axis=1)
    split = dataset.split
    data = UnseenClassData(dataset, classes, train=split.train[in_seen[split.train]],
                           query=split.query[in_unseen[split.query]],
                           databases={"unseen": split.database[in_unseen[split.database]], "all": split.database})
    for what, indices in (("training item of a seen class", data.train), ("query of an unseen class", data.query),
                          ("database item of an unseen class", data.databases["unseen"])):
        if not len(indices):
            raise ValueError(f"{dataset.name} has no {what} under class split seed {class_seed} "
                             f"(unseen classes {list(classes.unseen)})")
    return data
