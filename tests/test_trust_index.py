"""Issue 29, items 4 and 7: the index API and protocols.efficiency refuse bad input in one line,
and every index answers in faiss's convention (``D, I = index.search(x, k)``)."""
import numpy as np
import pytest

import common.files
from common.hamming import as_words, hamming_distances
from protocols import efficiency, efficiency_plan, runner
from search import create_index, list_indexes
from search.base import MISSING_DISTANCE

N_DB, NBYTES = 20, 8
BINARY = [name for name in list_indexes() if name != "adc"]


def _db(n=N_DB, nbytes=NBYTES):
    return np.random.default_rng(0).integers(0, 256, (n, nbytes), dtype=np.uint8)


def _index(name, db=None):
    """A small index of kind ``name`` (every registered one) and good queries for it."""
    db = _db() if db is None else db
    if name == "adc":
        centroids = np.random.default_rng(1).standard_normal((NBYTES, 256, 2))
        return create_index("adc", db, centroids=centroids), np.random.default_rng(2).standard_normal((3, 2 * NBYTES))
    params = {"tree": {"keep_ratio": 1.0}, "faiss-hash": {"nflip": 16}, "faiss-multihash": {"nflip": 16},
              "faiss-ivf": {"nprobe": 64}, "faiss-hnsw": {"efSearch": 64}}
    return create_index(name, db, **params.get(name, {})), db[:3].copy()


def _refused(error, names, call):
    """``call()`` raises ``error`` (never a bare AssertionError) in one line naming one of ``names``."""
    with pytest.raises(error) as caught:
        call()
    text = str(caught.value)
    assert text and "\n" not in text and any(name in text for name in names), text
    return text


# -- item 4: input -------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [4, 5, 7])
@pytest.mark.parametrize("name", BINARY)
def test_narrower_query_is_refused_not_zero_padded(name, width):
    index, queries = _index(name)
    _refused(ValueError, ["query_codes"], lambda: index.search(queries[:, :width], 3))
    _refused(ValueError, ["query_codes"], lambda: index.rank(queries[:, :width]))


def test_adc_query_of_another_width_is_refused():
    index, queries = _index("adc")
    _refused(ValueError, ["queries"], lambda: index.search(queries[:, :-1], 3))


def test_hamming_distances_refuse_codes_of_other_widths():
    # the words view pads 5 bytes to 8: the widths must be compared before it
    _refused(ValueError, ["bytes per code differ"], lambda: hamming_distances(_db(3, 5), _db()))
    _refused(TypeError, ["uint8"], lambda: as_words(np.array([[300]], np.int64)))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int8])
@pytest.mark.parametrize("name", list_indexes())
def test_codes_of_another_dtype_are_refused_not_cast(name, dtype):
    # an int64 300 would be cast to the byte 44, a float 0.7 to 0, silently
    db = _db().astype(dtype)
    if dtype is np.int64:
        db[0, 0] = 300
    _refused(TypeError, ["db_codes"], lambda: _index(name, db))
    index, queries = _index(name)
    if name == "adc":  # its queries are float vectors: integer ones are refused
        if dtype is not np.float32:
            _refused(TypeError, ["queries"], lambda: index.search(queries.astype(dtype), 3))
        return
    _refused(TypeError, ["query_codes"], lambda: index.search(queries.astype(dtype), 3))
    _refused(TypeError, ["query_codes"], lambda: index.rank(queries.astype(dtype)))


@pytest.mark.parametrize("name", list_indexes())
def test_one_dimensional_arrays_are_refused_naming_the_argument(name):
    index, queries = _index(name)
    _refused(ValueError, ["query_codes", "queries"], lambda: index.search(queries[0], 3))
    _refused(ValueError, ["db_codes"], lambda: _index(name, _db()[0]))


@pytest.mark.parametrize("name", [n for n in BINARY if n.startswith("faiss-")])
def test_faiss_wrappers_never_raise_a_bare_assertion(name):
    # faiss's Python layer asserts on a narrow query and on k = 0 (AssertionError with no text)
    index, queries = _index(name)
    for call in (lambda: index.search(queries[:, :4], 3), lambda: index.search(queries, 0)):
        with pytest.raises((ValueError, TypeError)) as caught:
            call()
        assert not isinstance(caught.value, AssertionError) and str(caught.value)


@pytest.mark.parametrize("k, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError),
                                      ("3", TypeError), (None, TypeError)])
@pytest.mark.parametrize("name", list_indexes())
def test_k_must_be_an_integer_of_at_least_one(name, k, error):
    index, queries = _index(name)
    rule = "must be an integer >= 1" if error is TypeError else "must be >= 1"
    _refused(error, [f"k {rule}"], lambda: index.search(queries, k))
    if k is not None:  # rank's None is every item
        _refused(error, [f"topk {rule}"], lambda: index.rank(queries, topk=k))


@pytest.mark.parametrize("name", ["faiss-hash", "faiss-multihash"])
def test_nflip_beyond_the_hash_bits_is_refused_not_searched_forever(name):
    # faiss enumerates the flips of more bits than its 16-bit key holds without end
    index, queries = _index(name)
    _refused(ValueError, ["nflip must be at most 16"], lambda: index.set_search_params(nflip=17))
    assert index.search(queries, 3)[1].shape == (3, 3)  # the setting in force is unchanged


@pytest.mark.parametrize("name", list_indexes())
def test_empty_database_is_refused(name):
    _refused(ValueError, ["db_codes is empty"], lambda: _index(name, _db()[:0]))


# -- item 4: one return convention ----------------------------------------------------------------
@pytest.mark.parametrize("name", list_indexes())
def test_results_come_as_distances_then_ids_like_faiss(name):
    index, queries = _index(name)
    distances, ids = index.search(queries, 5)
    assert ids.dtype == np.int64 and ids.shape == (3, 5) and (((ids >= 0) & (ids < N_DB)) | (ids == -1)).all()
    found = ids >= 0
    every = index.distances(queries) if name == "adc" else hamming_distances(queries, _db())
    true = np.take_along_axis(every, np.where(found, ids, 0), axis=1)
    assert np.array_equal(distances[found], true[found])
    ranked_distances, order = index.rank(queries)  # rank in the same order: distances, then ids
    assert np.array_equal(ranked_distances[:, :1], distances[:, :1]) and order.dtype == np.int64


@pytest.mark.parametrize("name", list_indexes())
def test_distances_are_int32_for_every_hamming_index(name):
    index, queries = _index(name)
    expected = np.float64 if name == "adc" else np.int32
    for distances, _ in (index.search(queries, 5), index.rank(queries), index.rank(queries, topk=4)):
        assert distances.dtype == expected


@pytest.mark.parametrize("name", list_indexes())
def test_k_beyond_the_database_gives_k_columns_with_empty_slots(name):
    index, queries = _index(name)
    missing = np.inf if name == "adc" else MISSING_DISTANCE
    for distances, ids in (index.search(queries, N_DB + 5), index.rank(queries, topk=N_DB + 5)):
        assert distances.shape == ids.shape == (3, N_DB + 5)
        assert (ids[:, N_DB:] == -1).all() and (distances[ids == -1] == missing).all()
    assert index.rank(queries)[1].shape == (3, N_DB)  # every item, no empty slot


# -- item 7: protocols.efficiency's flags -----------------------------------------------------------
class _Trained(Exception):
    pass


@pytest.fixture
def no_training(tmp_path, monkeypatch):
    """Any training fails the test: each refusal must come before it; the cache is the test's."""
    def fit(*args, **kwargs):
        raise _Trained("the run trained a model before refusing")

    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(runner, "fit", fit)
    return tmp_path


def _efficiency_refuses(capsys, folder, argv, expected):
    argv = ["--dataset", "synthetic", "--baseline", "lsh", "--bits", "16", "--out", str(folder / "results")] + argv
    code = efficiency.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (folder / "cache").exists() or not any((folder / "cache").rglob("*.npy"))
    return err


def test_efficiency_topk_zero_is_refused_not_the_default(capsys, no_training):
    _efficiency_refuses(capsys, no_training, ["--topk", "0"], "--topk must be a positive integer, got 0")


def test_efficiency_database_smaller_than_the_default_k_is_refused(capsys, no_training):
    # --db-sizes 10 trained both models, then faiss died on 10 codes
    _efficiency_refuses(capsys, no_training, ["--db-sizes", "10"], "--db-sizes 10 is smaller than K=1000")


def test_efficiency_database_smaller_than_k_is_refused_not_scored(capsys, no_training):
    # a top-1000 of 500 codes is all of them: the exact scan's "recall" came out 0.5
    _efficiency_refuses(capsys, no_training, ["--db-sizes", "500,2000", "--topk", "1000"],
                        "--db-sizes 500 is smaller than K=1000")


def test_efficiency_sizes_beyond_this_machine_are_refused_with_an_estimate(capsys, no_training):
    err = _efficiency_refuses(capsys, no_training, ["--db-sizes", "1000000000000"], "--force")
    assert "estimated" in err and "h (more than 24 h)" in err and "GB" in err


def test_efficiency_force_runs_a_plan_over_the_estimate(synthetic):
    sizes = [10**12]
    with pytest.raises(runner.UsageError, match="--force"):
        efficiency_plan.check_plan(synthetic, sizes, topk=50)
    assert efficiency_plan.check_plan(synthetic, sizes, topk=50, force=True) == 50
    assert efficiency_plan.check_plan(synthetic, [1000]) == 1000  # synthetic has no K of its own: 1000


@pytest.mark.parametrize("flag, text", [("--db-sizes", "1000,,2000"), ("--keep-ratios", "0.3,,1.0"),
                                        ("--bits", "16,"), ("--skip", "faiss-hnsw,,faiss-ivf")])
def test_efficiency_empty_item_in_a_list_is_refused(capsys, no_training, flag, text):
    _efficiency_refuses(capsys, no_training, [flag, text], f"{flag} has an empty item in {text!r}")


def test_efficiency_unknown_skip_row_is_refused(capsys, no_training):
    err = _efficiency_refuses(capsys, no_training, ["--skip", "nosuchrow"], "--skip 'nosuchrow' is not a row")
    assert "faiss-hnsw" in err  # the valid rows are listed
