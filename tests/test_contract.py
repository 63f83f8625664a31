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
        distances, order = method.build_index(db_codes, search).rank(method.encode_queries(X_query))
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


@pytest.mark.parametrize("name", list_methods())
def test_get_params_round_trip(name):
    method = _make(name, 32, seed=5)
    again = create_method(name, **method.get_params())
    assert again.get_params() == method.get_params()
    assert repr(again) == repr(method)


@pytest.mark.parametrize("name", [n for n in list_methods() if get_method_class(n).supervised])
def test_supervised_method_fitted_without_labels_raises(name, synthetic):
    X, _ = synthetic.part("train")
    with pytest.raises(ValueError, match="label"):
        _make(name, 16).fit(X, None)


# -- indexes: every registered one, search(q, k) is the first k of rank(q) -------------------------
def _clustered(n, nbytes, rng):
    centres = rng.integers(0, 256, (8, nbytes), dtype=np.uint8)
    noise = rng.random((n, nbytes * 8)) < 0.08
    return centres[rng.integers(0, 8, n)] ^ np.packbits(noise, axis=1)


def _index_case(name, rng):
    """``(index, queries, exact)``: a small index of kind ``name``; ``exact`` is False for faiss's
    heaps, which do not fix which of several items tied at the k-th distance come back."""
    from search import create_index

    db = _clustered(600, 8, rng)
    queries = np.concatenate([db[:4], _clustered(4, 8, rng)])
    exhaustive = {"faiss-hash": {"nflip": 16}, "faiss-multihash": {"nflip": 16}, "faiss-ivf": {"nprobe": 64},
                  "faiss-hnsw": {"efSearch": 600}}
    if name == "tree":
        return create_index("tree", db, levels=(8, 16, 40), keep_ratio=0.3), queries, True
    if name == "adc":
        centroids = rng.standard_normal((8, 256, 2))
        return create_index("adc", db, centroids=centroids), rng.standard_normal((8, 16)), True
    if name in ("hamming",):
        return create_index(name, db), queries, True
    if name.startswith("faiss-"):
        return create_index(name, db, **exhaustive.get(name, {})), queries, False
    raise AssertionError(f"no test case for index {name!r}: add one to _index_case")


def _all_indexes():
    from search import list_indexes

    return list_indexes()


@pytest.mark.parametrize("name", _all_indexes())
def test_index_search_is_the_head_of_its_ranking(name):
    index, queries, exact = _index_case(name, np.random.default_rng(0))
    assert index.name == name and index.nbytes > 0 and index.metric in ("hamming", "adc")
    ranked_distances, order = index.rank(queries)
    assert order.shape[0] == len(queries)
    for k in (1, 10, 100):
        distances, ids = index.search(queries, k)
        assert ids.shape == (len(queries), k)
        assert np.array_equal(np.asarray(distances), np.asarray(ranked_distances)[:, :k])
        if exact:
            assert np.array_equal(ids, order[:, :k])
        else:  # the same items strictly nearer than the k-th distance
            kth = np.asarray(distances)[:, -1:]
            for row in range(len(queries)):
                nearer = np.asarray(distances)[row] < kth[row]
                assert set(ids[row][nearer]) == set(order[row, :k][nearer])


def test_search_parameters_are_checked_by_their_index():
    from search import SearchMode, get_index_class

    assert SearchMode("tree", {"keep_ratio": 0.3}).check().label == "tree:0.3"
    with pytest.raises(ValueError, match="keep_ratio must be in"):
        SearchMode("tree", {"keep_ratio": 1.5}).check()
    with pytest.raises(ValueError, match="no search parameter 'nprobe'; valid: keep_ratio"):
        get_index_class("tree").check_search_params(nprobe=3)
    with pytest.raises(ValueError, match="non-negative integer"):
        get_index_class("faiss-ivf").check_search_params(nprobe=-1)
