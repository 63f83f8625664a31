"""HDHash tree index: exact at keep 1.0 (ties included), monotone pruning, memory, refusals."""
import numpy as np
import pytest

from search.hamming import HammingIndex, hamming_distances
from search.tree import TreeIndex

LEVEL_SETS = [(8, 16, 40), (8, 8), (16,), (8, 8, 8), (8, 72)]


def tied_codes(rng, n, nbytes):
    """Codes with few free bits and repeated rows, so that Hamming ties abound."""
    codes = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    codes &= rng.integers(0, 256, (1, nbytes), dtype=np.uint8)  # about half the bits always 0
    codes[n // 5: n // 3] = codes[0]
    return codes


def clustered_codes(rng, n, nbits=64, n_clusters=20, flip=0.08):
    centres = rng.integers(0, 2, (n_clusters, nbits), dtype=np.uint8)
    bits = centres[rng.integers(0, n_clusters, n)] ^ (rng.random((n, nbits)) < flip)
    return np.packbits(bits, axis=1)


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_keep_one_is_the_exhaustive_ranking(levels):
    rng = np.random.default_rng(sum(levels))
    db = tied_codes(rng, 400, sum(levels) // 8)
    queries = np.concatenate([tied_codes(rng, 20, sum(levels) // 8), db[:5]])
    tree, exhaustive = TreeIndex(db, levels, keep_ratio=1.0), HammingIndex(db)
    dist, order = tree.rank(queries)
    expected_dist, expected_order = exhaustive.rank(queries)
    assert np.array_equal(order, expected_order) and np.array_equal(dist, expected_dist)
    top_dist, top_order = tree.rank(queries, topk=37)
    assert np.array_equal(top_order, expected_order[:, :37]) and np.array_equal(top_dist, expected_dist[:, :37])
    id_dist, ids = tree.search(queries, 37)
    assert np.array_equal(ids, top_order) and np.array_equal(id_dist, top_dist)
    assert np.all(tree.last_visited == len(db))


@pytest.mark.parametrize("levels", [(8, 16, 40), (8, 8, 8)])
def test_pruning_is_monotone_and_reached_items_come_first(levels):
    rng = np.random.default_rng(1)
    nbytes = sum(levels) // 8
    db = clustered_codes(rng, 3000, 8 * nbytes)
    queries = clustered_codes(rng, 40, 8 * nbytes)
    true_dist = hamming_distances(queries, db)
    previous = None
    for ratio in (1.0, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05, 0.01):
        tree = TreeIndex(db, levels, keep_ratio=ratio)
        dist, order = tree.rank(queries)
        visited = tree.last_visited
        assert np.all(np.sort(order, axis=1) == np.arange(len(db)))  # a full permutation
        reached = np.arange(len(db))[None, :] < visited[:, None]
        assert np.all(dist[reached] <= tree.nbits) and np.all(dist[~reached] == tree.nbits + 1)
        for q in range(len(queries)):
            head, tail = order[q, :visited[q]], order[q, visited[q]:]
            # reached items: by (distance, index), with their true full-code distances
            assert np.all(np.diff(dist[q, :visited[q]].astype(int) * len(db) + head) > 0)
            assert np.array_equal(dist[q, :visited[q]], true_dist[q, head])
            assert np.all(np.diff(tail) > 0)  # unreached: by database index
        if previous is not None:
            assert np.all(visited <= previous[0])
            assert np.all(tree.last_nodes_visited <= previous[1])
        previous = visited, tree.last_nodes_visited
        # the candidates are at least keep_ratio ** (K - 1) of the database
        assert np.all(visited >= ratio ** (len(levels) - 1) * len(db) - 1e-9)
    assert previous[0].mean() < len(db) / 10  # pruning does prune


def test_true_distances_of_reached_items():
    rng = np.random.default_rng(2)
    db = clustered_codes(rng, 2000, 64)
    queries = clustered_codes(rng, 10, 64)
    tree = TreeIndex(db, keep_ratio=0.3)
    dist, order = tree.rank(queries, topk=100)
    all_dist, _ = HammingIndex(db).rank(queries)
    true = hamming_distances(queries, db)
    reached = dist <= 64
    assert np.array_equal(np.take_along_axis(true, order, axis=1)[reached], dist[reached])
    assert np.all(dist >= all_dist[:, :100])  # never better than the exhaustive top-k


def test_memory_is_the_sum_of_its_arrays():
    rng = np.random.default_rng(3)
    db = clustered_codes(rng, 1000, 64)
    tree = TreeIndex(db)
    arrays = tree.arrays()
    assert tree.nbytes == sum(a.nbytes for a in arrays.values())
    assert arrays["ids"].nbytes == 4 * len(db)
    # each distinct code stored once, with the offsets of its run of equal codes
    assert len(tree.run_words) == len(np.unique(db, axis=0)) and arrays["run_words"].nbytes <= db.nbytes
    duplicated = TreeIndex(np.concatenate([db, db, db]))
    assert duplicated.run_words.nbytes == tree.run_words.nbytes
    assert len(tree) == 1000 and tree.nbits == 64 and tree.metric == "hamming"
    assert len(tree.n_nodes) == 2 and tree.n_nodes[0] <= 256


def test_keep_ratio_for_share():
    assert TreeIndex.keep_ratio_for_share(0.09, (8, 16, 40)) == pytest.approx(0.3)
    assert TreeIndex.keep_ratio_for_share(0.5, (64,)) == 1.0


@pytest.mark.parametrize("levels", [(8, 16, 30), (8, 16), (8, 16, 48), (), (8, 0, 56), (8.0, 16, 40), "abc", 64])
def test_bad_levels_refused(levels):
    db = np.zeros((10, 8), np.uint8)
    with pytest.raises(ValueError, match="level"):
        TreeIndex(db, levels)


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan"), "half", None])
def test_bad_keep_ratio_refused(ratio):
    with pytest.raises(ValueError, match="keep_ratio"):
        TreeIndex(np.zeros((10, 8), np.uint8), keep_ratio=ratio)


def test_query_shape_and_topk_edges():
    rng = np.random.default_rng(4)
    db = clustered_codes(rng, 300, 64)
    tree = TreeIndex(db, keep_ratio=0.1)
    with pytest.raises(ValueError, match="query_codes have 4 bytes per code, the database's 8"):
        tree.rank(np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError, match="topk must be >= 1"):
        tree.rank(db[:3], topk=0)
    dist, order = tree.search(db[:3], 10_000)  # more than the database: the whole ranking, then empty slots
    assert order.shape == (3, 10_000) and dist.dtype == np.int32 and order.dtype == np.int64
    assert np.array_equal(np.sort(order[:, :300], axis=1), np.tile(np.arange(300), (3, 1)))
    assert np.all(order[:, 300:] == -1) and np.all(dist[:, 300:] == np.iinfo(np.int32).max)
    assert np.all(dist[:, 0] == 0)  # each query finds itself
