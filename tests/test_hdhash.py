"""HDHash: level validation, per-level codes and loss, the tree through the method, level-1 purity."""
import numpy as np
import pytest
import torch

from methods import create_method
from methods.hashnet import hashnet_loss
from methods.hdhash import check_level_weights, default_levels
from search import SearchMode
from search.hamming import HammingIndex
from search.tree import check_levels

FAST = {"epochs": 2, "batch_size": 64, "progress": False, "cache": False, "device": "cpu"}


def test_default_levels_keep_an_8_bit_root_and_sum_to_nbits():
    assert default_levels(64) == (8, 16, 40)  # Table II's note
    for nbits in (16, 24, 32, 40, 48, 56, 64, 128):
        levels = default_levels(nbits)
        assert sum(levels) == nbits and levels[0] == 8 and all(b % 8 == 0 for b in levels)


@pytest.mark.parametrize("weights", [(1, 2, 1), (0.5, 1.0, 1.0), (1, 1, 2)])
def test_increasing_weights_refused(weights):
    with pytest.raises(ValueError, match="non-increasing"):
        check_level_weights(weights, 3)


def test_weight_count_and_sign_checked():
    assert check_level_weights((2, 1, 1), 3) == (2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="one weight per level"):
        check_level_weights((1, 1), 3)
    with pytest.raises(ValueError, match="non-negative"):
        check_level_weights((1, -1, -2), 3)


def test_bad_levels_refused(synthetic):
    with pytest.raises(ValueError, match="sum to 24 bits, not nbits=32"):
        check_levels((8, 16), 32)
    with pytest.raises(ValueError, match="multiple of 8"):
        check_levels((4, 12, 16), 32)
    X, y = synthetic.part("train")
    with pytest.raises(ValueError, match="non-increasing"):
        create_method("hdhash", nbits=32, level_weights=(0.1, 1, 1), **FAST).fit(X, y)


def test_per_level_code_lengths_and_weighted_loss(synthetic):
    X, y = synthetic.part("train")
    method = create_method("hdhash", nbits=32, levels=(8, 8, 16), level_weights=(3, 2, 1), **FAST).fit(X, y)
    outputs = method.model_(torch.as_tensor(X[:40]))
    assert [o.shape[1] for o in outputs] == [8, 8, 16]
    assert method.encode(X[:5]).shape == (5, 4)

    # the loss is the weighted sum of HashNet losses, one alpha (10 / nbits) on every level; by
    # default (level_codes="prefix") h_i is levels 1..i, so the deepest term is HashNet's on the whole code
    from deep.trainer import TrainStep, similarity_matrix

    step = TrainStep(step=0, epoch=0, total_steps=10)
    labels = torch.as_tensor(y[:40])
    s = similarity_matrix(labels)
    u = torch.tanh(method.scale_at(step) * torch.cat(outputs, dim=1))
    prefix = [hashnet_loss(u[:, :width], s, 10.0 / 32) for width in (8, 16, 32)]
    for loss, expected in zip(method.level_losses(outputs, labels, step), prefix):
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    expected = sum(w * loss for w, loss in zip((3, 2, 1), prefix))
    assert method.loss(outputs, labels, None, step).item() == pytest.approx(expected.item(), rel=1e-6)

    # level_codes="own": h_i is level i's bits alone
    method.level_codes = "own"
    expected = sum(w * hashnet_loss(torch.tanh(method.scale_at(step) * z), s, 10.0 / 32)
                   for w, z in zip((3, 2, 1), outputs))
    assert method.loss(outputs, labels, None, step).item() == pytest.approx(expected.item(), rel=1e-6)


def test_unknown_level_codes_refused(synthetic):
    X, y = synthetic.part("train")
    with pytest.raises(ValueError, match="level_codes must be one of 'own', 'prefix'"):
        create_method("hdhash", nbits=32, level_codes="suffix", **FAST).fit(X, y)


def test_two_searches_and_exact_tree_at_keep_one(synthetic):
    X, y = synthetic.part("train")
    method = create_method("hdhash", nbits=32, keep_ratio=0.3, **FAST).fit(X, y)
    assert [mode.label for mode in method.searches] == ["hamming", "tree:0.3"]
    db_codes = method.encode(synthetic.part("database")[0])
    queries = method.encode(synthetic.part("query")[0])
    exhaustive = HammingIndex(db_codes).rank(queries)
    tree = method.build_index(db_codes, SearchMode("tree", {"keep_ratio": 1.0})).rank(queries)
    assert np.array_equal(tree[0], exhaustive[0]) and np.array_equal(tree[1], exhaustive[1])


def test_level_one_groups_purer_than_random(digits):
    X, y = digits.part("train")
    method = create_method("hdhash", nbits=32, epochs=8, progress=False, cache=False, device="cpu").fit(X, y)
    X_db, y_db = digits.part("database")
    level1 = method.encode(X_db)[:, 0]
    classes = y_db.argmax(1)

    def purity(groups, labels):
        return sum(np.bincount(labels[groups == g]).max() for g in np.unique(groups)) / len(labels)

    rng = np.random.default_rng(0)
    random_purity = np.mean([purity(level1, rng.permutation(classes)) for _ in range(20)])
    assert purity(level1, classes) > random_purity + 0.2


def test_map_cli_writes_hamming_and_tree_rows(tmp_path, monkeypatch):
    import pandas as pd

    import common.files
    from protocols import map as map_protocol

    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "results"
    argv = ["--dataset", "synthetic", "--methods", "hdhash", "--bits", "32", "--param", "levels=(8,8,16)",
            "--param", "epochs=2", "--param", "progress=False", "--out", str(out)]
    assert map_protocol.main(argv) == 0
    frame = pd.read_csv(out / "map" / "synthetic.csv")
    assert sorted(frame["search"]) == ["hamming", "tree:0.3"]
    assert "hdhash (tree:0.3) [" in (out / "map" / "synthetic.md").read_text()  # a variant: its own table
    assert map_protocol.main(argv[:-2] + ["--param", "levels=(8,16)", "--out", str(out)]) == 2
