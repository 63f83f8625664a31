"""Class targets a code loss can reach: CSQ's head and centres, OrthoHash's codebook, and HDHash's
levels trained against targets that agree on the bits they share (issues 33 and 28)."""
import numpy as np
import pytest
import torch
from torch import nn

from methods import create_method
from methods.csq import balanced_centres, centre_bound, csq_loss, hash_centres, item_centres
from methods.hashnet import hash_head

N_CLASSES = 10


def _csq_floor(head_norm, nbits=32, steps=400):
    """CSQ's loss after optimising free features (no network) through the hash layer and ``head_norm``
    on one batch of 10 classes whose Hadamard centres have constant columns."""
    torch.manual_seed(0)
    centres = torch.as_tensor(hash_centres(N_CLASSES, nbits, np.random.default_rng(0)), dtype=torch.float32)
    assert int((centres.sum(0).abs() == N_CLASSES).sum()) >= 1  # a column every class wants the same sign in
    labels = nn.functional.one_hot(torch.arange(200) % N_CLASSES, N_CLASSES)
    target = item_centres(labels, centres, torch.ones(nbits))
    features = nn.Parameter(torch.randn(200, 64))
    head = hash_head(64, nbits, head_norm)
    optimizer = torch.optim.Adam([features, *head.parameters()], lr=0.05)
    for _ in range(steps):
        loss = csq_loss(head(features), target, 0.05)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def test_csq_reaches_its_centres_without_a_zero_mean_head():
    # a batch norm without affine forces every bit to zero mean: the constant columns stay out of reach
    assert _csq_floor(True) > 0.1
    assert _csq_floor(False) < 0.01
    assert _csq_floor("affine") < 0.01


@pytest.mark.parametrize("nbits", [24, 40, 48])
def test_random_centres_are_balanced_and_apart(nbits):
    centres = balanced_centres(N_CLASSES, nbits, np.random.default_rng(3))
    assert (centres.sum(axis=1) == 0).all()  # exactly half the bits -1
    distances = (nbits - centres @ centres.T) / 2
    pairs = distances[np.triu_indices(N_CLASSES, 1)]
    assert pairs.min() >= centre_bound(nbits) and pairs.mean() >= nbits / 2
    again = balanced_centres(N_CLASSES, nbits, np.random.default_rng(3))
    assert np.array_equal(centres, again)  # seeded


def test_hash_centres_use_balanced_centres_where_no_hadamard_fits():
    centres = hash_centres(N_CLASSES, 48, np.random.default_rng(0))
    assert (centres.sum(axis=1) == 0).all()


def test_flat_orthohash_codebook_is_the_first_bernoulli_draw():
    """The flat method's codebook did not change: its first draw has no shared code at 32 bits."""
    method = create_method("orthohash", nbits=32, random_state=5)
    method.code_setup(np.eye(N_CLASSES, dtype=bool), (32,))
    first = np.where(np.random.default_rng(5).random((N_CLASSES, 32)) < 0.5, -1.0, 1.0)
    assert np.array_equal(method._codebooks[0].numpy(), first)


def _level_targets(level_loss, nbits, level_codes="prefix"):
    method = create_method("hdhash", nbits=nbits, level_loss=level_loss, level_codes=level_codes, random_state=1)
    method.levels_, method.weights_ = method.resolved_levels()
    method._level_loss = method.loss_method()
    method.prepare(np.eye(N_CLASSES, dtype=bool)[np.arange(40) % N_CLASSES])
    loss = method._level_loss
    targets = [c for c, _ in loss._centres] if level_loss == "csq" else list(loss._codebooks)
    return method, [t.numpy() for t in targets]


@pytest.mark.parametrize("level_loss", ["csq", "orthohash"])
@pytest.mark.parametrize("nbits", [16, 32, 48, 64])
def test_hdhash_level_targets_are_prefixes_and_level_one_separates_classes(level_loss, nbits):
    method, targets = _level_targets(level_loss, nbits)
    widths = method.code_widths()
    assert [t.shape[1] for t in targets] == list(widths)
    for shorter, longer in zip(targets, targets[1:]):
        assert np.array_equal(longer[:, :shorter.shape[1]], shorter)  # the levels agree on shared bits
    assert len(np.unique(targets[0], axis=0)) == N_CLASSES  # 8 bits hold 10 distinct class targets


def test_hdhash_own_level_codes_take_their_block_alone():
    method, own = _level_targets("csq", 32, level_codes="own")
    _, prefix = _level_targets("csq", 32)
    start = 0
    for i, width in enumerate(method.levels_):
        assert np.array_equal(own[i], prefix[-1][:, start:start + width])
        start += width


def test_hdhash_levels_take_the_level_loss_head():
    method = create_method("hdhash", nbits=32, level_loss="csq")
    method.levels_, method.weights_ = method.resolved_levels()
    method._level_loss = method.loss_method()
    assert method.level_head_norm() == create_method("csq").head_batchnorm
    hashnet_levels = create_method("hdhash", nbits=32)
    assert hashnet_levels.level_head_norm() is True


def test_csq_default_head_lets_bits_lean():
    assert create_method("csq").head_batchnorm == "affine"
    method = create_method("hdhash", nbits=32, level_loss="csq")
    method.levels_, method.weights_ = method.resolved_levels()
    method._level_loss = method.loss_method()
    head = method.build_head(16)
    assert all(level[1].affine for level in head.levels)  # each level: hash layer, affine batch norm


def test_hdhash_refuses_its_own_head_setting_under_another_loss():
    with pytest.raises(ValueError, match="level_loss_params"):
        create_method("hdhash", level_loss="csq", head_batchnorm=False).check_params()
    create_method("hdhash", level_loss="csq", level_loss_params={"head_batchnorm": False}).check_params()
