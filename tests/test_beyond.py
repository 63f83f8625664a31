"""The methods beyond the paper (DPSH, GreedyHash, CSQ, OrthoHash): each loss against a hand / numpy
computation on a tiny batch, CSQ's centres, GreedyHash's straight-through sign, multi-label fits, and
HDHash trained with each of them per level (its tree search included)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from methods import create_method, get_method_class, list_methods
from methods.code_method import soft_target_cross_entropy
from methods.csq import csq_loss, hadamard, hash_centres, item_centres
from methods.dpsh import dpsh_loss
from methods.greedyhash import greedy_sign, greedyhash_loss
from methods.orthohash import orthohash_loss
from search import SearchMode
from search.hamming import HammingIndex

BEYOND = ["dpsh", "greedyhash", "csq", "orthohash"]
FAST = {"epochs": 2, "batch_size": 64, "progress": False, "cache": False, "device": "cpu", "num_threads": 1}

# a batch of three items, two codes of 3 bits, two classes: items 0, 1 in class 0, item 2 in class 1
Z = torch.tensor([[0.5, -1.0, 2.0], [1.0, -0.5, 0.0], [-2.0, 1.5, -0.25]])
Y = torch.tensor([[1, 0], [1, 0], [0, 1]], dtype=torch.bool)


def test_registered_beyond_the_paper_and_not_in_table_one():
    # the four later losses, and the critics' classifier baseline (methods/classifier.py)
    assert list_methods(beyond=True) == sorted(BEYOND + ["classifier"])
    for name in BEYOND + ["classifier"]:
        cls = get_method_class(name)
        assert cls.beyond_paper and not cls.paper_table1 and cls.deep and cls.supervised
    assert not set(list_methods(beyond=True)) & set(list_methods(paper=True))


def test_dpsh_loss_against_numpy():
    z, memory = Z.numpy().astype(np.float64), Z.numpy()[[2, 0]].astype(np.float64) * 0.5
    s = np.array([[0, 1], [0, 1], [1, 0]], dtype=np.float64)
    theta = 0.5 * z @ memory.T
    likelihood = np.mean(np.log1p(np.exp(theta)) - s * theta)
    quantization = np.mean(np.sum((np.sign(z) - z) ** 2, axis=1))  # sgn(0) = 0: item 1's last entry adds 0
    expected = likelihood + 10.0 / 40 * quantization
    got = dpsh_loss(Z, torch.as_tensor(memory, dtype=torch.float32), torch.as_tensor(s), eta=10.0, n_train=40)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dpsh_pairs_the_batch_with_every_item_seen():
    method = create_method("dpsh", nbits=8, eta=0.0)
    labels_train = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
    method.code_setup(labels_train, (3,))
    from deep.trainer import TrainStep

    step = TrainStep(0, 0, 10)
    # first batch: items 0 and 2 seen; the pair term is over those two only
    first = method.code_loss(0, Z[[0, 2]], Y[[0, 2]], torch.tensor([0, 2]), step)
    expected = dpsh_loss(Z[[0, 2]], Z[[0, 2]], torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 0.0, 4)
    assert first.item() == pytest.approx(expected.item(), rel=1e-6)
    # second batch (item 1): paired with the memory of items 0, 1, 2 (1's row freshly written)
    second = method.code_loss(0, Z[[1]], Y[[1]], torch.tensor([1]), step)
    memory = torch.stack([Z[0], Z[1], Z[2]])
    assert second.item() == pytest.approx(dpsh_loss(Z[[1]], memory, torch.tensor([[1.0, 1.0, 0.0]]), 0.0,
                                                     4).item(), rel=1e-6)


def test_greedy_sign_passes_the_gradient_straight_through():
    h = torch.tensor([[0.3, -2.0, 0.0, 5.0]], requires_grad=True)
    b = greedy_sign(h)
    assert b.tolist() == [[1.0, -1.0, 0.0, 1.0]]
    (b * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert h.grad.tolist() == [[1.0, 2.0, 3.0, 4.0]]  # d sgn(h) / dh taken as 1 (sign's true gradient: 0)


def test_greedyhash_loss_against_numpy():
    classifier = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]))
    b = np.sign(Z.numpy())
    logits = b @ classifier.weight.detach().numpy().T
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -np.mean(log_p[np.arange(3), [0, 0, 1]])
    penalty = np.mean(np.abs(np.abs(Z.numpy()) - 1) ** 3)
    got = greedyhash_loss(Z, classifier, Y, alpha=0.1)
    assert got.item() == pytest.approx(ce + 0.1 * penalty, rel=1e-6)


def test_soft_target_cross_entropy_is_cross_entropy_for_one_label_and_even_for_several():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    one = torch.tensor([[1, 0, 0], [0, 0, 1]])
    assert soft_target_cross_entropy(logits, one).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).item(), rel=1e-6)
    two = torch.tensor([[1, 1, 0], [0, 0, 1]])
    log_p = torch.log_softmax(logits, 1)
    expected = -(0.5 * (log_p[0, 0] + log_p[0, 1]) + log_p[1, 2]) / 2
    assert soft_target_cross_entropy(logits, two).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("nbits", [8, 16, 32, 64])
def test_csq_centres_are_hadamard_rows_at_least_half_the_bits_apart(nbits):
    rng = np.random.default_rng(0)
    centres = hash_centres(10, nbits, rng)
    rows = np.concatenate([hadamard(nbits), -hadamard(nbits)])
    assert centres.shape == (10, nbits) and set(np.unique(centres)) == {-1.0, 1.0}
    assert all(any(np.array_equal(c, r) for r in rows) for c in centres)
    distances = (centres[:, None, :] != centres[None, :, :]).sum(-1)
    assert distances[~np.eye(10, dtype=bool)].min() >= nbits // 2


def test_csq_centres_are_random_where_the_hadamard_does_not_fit():
    # 48 bits: no Sylvester Hadamard matrix; 8 bits for 20 classes: [H; -H] has 16 rows
    for n_classes, nbits in ((10, 48), (20, 8)):
        centres = hash_centres(n_classes, nbits, np.random.default_rng(1))
        assert centres.shape == (n_classes, nbits) and set(np.unique(centres)) <= {-1.0, 1.0}
    assert not np.array_equal(hash_centres(10, 48, np.random.default_rng(1)), hash_centres(10, 48,
                                                                                           np.random.default_rng(2)))
    assert hadamard(4).tolist() == [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]


def test_csq_multi_label_centre_is_the_binarised_centroid_with_ties_from_one_random_vector():
    centres = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    tie_break = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    labels = torch.tensor([[0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    got = item_centres(labels, centres, tie_break)
    assert got[0].tolist() == [1, -1, 1, -1]  # one label: its centre
    assert got[1].tolist() == [1, -1, 1, 1]  # centroid (1, 0, 1, 0): ties at bits 2 and 4 from tie_break
    assert got[2].tolist() == [1, 1, 1, -1]  # centroid (3, 1, 1, -1) / 3
    assert got[3].tolist() == tie_break.tolist()  # no label: all ties


def test_csq_loss_against_numpy():
    target = torch.tensor([[1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]])
    p, t = (np.tanh(Z.numpy().astype(np.float64)) + 1) / 2, (target.numpy() + 1) / 2
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    quantization = np.mean((np.abs(np.tanh(Z.numpy().astype(np.float64))) - 1) ** 2)
    assert csq_loss(Z, target, lambda_q=0.05).item() == pytest.approx(bce + 0.05 * quantization, rel=1e-5)


def test_orthohash_loss_against_numpy():
    codebook = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 1.0, 1.0]])
    z = Z.numpy().astype(np.float64)
    cosine = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (codebook.numpy() / np.sqrt(3)).T
    labels = Y.numpy().astype(np.float64)
    logits = 8.0 * (cosine - 0.2 * labels)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -np.mean((labels * log_p).sum(1))
    assert orthohash_loss(Z, codebook, Y, scale=8.0, margin=0.2).item() == pytest.approx(ce, rel=1e-5)
    quantization = np.mean(1 - np.abs(z).sum(1) / (np.linalg.norm(z, axis=1) * np.linalg.norm(np.sign(z), axis=1)))
    with_q = orthohash_loss(Z, codebook, Y, scale=8.0, margin=0.2, quantization_weight=0.5)
    assert with_q.item() == pytest.approx(ce + 0.5 * quantization, rel=1e-5)
    # two labels: the margin comes off both logits and each gets half the target
    both = torch.tensor([[1, 1], [1, 0], [0, 1]])
    logits2 = 8.0 * (cosine - 0.2 * both.numpy())
    log_p2 = logits2 - np.log(np.exp(logits2).sum(1, keepdims=True))
    target = both.numpy() / both.numpy().sum(1, keepdims=True)
    expected = -np.mean((target * log_p2).sum(1))
    assert orthohash_loss(Z, codebook, both, scale=8.0, margin=0.2).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", BEYOND)
def test_multi_label_fit(name, synthetic):
    X, y = synthetic.part("train")
    rng = np.random.default_rng(0)
    multi = y.copy()
    multi[np.arange(len(y)), rng.integers(0, y.shape[1], len(y))] = True  # up to two labels per item
    assert (multi.sum(1) == 2).any()
    method = create_method(name, nbits=16, **FAST).fit(X, multi)
    codes = method.encode(synthetic.part("query")[0])
    assert codes.shape == (len(synthetic.part("query")[0]), 2) and np.all(np.isfinite(method.loss_history_))


@pytest.mark.parametrize("bad, message", [
    ({"level_loss": "dsh"}, "level_loss must be one of 'hashnet', 'dpsh'"),
    ({"level_loss": "csq", "level_loss_params": {"eta": 1.0}}, "csq has no parameter 'eta'"),
    ({"level_loss": "csq", "level_loss_params": {"lambda_q": -1.0}}, "csq lambda_q must be"),
    ({"level_loss": "csq", "level_loss_params": "lambda_q=1"}, "level_loss_params must be a dict"),
    ({"level_loss": "hashnet", "level_loss_params": {"alpha": 1.0}}, "applies to another level_loss"),
    ({"level_loss": "orthohash", "level_loss_params": {"nbits": 8}}, "HDHash sets nbits"),
])
def test_hdhash_level_loss_parameters_checked(bad, message):
    with pytest.raises(ValueError, match=message) as error:
        create_method("hdhash", nbits=32, **bad).check_params()
    assert "\n" not in str(error.value)


def test_hdhash_level_losses_are_the_methods_code_losses_on_the_prefix_codes(synthetic):
    from deep.trainer import TrainStep

    X, y = synthetic.part("train")
    method = create_method("hdhash", nbits=32, levels=(8, 8, 16), level_weights=(3, 2, 1), level_loss="orthohash",
                           level_loss_params={"margin": 0.3}, **FAST).fit(X, y)
    loss_method = method.loss_method()
    assert loss_method.name == "orthohash" and loss_method.margin == 0.3 and loss_method.nbits == 32
    outputs = method.model_(torch.as_tensor(X[:40]))
    labels = torch.as_tensor(y[:40])
    step = TrainStep(0, 0, 10)
    full = torch.cat(outputs, dim=1)
    codebooks = method._level_loss._codebooks
    assert [c.shape[1] for c in codebooks] == [8, 16, 32]  # a codebook per prefix width
    expected = [orthohash_loss(full[:, :w], c, labels, 8.0, 0.3) for w, c in zip((8, 16, 32), codebooks)]
    got = method.level_losses(outputs, labels, step)
    assert [g.item() for g in got] == pytest.approx([e.item() for e in expected], rel=1e-6)
    assert method.loss(outputs, labels, None, step).item() == pytest.approx(
        sum(w * e.item() for w, e in zip((3, 2, 1), expected)), rel=1e-6)


@pytest.mark.parametrize("loss", BEYOND)
def test_hdhash_trains_with_each_loss_on_digits_and_its_tree_searches(loss, digits):
    X, y = digits.part("train")
    method = create_method("hdhash", nbits=32, level_loss=loss, epochs=6, progress=False, cache=False,
                           device="cpu", num_threads=1).fit(X, y)
    assert method.loss_history_[-1] < method.loss_history_[0]
    X_db, y_db = digits.part("database")
    X_q, y_q = digits.part("query")
    db_codes, queries = method.encode(X_db), method.encode(X_q)
    exhaustive = HammingIndex(db_codes).rank(queries)
    tree = method.build_index(db_codes, SearchMode("tree", {"keep_ratio": 1.0})).rank(queries)
    assert np.array_equal(tree[0], exhaustive[0])  # keep ratio 1: the tree ranks by the full distance
    _, order = method.build_index(db_codes).rank(queries)
    relevant = (y_q[:, None, :] & y_db[order][:, :, :]).any(-1)[:, :10]
    assert relevant.mean() > 0.5  # precision@10 of the concatenated code (chance: 0.1)
    if loss == "greedyhash":  # one classifier per level, on the level's prefix code
        assert [e.in_features for e in method.model_.head.extras] == [8, 16, 32]


def test_beyond_the_paper_rows_get_their_own_block(tmp_path, synthetic):
    from protocols import paper_tables, runner
    from protocols.frame import records_frame
    from protocols.tables import write_map_report

    fast = {"epochs": 1, "progress": False, "cache": False, "device": "cpu", "num_threads": 1}
    # stored as if run with every parameter at its default (epochs=1 keeps the test fast)
    for method, params, variant in (("hashnet", fast, ""), ("csq", fast, ""),
                                    ("hdhash", dict(fast, level_loss="csq"), "level_loss='csq'")):
        records = runner.run(synthetic, method, 16, params=params)
        runner.store([dict(r, variant=variant) for r in records], tmp_path)
    write_map_report(tmp_path, "synthetic")
    text = (tmp_path / "map" / "synthetic.md").read_text()
    table1, beyond = text.split("## Beyond the paper (not Table I)")
    assert "| bits | hashnet |" in table1 and "csq" not in table1.split("## Training time")[0]
    # the one method order: the paper's Table I (HDHash's variant, its default search first), then the rest
    assert "| bits | hdhash [level_loss='csq'] | hdhash (tree:0.3) [level_loss='csq'] | hashnet | csq |" in beyond

    frames = {"synthetic": records_frame(tmp_path, "synthetic")}
    frame = paper_tables.beyond_frame(frames, {"synthetic": synthetic}, [16], 0)
    assert sorted(frame["method"]) == ["csq", "hdhash [level_loss=csq]"] and frame["map"].notna().all()
    block = "\n".join(paper_tables.beyond_block(frame, "synthetic"))
    assert "### synthetic: beyond the paper" in block and "| hdhash [level_loss=csq] |" in block


def test_hdhash_with_hashnet_loss_keeps_the_model_cache_key_it_had_before_level_loss(synthetic):
    # models cached before level_loss existed stay valid: at "hashnet" (and no level_loss_params)
    # neither parameter enters the key; another loss does
    X, y = synthetic.part("train")
    default, dpsh = create_method("hdhash", nbits=16), create_method("hdhash", nbits=16, level_loss="dpsh")
    for method in (default, dpsh):
        method.levels_, method.weights_ = method.resolved_levels()
    params = default.cache_config(X, y, torch.device("cpu"))["params"]
    assert "level_loss" not in params and "level_loss_params" not in params
    assert dpsh.cache_config(X, y, torch.device("cpu"))["params"]["level_loss"] == "dpsh"
    assert default.cache_path(default.cache_config(X, y, torch.device("cpu"))) != \
        dpsh.cache_path(dpsh.cache_config(X, y, torch.device("cpu")))


def test_hdhash_over_a_loss_is_beyond_the_paper_only_on_that_loss_schedule():
    from methods.hdhash import on_loss_schedule
    from protocols.frame import is_beyond

    # DPSH trains its authors' 150 epochs without early stopping, so HDHash over its loss does too
    assert on_loss_schedule("dpsh") == {"level_loss": "dpsh", "epochs": 150, "patience": None}
    assert on_loss_schedule("csq") == {"level_loss": "csq"}
    row = {"method": "hdhash", "bits": 32}
    assert is_beyond(dict(row, variant="level_loss='csq'"))
    assert is_beyond(dict(row, variant="epochs=150,level_loss='dpsh',patience=None"))
    # half of DPSH's schedule, another loss's schedule, or another parameter: a variant, not the row
    assert not is_beyond(dict(row, variant="epochs=150,level_loss='dpsh'"))
    assert not is_beyond(dict(row, variant="level_loss='dpsh'"))
    assert not is_beyond(dict(row, variant="epochs=150,level_loss='csq',patience=None"))
    assert not is_beyond(dict(row, variant="level_loss='csq',lr=0.01"))
    assert not is_beyond(dict(row, variant=""))
    assert is_beyond({"method": "dpsh", "bits": 32, "variant": ""})
    assert not is_beyond({"method": "dpsh", "bits": 32, "variant": "patience=5"})
