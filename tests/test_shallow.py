"""Each shallow baseline's own property (SH, KSH, SDH, OPQ); the shared contract is in test_contract.py."""
import numpy as np
import pytest

from methods import create_method, get_method_class, list_methods
from methods.base import as_features, unpack_codes
from protocols.metrics import score_index
from search.hamming import HammingIndex


def _fit(name, dataset, nbits, seed=0, **params):
    X, y = dataset.part("train")
    method = create_method(name, nbits=nbits, random_state=seed, **params)
    return method.fit(X, y if method.supervised else None)


def _hamming_map(method, dataset, nbits):
    index = HammingIndex(method.encode(dataset.part("database")[0]), nbits=nbits)
    X_query, y_query = dataset.part("query")
    return score_index(index, method.encode(X_query), y_query, dataset.part("database")[1],
                       topk=dataset.topk, nbits=nbits)["map"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One BLAS / OpenMP thread: these fits are small, and on a shared 2-core machine more threads
    only spin (measured: KSH's default fit on digits 3.2 s with 1 thread, 17.5 s with 2)."""
    import faiss
    from threadpoolctl import threadpool_limits

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def ksh_digits(digits):
    return _fit("ksh", digits, 16, n_anchors=100, max_iter=100)  # a smaller budget: seconds, not tens


# -- SH ------------------------------------------------------------------------------------------

def _uniform_box(n=20000, widths=(8.0, 5.0, 3.0, 2.0, 1.0), seed=0):
    """Uniform data in an axis-aligned box with distinct widths, so PCA recovers the axes."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, len(widths))) * np.asarray(widths)


def test_sh_bits_balanced_on_uniform_data():
    X = _uniform_box()
    codes = create_method("sh", nbits=16).fit(X).encode(X)
    ones = unpack_codes(codes).mean(axis=0)
    # every 1-D eigenfunction cos(k pi t) is positive on half of [0, 1]
    assert np.all(np.abs(ones - 0.5) < 0.03), ones


def test_sh_modes_are_the_smallest_eigenvalues_in_order():
    X = _uniform_box()
    method = create_method("sh", nbits=16).fit(X)
    eigenvalues, modes = method.eigenvalues_, method.modes_
    assert np.all(np.diff(eigenvalues) >= 0)
    assert np.all(np.count_nonzero(modes, axis=1) == 1), "SH's eigenfunctions are one-dimensional"
    # brute force: every 1-D mode k = 1..16 in every PCA dimension, the 16 smallest omega^2
    spans = method.mx_ - method.mn_
    candidates = np.sort(((np.arange(1, 17)[:, None] * np.pi / spans[None, :]) ** 2).ravel())
    assert np.allclose(eigenvalues, candidates[:16])
    # the widest dimension (the first principal direction) gets the most modes
    per_dim = np.count_nonzero(modes, axis=0)
    assert per_dim[0] == per_dim.max() and per_dim[0] > per_dim[-1]


def test_sh_encode_matches_compress_sh_formula(digits):
    method = _fit("sh", digits, 16)
    X = digits.part("query")[0].reshape(len(digits.part("query")[0]), -1).astype(np.float64)
    shifted = X @ method.pca_ - method.mn_
    real = np.stack([np.prod(np.sin(shifted * omega + np.pi / 2), axis=1) for omega in method.omegas_],
                    axis=1)
    assert np.array_equal(unpack_codes(method.encode(X)), (real > 0).astype(np.uint8))


# -- KSH -----------------------------------------------------------------------------------------

def test_ksh_smoothed_objective_improves_for_every_bit(ksh_digits):
    start, end = ksh_digits.smoothed_objective_.T
    assert len(start) == 16
    assert np.all(end <= start + 1e-9 * np.abs(start))
    kept = ksh_digits.descent_kept_
    assert kept.sum() >= 8 and np.all(end[kept] < start[kept])
    # eq. 4's residual ||r S - H H^T||^2 falls with every bit added
    assert np.all(np.diff(ksh_digits.residual_error_) < 0)


def test_ksh_beats_lsh_on_digits(ksh_digits, digits):
    ksh_map = _hamming_map(ksh_digits, digits, 16)
    lsh_map = _hamming_map(_fit("lsh", digits, 16), digits, 16)
    assert ksh_map > lsh_map + 0.2, (ksh_map, lsh_map)


# -- SDH -----------------------------------------------------------------------------------------

def test_sdh_objective_non_increasing(digits):
    method = _fit("sdh", digits, 32)
    objective = method.objective_
    assert len(objective) >= 2
    assert np.all(np.diff(objective) <= 1e-9 * objective[0])
    assert objective[-1] < objective[0]


def test_sdh_beats_lsh_on_digits(digits):
    sdh_map = _hamming_map(_fit("sdh", digits, 16), digits, 16)
    lsh_map = _hamming_map(_fit("lsh", digits, 16), digits, 16)
    assert sdh_map > lsh_map + 0.2, (sdh_map, lsh_map)


# -- OPQ -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("nbits", [16, 48])  # 48 bits: M = 6 does not divide 64, d_out = 66
def test_opq_ranking_equals_brute_force_adc(nbits, synthetic):
    method = _fit("opq", synthetic, nbits, **get_method_class("opq").fast_params)
    db_codes = method.encode(synthetic.part("database")[0])
    assert db_codes.shape[1] == nbits // 8
    queries = method.encode_queries(synthetic.part("query")[0][:40])
    index = method.build_index(db_codes)
    distances, order = index.rank(queries)
    # brute force: squared L2 from each rotated query to faiss's reconstruction of every item
    recon = method.pq_.decode(db_codes).astype(np.float64)
    brute = ((queries.astype(np.float64)[:, None, :] - recon[None, :, :]) ** 2).sum(axis=2)
    assert np.array_equal(order, np.argsort(brute, axis=1, kind="stable"))
    assert np.allclose(distances, np.take_along_axis(brute, order, axis=1), rtol=1e-9, atol=1e-9)
    _, top = index.rank(queries, topk=10)
    assert np.array_equal(top, order[:, :10])
    assert index.metric == "adc" and len(index) == len(db_codes)
    assert index.nbytes >= db_codes.nbytes


def test_opq_beats_lsh_on_synthetic(synthetic):
    method = _fit("opq", synthetic, 32, **get_method_class("opq").fast_params)
    index = method.build_index(method.encode(synthetic.part("database")[0]))
    X_query, y_query = synthetic.part("query")
    opq_map = score_index(index, method.encode_queries(X_query), y_query, synthetic.part("database")[1],
                          None)["map"]
    assert opq_map > _hamming_map(_fit("lsh", synthetic, 32), synthetic, 32)


def test_opq_projects_wide_inputs_by_pca_first(synthetic):
    dim = as_features(synthetic.part("train")[0]).shape[1]
    assert dim > 16
    method = _fit("opq", synthetic, 16, max_dim=16, **get_method_class("opq").fast_params)
    assert method.fit_info_["pca_dim"] == 16 and method.pca_ is not None
    queries = method.encode_queries(synthetic.part("query")[0][:5])
    assert queries.shape == (5, 16)  # d_out of the projected data, not of the raw features
    # the codes are those of the projected, rotated vectors
    queries = np.ascontiguousarray(as_features(synthetic.part("query")[0][:5]), np.float32)
    projected = method.opq_.apply(method.pca_.apply(queries))
    assert np.array_equal(method.encode(synthetic.part("query")[0][:5]), method.pq_.compute_codes(projected))
    narrow = _fit("opq", synthetic, 16, max_dim=dim, **get_method_class("opq").fast_params)
    assert narrow.pca_ is None and narrow.fit_info_["pca_dim"] is None
    with pytest.raises(ValueError, match="max_dim"):
        _fit("opq", synthetic, 16, max_dim=0)


# -- every shallow method ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [name for name in list_methods() if not get_method_class(name).deep])
def test_deterministic_under_a_seed(name, digits):
    params = get_method_class(name).fast_params
    X_query = digits.part("query")[0]
    codes = _fit(name, digits, 32, seed=7, **params).encode(X_query)
    assert np.array_equal(codes, _fit(name, digits, 32, seed=7, **params).encode(X_query))
    if name != "sh":  # SH has no randomness; the others sample anchors / starts from the seed
        assert not np.array_equal(codes, _fit(name, digits, 32, seed=8, **params).encode(X_query))
