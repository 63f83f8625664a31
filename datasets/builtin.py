"""Built-in datasets: ``digits`` (scikit-learn), ``fashion-mnist`` (IDX files), ``synthetic``.

``fashion-mosaic`` (multi-label, from Fashion-MNIST) is in :mod:`datasets.mosaic`; the photo datasets
(``imagenet-100``, ``nus-wide-21``, ``ms-coco``, ``listfile``) in :mod:`datasets.listfile`."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from common.files import cache_dir
from datasets import Dataset, DatasetError, class_balanced_split, one_hot, register_dataset

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_ENV = "FASHION_MNIST_ROOT"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
INSTALL_HINT = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (files go to /usr/share/datasets/fashion-mnist), "
    f"or pass --data-root DIR / set {FASHION_MNIST_ENV}=DIR to a folder with the four IDX files"
)


@register_dataset("digits")
def load_digits(data_root=None, seed=0) -> Dataset:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    split = class_balanced_split(bunch.target, n_query=10, n_train=50, seed=seed)
    return Dataset("digits", images, one_hot(bunch.target, 10), split, topk=None)


@register_dataset("synthetic")
def load_synthetic(data_root=None, seed=0, n_per_class=200, n_classes=10, dim=64) -> Dataset:
    """Seeded Gaussian class clusters shaped as 1x8x8 images, for fast tests."""
    rng = np.random.default_rng(1234)  # the data is fixed; only the split follows ``seed``
    centres = rng.normal(0.0, 1.0, (n_classes, dim))
    classes = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[classes] + rng.normal(0.0, 1.5, (len(classes), dim))
    X = (X.astype(np.float32) / 4.0 + 0.5).reshape(-1, 1, 8, 8)
    split = class_balanced_split(classes, n_query=20, n_train=50, seed=seed)
    return Dataset("synthetic", X, one_hot(classes, n_classes), split, topk=None)


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes, checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; the file is corrupt, reinstall it ({INSTALL_HINT})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes; reinstall it ({INSTALL_HINT})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated: header says {shape}, file has {len(data) - offset} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / "FashionMNIST" / "raw" / stem):
        if candidate.exists():
            return candidate
    return None


def _download_with_torchvision(target: Path) -> Path | None:
    """Fallback for machines with internet: torchvision's downloader. Returns the folder or None."""
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(target), train=True, download=True)
        FashionMNIST(str(target), train=False, download=True)
        return target / "FashionMNIST" / "raw"
    except Exception:
        return None


def fashion_mnist_folder(data_root=None, allow_download=True) -> Path:
    if data_root is not None:
        candidates = [Path(data_root)]
    elif os.environ.get(FASHION_MNIST_ENV):
        candidates = [Path(os.environ[FASHION_MNIST_ENV])]
    else:
        candidates = [Path(d) for d in FASHION_MNIST_DIRS] + [cache_dir() / "fashion-mnist" / "FashionMNIST" / "raw"]
    for folder in candidates:
        if all(_find_idx(folder, stem) for stem in FASHION_MNIST_FILES.values()):
            return folder
    if data_root is None and not os.environ.get(FASHION_MNIST_ENV) and allow_download:
        folder = _download_with_torchvision(cache_dir() / "fashion-mnist")
        if folder is not None:
            return folder
    where = ", ".join(str(c) for c in candidates)
    raise DatasetError(f"Fashion-MNIST not found in {where}; {INSTALL_HINT}")


def fashion_mnist_images(data_root=None, allow_download=True):
    """``(images uint8 (70000, 28, 28), classes int64, folder)``: the 60,000 images of the train
    files then the 10,000 of the test files."""
    folder = fashion_mnist_folder(data_root, allow_download)
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in FASHION_MNIST_FILES.items()}
    images = np.concatenate([arrays["train_images"], arrays["test_images"]])
    classes = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    if len(images) != len(classes) or images.shape[1:] != (28, 28) or classes.max() > 9:
        raise DatasetError(f"Fashion-MNIST files in {folder} are inconsistent; reinstall them ({INSTALL_HINT})")
    return images, classes, folder


@register_dataset("fashion-mnist")
def load_fashion_mnist(data_root=None, seed=0) -> Dataset:
    """The 70,000 images: the 60,000 of the train files then the 10,000 of the test files."""
    images, classes, folder = fashion_mnist_images(data_root)
    X = (images.astype(np.float32) / 255.0)[:, None, :, :]
    split = class_balanced_split(classes, n_query=100, n_train=500, seed=seed)
    return Dataset("fashion-mnist", X, one_hot(classes, 10), split, topk=1000, info={"root": str(folder)})
