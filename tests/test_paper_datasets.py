"""Photo datasets in HashNet's list format (lazy images, validation, the whole pipeline on a mini
dataset built here from real images) and the multi-label ``fashion-mosaic``."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import common.files
from datasets import DatasetError, load_dataset
from datasets.images import LazyImages, Transform
from protocols import map as map_protocol
from tests.conftest import write_mini_photos


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    for env in ("IMAGENET100_ROOT", "NUSWIDE_ROOT", "MSCOCO_ROOT", "LISTFILE_ROOT"):
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_photos(tmp_path_factory.mktemp("mini"))


def _copy(mini, tmp_path):
    import shutil

    return shutil.copytree(mini, tmp_path / "copy")


def test_lists_parse_into_a_lazy_dataset(mini):
    ds = load_dataset("listfile", data_root=mini)
    assert isinstance(ds.X, LazyImages) and ds.X.shape == (120, 3, 224, 224) and ds.X.ndim == 4
    # database, then train, then test, concatenated; the split indexes that list
    assert list(ds.split.database) == list(range(60)) and list(ds.split.train) == list(range(60, 100))
    assert list(ds.split.query) == list(range(100, 120)) and len(ds.split_sha256) == 64
    assert ds.labels.shape == (120, 10) and ds.labels.sum(1).tolist() == [1] * 120 and not ds.multilabel
    assert ds.topk is None and len(ds.info["lists_sha256"]) == 64
    X_query, y_query = ds.part("query")
    assert isinstance(X_query, LazyImages) and len(X_query) == 20 and y_query.shape == (20, 10)
    one, some, picked = X_query[0], X_query[2:5], X_query[np.array([4, 1])]
    assert one.shape == (3, 224, 224) and some.shape == (3, 3, 224, 224) and picked.dtype == np.float32
    assert 0.0 <= picked.min() and picked.max() <= 1.0 and picked.max() > 0.2
    np.testing.assert_array_equal(picked[1], X_query[1])
    assert str(X_query.paths[0]).startswith("test/")


def test_paper_loader_on_the_mini_lists(tmp_path):
    root = write_mini_photos(tmp_path / "in100", width=100, per_class=(1, 2, 2), n_classes=3)
    ds = load_dataset("imagenet-100", data_root=root)
    assert ds.labels.shape == (15, 100) and ds.topk == 1000 and not ds.multilabel
    assert (common.files.CACHE_DIR / "splits" / "imagenet-100-seed0.npz").is_file()
    with pytest.raises(DatasetError, match=r"database.txt line 1: label vector has 100 values, expected 21"):
        load_dataset("nus-wide-21", data_root=root)


def test_missing_data_says_which_files_and_where(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_dataset("ms-coco")
    message = str(error.value)
    assert "database.txt, train.txt, test.txt" in message and "MSCOCO_ROOT" in message and "80 labels" in message
    with pytest.raises(DatasetError, match=f"in {tmp_path}"):
        load_dataset("nus-wide-21", data_root=tmp_path)


@pytest.mark.parametrize("damage, message", [
    ("missing", r"train.txt line 3: image .*train/c0/2.png does not exist"),
    ("width", r"database.txt line 2: label vector has 9 values, expected 10"),
    ("values", r"database.txt line 2: labels must be 0 or 1"),
    ("empty", r"test.txt line 0: empty list"),
])
def test_bad_lists_stop_with_file_and_line(mini, tmp_path, damage, message):
    root = _copy(mini, tmp_path)
    if damage == "missing":
        (root / "train" / "c0" / "2.png").unlink()
    elif damage in ("width", "values"):
        lines = (root / "database.txt").read_text().splitlines()
        lines[1] = lines[1].rsplit(" ", 1)[0] if damage == "width" else lines[1].replace(" 1 ", " 2 ", 1)
        (root / "database.txt").write_text("\n".join(lines) + "\n")
    else:
        (root / "test.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match=message) as error:
        load_dataset("listfile", data_root=root)
    assert len(str(error.value).splitlines()) == 1


def test_unreadable_image_names_image_list_and_line(mini, tmp_path):
    root = _copy(mini, tmp_path)
    (root / "test" / "c1" / "0.png").write_bytes(b"not an image")
    ds = load_dataset("listfile", data_root=root)
    X_query, _ = ds.part("query")
    with pytest.raises(DatasetError, match=r"cannot decode image .*test/c1/0.png \(.*test.txt line 3\)"):
        X_query[:4]


def test_transforms_and_fingerprint(mini):
    X = load_dataset("listfile", data_root=mini).X.subset(np.arange(6))
    eval_batch = X.batch(np.arange(6))
    assert eval_batch.shape == (6, 3, 224, 224) and torch.equal(eval_batch, torch.from_numpy(X[:6]))
    one = X.batch(np.arange(6), augment=True, generator=torch.Generator().manual_seed(0))
    two = X.batch(np.arange(6), augment=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(one, two) and not torch.equal(one, eval_batch)  # seeded random crop + flip
    small = LazyImages(X.root, X.paths, transform=Transform(resize=40, crop=32))
    assert small[:2].shape == (2, 3, 32, 32) and small.fingerprint() != X.fingerprint()
    assert X.subset([0, 1]).fingerprint() == LazyImages(X.root, X.paths[:2]).fingerprint()
    with pytest.raises(MemoryError, match="refusing to decode all"):
        np.asarray(LazyImages(X.root, np.repeat(X.paths, 1000)))


def test_mini_dataset_through_protocols_map(mini, tmp_path, capsys, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a whole LazyImages was materialised")

    monkeypatch.setattr(LazyImages, "__array__", refuse)
    out = tmp_path / "results"
    argv = ["--dataset", "listfile", "--data-root", str(mini), "--methods", "lsh,hashnet", "--bits", "16",
            "--features", "pixels", "--out", str(out), "--param", "backbone=alexnet", "--param", "pretrained=False",
            "--param", "epochs=1", "--param", "batch_size=16", "--param", "progress=False", "--param", "num_threads=1"]
    assert map_protocol.main(argv) == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "map" / "listfile.csv")
    assert sorted(frame["method"]) == ["hashnet", "lsh"]
    assert (frame["n_query"] == 20).all() and (frame["n_db"] == 60).all()
    assert frame["map"].between(0, 1).all()
    record = json.loads((out / "map" / "runs" / "listfile" / "lsh-16-hamming-top60-seed0.json").read_text())
    assert record["features"] == "pixels" and len(record["data_sha256"]) == 64
    # --param backbone=alexnet etc. make it a variant of HashNet: its own file, beside any default row
    (deep_path,) = (out / "map" / "runs" / "listfile").glob("hashnet-16-hamming-top60-seed0-v*.json")
    deep = json.loads(deep_path.read_text())
    assert deep["params"]["backbone"] == "alexnet" and "features" not in deep
    assert list((common.files.CACHE_DIR / "features").glob("listfile-pixels-*.npy"))

    # shallow methods never flatten the photos: without features they stop with one line, before any run
    capsys.readouterr()
    assert map_protocol.main(argv[:6] + ["--methods", "itq", "--features", "none", "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "itq is shallow and takes feature vectors" in errors[0]


# -- fashion-mosaic ------------------------------------------------------------------------------
def test_mosaic_labels_are_the_classes_of_its_tiles():
    from datasets.mosaic import make_mosaics

    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(10), 20)
    images = rng.integers(0, 256, (200, 28, 28)).astype(np.float32) / 255
    mosaics, labels, tiles = make_mosaics(images, classes, 300, seed=1)
    assert mosaics.shape == (300, 1, 56, 56) and labels.shape == (300, 10)
    for i in range(300):
        assert set(np.flatnonzero(labels[i])) == set(classes[tiles[i]].tolist())
    np.testing.assert_array_equal(mosaics[7, 0, 28:, :28], images[tiles[7, 2]])
    assert set(labels.sum(1)) == {1, 2, 3}
    again = make_mosaics(images, classes, 300, seed=1)
    np.testing.assert_array_equal(again[0], mosaics)


def test_fashion_mosaic_split_and_relevance():
    from protocols.metrics import RankingScorer, relevance  # noqa: F401  (the scorer uses relevance)

    try:
        ds = load_dataset("fashion-mosaic")
    except DatasetError:
        pytest.skip("Fashion-MNIST not installed")
    assert ds.multilabel and ds.topk == 5000 and ds.X.shape == (20000, 1, 56, 56)
    assert (len(ds.split.query), len(ds.split.train), len(ds.split.database)) == (1000, 5000, 19000)
    assert np.intersect1d(ds.split.query, ds.split.database).size == 0
    q, db = ds.labels[ds.split.query[:50]], ds.labels[ds.split.database[:400]]
    rel = relevance(q, db)
    shared = np.array([[bool(set(np.flatnonzero(a)) & set(np.flatnonzero(b))) for b in db] for a in q])
    np.testing.assert_array_equal(rel, shared)
    assert 0.2 < rel.mean() < 0.6  # informative relevance, not "everything shares a label"
