"""The paper's photo datasets in HashNet's list-file format, and a generic ``listfile`` loader.

A dataset folder (``--data-root DIR``, or the dataset's environment variable) holds three list
files, one image a line: ``relative/path.jpg 0 1 0 ... 0`` (a multi-hot label vector of the
dataset's width; a path may also be absolute):

- ``database.txt``: the retrieval database; ``train.txt``: the training images (in HashNet's lists
  a subset of the database); ``test.txt``: the queries.

| name | env | label width | multi-label | MAP@K |
|---|---|---|---|---|
| ``imagenet-100`` | ``IMAGENET100_ROOT`` | 100 | no | 1000 |
| ``nus-wide-21`` | ``NUSWIDE_ROOT`` | 21 | yes | 5000 |
| ``ms-coco`` | ``MSCOCO_ROOT`` | 80 | yes | 5000 |
| ``listfile`` | ``LISTFILE_ROOT`` | the first line's | if any line has 2+ labels | all |
| ``listfile:NAME`` | ``LISTFILE_ROOT`` | the first line's | if any line has 2+ labels | all |

**Your own dataset by name.** ``listfile:NAME`` is the ``listfile`` loader under a name of your
own, spelt ``listfile-NAME`` wherever a name becomes a folder or a file (records' ``dataset``,
``map/runs/listfile-NAME/``, the split and feature caches), so each of your datasets keeps its own
records; ``listfile-NAME`` is accepted as input too, so the name a table shows is one every
command takes. NAME is a plain name (letters, digits, ``.``, ``_``, ``-``). Plain ``listfile``
stays as it was.

**Items and split.** ``X`` and ``labels`` hold the three lists concatenated, in the order
``database.txt``, ``train.txt``, ``test.txt`` (a training image listed in both lists appears twice,
once per list, so each list keeps its own lines). The split's index arrays point into that
combined list: database = ``0 .. n_db-1``, train = ``n_db .. n_db+n_train-1``, query = the last
``n_test``. The split's SHA-256 (over those index arrays) goes into every row as for the other
datasets; because it only depends on the list lengths, the data's own SHA-256 is also kept, as
``data_sha256`` in every row: over the three files' bytes (``info["lists_sha256"]``), then each
listed image's relative path, size and modification time (``st_mtime_ns``), so a stored run is
stale once an image is replaced, even by one of the same size. Sizes and times, not the pixels:
hashing every file would read ImageNet-100's 128,000 images on every load, where a stat each is
already paid to check they exist. A copy of the folder keeps its runs only if it keeps the
modification times (``rsync -a``, ``cp -p``, ``tar``); one that does not (``cp -r``, some sync
tools) makes them stale and a cluster worker holding it is refused as having other data.

**Validation as read**: a missing list file, an empty list, a line whose label vector has the wrong
width or values other than 0/1, and a missing image stop with a one-line :class:`DatasetError`
naming the list file and line. Images are decoded lazily (:mod:`datasets.images`); one that cannot
be decoded stops with its path, list file and line when it is first read.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from datasets import Dataset, DatasetError, Split, register_dataset
from datasets.images import LazyImages, Transform

LIST_FILES = ("database.txt", "train.txt", "test.txt")


@dataclass(frozen=True)
class PhotoSpec:
    name: str
    env: str
    n_labels: int | None  # None: the first line's width (``listfile``)
    multilabel: bool | None  # None: inferred
    topk: int | None
    description: str


PAPER_DATASETS = {
    "imagenet-100": PhotoSpec("imagenet-100", "IMAGENET100_ROOT", 100, False, 1000,
                              "ImageNet-100 (HashNet's 100 classes: ~128k database, 10k-13k train, 5k test)"),
    "nus-wide-21": PhotoSpec("nus-wide-21", "NUSWIDE_ROOT", 21, True, 5000,
                             "NUS-WIDE, the 21 most frequent concepts (2,100 test, 10,500 train)"),
    "ms-coco": PhotoSpec("ms-coco", "MSCOCO_ROOT", 80, True, 5000,
                         "MS-COCO, 80 categories (5,000 test, 10,000 train)"),
}
LISTFILE = PhotoSpec("listfile", "LISTFILE_ROOT", None, None, None, "any folder of images with HashNet list files")
#: ``listfile:NAME`` (as typed) or ``listfile-NAME`` (as stored): NAME a plain name that fits a folder name
#: (:data:`protocols.records.PLAIN_NAME`'s 100 characters with the prefix)
OWN_NAME = re.compile(r"listfile[:-]([A-Za-z0-9][A-Za-z0-9._-]{0,90})")


def own_dataset_name(text) -> str | None:
    """The stored name ``listfile-NAME`` of ``listfile:NAME`` or ``listfile-NAME``; None for anything
    else. A ``listfile:`` whose NAME is not a plain name is a one-line :class:`DatasetError`."""
    if not isinstance(text, str):
        return None
    match = OWN_NAME.fullmatch(text)
    if match:
        return f"listfile-{match.group(1)}"
    if text.startswith("listfile:"):
        raise DatasetError(f"dataset {text!r}: the NAME of listfile:NAME becomes a folder name, so it must be "
                           "letters, digits, '.', '_' or '-' (starting with a letter or digit, at most 91 long)")
    return None


def load_own_dataset(name: str, data_root=None, seed=0) -> Dataset:
    """Your own dataset ``listfile:NAME`` / ``listfile-NAME``: the ``listfile`` loader under its stored name."""
    return load_photo_dataset(replace(LISTFILE, name=own_dataset_name(name)), data_root, seed)


def dataset_root(spec: PhotoSpec, data_root=None) -> Path | None:
    """The folder given (``data_root``, else the environment variable), or None."""
    if data_root is not None:
        return Path(data_root)
    if os.environ.get(spec.env):
        return Path(os.environ[spec.env])
    return None


def missing_message(spec: PhotoSpec, root: Path | None) -> str:
    where = f"in {root}" if root is not None else f"(no --data-root given and {spec.env} is not set)"
    return (f"{spec.name} not found {where}: expected {', '.join(LIST_FILES)} (HashNet list format, one "
            f"'relative/path.jpg 0 1 ... 0' line per image, {spec.n_labels or 'any number of'} labels) and the images "
            f"they name, relative to that folder; pass --data-root DIR or set {spec.env}=DIR")


def available(spec: PhotoSpec, data_root=None) -> bool:
    root = dataset_root(spec, data_root)
    return root is not None and all((root / name).is_file() for name in LIST_FILES)


def split_line(line: str) -> tuple[str, list[str]]:
    """``(image path, label tokens)``: the first token and the rest, or, where the rest is not all
    0/1, the line's trailing run of 0/1 tokens and everything before it as the path (a path may hold
    spaces; one ending in a lone 0 or 1 token cannot)."""
    tokens = line.split()
    if len(tokens) > 1 and all(v in ("0", "1") for v in tokens[1:]):
        return tokens[0], tokens[1:]
    n_labels = 0
    while n_labels < len(tokens) and tokens[len(tokens) - 1 - n_labels] in ("0", "1"):
        n_labels += 1
    if n_labels == len(tokens):
        return "", tokens
    image = line.strip().rsplit(maxsplit=n_labels)[0] if n_labels else line.strip()
    return image, tokens[len(tokens) - n_labels:]


def inside(root: Path, image: str) -> bool:
    """Is ``root / image`` inside ``root``, read lexically (``..`` cannot climb out; a symbolic link
    inside the folder may still point to images kept elsewhere)?"""
    base = os.path.normpath(root)
    return os.path.normpath(os.path.join(base, image)).startswith(base + os.sep)


def read_list(path: Path, root: Path, width: int | None):
    """Parse one list file: ``(paths, labels (n, width) bool, line numbers, width, stamps)``, validating
    each line; ``stamps`` holds each image's ``(size, st_mtime_ns)`` (the one stat that checks it is
    there). Image paths must be relative and stay inside ``root``; duplicate paths and all-zero label
    vectors (never relevant to any query) are allowed with one warning per file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read list {path}: {exc}") from None
    paths, rows, lines, stamps = [], [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        image, values = split_line(line)
        numbers = [v for v in line.split()[1:] if v not in ("0", "1") and v.lstrip("-").replace(".", "", 1).isdigit()]
        if numbers:
            raise DatasetError(f"{path} line {number}: labels must be 0 or 1, got {' '.join(numbers[:8])}")
        if not image:
            raise DatasetError(f"{path} line {number}: no image path before the labels")
        if Path(image).is_absolute() or not inside(root, image):
            raise DatasetError(f"{path} line {number}: image path {image!r} leaves the dataset folder {root}; "
                               "list files name images by paths relative to it")
        if width is None:
            width = len(values)
            if width == 0:
                raise DatasetError(f"{path} line {number}: no 0/1 label vector after {image!r}")
        if len(values) != width:
            raise DatasetError(f"{path} line {number}: label vector has {len(values)} values, expected {width}")
        full = root / image
        try:
            found = os.stat(full)
        except OSError:
            found = None
        if found is None or not stat.S_ISREG(found.st_mode):
            raise DatasetError(f"{path} line {number}: image {full} does not exist")
        paths.append(image)
        rows.append([v == "1" for v in values])
        lines.append(number)
        stamps.append((found.st_size, found.st_mtime_ns))
    if not paths:
        raise DatasetError(f"{path} line 0: empty list (no image lines); expected 'relative/path.jpg 0 1 ... 0' lines")
    labels = np.array(rows, dtype=bool).reshape(len(paths), width)
    _warn_oddities(path, paths, labels, lines)
    return paths, labels, np.array(lines, dtype=np.int64), width, stamps


def _warn_oddities(path: Path, paths: list[str], labels: np.ndarray, lines: list[int]):
    seen, duplicates = {}, []
    for image, number in zip(paths, lines):
        if image in seen:
            duplicates.append(number)
        seen.setdefault(image, number)
    empty = [lines[i] for i in np.flatnonzero(~labels.any(axis=1))]
    for count, what, where in ((len(duplicates), "lines repeat an earlier image path", duplicates),
                               (len(empty), "lines have no label set (never relevant to any query)", empty)):
        if count:
            shown = ", ".join(map(str, where[:5])) + (" ..." if count > 5 else "")
            warnings.warn(f"{path}: {count} {what} (lines {shown})", stacklevel=3)


def load_photo_dataset(spec: PhotoSpec, data_root=None, seed=0, transform: Transform = Transform()) -> Dataset:
    root = dataset_root(spec, data_root)
    if root is None or not all((root / name).is_file() for name in LIST_FILES):
        raise DatasetError(missing_message(spec, root))
    width = spec.n_labels
    parts, digest = {}, hashlib.sha256()
    for name in LIST_FILES:
        path = root / name
        paths, labels, lines, width, stamps = read_list(path, root, width)
        parts[name] = (paths, labels, lines, stamps)
        digest.update(f"{name}:".encode() + path.read_bytes())
    all_paths = [p for name in LIST_FILES for p in parts[name][0]]
    sources = [str(root / name) for name in LIST_FILES for _ in parts[name][0]]
    lines = np.concatenate([parts[name][2] for name in LIST_FILES])
    labels = np.concatenate([parts[name][1] for name in LIST_FILES])
    n_db, n_train, n_test = (len(parts[name][0]) for name in LIST_FILES)
    split = Split(query=np.arange(n_db + n_train, n_db + n_train + n_test), train=np.arange(n_db, n_db + n_train),
                  database=np.arange(n_db), seed=seed)
    multilabel = spec.multilabel if spec.multilabel is not None else bool((labels.sum(1) > 1).any())
    X = LazyImages(root, all_paths, sources, lines, transform)
    lists_sha256 = digest.hexdigest()
    info = {"root": str(root), "lists_sha256": lists_sha256, "data_sha256": data_sha256(lists_sha256, parts),
            "transform": transform.describe(), "photos": True}
    return Dataset(spec.name, X, labels, split, topk=spec.topk, multilabel=multilabel, info=info)


def data_sha256(lists_sha256: str, parts: dict) -> str:
    """SHA-256 of the lists' own hash, then, list by list and line by line, each image's relative path,
    size and ``st_mtime_ns`` (module docstring: why not the pixels)."""
    digest = hashlib.sha256(f"lists:{lists_sha256};".encode())
    for name in LIST_FILES:
        paths, _, _, stamps = parts[name]
        digest.update(f"{name}:{len(paths)};".encode())
        digest.update("".join(f"{image}\t{size}\t{mtime}\n" for image, (size, mtime) in zip(paths, stamps)).encode())
    return digest.hexdigest()


def _register(spec: PhotoSpec):
    @register_dataset(spec.name)
    def loader(data_root=None, seed=0) -> Dataset:
        return load_photo_dataset(spec, data_root, seed)

    loader.__doc__ = f"{spec.description}: HashNet list files under --data-root or ${spec.env}."
    return loader


for _spec in (*PAPER_DATASETS.values(), LISTFILE):
    _register(_spec)
