"""Deep methods: losses on hand-computed examples, HashNet's weights and continuation, the shared
trainer (training lowers the loss and beats LSH, the model cache, frozen backbones, several hash
heads) and the backbone registry's missing-weights error. Tiny settings: the file runs in ~1 min."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import common.files
from common.threads import flushes_subnormals, subnormals_flushed
from datasets import load_dataset
from deep.backbones import BackboneWeightsError, MaxPool2x2, UnknownBackboneError, create_backbone, list_backbones
from deep.trainer import (
    CPU_EVAL_BATCH,
    MIN_EVAL_BATCH,
    TrainStep,
    eval_batch_bounds,
    forward_in_batches,
    resolve_device,
    similarity_matrix,
    split_validation,
)
from methods import create_method, get_method_class, list_methods
from methods.cnnh import _Similarity, cnnh_objective, learn_target_codes
from methods.deep_method import DeepHashMethod
from methods.dhn import dhn_loss, log_cosh
from methods.dnnh import DivideAndEncode, triplet_ranking_loss
from methods.hashnet import HashNet, class_balance_weights, continuation_scale, hashnet_loss
from protocols.metrics import score_index
from search.hamming import HammingIndex

DEEP = [name for name in list_methods() if get_method_class(name).deep]  # every deep method, from the registry
TINY = {"device": "cpu", "progress": False, "cache": False, "num_threads": 1}


def softplus(x):
    return math.log1p(math.exp(x))


# -- losses against hand computations ----------------------------------------------------------------
# three items: 0 and 1 share a label, 2 has another; codes u0 = u1 = (1, 0), u2 = (0, 1)
U = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
LABELS = torch.tensor([[1, 0], [1, 0], [0, 1]], dtype=torch.bool)


@pytest.mark.parametrize("size", [(8, 8), (7, 9)])
def test_compact_cnn_pooling_equals_torch_max_pooling_with_and_without_gradient(size):
    # ties (zeros after the ReLU, and positive values rounded to halves) and an odd row / column, which both drop
    x = torch.relu(torch.round(2 * torch.randn(3, 4, *size, generator=torch.Generator().manual_seed(0))) / 2)
    with torch.no_grad():
        assert torch.equal(MaxPool2x2()(x), nn.MaxPool2d(2)(x))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn(3, 4, size[0] // 2, size[1] // 2, generator=torch.Generator().manual_seed(1))
    MaxPool2x2()(a).backward(grad)
    nn.MaxPool2d(2)(b).backward(grad)
    assert torch.equal(a.grad, b.grad)  # training keeps torch's kernel: a window's gradient goes to one maximum


@pytest.mark.parametrize("n", [1, 5, 64, 65, 71, 72, 200, 1000])
def test_eval_batches_cover_every_item_once_and_none_is_tiny(n):
    bounds = eval_batch_bounds(n, 64)
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(n))
    assert all(stop - start >= MIN_EVAL_BATCH for start, stop in bounds) or len(bounds) == 1
    assert all(stop - start <= 64 + MIN_EVAL_BATCH - 1 for start, stop in bounds)


def test_eval_forward_on_the_cpu_uses_small_batches_and_keeps_the_order():
    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def forward(self, x):
            self.sizes.append(len(x))
            return x.flatten(1)

    X = np.arange(3 * 200, dtype=np.float32).reshape(200, 1, 3)
    recorder = Recorder()
    out = forward_in_batches(recorder, X, torch.device("cpu"))
    assert recorder.sizes == [CPU_EVAL_BATCH] * (200 // CPU_EVAL_BATCH) + [200 % CPU_EVAL_BATCH]
    assert torch.equal(out, torch.as_tensor(X).flatten(1))
    # the compact CNN gives the same outputs (to rounding) whatever the batch
    cnn = create_backbone("compact-cnn", in_channels=1, image_size=28)
    images = torch.rand(150, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    small, large = (forward_in_batches(cnn, images, torch.device("cpu"), batch_size) for batch_size in (None, 1024))
    assert torch.allclose(small, large, atol=1e-5)


def test_similarity_matrix_multi_hot():
    labels = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.bool)
    assert similarity_matrix(labels).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_hashnet_loss_hand_example():
    s = similarity_matrix(LABELS)
    # ordered off-diagonal pairs: (0,1), (1,0) similar with <u,u> = 1; four dissimilar with <u,u> = 0
    similar_nll = softplus(1.0) - 1.0  # log(1 + e) - 1
    dissimilar_nll = math.log(2.0)
    # |S| = 6, |S1| = 2, |S0| = 4: w = 3 and 1.5, so the loss is mean(similar) + mean(dissimilar)
    balanced = (2 * 3.0 * similar_nll + 4 * 1.5 * dissimilar_nll) / 6
    assert hashnet_loss(U, s, alpha=1.0).item() == pytest.approx(balanced, rel=1e-6)
    assert balanced == pytest.approx(similar_nll + dissimilar_nll)
    plain = (2 * similar_nll + 4 * dissimilar_nll) / 6
    assert hashnet_loss(U, s, alpha=1.0, balanced=False).item() == pytest.approx(plain, rel=1e-6)
    # alpha scales the inner product: alpha = 0.5 gives softplus(0.5) - 0.5 for the similar pairs
    half = (2 * 3.0 * (softplus(0.5) - 0.5) + 4 * 1.5 * math.log(2.0)) / 6
    assert hashnet_loss(U, s, alpha=0.5).item() == pytest.approx(half, rel=1e-6)
    # the slide's equation, summed (w_jk (log(1 + exp(b <h_j, h_k>)) - b s_jk <h_j, h_k>)), / |S|
    ip = U @ U.T
    mask = ~torch.eye(3, dtype=torch.bool)
    w = class_balance_weights(s, mask)
    slide = (w * (torch.log1p(torch.exp(ip)) - s * ip))[mask].sum() / 6
    assert hashnet_loss(U, s, alpha=1.0).item() == pytest.approx(slide.item(), rel=1e-6)


def test_hashnet_loss_two_sets_and_large_inner_products_are_finite():
    u = torch.full((2, 64), 1.0)
    s = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss = hashnet_loss(u, s, alpha=1.0, v=u)  # all pairs, diagonal included
    assert torch.isfinite(loss)
    # dissimilar pair with <u, v> = 64: log(1 + e^64) ~ 64 per pair; weights |S|/|S0| = 2
    assert loss.item() == pytest.approx((2 * 2 * 64.0 + 2 * 2 * softplus(-64.0)) / 4, rel=1e-5)


def test_class_balance_weights():
    s = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    w = class_balance_weights(s)
    # |S| = 8, |S1| = 3, |S0| = 5
    assert w[s > 0].tolist() == pytest.approx([8 / 3] * 3)
    assert w[s == 0].tolist() == pytest.approx([8 / 5] * 5)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    w = class_balance_weights(s, mask)  # 6 pairs: 3 similar, 3 dissimilar
    assert w[mask].tolist() == pytest.approx([2.0] * 6)
    assert w[~mask].tolist() == [0.0, 0.0]


def test_continuation_schedule_matches_authors():
    # thuml/HashNet: scale = init_scale * (1 + gamma * iter) ^ power, refreshed every 200 iterations
    assert continuation_scale(0) == 1.0
    assert continuation_scale(199) == 1.0
    assert continuation_scale(200) == pytest.approx(math.sqrt(2.0))
    assert continuation_scale(10_000) == pytest.approx(math.sqrt(51.0))
    assert continuation_scale(400, init_scale=2.0, gamma=0.01, power=1.0) == pytest.approx(10.0)
    method = HashNet(nbits=16)
    assert method.scale_at(TrainStep(step=500, epoch=3, total_steps=1000)) == pytest.approx(math.sqrt(26.0))
    raw = HashNet(nbits=16, continuation_iterations=None)
    assert raw.scale_at(TrainStep(step=500, epoch=3, total_steps=1000)) == pytest.approx(math.sqrt(3.0))
    assert method.sigmoid_alpha == pytest.approx(10 / 16)


def test_dhn_loss_hand_example():
    z = torch.tensor([[0.5, -1.0], [1.0, 1.0]])
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pair = softplus(0.5 * (0.5 - 1.0))  # dissimilar, <z0, z1> = -0.5, theta = <.,.> / 2
    quant = (math.log(math.cosh(-0.5)) + 0.0 + 0.0 + 0.0) / 2  # sum over bits, mean over items
    assert dhn_loss(z, s, alpha=0.5, quantization_weight=0.1).item() == pytest.approx(pair + 0.1 * quant, rel=1e-6)
    x = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0])
    assert log_cosh(x).tolist() == pytest.approx([math.log(math.cosh(v)) for v in x.tolist()], rel=1e-5, abs=1e-6)


def test_triplet_ranking_loss_hand_example():
    b = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    s = similarity_matrix(torch.tensor([[1, 0], [1, 0], [0, 1]], dtype=torch.bool))
    # triplets (anchor, positive, negative): (0, 1, 2): 1 - (2 - 1) = 0; (1, 0, 2): 1 - (1 - 1) = 1
    assert triplet_ranking_loss(b, s, margin=1.0).item() == pytest.approx(0.5)
    assert triplet_ranking_loss(b, s, margin=3.0).item() == pytest.approx((2.0 + 3.0) / 2)
    assert triplet_ranking_loss(b, torch.ones(3, 3)).item() == 0.0  # no negatives: no triplet


def test_divide_and_encode_bits_see_only_their_slice():
    torch.manual_seed(0)
    head = DivideAndEncode(10, 4)  # slices of 3, 3, 2, 2 features
    x = torch.randn(1, 10)
    base = head(x)
    for feature, bit in [(0, 0), (2, 0), (3, 1), (6, 2), (9, 3)]:
        moved = x.clone()
        moved[0, feature] += 5.0
        changed = (head(moved) - base).abs()[0] > 0
        assert changed.tolist() == [j == bit for j in range(4)]
    with pytest.raises(ValueError, match="one feature per bit"):
        DivideAndEncode(8, 16)


@pytest.mark.parametrize("multi", [False, True])
def test_cnnh_stage1_tracks_the_exact_objective_and_converges(multi):
    """The per-entry updates keep G, S H and the objective exact (checked against the dense
    objective), and with the tolerance the descent stops once sweeps no longer help: one code per
    class on well-separated single labels."""
    rng = np.random.default_rng(1)
    labels = np.eye(4, dtype=bool)[rng.integers(0, 4, 200)]
    if multi:
        labels[::7, 0] = True
    codes, history = learn_target_codes(labels, 16, max_sweeps=60, tol=1e-6, rng=3)
    assert len(history) - 1 < 60, "did not converge within the cap"
    S = np.where(labels.astype(float) @ labels.T.astype(float) > 0, 1.0, -1.0)
    assert all(b <= a for a, b in zip(history, history[1:]))
    if not multi:
        assert len(np.unique(codes, axis=0)) == 4
        for c in range(4):
            assert len(np.unique(codes[labels[:, c]], axis=0)) == 1
    # the tracked objective is the relaxed H's; recompute it from a fresh run's H to check the bookkeeping
    from methods import cnnh

    H = rng.uniform(-1.0, 1.0, (200, 16))
    G, row_sq = H.T @ H, np.sum(H * H, axis=1)
    sim = cnnh._Similarity(labels)
    if sim.single:
        args = (np.argmax(sim.Y, 1).astype(np.int64), sim.Y.T @ H, H.sum(0), np.zeros((1, 1), np.float32),
                np.zeros((1, 1)))
    else:
        args = (np.zeros(200, np.int64), np.zeros((1, 16)), np.zeros(16), sim.S, sim.dot(H))
    before = np.sum((H @ H.T - 16 * S) ** 2)
    change = cnnh._sweep(H, G, row_sq, 16, *args, sim.single, rng.permutation(200), rng.permutation(16))
    assert before + change == pytest.approx(np.sum((H @ H.T - 16 * S) ** 2), rel=1e-6)  # S H starts in float32
    assert np.allclose(G, H.T @ H) and np.allclose(row_sq, np.sum(H * H, axis=1))


def test_cnnh_stage1_decreases_objective_and_separates_classes():
    rng = np.random.default_rng(0)
    labels = np.eye(5, dtype=bool)[rng.integers(0, 5, 120)]
    codes, history = learn_target_codes(labels, 16, max_sweeps=4, tol=0.0, rng=0)
    assert all(b <= a for a, b in zip(history, history[1:])) and history[-1] < history[0]
    assert len(history) == 5  # tol 0: every one of the 4 sweeps runs
    assert set(np.unique(codes)) <= {-1.0, 1.0} and codes.shape == (120, 16)
    same = labels.astype(float) @ labels.T.astype(float) > 0
    distance = (16 - codes @ codes.T) / 2
    assert distance[same].mean() + 4 < distance[~same].mean()
    # the objective without the n x n matrix equals the dense one, single- and multi-label
    S = np.where(same, 1.0, -1.0)
    H = rng.uniform(-1, 1, (120, 16))
    assert cnnh_objective(H, _Similarity(labels)) == pytest.approx(np.sum((H @ H.T - 16 * S) ** 2))
    multi = labels.copy()
    multi[0, 1] = multi[0, 0] = True
    S = np.where(multi.astype(float) @ multi.T.astype(float) > 0, 1.0, -1.0)
    assert cnnh_objective(H, _Similarity(multi)) == pytest.approx(np.sum((H @ H.T - 16 * S) ** 2))


# -- the trainer on real data ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return data, data.part("train"), data.part("query"), data.part("database")


def retrieval_map(method, digits):
    data, _, (Xq, yq), (Xdb, ydb) = digits
    index = HammingIndex(method.encode(Xdb), nbits=method.nbits)
    return score_index(index, method.encode(Xq), yq, ydb, topk=None, nbits=method.nbits)["map"]


@pytest.fixture(scope="module")
def lsh_map(digits):
    _, (X, y), _, _ = digits
    return retrieval_map(create_method("lsh", nbits=32, random_state=0).fit(X, y), digits)


#: DPSH's likelihood on raw inner products learns slower from scratch: on digits at 32 bits its MAP@all
#: after 8 epochs was 0.54 (LSH 0.51; the test asks for 0.05 more), after 15 it passes
EPOCHS = {"dpsh": 15}


@pytest.mark.parametrize("name", DEEP)
def test_training_on_digits_lowers_loss_and_beats_lsh(name, digits, lsh_map):
    _, (X, y), _, _ = digits
    method = create_method(name, nbits=32, random_state=0, epochs=EPOCHS.get(name, 8), **TINY).fit(X, y)
    assert method.loss_history_[-1] < method.loss_history_[0]
    info = method.fit_info
    assert info["epochs_run"] == len(method.loss_history_) and 1 <= info["epoch"] <= info["epochs_run"]
    assert info["device"] == "cpu" and info["cached"] is False and info["n_val"] == 50
    assert retrieval_map(method, digits) > lsh_map + 0.05


def test_deep_methods_registered_with_shared_parameters():
    assert {"hdhash", "hashnet", "dhn", "dnnh", "cnnh"} <= set(DEEP)
    for name in DEEP:
        method = create_method(name, nbits=16)
        params = method.get_params()
        for shared in ("nbits", "random_state", "backbone", "epochs", "batch_size", "lr", "device"):
            assert shared in params
        assert params["backbone"] == "compact-cnn" and params["device"] == "auto"
        assert method.deep and method.supervised


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_validation_split_is_seeded_and_disjoint():
    train, val = split_validation(500, 0.1, random_state=3)
    assert len(val) == 50 and len(train) == 450 and not set(train) & set(val)
    again_train, again_val = split_validation(500, 0.1, random_state=3)
    assert np.array_equal(val, again_val)
    assert not np.array_equal(val, split_validation(500, 0.1, random_state=4)[1])


@pytest.mark.parametrize("patience, epochs_run", [(2, 6), (None, 10)])
def test_early_stopping_waits_for_the_second_half_of_the_epochs(digits, monkeypatch, patience, epochs_run):
    # a validation MAP that peaks at epoch 1: patience 2 would stop at epoch 3; it stops at 6, the
    # first epoch past half of 10 (deep.trainer.may_stop), and keeps epoch 1; no patience runs all 10
    import deep.trainer

    maps = iter([0.9] + [0.1] * 9)
    monkeypatch.setattr(deep.trainer, "validation_map", lambda *args: next(maps))
    _, (X, y), _, _ = digits
    method = create_method("hashnet", nbits=16, random_state=0, epochs=10, patience=patience, **TINY)
    method.fit(X[:200], y[:200])
    assert method.fit_info["epochs_run"] == epochs_run and method.fit_info["epoch"] == 1


def test_a_cached_model_that_stopped_in_the_first_half_is_trained_again(digits, tmp_path, monkeypatch):
    # a model cached before early stopping waited for the second half (deep.trainer.may_stop)
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path)
    _, (X, y), _, _ = digits
    params = dict(nbits=16, random_state=1, epochs=4, device="cpu", progress=False, cache=True, num_threads=1)
    first = create_method("hashnet", **params).fit(X[:200], y[:200])
    path = first.fit_info["cache_path"]
    saved = torch.load(path, weights_only=True)
    torch.save(dict(saved, fit_info=dict(saved["fit_info"], epochs_run=2)), path)  # stopped at 2 of 4
    with pytest.warns(UserWarning, match="first half"):
        again = create_method("hashnet", **params).fit(X[:200], y[:200])
    assert again.fit_info["cached"] is False
    assert create_method("hashnet", **params).fit(X[:200], y[:200]).fit_info["cached"] is True


def test_second_fit_hits_the_model_cache(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path)
    _, (X, y), (Xq, _), _ = digits
    params = dict(nbits=16, random_state=1, epochs=2, device="cpu", progress=False, cache=True, num_threads=1)
    first = create_method("hashnet", **params).fit(X, y)
    assert first.fit_info["cached"] is False
    saved = list((tmp_path / "models").glob("hashnet-16b-*.pt"))
    assert len(saved) == 1 and not list((tmp_path / "models").glob("*.tmp"))
    second = create_method("hashnet", **params).fit(X, y)
    assert second.fit_info["cached"] is True
    assert second.fit_info["epoch"] == first.fit_info["epoch"]
    assert np.array_equal(first.encode(Xq), second.encode(Xq))
    # another configuration or other training data trains anew
    other = create_method("hashnet", **dict(params, alpha=0.3)).fit(X, y)
    assert other.fit_info["cached"] is False
    assert create_method("hashnet", **params).fit(X[:-1], y[:-1]).fit_info["cached"] is False
    assert len(list((tmp_path / "models").glob("*.pt"))) == 3


def test_damaged_cached_model_is_retrained_not_fatal(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path)
    _, (X, y), (Xq, _), _ = digits
    params = dict(nbits=16, random_state=1, epochs=1, device="cpu", progress=False, cache=True, num_threads=1)
    first = create_method("hashnet", **params).fit(X, y)
    (path,) = (tmp_path / "models").glob("hashnet-16b-*.pt")
    path.write_bytes(path.read_bytes()[:100])  # a truncated copy
    with pytest.warns(UserWarning, match="unreadable cached model"):
        second = create_method("hashnet", **params).fit(X, y)
    assert second.fit_info["cached"] is False
    assert np.array_equal(first.encode(Xq), second.encode(Xq))
    assert create_method("hashnet", **params).fit(X, y).fit_info["cached"] is True  # the file was replaced


SUBNORMAL = 1e-39  # below float32's smallest normal number (1.2e-38)


def subnormal_product() -> float:
    """A product whose exact value is subnormal: 0 where torch flushes subnormals, else about 1e-39."""
    return (torch.tensor([SUBNORMAL]) * torch.tensor([1.0])).item()


def test_nested_subnormal_flushing_ends_with_the_outermost_block():
    if not flushes_subnormals():
        pytest.skip("torch cannot flush subnormals on this CPU")
    assert subnormal_product() > 0
    with subnormals_flushed() as supported:
        assert supported and subnormal_product() == 0
        with subnormals_flushed():
            assert subnormal_product() == 0
        assert subnormal_product() == 0  # the inner block's end does not turn it off
    assert subnormal_product() > 0


def test_training_and_encoding_flush_subnormals_and_the_cache_says_so(digits, tmp_path, monkeypatch):
    if not flushes_subnormals():
        pytest.skip("torch cannot flush subnormals on this CPU")
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path)
    _, (X, y), (Xq, _), _ = digits
    seen = []
    loss = HashNet.loss

    def observed_loss(self, *args):
        seen.append(("fit", subnormal_product()))
        return loss(self, *args)

    def observed_codes(self, outputs):
        seen.append(("encode", subnormal_product()))
        return outputs

    monkeypatch.setattr(HashNet, "loss", observed_loss)
    monkeypatch.setattr(HashNet, "codes_from_outputs", observed_codes)
    method = create_method("hashnet", nbits=16, random_state=1, epochs=1, device="cpu", progress=False, cache=True,
                           num_threads=1).fit(X, y)
    method.encode(Xq)
    assert {"fit", "encode"} <= {where for where, _ in seen} and all(value == 0 for _, value in seen)
    assert subnormal_product() > 0  # the caller's mode is back after fit and encode
    assert method.fit_info["subnormals"] == "flushed"  # in the records too
    # a model trained with subnormals kept (before this) is another run: never loaded in place of this one
    config = method.cache_config(np.asarray(X, np.float32), np.asarray(y, bool), torch.device("cpu"))
    assert config["subnormals"] == "flushed" and Path(method.fit_info["cache_path"]) == method.cache_path(config)
    kept = {k: v for k, v in config.items() if k != "subnormals"}
    assert method.cache_path(kept) != method.cache_path(config)


def test_same_seed_same_codes_on_cpu(digits):
    _, (X, y), (Xq, _), _ = digits
    a = create_method("dnnh", nbits=16, random_state=5, epochs=1, **TINY).fit(X, y).encode(Xq)
    b = create_method("dnnh", nbits=16, random_state=5, epochs=1, **TINY).fit(X, y).encode(Xq)
    assert a.dtype == np.uint8 and a.shape == (len(Xq), 2) and np.array_equal(a, b)


def test_frozen_backbone_trains_only_the_head(digits):
    _, (X, y), _, _ = digits
    method = create_method("hashnet", nbits=16, epochs=2, freeze_backbone=True, **TINY)
    method.fit(X, y)
    # a model built from the same seed as fit's has the same backbone: the frozen one was not trained
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fresh = method.build_model(X.shape)
    trained = method.model_.backbone.state_dict()
    for key, value in fresh.backbone.state_dict().items():
        assert torch.equal(value, trained[key]), key
    head = method.model_.head.state_dict()
    assert not torch.equal(fresh.head.state_dict()["0.weight"], head["0.weight"])


class TwoLevelHashNet(DeepHashMethod):
    """An HDHash-shaped method: two heads (8 + 8 bits) on the shared features, loss = weighted sum
    of HashNet losses per level; the code is the concatenation."""

    name = "two-level-test"

    def build_head(self, in_features):
        return _TwoHeads(in_features)

    def loss(self, outputs, labels, indices, step):
        s = similarity_matrix(labels)
        return sum(w * hashnet_loss(torch.tanh(u), s, alpha=10 / 8) for w, u in zip((1.0, 0.5), outputs))


class _TwoHeads(nn.Module):
    def __init__(self, in_features):
        super().__init__()
        self.levels = nn.ModuleList([nn.Linear(in_features, 8), nn.Linear(in_features, 8)])

    def forward(self, features):
        return tuple(level(features) for level in self.levels)


def test_trainer_accepts_several_hash_heads(digits):
    _, (X, y), (Xq, _), _ = digits
    method = TwoLevelHashNet(nbits=16, epochs=2, **TINY).fit(X, y)
    codes = method.encode(Xq)
    assert codes.shape == (len(Xq), 2) and codes.dtype == np.uint8
    assert method.loss_history_[-1] < method.loss_history_[0]


def test_encode_before_fit_and_bad_inputs():
    from methods.base import NotFittedError

    method = create_method("hashnet", nbits=16, **TINY)
    with pytest.raises(NotFittedError):
        method.encode(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="images"):
        method.fit(np.zeros((4, 64), np.float32), np.eye(2, dtype=bool)[[0, 1, 0, 1]])
    with pytest.raises(ValueError, match="multiple of 8"):
        create_method("dhn", nbits=12, **TINY).fit(np.zeros((4, 1, 8, 8), np.float32),
                                                   np.eye(2, dtype=bool)[[0, 1, 0, 1]])


# -- backbones -------------------------------------------------------------------------------------------
def test_backbone_registry_and_missing_weights_error(tmp_path, monkeypatch):
    assert {"compact-cnn", "alexnet", "resnet18", "resnet50"} <= set(list_backbones())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    with pytest.raises(BackboneWeightsError, match="not available locally") as error:
        create_backbone("resnet18", in_channels=1, image_size=28)
    assert str(tmp_path) in str(error.value) and "pretrained=False" in str(error.value)
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        create_backbone("resnet18", weights=tmp_path / "missing.pth")
    with pytest.raises(BackboneWeightsError, match="from scratch"):
        create_backbone("compact-cnn", pretrained=True)
    with pytest.raises(UnknownBackboneError, match="valid backbones"):
        create_backbone("vgg99")
    # an explicit random initialisation is allowed and says it is not pretrained
    net = create_backbone("resnet18", in_channels=1, image_size=8, pretrained=False)
    assert net.pretrained is False and net.out_features == 512
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 512)
    # a method asking for a missing pretrained backbone fails at fit, with the same error
    method = create_method("hashnet", nbits=16, backbone="alexnet", **TINY)
    with pytest.raises(BackboneWeightsError):
        method.fit(np.random.rand(8, 1, 8, 8).astype(np.float32), np.eye(2, dtype=bool)[[0, 1] * 4])


def test_backbone_weights_from_a_file(tmp_path):
    source = create_backbone("compact-cnn", in_channels=1, image_size=8)
    path = tmp_path / "compact.pt"
    torch.save(source.state_dict(), path)
    loaded = create_backbone("compact-cnn", in_channels=1, image_size=8, weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    for size in (8, 28):
        assert create_backbone("compact-cnn", image_size=size)(torch.rand(3, 1, size, size)).shape == (3, 256)


@pytest.mark.parametrize("name", ["hashnet", "hdhash"])
def test_validation_left_out_of_the_first_epochs_changes_nothing_else(name, digits):
    """``validate_after``: the first epochs are neither validated nor chosen; the losses, and the
    validation MAPs and weights of the epochs validated, are those of a run that validates them all."""
    from deep import trainer

    _, (X, y), _, _ = digits
    params = dict(nbits=16, random_state=1, epochs=6, batch_size=64, device="cpu", progress=False, cache=False,
                  num_threads=1, patience=None)
    every = create_method(name, **params).fit(X, y)
    late = create_method(name, validate_after=0.5, **params).fit(X, y)
    assert trainer.first_validated_epoch(6, 0.5) == 4 and trainer.first_validated_epoch(6, 0.0) == 1
    assert late.loss_history_ == every.loss_history_
    assert late.val_map_history_ == [None] * 3 + every.val_map_history_[3:]
    history = every.val_map_history_[3:]
    assert late.fit_info["epoch"] == 4 + history.index(max(history)) and late.fit_info["epochs_run"] == 6
    assert every.fit_info["epoch"] == late.fit_info["epoch"] >= 4  # a late best (as here): the same model
    assert np.array_equal(every.encode(X[:200]), late.encode(X[:200]))
    with pytest.raises(ValueError, match="validate_after"):
        create_method(name, validate_after=1.0, **params).check_params()
