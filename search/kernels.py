"""Compiled inner loops of the search paths (numba).

numpy costs ~50 ns per visited item on the tree's query path (range expansion, gathers, popcount,
histogram and selection are separate passes with temporaries) against ~2 ns for faiss's SIMD scan,
so the top-k paths that efficiency is measured on run here as fused loops with the hardware popcount.
Ties are broken by ascending database index, as PROTOCOL.md ranks.

The tree's leaf stage (route chosen by measurement, ``results/efficiency/``): one popcount pass
writes each scanned code's distance to a byte buffer and its histogram; the histogram gives the
radius D holding the top k; the items below D (fewer than k) are sorted by (distance, id) and the
ties at D taken in id order from a bitmap over database ids. Rescanning the codes (the seed's
kernel) paid the popcount twice; collecting and sorting everything at <= D paid n log n in the
ties, tens of thousands per query on class-clustered codes; handing the leaves to faiss's heap
search measured ~5x the popcount pass. Nodes are scanned in increasing prefix distance (the sum
of their level distances, a lower bound of every full distance below them), and a node whose
prefix exceeds the radius of the k found so far is skipped: the result is unchanged, the codes
paid for shrink.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def _ctpop(typingctx, x):
    """The hardware popcount (LLVM's ctpop: one POPCNT on x86-64 with the host's features)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@intrinsic
def _cttz(typingctx, x):
    """Trailing zeros of a non-zero word (LLVM's cttz: one TZCNT / BSF)."""
    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))
    return types.uint64(types.uint64), codegen


@njit(inline="always")
def _popcount(x):
    return _ctpop(np.uint64(x))


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
def _descend(q, query_levels, node_codes, node_base, item_offsets, item_base, child_offsets, child_base,
             level_bits, keep_ratio, survivors, prefix, next_survivors, next_prefix, child_dist, level_hist):
    """The keep rule of :class:`search.tree.TreeIndex` for one query: fills ``survivors[:n]`` with
    the surviving last-branching-level nodes and ``prefix[:n]`` with the sum of their level
    distances (a lower bound of every full distance under the node); returns n."""
    n_levels = level_bits.shape[0]
    n_surv = 1
    survivors[0] = 0
    prefix[0] = 0
    for lev in range(n_levels):
        cb, ib, nb = child_base[lev], item_base[lev], node_base[lev]
        span = level_bits[lev] + 1
        n_next = 0
        qcode = query_levels[q, lev]
        for s in range(n_surv):
            p = survivors[s]
            c0 = child_offsets[cb + p]
            c1 = child_offsets[cb + p + 1]
            level_hist[:span] = 0
            for c in range(c0, c1):
                d = _popcount(node_codes[nb + c] ^ qcode)
                child_dist[c - c0] = d
                level_hist[d] += item_offsets[ib + c + 1] - item_offsets[ib + c]
            threshold = span - 1
            if keep_ratio < 1.0:
                target = np.ceil(keep_ratio * (item_offsets[ib + c1] - item_offsets[ib + c0]))
                threshold = 0
                acc = level_hist[0]
                while acc < target and threshold < span - 1:
                    threshold += 1
                    acc += level_hist[threshold]
            for c in range(c0, c1):
                if child_dist[c - c0] <= threshold:
                    next_survivors[n_next] = c
                    next_prefix[n_next] = prefix[s] + child_dist[c - c0]
                    n_next += 1
        for s in range(n_next):
            survivors[s] = next_survivors[s]
            prefix[s] = next_prefix[s]
        n_surv = n_next
    return n_surv


@njit(nogil=True, cache=True)
def _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, words, ids, k, keep_ratio, nbits, out_ids, out_dist, candidates, scanned,
                survivors, prefix, next_survivors, next_prefix, child_dist, level_hist, hist, dbuf, ties, keys,
                bitmap):
    n, n_words = words.shape
    n_levels = level_bits.shape[0]
    n_surv = _descend(q, query_levels, node_codes, node_base, item_offsets, item_base, child_offsets, child_base,
                      level_bits, keep_ratio, survivors, prefix, next_survivors, next_prefix, child_dist, level_hist)
    ib = item_base[n_levels - 1] if n_levels > 0 else 0
    reached = 0
    for s in range(n_surv):
        reached += item_offsets[ib + survivors[s] + 1] - item_offsets[ib + survivors[s]]
    candidates[q] = reached
    wanted = min(k, reached)
    # Visit the surviving nodes in increasing prefix distance (counting sort: next_survivors holds the
    # order). A node whose prefix exceeds the radius of the top k found so far holds no item of the
    # result, so it is never scanned: the candidates stay those of the keep rule, the codes paid for
    # shrink (on class-clustered codes most queries' top k lie at distance 0 in a few nodes).
    max_prefix = nbits + 1
    hist[:max_prefix + 1] = 0
    for s in range(n_surv):
        hist[prefix[s]] += 1
    acc = 0
    for d in range(max_prefix + 1):
        c = hist[d]
        hist[d] = acc
        acc += c
    for s in range(n_surv):
        next_survivors[hist[prefix[s]]] = s
        hist[prefix[s]] += 1
    # one popcount pass, each scanned code's distance kept in a byte buffer, its histogram alongside;
    # radius = the smallest distance whose cumulated count reaches ``wanted`` (ub until then)
    hist[:nbits + 2] = 0
    radius = nbits
    within = 0  # scanned codes at distance <= radius
    j = 0
    n_scanned_nodes = 0
    qw = query_words[q, 0]
    for t in range(n_surv):
        s = next_survivors[t]
        if within >= wanted and prefix[s] > radius:
            break
        n_scanned_nodes += 1
        lo = item_offsets[ib + survivors[s]]
        hi = item_offsets[ib + survivors[s] + 1]
        if n_words == 1:
            for pos in range(lo, hi):
                d = np.int64(_popcount(words[pos, 0] ^ qw))
                dbuf[j] = d
                hist[d] += 1
                within += d <= radius
                j += 1
        else:
            for pos in range(lo, hi):
                d = np.int64(_distance(query_words, q, words, pos, n_words))
                dbuf[j] = d
                hist[d] += 1
                within += d <= radius
                j += 1
        if within >= wanted:
            while radius > 0 and within - hist[radius] >= wanted:
                within -= hist[radius]
                radius -= 1
    scanned[q] = j
    if wanted > 0:
        below = within - hist[radius]
        # selection: items below the radius are fewer than k and sorted by (distance, id); the ties at
        # the radius are taken in id order from a bitmap over database ids (sorting them is
        # n log n in the ties, tens of thousands on class-clustered codes; the bitmap is linear)
        n_keys = 0
        n_ties = 0
        j = 0
        for t in range(n_scanned_nodes):
            s = next_survivors[t]
            lo = item_offsets[ib + survivors[s]]
            hi = item_offsets[ib + survivors[s] + 1]
            if prefix[s] > radius:
                j += hi - lo
                continue
            for pos in range(lo, hi):
                d = dbuf[j]
                j += 1
                if d < radius:
                    keys[n_keys] = (np.uint64(d) << np.uint64(32)) | np.uint64(ids[pos])
                    n_keys += 1
                elif d == radius:
                    ties[n_ties] = ids[pos]
                    n_ties += 1
        if n_keys > 1:
            keys[:n_keys].sort()
        for i in range(n_keys):
            out_ids[q, i] = np.int64(keys[i] & np.uint64(0xFFFFFFFF))
            out_dist[q, i] = np.uint16(keys[i] >> np.uint64(32))
        need = wanted - below
        if n_ties <= 32 or n_ties == need:
            tie_slice = ties[:n_ties]
            tie_slice.sort()
            for i in range(need):
                out_ids[q, below + i] = tie_slice[i]
                out_dist[q, below + i] = radius
        else:
            first = n
            for i in range(n_ties):
                t_id = ties[i]
                bitmap[t_id >> 6] |= np.uint64(1) << np.uint64(t_id & 63)
                first = min(first, t_id)
            word = first >> 6
            taken = 0
            while taken < need:
                w = bitmap[word]
                while w != 0 and taken < need:
                    out_ids[q, below + taken] = (word << 6) + np.int64(_cttz(w))
                    out_dist[q, below + taken] = radius
                    taken += 1
                    w &= w - np.uint64(1)
                word += 1
            for i in range(n_ties):
                bitmap[ties[i] >> 6] = 0
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


@njit(nogil=True, parallel=True, cache=True)
def tree_search(query_levels, query_words, node_codes, node_base, item_offsets, item_base,
                child_offsets, child_base, level_bits, words, ids, k, keep_ratio, nbits, max_nodes, n_chunks):
    """Top-k through HDHash's tree for every query (the rule of :class:`search.tree.TreeIndex`),
    the queries split into ``n_chunks`` contiguous chunks run in parallel (numba's threads: the
    caller sets their number with ``numba.set_num_threads``).

    Per level ``l`` the index's arrays are concatenated: level ``l``'s node codes are
    ``node_codes[node_base[l]:node_base[l + 1]]`` (one uint64 per node), and likewise the item
    offsets (``item_base``) and child offsets (``child_base``); ``max_nodes`` bounds the nodes of
    one level. Returns ``(ids, distances, candidates, scanned)``: the ranking by (distance, id) of
    the items under the surviving nodes, unreached items filling a short list by database index
    with distance ``nbits + 1``; per query the candidates (the keep rule's) and the codes whose
    distance was computed (candidates in nodes whose prefix distance could still hold the top k).
    """
    n, n_words = words.shape
    nq = query_words.shape[0]
    k = min(k, n)
    out_ids = np.empty((nq, k), np.int64)
    out_dist = np.empty((nq, k), np.uint16)
    candidates = np.zeros(nq, np.int64)
    scanned = np.zeros(nq, np.int64)
    max_span = 1
    for lev in range(level_bits.shape[0]):
        max_span = max(max_span, level_bits[lev] + 1)
    n_chunks = max(1, min(n_chunks, nq))
    for chunk in prange(n_chunks):
        # per-thread buffers, sized for the worst query
        survivors = np.empty(max_nodes + 1, np.int64)
        prefix = np.empty(max_nodes + 1, np.int64)
        next_survivors = np.empty(max_nodes + 1, np.int64)
        next_prefix = np.empty(max_nodes + 1, np.int64)
        child_dist = np.empty(max_nodes + 1, np.int64)
        level_hist = np.empty(max_span, np.int64)
        hist = np.empty(nbits + 3, np.int64)
        dbuf = np.empty(n, np.uint8)
        ties = np.empty(n, np.int64)
        keys = np.empty(k, np.uint64)
        bitmap = np.zeros((n >> 6) + 1, np.uint64)
        for q in range(chunk * nq // n_chunks, (chunk + 1) * nq // n_chunks):
            _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                        child_base, level_bits, words, ids, k, keep_ratio, nbits, out_ids, out_dist, candidates,
                        scanned, survivors, prefix, next_survivors, next_prefix, child_dist, level_hist, hist, dbuf,
                        ties, keys, bitmap)
    return out_ids, out_dist, candidates, scanned


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
