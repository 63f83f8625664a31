"""The compiled top-k paths equal the reference numpy rankings exactly (ties included)."""
import numpy as np
import pytest

from search.hamming import HammingIndex
from search.tree import TreeIndex


def _clustered_codes(n, nbytes, seed=0, flip=0.1):
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 256, (20, nbytes), dtype=np.uint8)
    bits = np.unpackbits(centres[rng.integers(0, 20, n)], axis=1)
    return np.packbits(bits ^ (rng.random(bits.shape) < flip), axis=1)


@pytest.mark.parametrize("nbytes", [1, 2, 8, 9])
def test_exhaustive_topk_equals_stable_ranking(nbytes):
    db = _clustered_codes(3000, nbytes)
    queries = db[::97]
    index = HammingIndex(db)
    distances, ids = index.search(queries, 250)
    ranked, order = index.rank(queries, topk=250)
    assert np.array_equal(ids, order) and np.array_equal(distances, ranked)
    padded, padded_ids = index.search(queries, 10_000)  # beyond the database: empty slots, as faiss
    assert padded_ids.shape == (len(queries), 10_000) and np.all(padded_ids[:, 3000:] == -1)
    assert np.array_equal(padded[:, :3000], index.rank(queries)[0])


@pytest.mark.parametrize("levels", [(8, 8), (8, 16, 40), (8,), (16, 8, 8), (8, 8, 8, 8)])
@pytest.mark.parametrize("keep_ratio", [1.0, 0.5, 0.3, 0.05, 0.001])
def test_compiled_tree_search_equals_numpy_rank(levels, keep_ratio):
    db = _clustered_codes(2500, sum(levels) // 8, seed=len(levels))
    queries = np.concatenate([db[::211], _clustered_codes(5, sum(levels) // 8, seed=9)])
    tree = TreeIndex(db, levels=levels, keep_ratio=keep_ratio)
    distances, order = tree.rank(queries, topk=300)
    visited = tree.last_visited.copy()
    found, ids = tree.search(queries, 300)
    assert np.array_equal(ids, order) and np.array_equal(distances, found)
    assert np.array_equal(tree.candidates(queries), visited)
    assert np.all(tree.last_scanned <= visited) and np.all(tree.last_distances <= tree.last_scanned)


@pytest.mark.parametrize("keep_ratio", [1.0, 0.3, 0.05])
def test_compiled_tree_search_with_heavy_ties_equals_numpy_rank(keep_ratio):
    # many exact copies of each centre: the ties at the K-th distance outnumber the free slots
    # (the merge of tied runs), and nodes whose prefix distance exceeds the radius are never scanned
    rng = np.random.default_rng(5)
    centres = rng.integers(0, 256, (20, 8), dtype=np.uint8)
    bits = np.unpackbits(centres[rng.integers(0, 20, 4000)], axis=1)
    db = np.packbits(bits ^ (rng.random(bits.shape) < 0.01), axis=1)
    queries = np.concatenate([centres, db[::397]])
    tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=keep_ratio)
    for k in (1, 50, 700):
        distances, order = tree.rank(queries, topk=k)
        found, ids = tree.search(queries, k)
        assert np.array_equal(ids, order) and np.array_equal(distances, found)
        assert np.all(tree.last_scanned <= tree.last_visited)
        assert np.array_equal(tree.candidates(queries), tree.last_visited)
        # a distance per run of equal codes: with exact copies, fewer distances than items
        assert np.all(tree.last_distances <= tree.last_scanned) and np.any(tree.last_distances < tree.last_scanned)
        if k == 50:  # nodes past the radius were skipped
            assert np.any(tree.last_scanned < tree.last_visited)
            at_50 = distances
    # the fixture does what it is for: some query has more than 32 items at its K-th distance of
    # which only part fits in the top K (for keep 1.0 the candidates are the whole database)
    taken = (at_50 == at_50[:, -1:]).sum(axis=1)
    full = HammingIndex(db).rank(queries)[0]
    at_kth = (full == at_50[:, -1:]).sum(axis=1)
    assert np.any((at_kth > 32) & (at_kth > taken))


def test_tree_search_split_over_threads_equals_one_thread():
    import numba

    db = _clustered_codes(3000, 8, seed=2, flip=0.02)
    tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=0.3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = tree.search(db[::50], 100)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = tree.search(db[::50], 100)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])
    assert np.array_equal(many[1], tree.rank(db[::50], topk=100)[1])


def test_one_query_searches_reuse_their_scratch_and_equal_the_batch():
    # one query at a time runs serially in scratch kept between calls (per thread): whatever the
    # previous query left there (many ties, few, a short list) must not change the next result
    from concurrent.futures import ThreadPoolExecutor

    db = _clustered_codes(3000, 8, seed=4, flip=0.02)
    queries = np.concatenate([db[::97], db[:3] ^ np.uint8(0xFF)])
    for keep_ratio, max_codes in ((1.0, 0), (0.3, 0), (1.0, 200)):
        tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=keep_ratio, max_codes=max_codes)
        batch = tree.search(queries, 150)
        for order in (range(len(queries)), reversed(range(len(queries)))):
            for i in order:
                one = tree.search(queries[i:i + 1], 150)
                assert np.array_equal(one[0][0], batch[0][i]) and np.array_equal(one[1][0], batch[1][i])
        assert tree._scratch() is tree._scratch()  # kept, not allocated again
        # threads searching one index at once each use their own scratch
        with ThreadPoolExecutor(4) as pool:
            rows = list(pool.map(lambda i: tree.search(queries[i:i + 1], 150), range(len(queries))))
        assert all(np.array_equal(r[1][0], batch[1][i]) for i, r in enumerate(rows))
    tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=1.0)  # keep 1.0: the exhaustive ranking, one at a time too
    assert np.array_equal(tree.search(queries[-1:], 150)[1][0], HammingIndex(db).search(queries, 150)[1][-1])


def test_a_profiled_search_gives_shares_of_its_time_and_the_same_results():
    db = _clustered_codes(3000, 8, seed=5, flip=0.02)
    queries = db[::61]
    for keep_ratio, max_codes in ((1.0, 0), (0.3, 0), (1.0, 300)):
        tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=keep_ratio, max_codes=max_codes)
        before = tree.search(queries, 100)
        shares = tree.phase_shares(queries, 100)
        assert set(shares) == {"expansions", "leaf scans", "counting", "selection", "queue", "cycles_per_query"}
        phases = [v for name, v in shares.items() if name != "cycles_per_query"]
        assert all(v >= 0 for v in phases) and sum(phases) == pytest.approx(1.0)
        assert shares["leaf scans"] > 0 and shares["selection"] > 0 and shares["cycles_per_query"] > 0
        after = tree.search(queries, 100)  # profiling changes no result, and leaves nothing behind
        assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert TreeIndex(db, levels=(64,)).phase_shares(queries[:0], 10) == {}


@pytest.mark.parametrize("levels", [(8, 16, 40), (64,)])
def test_tree_search_takes_the_smallest_ids_across_tied_runs(levels):
    # six distinct codes, ids interleaved at random: the k-th distance is shared by several runs of
    # equal codes, and the top k takes the smallest ids across them (the k-way merge)
    rng = np.random.default_rng(11)
    values = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    db = values[rng.integers(0, 6, 3000)]
    queries = np.concatenate([values, rng.integers(0, 256, (4, 8), dtype=np.uint8)])
    tree = TreeIndex(db, levels=levels, keep_ratio=1.0)
    assert len(tree.run_words) == 6
    reference = HammingIndex(db)
    for k in (1, 499, 700, 1500, 2999, 3000):
        distances, ids = tree.search(queries, k)
        expected, order = reference.rank(queries, topk=k)
        assert np.array_equal(ids, order) and np.array_equal(distances, expected)
        assert np.all(tree.last_distances <= 6)


def test_max_codes_budget_trades_codes_for_recall():
    db = _clustered_codes(4000, 8, seed=3, flip=0.05)
    queries = db[::101]
    tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=1.0)
    exact, exact_ids = tree.search(queries, 100)
    full_scan = None  # what a budget of the whole database reads (leaves opened best first, as under any budget)
    true = np.unpackbits(queries[:, None, :] ^ db[None, :, :], axis=2).sum(axis=2)
    previous = None
    for budget in (len(db), 2000, 500, 1):
        tree.set_search_params(max_codes=budget)
        distances, ids = tree.search(queries, 100)
        # whatever the budget: k items, their true distances, ascending, by (distance, id)
        assert np.array_equal(np.take_along_axis(true, ids, axis=1), distances)
        assert np.all(np.diff(distances.astype(int) * len(db) + ids, axis=1) > 0)
        assert np.all(tree.last_scanned >= 100)
        if budget == len(db):
            assert np.array_equal(ids, exact_ids) and np.array_equal(distances, exact)
            full_scan = tree.last_scanned.copy()
        else:
            assert np.all(tree.last_scanned <= previous) and np.all(distances >= exact)
        previous = tree.last_scanned.copy()
    assert np.any(previous < full_scan)
    with pytest.raises(ValueError, match="max_codes"):
        tree.rank(queries, topk=10)
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ValueError, match="max_codes must be an integer"):
            TreeIndex.check_search_params(max_codes=bad)


def test_runs_longer_than_a_uint16_are_split_and_ranked_as_one():
    # 70,000 copies of one code (a run over 65,535 is stored as two) among other codes
    rng = np.random.default_rng(13)
    values = rng.integers(0, 256, (4, 8), dtype=np.uint8)
    db = values[np.where(rng.random(72_000) < 0.97, 0, rng.integers(1, 4, 72_000))]
    assert (db == values[0]).all(axis=1).sum() > 65_535
    tree = TreeIndex(db, levels=(8, 16, 40), keep_ratio=1.0)
    assert len(tree.run_words) == 5 and int(tree.run_len.sum()) == len(db)
    queries = np.concatenate([values, rng.integers(0, 256, (2, 8), dtype=np.uint8)])
    reference = HammingIndex(db)
    for k in (10, 2_000, 69_000):
        distances, ids = tree.search(queries, k)
        expected, order = reference.rank(queries, topk=k)
        assert np.array_equal(ids, order) and np.array_equal(distances, expected)


def test_tree_memory_within_a_code_and_an_id_per_item():
    # codes that mostly do not repeat (the fashion-mosaic case, 605,536 runs in 1,000,000 codes),
    # leaves of several items: a run's length, not its offset, keeps it within nbits / 8 + 4 bytes
    # a code (the layout with 4-byte offsets and 8-byte node codes took 12.6 here)
    db = _clustered_codes(50_000, 8, seed=4, flip=0.03)
    tree = TreeIndex(db, levels=(8, 16, 40))
    assert len(tree.run_words) > 0.5 * len(db) and len(db) / tree.n_nodes[-1] > 5
    assert tree.nbytes <= (8 + 4) * len(db)


@pytest.mark.parametrize("key_dtype,id_bits,d_bits", [  # 1, 2, 3, 3, 3, 4 and 4 radix passes
    (np.uint32, 1, 1), (np.uint32, 10, 3), (np.uint32, 20, 4), (np.uint64, 20, 4), (np.uint32, 25, 7),
    (np.uint64, 27, 7), (np.uint64, 32, 7)])
def test_final_sort_ranks_by_distance_then_id_in_every_key_width(key_dtype, id_bits, d_bits):
    """The tree's last step on its own: one to four radix passes, keys of 32 and 64 bits (the widest
    databases' keys only fit the latter), the first ``wanted`` of (distance, id) written."""
    from search.kernels import _rank_by_distance_then_id

    rng = np.random.default_rng(id_bits)
    n_keys, d_lo = 3000, 5
    ids = rng.choice(min(2**id_bits, 2**31), n_keys, replace=min(2**id_bits, 2**31) < n_keys).astype(np.uint64)
    ids[:2] = 2**id_bits - 1  # the largest id, tied
    offsets = rng.integers(0, 2**d_bits, n_keys).astype(np.uint64)
    keys = ((offsets << np.uint64(id_bits)) | ids).astype(key_dtype)
    wanted = 2500
    out_ids, out_dist = np.full((2, wanted), -1, np.int64), np.zeros((2, wanted), np.uint16)
    _rank_by_distance_then_id(keys.copy(), np.empty_like(keys), np.empty(4 * 2048, np.int64), n_keys, id_bits,
                              d_lo, d_bits, out_ids, out_dist, 1, wanted)
    order = np.lexsort((ids, offsets))[:wanted]
    assert np.array_equal(out_ids[1], ids[order].astype(np.int64))
    assert np.array_equal(out_dist[1], (offsets[order] + d_lo).astype(np.uint16))
    assert np.all(out_ids[0] == -1)  # only row q is written
