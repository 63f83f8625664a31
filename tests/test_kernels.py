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
    ids, distances = index.search(queries, 250)
    order, ranked = index.rank(queries, topk=250)
    assert np.array_equal(ids, order) and np.array_equal(distances, ranked)
    assert index.search(queries, 10_000)[0].shape == (len(queries), 3000)


@pytest.mark.parametrize("levels", [(8, 8), (8, 16, 40), (8,), (16, 8, 8), (8, 8, 8, 8)])
@pytest.mark.parametrize("keep_ratio", [1.0, 0.5, 0.3, 0.05, 0.001])
def test_compiled_tree_search_equals_numpy_rank(levels, keep_ratio):
    db = _clustered_codes(2500, sum(levels) // 8, seed=len(levels))
    queries = np.concatenate([db[::211], _clustered_codes(5, sum(levels) // 8, seed=9)])
    tree = TreeIndex(db, levels=levels, keep_ratio=keep_ratio)
    order, distances = tree.rank(queries, topk=300)
    visited = tree.last_visited.copy()
    ids, found = tree.search(queries, 300)
    assert np.array_equal(ids, order) and np.array_equal(distances, found)
    assert np.array_equal(tree.last_visited, visited)
