import gzip

import numpy as np
import pytest

from datasets import DatasetError, UnknownDatasetError, class_balanced_split, list_datasets, load_dataset


def _check_split(split, n, n_query, n_train):
    assert len(split.query) == n_query and len(split.train) == n_train
    assert len(split.database) == n - n_query
    assert not np.intersect1d(split.query, split.train).size
    assert not np.intersect1d(split.query, split.database).size
    assert np.isin(split.train, split.database).all()  # training items are in the database


def test_digits_split_sizes_and_determinism(digits):
    _check_split(digits.split, 1797, 100, 500)
    again = load_dataset("digits")
    assert again.split_sha256 == digits.split_sha256
    assert load_dataset("digits", seed=1).split_sha256 != digits.split_sha256
    classes = digits.labels.argmax(1)
    assert np.bincount(classes[digits.split.query]).tolist() == [10] * 10
    assert np.bincount(classes[digits.split.train]).tolist() == [50] * 10


def test_fashion_mnist_sized_split_without_the_data():
    classes = np.repeat(np.arange(10), 7000)
    split = class_balanced_split(classes, n_query=100, n_train=500, seed=0)
    _check_split(split, 70000, 1000, 5000)
    assert split.sha256 == class_balanced_split(classes, 100, 500, seed=0).sha256


def test_split_saved_with_its_hash(digits, tmp_path):
    path = digits.split.save(tmp_path / "s.npz")
    stored = np.load(path)
    assert np.array_equal(stored["query"], digits.split.query)
    assert len(digits.split_sha256) == 64


def test_labels_are_multi_hot(synthetic):
    assert synthetic.labels.dtype == bool and synthetic.labels.sum(1).tolist() == [1] * len(synthetic.labels)
    assert synthetic.X.shape[1:] == (1, 8, 8)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownDatasetError, match="valid datasets: .*digits"):
        load_dataset("cifar-11")
    assert {"digits", "fashion-mnist", "synthetic"} <= set(list_datasets())


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_root=str(tmp_path))


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(folder, n_train=800, n_test=200, truncate=False):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    if truncate:
        path = folder / "train-images-idx3-ubyte.gz"
        data = gzip.open(path).read()
        with gzip.open(path, "wb") as f:
            f.write(data[: len(data) // 2])


def test_fashion_mnist_loader_reads_idx(tmp_path):
    _fake_fashion(tmp_path, n_train=6000, n_test=1000)
    dataset = load_dataset("fashion-mnist", data_root=str(tmp_path))
    assert dataset.X.shape == (7000, 1, 28, 28) and dataset.X.max() <= 1.0
    _check_split(dataset.split, 7000, 1000, 5000)
    assert dataset.topk == 1000


def test_corrupt_fashion_mnist_is_refused(tmp_path):
    _fake_fashion(tmp_path, truncate=True)
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("fashion-mnist", data_root=str(tmp_path))


def test_real_fashion_mnist_split_sizes():
    try:
        dataset = load_dataset("fashion-mnist")
    except DatasetError:
        pytest.skip("Fashion-MNIST not installed (make test installs it)")
    _check_split(dataset.split, 70000, 1000, 5000)
