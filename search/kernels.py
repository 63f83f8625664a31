"""Compiled inner loops of the search paths (numba).

numpy costs ~50 ns per visited item on the tree's query path (range expansion, gathers, popcount,
histogram and selection are separate passes with temporaries) against ~2 ns for faiss's SIMD scan,
so the top-k paths that efficiency is measured on run here as single fused loops: one pass computes
distances and their histogram, the histogram gives the radius holding the top k, a second pass
gathers just those items. Ties are broken by ascending database index, as PROTOCOL.md ranks.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(inline="always")
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(inline="always")
def _distance(a, ia, b, ib, n_words):
    s = np.uint64(0)
    for w in range(n_words):
        s += _popcount(a[ia, w] ^ b[ib, w])
    return s


@njit(nogil=True, cache=True)
def hamming_topk(query_words, db_words, k, nbits):
    """Exhaustive top-k per query: ``(ids int64 (nq, k), distances uint16 (nq, k))``, ranked by
    (distance, database index). Scanning in index order makes the ties stable for free."""
    n, n_words = db_words.shape
    nq = query_words.shape[0]
    k = min(k, n)
    ids = np.empty((nq, k), np.int64)
    out = np.empty((nq, k), np.uint16)
    dist = np.empty(n, np.uint16)
    hist = np.empty(nbits + 2, np.int64)
    for q in range(nq):
        hist[:] = 0
        for i in range(n):
            d = _distance(query_words, q, db_words, i, n_words)
            dist[i] = d
            hist[d] += 1
        # radius D: the items at distance < D are fewer than k, those at <= D at least k
        below = 0
        radius = 0
        while below + hist[radius] < k:
            below += hist[radius]
            radius += 1
        # slots: counting sort of the selected items by distance, stable in index order
        start = np.empty(radius + 1, np.int64)
        acc = 0
        for d in range(radius + 1):
            start[d] = acc
            acc += hist[d]
        taken_at_radius = 0
        for i in range(n):
            d = dist[i]
            if d < radius:
                ids[q, start[d]] = i
                out[q, start[d]] = d
                start[d] += 1
            elif d == radius and taken_at_radius < k - below:
                ids[q, start[d]] = i
                out[q, start[d]] = d
                start[d] += 1
                taken_at_radius += 1
    return ids, out


@njit(nogil=True, cache=True)
def tree_search(query_levels, query_words, node_codes, node_base, item_offsets, item_base,
                child_offsets, child_base, level_bits, words, ids, k, keep_ratio, nbits):
    """Top-k through HDHash's tree for every query (the rule of :class:`search.tree.TreeIndex`).

    Per level ``l`` the index's arrays are concatenated: level ``l``'s node codes are
    ``node_codes[node_base[l]:node_base[l + 1]]`` (one uint64 per node), and likewise the item
    offsets (``item_base``) and child offsets (``child_base``). Returns ``(ids, distances,
    visited)``; unreached items fill a short list by database index with distance ``nbits + 1``.
    """
    n, n_words = words.shape
    nq = query_words.shape[0]
    n_levels = level_bits.shape[0]  # branching levels
    k = min(k, n)
    out_ids = np.empty((nq, k), np.int64)
    out_dist = np.empty((nq, k), np.uint16)
    visited = np.zeros(nq, np.int64)
    hist = np.empty(nbits + 2, np.int64)
    max_span = 0
    for lev in range(n_levels):
        max_span = max(max_span, level_bits[lev] + 1)
    level_hist = np.empty(max_span, np.int64)
    survivors = np.empty(n + 1, np.int64)
    next_survivors = np.empty(n + 1, np.int64)
    child_dist = np.empty(n + 1, np.int64)
    for q in range(nq):
        # the root is "node 0" of a virtual level -1 whose children are child_offsets of level 0
        n_surv = 1
        survivors[0] = 0
        for lev in range(n_levels):
            cb, ib, nb = child_base[lev], item_base[lev], node_base[lev]
            span = level_bits[lev] + 1
            n_next = 0
            qcode = query_levels[q, lev]
            for s in range(n_surv):
                p = survivors[s]
                c0 = child_offsets[cb + p]
                c1 = child_offsets[cb + p + 1]
                if keep_ratio >= 1.0:
                    for c in range(c0, c1):
                        next_survivors[n_next] = c
                        n_next += 1
                    continue
                level_hist[:span] = 0
                n_items = item_offsets[ib + c1] - item_offsets[ib + c0]
                for c in range(c0, c1):
                    d = _popcount(node_codes[nb + c] ^ qcode)
                    child_dist[c - c0] = d
                    level_hist[d] += item_offsets[ib + c + 1] - item_offsets[ib + c]
                target = np.ceil(keep_ratio * n_items)
                threshold = 0
                acc = level_hist[0]
                while acc < target and threshold < span - 1:
                    threshold += 1
                    acc += level_hist[threshold]
                for c in range(c0, c1):
                    if child_dist[c - c0] <= threshold:
                        next_survivors[n_next] = c
                        n_next += 1
            for s in range(n_next):
                survivors[s] = next_survivors[s]
            n_surv = n_next
        # leaves: the items under the surviving last-level nodes, scanned with the full code twice:
        # once for the histogram of distances, once to gather the items within the top-k radius
        # (recomputing a popcount is cheaper than writing and rereading a candidate buffer)
        ib = item_base[n_levels - 1] if n_levels > 0 else 0
        hist[:] = 0
        reached = 0
        for s in range(n_surv):
            node = survivors[s]
            for pos in range(item_offsets[ib + node], item_offsets[ib + node + 1]):
                hist[_distance(query_words, q, words, pos, n_words)] += 1
            reached += item_offsets[ib + node + 1] - item_offsets[ib + node]
        visited[q] = reached
        wanted = min(k, reached)
        if wanted > 0:
            below = 0
            radius = 0
            while below + hist[radius] < wanted:
                below += hist[radius]
                radius += 1
            # everything at distance <= radius, sorted by one key (distance, id); only ties grow it past k
            keys = np.empty(below + hist[radius], np.uint64)
            j = 0
            for s in range(n_surv):
                node = survivors[s]
                for pos in range(item_offsets[ib + node], item_offsets[ib + node + 1]):
                    d = _distance(query_words, q, words, pos, n_words)
                    if d <= radius:
                        keys[j] = (d << np.uint64(32)) | np.uint64(ids[pos])
                        j += 1
            keys.sort()
            for j in range(wanted):
                out_ids[q, j] = np.int64(keys[j] & np.uint64(0xFFFFFFFF))
                out_dist[q, j] = np.uint16(keys[j] >> np.uint64(32))
        if wanted < k:
            seen = np.zeros(n, np.bool_)
            for s in range(n_surv):
                node = survivors[s]
                for pos in range(item_offsets[ib + node], item_offsets[ib + node + 1]):
                    seen[ids[pos]] = True
            j = wanted
            i = 0
            while j < k:
                if not seen[i]:
                    out_ids[q, j] = i
                    out_dist[q, j] = nbits + 1
                    j += 1
                i += 1
    return out_ids, out_dist, visited


@njit(nogil=True, cache=True)
def popcount_scan(query_words, db_words):
    """The least a full scan must do: every query's distance to every item, written to one reused
    row (no ranking). The efficiency protocol's floor for the exhaustive paths; returns the
    distance sum so the work cannot be optimised away."""
    n, n_words = db_words.shape
    row = np.empty(n, np.uint16)
    total = 0
    for q in range(query_words.shape[0]):
        for i in range(n):
            row[i] = _distance(query_words, q, db_words, i, n_words)
        total += row[n - 1]
    return total
