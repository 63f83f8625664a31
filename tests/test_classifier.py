"""The classifier baseline: an item's code is its predicted class's codeword (issue 32)."""
import numpy as np
import torch

from methods import create_method
from methods.csq import hash_centres


def _method(multilabel, nbits=16, n_classes=4):
    method = create_method("classifier", nbits=nbits)
    method.n_classes_, method.multilabel_ = n_classes, multilabel
    method.codewords_ = torch.as_tensor(hash_centres(n_classes, nbits, np.random.default_rng(0)), dtype=torch.float32)
    method.tie_break_ = torch.ones(nbits)
    return method


def test_single_label_code_is_the_codeword_of_the_most_probable_class():
    method = _method(multilabel=False)
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.0], [3.0, 2.9, 5.0, -2.0]])
    codes = method.codes_from_outputs(logits)
    assert torch.equal(codes, method.codewords_[[1, 2]])


def test_multilabel_code_is_the_sign_of_the_mean_of_the_predicted_codewords():
    method = _method(multilabel=True)
    logits = torch.tensor([[1.0, 2.0, -1.0, -3.0],    # classes 0 and 1 pass 0.5
                           [-1.0, -0.5, -2.0, -3.0]])  # none passes: the most probable, class 1
    codes = method.codes_from_outputs(logits)
    summed = method.codewords_[0] + method.codewords_[1]
    expected_first = torch.where(summed == 0, method.tie_break_, torch.sign(summed))
    assert torch.equal(codes[0], expected_first)
    assert torch.equal(codes[1], method.codewords_[1])


def test_fitted_codes_take_one_value_per_class(digits):
    X, y = digits.part("train")
    method = create_method("classifier", nbits=16, **create_method("classifier").fast_params).fit(X, y)
    codes = method.encode(digits.part("database")[0])
    assert codes.shape[1] == 2 and len(np.unique(codes, axis=0)) <= y.shape[1]
    assert not method.multilabel_
