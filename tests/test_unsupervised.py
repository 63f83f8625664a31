import numpy as np

from methods import create_method
from protocols.metrics import score_index


def _map(name, dataset, nbits):
    X, y = dataset.part("train")
    method = create_method(name, nbits=nbits, random_state=0).fit(X, y)
    index = method.build_index(method.encode(dataset.part("database")[0]))
    y_db = dataset.part("database")[1]
    queries, y_query = method.encode_queries(dataset.part("query")[0]), dataset.part("query")[1]
    return score_index(index, queries, y_query, y_db, topk=None, nbits=nbits)["map"]


def test_itq_quantization_loss_non_increasing(digits):
    method = create_method("itq", nbits=32, random_state=0).fit(digits.part("train")[0])
    losses = np.array(method.quantization_loss_)
    assert len(losses) == 51
    assert np.all(np.diff(losses) <= 1e-9 * losses[0])
    assert losses[-1] < losses[0]


def test_itq_rotation_orthogonal(digits):
    R = create_method("itq", nbits=16).fit(digits.part("train")[0]).rotation_
    assert np.allclose(R @ R.T, np.eye(16), atol=1e-10)


def test_itq_beats_lsh_on_digits_at_32_bits(digits):
    assert _map("itq", digits, 32) > _map("lsh", digits, 32) + 0.05


def test_lsh_bits_roughly_balanced_on_centred_data(digits):
    codes = create_method("lsh", nbits=64).fit(digits.X).encode(digits.X)
    ones = np.unpackbits(codes, axis=1).mean(axis=0)
    assert 0.2 < ones.mean() < 0.8
