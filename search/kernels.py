"""Compiled inner loops of the search paths (numba).

numpy costs ~50 ns per visited item on the tree's query path (range expansion, gathers, popcount,
histogram and selection are separate passes with temporaries) against ~2 ns for faiss's SIMD scan,
so the top-k paths that efficiency is measured on run here as fused loops with the hardware popcount.
Ties are broken by ascending database index, as PROTOCOL.md ranks.

The tree (:func:`tree_search`), route chosen by measurement (``results/efficiency/``):

- best first, not level by level: nodes are opened in increasing prefix distance (the sum of their
  level distances, a lower bound of every full distance below them) from a bucket queue, and the
  search stops when the next prefix exceeds the distance of the k-th item found. Descending every
  level for the keep rule first (an earlier kernel) scored every surviving node's children,
  thousands per query at keep 1.0, though the top k lies in a few of them. An expansion queues its
  kept children as one entry per level distance (at most level bits + 1), not one per child.
- one distance per run of equal codes: the layout is sorted by code, and class-clustered codes
  repeat (1,000,000 Fashion-MNIST HDHash codes are 348,134 runs), so the histogram adds a run's
  length and a run at the k-th distance is a block of ascending ids. A run is stored as its code
  and its length (uint16), not its offset: fashion-mosaic's codes rarely repeat (605,536 runs in
  1,000,000), and 4-byte offsets took the index over nbits / 8 + 4 bytes a code.
- runs are kept as candidates while scanning (one word each) only if they are within the radius
  at that moment, so the selection reads those, not every run scanned.
- selection without a comparison sort: the items below the radius (fewer than k) are ordered by
  (distance, id) with an LSD radix sort (measured 2.5x faster than numba's quicksort at 5,000
  keys, the fashion-mosaic K); the ties at the radius, tens of thousands per query on
  class-clustered Fashion-MNIST codes, are taken smallest id first by a k-way merge of the tied
  runs (need * log(runs) steps) when they outnumber that, else sorted with the rest. Earlier
  kernels collected every tie (into a sort, then a bitmap over database ids; a bitmap with a
  distance per id measured slower than the sort for the items below the radius, its random
  accesses over 1,000,000 ids missing the cache); handing the leaves to faiss's heap search
  measured ~5x the popcount pass.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def _ctpop(typingctx, x):
    """The hardware popcount (LLVM's ctpop: one POPCNT on x86-64 with the host's features)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
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


@njit(inline="always")
def _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, qcode, span, keep_ratio, child_dist, child_count,
                    level_hist):
    """The keep rule for one parent's children ``c0:c1``: their level distances to ``qcode`` into
    ``child_dist`` (and how many children are at each distance into ``child_count``), and the
    largest distance kept (the children at or below it hold at least ``ceil(keep_ratio * parent's
    items)``; every child at keep 1.0)."""
    child_count[:span] = 0
    for c in range(c0, c1):
        d = np.int64(_popcount(node_codes[nb + c] ^ qcode))
        child_dist[c - c0] = d
        child_count[d] += 1
    threshold = span - 1
    if keep_ratio < 1.0:
        level_hist[:span] = 0
        for c in range(c0, c1):
            level_hist[child_dist[c - c0]] += item_offsets[ib + c + 1] - item_offsets[ib + c]
        target = np.ceil(keep_ratio * (item_offsets[ib + c1] - item_offsets[ib + c0]))
        threshold = 0
        acc = level_hist[0]
        while acc < target and threshold < span - 1:
            threshold += 1
            acc += level_hist[threshold]
    return threshold


@njit(nogil=True, cache=True)
def tree_candidates(query_levels, node_codes, node_base, item_offsets, item_base, child_offsets, child_base,
                    level_bits, keep_ratio, max_nodes):
    """Per query, the number of items under the nodes the keep rule keeps (the candidates of
    :class:`search.tree.TreeIndex`, level by level; :func:`tree_search` never needs the whole set).
    Reporting only."""
    nq = query_levels.shape[0]
    n_levels = level_bits.shape[0]
    out = np.zeros(nq, np.int64)
    max_span = 1
    for lev in range(n_levels):
        max_span = max(max_span, level_bits[lev] + 1)
    survivors = np.empty(max_nodes + 1, np.int64)
    next_survivors = np.empty(max_nodes + 1, np.int64)
    child_dist = np.empty(max_nodes + 1, np.int64)
    level_hist = np.empty(max_span, np.int64)
    child_count = np.empty(max_span, np.int64)
    ib_leaf = item_base[n_levels - 1] if n_levels > 0 else 0
    for q in range(nq):
        n_surv = 1
        survivors[0] = 0  # the root
        for lev in range(n_levels):
            cb, ib, nb = child_base[lev], item_base[lev], node_base[lev]
            n_next = 0
            for s in range(n_surv):
                c0 = child_offsets[cb + survivors[s]]
                c1 = child_offsets[cb + survivors[s] + 1]
                threshold = _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, query_levels[q, lev],
                                            level_bits[lev] + 1, keep_ratio, child_dist, child_count, level_hist)
                for c in range(c0, c1):
                    if child_dist[c - c0] <= threshold:
                        next_survivors[n_next] = c
                        n_next += 1
            survivors[:n_next] = next_survivors[:n_next]
            n_surv = n_next
        for s in range(n_surv):
            out[q] += item_offsets[ib_leaf + survivors[s] + 1] - item_offsets[ib_leaf + survivors[s]]
    return out


@njit(nogil=True, cache=True)
def _sift_down(heap_id, heap_pos, heap_end, i, size):
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        if child + 1 < size and heap_id[child + 1] < heap_id[child]:
            child += 1
        if heap_id[i] <= heap_id[child]:
            return
        heap_id[i], heap_id[child] = heap_id[child], heap_id[i]
        heap_pos[i], heap_pos[child] = heap_pos[child], heap_pos[i]
        heap_end[i], heap_end[child] = heap_end[child], heap_end[i]
        i = child


@njit(nogil=True, cache=True)
def _smallest_ids(ids, tie_pos, tie_end, n_tie_runs, need, out_ids, q, first, heap_id, heap_pos, heap_end):
    """Write the ``need`` smallest database ids of the runs ``ids[tie_pos[t]:tie_end[t]]`` to
    ``out_ids[q, first:first + need]`` in increasing order: a k-way merge, since each run's ids
    ascend (the layout is sorted stably by code). ``need * log(runs)`` steps, whatever the ties."""
    size = 0
    for t in range(n_tie_runs):
        heap_pos[size] = tie_pos[t]
        heap_end[size] = tie_end[t]
        heap_id[size] = ids[tie_pos[t]]
        size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap_id, heap_pos, heap_end, i, size)
    for taken in range(need):
        out_ids[q, first + taken] = heap_id[0]
        heap_pos[0] += 1
        if heap_pos[0] < heap_end[0]:
            heap_id[0] = ids[heap_pos[0]]
        else:
            size -= 1
            heap_id[0] = heap_id[size]
            heap_pos[0] = heap_pos[size]
            heap_end[0] = heap_end[size]
        _sift_down(heap_id, heap_pos, heap_end, 0, size)


@njit(inline="always")
def _bits_for(count):
    """The fewest bits (at least 1) that hold ``count`` distinct values 0 .. count - 1."""
    bits = 1
    while (1 << bits) < count:
        bits += 1
    return bits


@njit(nogil=True, cache=True)
def _radix_sort(keys, tmp, count, n, key_bits):
    """Sort ``keys[:n]`` (uint64 below ``2 ** key_bits``) by LSD radix sort, 10-bit digits:
    ceil(key_bits / 10) passes of O(n + 1024), against a comparison sort's n log n (measured on
    5,000 keys: ~3x faster than numba's quicksort). The result ends in ``keys``."""
    src, dst = keys, tmp
    shift = 0
    passes = 0
    while shift < key_bits:
        count[:] = 0
        for i in range(n):
            count[(src[i] >> np.uint64(shift)) & np.uint64(1023)] += 1
        acc = 0
        for b in range(1024):
            c = count[b]
            count[b] = acc
            acc += c
        for i in range(n):
            b = (src[i] >> np.uint64(shift)) & np.uint64(1023)
            dst[count[b]] = src[i]
            count[b] += 1
        src, dst = dst, src
        shift += 10
        passes += 1
    if passes % 2 == 1:
        keys[:n] = tmp[:n]


@njit(nogil=True, cache=True)
def _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                out_ids, out_dist, scanned_out, computed_out, expanded_out,
                heads, ent_level, ent_lo, ent_hi, ent_next, order, child_dist, level_hist, child_count, group_start,
                hist, scan_leaf, cand, tie_pos, tie_end, heap_id, heap_pos, heap_end,
                keys, keys_tmp, radix_count):
    n = ids.shape[0]
    n_words = run_words.shape[1]
    n_levels = level_bits.shape[0]
    leaf_level = n_levels - 1  # -1: no branching level, the root is the one leaf
    leaf_items = item_base[max(leaf_level, 0)]
    max_prefix = 0
    for lev in range(n_levels):
        max_prefix += level_bits[lev]
    # best first over the tree: a bucket queue by prefix distance (the sum of the level distances
    # to the query, a lower bound of the full distance of every code below). An entry is a group of
    # siblings at one level distance (a slice of ``order``), so an expansion pushes at most
    # level bits + 1 entries, not one per child: on 1,000,000 fashion-mosaic codes a level-1 node
    # has ~220 children, of which the search opens a few. A child's prefix is at least its
    # parent's, so the bucket index only moves forward.
    heads[:max_prefix + 1] = -1
    order[0] = 0  # the root
    ent_level[0] = -1  # the root: expanded, or scanned as the one leaf when there is no branching level
    ent_lo[0] = 0
    ent_hi[0] = 1
    ent_next[0] = -1
    heads[0] = 0
    n_ent = 1
    n_order = 1
    hist[:nbits + 2] = 0
    radius = nbits  # the distance of the k-th nearest item found so far (nbits until k are found)
    within = 0  # items found at distance <= radius
    scanned = 0  # items whose distance is known (every item of a run shares its run's)
    computed = 0  # runs whose distance was computed
    n_cand = 0  # runs at distance <= radius when scanned (the final top k is among them)
    n_scan = 0
    expanded = 0
    cur = 0
    qw = query_words[q, 0]
    done = False
    while not done:
        while cur <= max_prefix and heads[cur] < 0:
            cur += 1
        if cur > max_prefix:
            break
        e = heads[cur]
        heads[cur] = ent_next[e]
        lev = ent_level[e]
        for o in range(ent_lo[e], ent_hi[e]):
            # every node left has a prefix >= cur: once it exceeds the radius of k found items,
            # nothing below it can enter the result (not even as a tie), so the search is done
            if within >= k and (cur > radius or (max_codes > 0 and scanned >= max_codes)):
                done = True
                break
            node = order[o]
            if lev == leaf_level:  # a last-branching-level node: its runs of equal codes
                scan_leaf[n_scan] = node
                n_scan += 1
                lo = leaf_runs[node]
                hi = leaf_runs[node + 1]
                pos = np.int64(item_offsets[leaf_items + node])
                for r in range(lo, hi):
                    if n_words == 1:
                        d = np.int64(_popcount(run_words[r, 0] ^ qw))
                    else:
                        d = np.int64(_distance(query_words, q, run_words, r, n_words))
                    count = np.int64(run_len[r])
                    hist[d] += count
                    keep = d <= radius
                    # appended unconditionally, kept by advancing the count: no branch to mispredict;
                    # one word (first item, length, distance): pos < 2**32 and both others < 2**16
                    cand[n_cand] = ((np.uint64(pos) << np.uint64(32)) | (np.uint64(count) << np.uint64(16))
                                    | np.uint64(d))
                    n_cand += keep
                    within += count * keep
                    pos += count
                computed += hi - lo
                scanned += item_offsets[leaf_items + node + 1] - item_offsets[leaf_items + node]
                if within >= k:
                    while radius > 0 and within - hist[radius] >= k:
                        within -= hist[radius]
                        radius -= 1
            else:  # the keep rule over this node's children; the survivors are queued by prefix
                expanded += 1
                cl = lev + 1
                cb, ib, nb = child_base[cl], item_base[cl], node_base[cl]
                span = level_bits[cl] + 1
                c0 = child_offsets[cb + node]
                c1 = child_offsets[cb + node + 1]
                threshold = _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, query_levels[q, cl], span,
                                            keep_ratio, child_dist, child_count, level_hist)
                # the kept children grouped by level distance (a counting sort), one entry per group
                for d in range(threshold + 1):
                    if child_count[d] > 0:
                        group_start[d] = n_order
                        ent_level[n_ent] = cl
                        ent_lo[n_ent] = n_order
                        ent_hi[n_ent] = n_order + child_count[d]
                        ent_next[n_ent] = heads[cur + d]
                        heads[cur + d] = n_ent
                        n_ent += 1
                        n_order += child_count[d]
                for c in range(c0, c1):
                    d = child_dist[c - c0]
                    if d <= threshold:
                        order[group_start[d]] = c
                        group_start[d] += 1
    scanned_out[q] = scanned
    computed_out[q] = computed
    expanded_out[q] = expanded
    # the queue ran dry before k were found: every candidate was scanned, the list is short
    wanted = min(k, scanned)
    if wanted > 0:
        if within < wanted or radius == nbits:
            radius = 0
            within = hist[0]
            while within < wanted:
                radius += 1
                within += hist[radius]
        below = within - hist[radius]
        need = wanted - below
        # selection without a comparison sort: the items below the radius (fewer than k) as keys
        # (distance, id) in an LSD radix sort. The ties at the radius (hist[radius] items, tens of
        # thousands on class-clustered codes) join the sort when they are few; when they are many,
        # the smallest ``need`` ids come from a k-way merge of their runs (the ids of a run ascend):
        # need * log2(runs) heap steps instead of one sort slot per tied item.
        n_tie = 0
        for t in range(n_cand):
            if np.int64(cand[t] & np.uint64(0xFFFF)) == radius:
                tie_pos[n_tie] = np.int64(cand[t] >> np.uint64(32))
                tie_end[n_tie] = tie_pos[n_tie] + np.int64((cand[t] >> np.uint64(16)) & np.uint64(0xFFFF))
                n_tie += 1
        merge = hist[radius] > need * (_bits_for(n_tie) + 1)
        top = radius - 1 if merge else radius
        id_bits = _bits_for(n)  # database ids < n
        n_keys = 0
        for t in range(n_cand):
            d = np.int64(cand[t] & np.uint64(0xFFFF))
            if d <= top:
                head = np.uint64(d) << np.uint64(id_bits)
                first = np.int64(cand[t] >> np.uint64(32))
                for pos in range(first, first + np.int64((cand[t] >> np.uint64(16)) & np.uint64(0xFFFF))):
                    keys[n_keys] = head | np.uint64(ids[pos])
                    n_keys += 1
        _radix_sort(keys, keys_tmp, radix_count, n_keys, id_bits + _bits_for(radius + 1))
        mask = (np.uint64(1) << np.uint64(id_bits)) - np.uint64(1)
        for i in range(min(n_keys, wanted)):
            out_ids[q, i] = np.int64(keys[i] & mask)
            out_dist[q, i] = np.uint16(keys[i] >> np.uint64(id_bits))
        if merge:
            _smallest_ids(ids, tie_pos, tie_end, n_tie, need, out_ids, q, below, heap_id, heap_pos, heap_end)
            for i in range(need):
                out_dist[q, below + i] = radius
    if wanted < k:  # the unreached items follow by database index, distance nbits + 1
        seen = np.zeros(n, np.bool_)
        for t in range(n_scan):
            leaf = scan_leaf[t]
            for pos in range(item_offsets[leaf_items + leaf], item_offsets[leaf_items + leaf + 1]):
                seen[ids[pos]] = True
        i = 0
        for jj in range(wanted, k):
            while seen[i]:
                i += 1
            out_ids[q, jj] = i
            out_dist[q, jj] = nbits + 1
            i += 1


@njit(nogil=True, parallel=True, cache=True)
def tree_search(query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                n_nodes, n_chunks):
    """Top-k through HDHash's tree for every query (the rule of :class:`search.tree.TreeIndex`),
    the queries split into ``n_chunks`` contiguous chunks run in parallel (numba's threads: the
    caller sets their number with ``numba.set_num_threads``).

    Per level ``l`` the index's arrays are concatenated: level ``l``'s node codes are
    ``node_codes[node_base[l]:node_base[l + 1]]``, and likewise the item offsets (``item_base``)
    and child offsets (``child_base``); ``n_nodes`` is the number of nodes of all levels. The
    codes are stored once per run of equal codes (``run_words``; the run's ``run_len[r]`` items
    follow one another in the layout ``ids``); the last branching level's node ``c`` holds runs
    ``leaf_runs[c]:leaf_runs[c + 1]``, starting at its first item. Returns ``(ids, distances,
    scanned, computed, expanded)``: the ranking by (distance, id) of the candidates, unreached
    items filling a short list by database index with distance ``nbits + 1``; per query the items
    whose distance became known, the distances computed (runs) and the nodes expanded.
    """
    n = ids.shape[0]
    nq = query_words.shape[0]
    k = min(k, n)
    out_ids = np.empty((nq, k), np.int64)
    out_dist = np.empty((nq, k), np.uint16)
    scanned = np.zeros(nq, np.int64)
    computed = np.zeros(nq, np.int64)
    expanded = np.zeros(nq, np.int64)
    n_runs = run_words.shape[0]
    max_span = 1
    total_bits = 0
    for lev in range(level_bits.shape[0]):
        max_span = max(max_span, level_bits[lev] + 1)
        total_bits += level_bits[lev]
    n_chunks = max(1, min(n_chunks, nq))
    for chunk in prange(n_chunks):
        # per-thread buffers, sized for the worst query
        heads = np.empty(total_bits + 1, np.int64)
        ent_level = np.empty(n_nodes + 1, np.int64)
        ent_lo = np.empty(n_nodes + 1, np.int64)
        ent_hi = np.empty(n_nodes + 1, np.int64)
        ent_next = np.empty(n_nodes + 1, np.int64)
        order = np.empty(n_nodes + 1, np.int64)
        child_dist = np.empty(n_nodes + 1, np.int64)
        scan_leaf = np.empty(n_nodes + 1, np.int64)
        level_hist = np.empty(max_span, np.int64)
        child_count = np.empty(max_span, np.int64)
        group_start = np.empty(max_span, np.int64)
        hist = np.empty(nbits + 3, np.int64)
        cand = np.empty(n_runs + 1, np.uint64)
        tie_pos = np.empty(n_runs, np.int64)
        tie_end = np.empty(n_runs, np.int64)
        heap_id = np.empty(n_runs, np.int64)
        heap_pos = np.empty(n_runs, np.int64)
        heap_end = np.empty(n_runs, np.int64)
        keys = np.empty(n, np.uint64)
        keys_tmp = np.empty(n, np.uint64)
        radix_count = np.empty(1024, np.int64)
        for q in range(chunk * nq // n_chunks, (chunk + 1) * nq // n_chunks):
            _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                        child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes,
                        nbits, out_ids, out_dist, scanned, computed, expanded, heads, ent_level, ent_lo, ent_hi,
                        ent_next, order, child_dist, level_hist, child_count, group_start, hist, scan_leaf,
                        cand, tie_pos, tie_end, heap_id, heap_pos, heap_end, keys, keys_tmp,
                        radix_count)
    return out_ids, out_dist, scanned, computed, expanded


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
