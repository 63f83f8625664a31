"""The one interface, checked for every registered method (a new method is tested without a new test)."""
import numpy as np
import pytest

from methods import UnknownMethodError, create_method, get_method_class, list_methods
from methods.base import NotFittedError, check_nbits


def _make(name, nbits, seed=0):
    cls = get_method_class(name)
    return create_method(name, nbits=nbits, random_state=seed, **cls.fast_params)


def _fit(method, dataset):
    X, y = dataset.part("train")
    return method.fit(X, y if method.supervised else None)


@pytest.mark.parametrize("name", list_methods())
def test_encode_before_fit_raises(name, synthetic):
    with pytest.raises(NotFittedError):
        _make(name, 16).encode(synthetic.part("query")[0])


@pytest.mark.parametrize("name", list_methods())
@pytest.mark.parametrize("nbits", [16, 32])
def test_codes_shape_dtype_and_determinism(name, nbits, synthetic):
    X_query = synthetic.part("query")[0]
    method = _make(name, nbits)
    assert _fit(method, synthetic) is method
    codes = method.encode(X_query)
    assert codes.dtype == np.uint8 and codes.shape == (len(X_query), nbits // 8)
    again = _fit(_make(name, nbits), synthetic).encode(X_query)
    assert np.array_equal(codes, again), "same seed must give the same codes"
    assert len(np.unique(codes, axis=0)) > 1, "codes must not be constant"


@pytest.mark.parametrize("name", list_methods())
def test_params_stored_unchanged_and_learned_state_ends_in_underscore(name, synthetic):
    method = _make(name, 16, seed=3)
    before = dict(vars(method))
    assert method.get_params()["nbits"] == 16 and method.get_params()["random_state"] == 3
    assert not [k for k in before if k.endswith("_")], "__init__ must only store parameters"
    _fit(method, synthetic)
    learned = [k for k in vars(method) if k not in before]
    assert learned and all(k.endswith("_") for k in learned if not k.startswith("_"))


@pytest.mark.parametrize("name", list_methods())
def test_every_search_mode_ranks_the_whole_database(name, synthetic):
    method = _fit(_make(name, 16), synthetic)
    X_query = synthetic.part("query")[0][:5]
    db_codes = method.encode(synthetic.part("database")[0])
    for search in method.searches:
        order, distances = method.build_index(db_codes, search).rank(method.encode_queries(X_query))
        assert order.shape == (5, len(db_codes))
        assert all(np.array_equal(np.sort(row), np.arange(len(db_codes))) for row in order)
        assert np.all(np.diff(distances, axis=1) >= 0)


def test_unknown_method_lists_valid_names():
    with pytest.raises(UnknownMethodError, match="valid methods: .*itq"):
        create_method("nope")


@pytest.mark.parametrize("bad", [0, -8, 12, 7.5, "32", True])
def test_bit_lengths_must_be_positive_multiples_of_8(bad):
    with pytest.raises(ValueError, match="multiple of 8"):
        check_nbits(bad)
