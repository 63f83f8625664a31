"""The tree against a straightforward reference: the keep rule applied node by node in Python, the
candidates ranked by (full distance, id), and the best-first search's scanned set (every kept leaf
whose prefix distance is at most the k-th distance; where a leaf's parent is not the root, at most
every kept leaf of a parent within it, since such a parent scans its kept leaves when opened).
Checked on codes that rarely repeat (most leaves hold one code, the fashion-mosaic case) and on codes
with many exact copies."""
import math

import numpy as np
import pytest

from search.hamming import hamming_distances
from search.tree import TreeIndex


def _bits(codes, start, stop):
    return np.unpackbits(codes, axis=1)[:, start:stop]


def reference_search(db, query, levels, keep_ratio, k):
    """``(ids, distances, (least, most) scanned, expanded)`` for one query: the keep rule of
    :class:`search.tree.TreeIndex` level by level, then the candidates by (distance, id), the
    unreached items after them by id at distance nbits + 1."""
    n, nbits = len(db), 8 * db.shape[1]
    bounds = np.cumsum((0,) + tuple(levels))
    level_dist = [np.count_nonzero(_bits(db, a, b) != _bits(query[None], a, b), axis=1)
                  for a, b in zip(bounds[:-1], bounds[1:])]
    # a node: (its items, its prefix distance, its parent's); the root holds everything at prefix 0
    nodes = [(np.arange(n), 0, 0)]
    internal = []  # (prefix) of every node whose children the keep rule scored
    for level in range(len(levels) - 1):
        next_nodes = []
        for items, prefix, _ in nodes:
            internal.append(prefix)
            keys = np.packbits(_bits(db[items], bounds[level], bounds[level + 1]), axis=1)
            _, child = np.unique(keys, axis=0, return_inverse=True)
            child = child.ravel()
            sizes = np.bincount(child)
            dist = np.array([level_dist[level][items[child == c][0]] for c in range(len(sizes))])
            target = math.ceil(keep_ratio * len(items))
            threshold = min(d for d in sorted(set(dist)) if sizes[dist <= d].sum() >= target)
            next_nodes += [(items[child == c], prefix + dist[c], prefix) for c in range(len(sizes))
                           if dist[c] <= threshold]
        nodes = next_nodes
    candidates = np.concatenate([items for items, _, _ in nodes])
    full = hamming_distances(query[None], db)[0].astype(np.int64)
    order = candidates[np.lexsort((candidates, full[candidates]))]
    wanted = min(k, len(order))
    radius = full[order[wanted - 1]]
    unreached = np.setdiff1d(np.arange(n), candidates)
    ids = np.concatenate([order[:wanted], unreached[:k - wanted]])
    distances = np.concatenate([full[order[:wanted]], np.full(k - wanted, nbits + 1)])
    if len(order) < k:  # the queue runs dry: every candidate is scanned, every kept node expanded
        radius = np.inf
    # every kept leaf within the k-th distance is needed; a parent below the root (opened when
    # within it) scans its kept leaves within the bound at that time, which may exceed the k-th distance
    least = sum(len(items) for items, prefix, _ in nodes if prefix <= radius)
    most = least if len(levels) <= 2 else sum(len(items) for items, _, parent in nodes if parent <= radius)
    expanded = sum(prefix <= radius for prefix in internal)
    return ids, distances, (least, most), expanded


def rare_codes(rng, n, nbytes):
    """Clustered codes whose coarse bits are stable and fine bits noisy: most codes are distinct
    while the first levels group them (fashion-mosaic's shape, scaled down)."""
    groups = rng.integers(0, 2, (6, 8 * nbytes), dtype=np.uint8)
    centres = groups[rng.integers(0, 6, 60)] ^ (rng.random((60, 8 * nbytes)) < 0.1)
    rate = np.where(np.arange(8 * nbytes) < 24, 0.01, 0.08)[None, :] * rng.exponential(1.0, (n, 1))
    return np.packbits(centres[rng.integers(0, 60, n)] ^ (rng.random((n, 8 * nbytes)) < rate), axis=1)


def copied_codes(rng, n, nbytes):
    """Few distinct codes, each copied many times: ties at the k-th distance abound."""
    values = rng.integers(0, 256, (40, nbytes), dtype=np.uint8)
    return values[rng.integers(0, 40, n)] ^ (rng.random((n, nbytes)) < 0.02).astype(np.uint8)


@pytest.mark.parametrize("make", [rare_codes, copied_codes])
@pytest.mark.parametrize("levels", [(8, 16, 40), (8, 8, 8), (16, 48)])
@pytest.mark.parametrize("keep_ratio", [1.0, 0.5, 0.2, 0.05])
def test_search_and_rank_equal_the_reference(make, levels, keep_ratio):
    rng = np.random.default_rng(sum(levels) + int(100 * keep_ratio))
    nbytes = sum(levels) // 8
    db = make(rng, 1500, nbytes)
    queries = np.concatenate([db[::300], make(rng, 4, nbytes)])
    tree = TreeIndex(db, levels=levels, keep_ratio=keep_ratio)
    for k in (1, 40, 400):
        distances, ids = tree.search(queries, k)
        ranked_distances, ranked_ids = tree.rank(queries, topk=k)
        for q, query in enumerate(queries):
            expected_ids, expected_distances, scanned, expanded = reference_search(db, query, levels, keep_ratio, k)
            assert np.array_equal(ids[q], expected_ids) and np.array_equal(distances[q], expected_distances)
            assert np.array_equal(ranked_ids[q], expected_ids)
            assert np.array_equal(ranked_distances[q], expected_distances)
            # the best-first search scans the kept leaves within the k-th distance (exactly, where
            # leaves are opened best first), what the per-code cost (time over codes scanned) is
            # divided by, and expands exactly the nodes within it
            assert scanned[0] <= tree.last_scanned[q] <= scanned[1] and tree.last_expanded[q] == expanded


def test_rare_codes_are_the_case_of_many_small_leaves():
    # the fixture does what it is for: most codes distinct, leaves of a few runs, and at keep 1.0
    # searches that stop after part of the database, having opened many leaves
    rng = np.random.default_rng(0)
    db = rare_codes(rng, 1500, 8)
    tree = TreeIndex(db, keep_ratio=1.0)
    assert len(tree.run_words) > 0.5 * len(db) and tree.n_nodes[-1] > 100
    tree.search(db[::300], 40)
    assert np.any(tree.last_scanned < len(db) / 2) and np.mean(tree.last_distances) > 100
