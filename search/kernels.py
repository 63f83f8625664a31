"""Compiled inner loops of the search paths (numba).

numpy costs ~50 ns per visited item on the tree's query path (range expansion, gathers, popcount,
histogram and selection are separate passes with temporaries) against ~2 ns for faiss's SIMD scan,
so the top-k paths that efficiency is measured on run here as fused loops with the hardware popcount.
Ties are broken by ascending database index, as PROTOCOL.md ranks.

The tree (:func:`tree_search`), route chosen by measurement (``results/efficiency/``):

- best first, not level by level: nodes are opened in increasing prefix distance (the sum of their
  level distances, a lower bound of every full distance below them) from a bucket queue, and the
  search stops when the next prefix exceeds the distance of the k-th item found. Descending every
  level for the keep rule first (the previous kernel) scored every surviving node's children,
  thousands per query at keep 1.0, though the top k lies in a few of them.
- one distance per run of equal codes: the layout is sorted by code, and class-clustered codes
  repeat (1,000,000 Fashion-MNIST HDHash codes are 348,134 runs), so the histogram adds a run's
  length and a run at the k-th distance is a block of ascending ids.
- selection without a sort of the ties: the items below the radius (fewer than k) are sorted by
  (distance, id); the ties at the radius, tens of thousands per query on class-clustered codes,
  are taken smallest id first by a k-way merge of the tied runs (need * log(runs) steps). The
  previous kernels collected every tie (into a sort, then a bitmap over database ids); handing
  the leaves to faiss's heap search measured ~5x the popcount pass.
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
def _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, qcode, span, keep_ratio, child_dist, level_hist):
    """The keep rule for one parent's children ``c0:c1``: their level distances to ``qcode`` into
    ``child_dist``, and the largest distance kept (the children at or below it hold at least
    ``ceil(keep_ratio * parent's items)``; every child at keep 1.0)."""
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
                                            level_bits[lev] + 1, keep_ratio, child_dist, level_hist)
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
def _smallest_ids(ids, run_offsets, tie_runs, n_tie_runs, need, out_ids, q, first, heap_id, heap_pos, heap_end):
    """Write the ``need`` smallest database ids of the runs ``tie_runs[:n_tie_runs]`` to
    ``out_ids[q, first:first + need]`` in increasing order: a k-way merge, since each run's ids
    ascend (the layout is sorted stably by code). ``need * log(runs)`` steps, whatever the ties."""
    size = 0
    for t in range(n_tie_runs):
        r = tie_runs[t]
        heap_pos[size] = run_offsets[r]
        heap_end[size] = run_offsets[r + 1]
        heap_id[size] = ids[run_offsets[r]]
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


@njit(nogil=True, cache=True)
def _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, leaf_runs, run_offsets, run_words, ids, k, keep_ratio, max_codes, nbits,
                out_ids, out_dist, scanned_out, computed_out, expanded_out,
                heads, ent_level, ent_node, ent_next, child_dist, level_hist, hist, dbuf,
                scan_lo, scan_hi, scan_prefix, tie_runs, keys, heap_id, heap_pos, heap_end):
    n = ids.shape[0]
    n_words = run_words.shape[1]
    n_levels = level_bits.shape[0]
    max_prefix = 0
    for lev in range(n_levels):
        max_prefix += level_bits[lev]
    # best first over the tree: a bucket queue of nodes by prefix distance (the sum of their level
    # distances to the query, a lower bound of the full distance of every code below them); the
    # root is entry 0 at level -1. A child's prefix is at least its parent's, so the bucket index
    # only moves forward.
    heads[:max_prefix + 1] = -1
    ent_level[0] = -1
    ent_node[0] = 0
    ent_next[0] = -1
    heads[0] = 0
    n_ent = 1
    hist[:nbits + 2] = 0
    radius = nbits  # the distance of the k-th nearest item found so far (nbits until k are found)
    within = 0  # items found at distance <= radius
    scanned = 0  # items whose distance is known (every item of a run shares its run's)
    j = 0  # runs whose distance was computed (dbuf[j])
    n_scan = 0
    expanded = 0
    cur = 0
    qw = query_words[q, 0]
    leaf_level = n_levels - 1
    while True:
        while cur <= max_prefix and heads[cur] < 0:
            cur += 1
        # every node left has a prefix >= cur: once it exceeds the radius of k found items, nothing
        # below it can enter the result (not even as a tie), so the search is done
        if cur > max_prefix or (within >= k and (cur > radius or (max_codes > 0 and scanned >= max_codes))):
            break
        e = heads[cur]
        heads[cur] = ent_next[e]
        lev = ent_level[e]
        node = ent_node[e]
        if lev == leaf_level:  # a last-branching-level node (the root if none): its runs of equal codes
            lo = leaf_runs[node]
            hi = leaf_runs[node + 1]
            scan_lo[n_scan] = lo
            scan_hi[n_scan] = hi
            scan_prefix[n_scan] = cur
            n_scan += 1
            for r in range(lo, hi):
                if n_words == 1:
                    d = np.int64(_popcount(run_words[r, 0] ^ qw))
                else:
                    d = np.int64(_distance(query_words, q, run_words, r, n_words))
                count = run_offsets[r + 1] - run_offsets[r]
                dbuf[j] = d
                j += 1
                hist[d] += count
                if d <= radius:
                    within += count
            scanned += run_offsets[hi] - run_offsets[lo]
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
            qcode = query_levels[q, cl]
            threshold = _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, qcode, span, keep_ratio, child_dist,
                                        level_hist)
            for c in range(c0, c1):
                d = child_dist[c - c0]
                if d <= threshold:
                    p = cur + d
                    ent_level[n_ent] = cl
                    ent_node[n_ent] = c
                    ent_next[n_ent] = heads[p]
                    heads[p] = n_ent
                    n_ent += 1
    scanned_out[q] = scanned
    computed_out[q] = j
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
        # selection: the runs below the radius hold fewer than k items, sorted by (distance, id);
        # the ties at the radius are whole runs whose ids ascend, merged for the smallest ``need``
        n_keys = 0
        n_tie_runs = 0
        j = 0
        for t in range(n_scan):
            lo = scan_lo[t]
            hi = scan_hi[t]
            if scan_prefix[t] > radius:
                j += hi - lo
                continue
            for r in range(lo, hi):
                d = dbuf[j]
                j += 1
                if d < radius:
                    for pos in range(run_offsets[r], run_offsets[r + 1]):
                        keys[n_keys] = (np.uint64(d) << np.uint64(32)) | np.uint64(ids[pos])
                        n_keys += 1
                elif d == radius:
                    tie_runs[n_tie_runs] = r
                    n_tie_runs += 1
        if n_keys > 1:
            keys[:n_keys].sort()
        for i in range(n_keys):
            out_ids[q, i] = np.int64(keys[i] & np.uint64(0xFFFFFFFF))
            out_dist[q, i] = np.uint16(keys[i] >> np.uint64(32))
        _smallest_ids(ids, run_offsets, tie_runs, n_tie_runs, need, out_ids, q, below, heap_id, heap_pos, heap_end)
        for i in range(need):
            out_dist[q, below + i] = radius
    if wanted < k:  # the unreached items follow by database index, distance nbits + 1
        seen = np.zeros(n, np.bool_)
        for t in range(n_scan):
            for pos in range(run_offsets[scan_lo[t]], run_offsets[scan_hi[t]]):
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
                child_base, level_bits, leaf_runs, run_offsets, run_words, ids, k, keep_ratio, max_codes, nbits,
                n_nodes, n_chunks):
    """Top-k through HDHash's tree for every query (the rule of :class:`search.tree.TreeIndex`),
    the queries split into ``n_chunks`` contiguous chunks run in parallel (numba's threads: the
    caller sets their number with ``numba.set_num_threads``).

    Per level ``l`` the index's arrays are concatenated: level ``l``'s node codes are
    ``node_codes[node_base[l]:node_base[l + 1]]`` (one uint64 per node), and likewise the item
    offsets (``item_base``) and child offsets (``child_base``); ``n_nodes`` is the number of nodes
    of all levels. The codes are stored once per run of equal codes (``run_words``, the run's items
    ``run_offsets[r]:run_offsets[r + 1]`` of the layout ``ids``); the last branching level's node
    ``c`` holds runs ``leaf_runs[c]:leaf_runs[c + 1]``. Returns ``(ids, distances, scanned,
    computed, expanded)``: the ranking by (distance, id) of the candidates, unreached items
    filling a short list by database index with distance ``nbits + 1``; per query the items whose
    distance became known, the distances computed (runs) and the nodes expanded.
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
        ent_node = np.empty(n_nodes + 1, np.int64)
        ent_next = np.empty(n_nodes + 1, np.int64)
        child_dist = np.empty(n_nodes + 1, np.int64)
        scan_lo = np.empty(n_nodes + 1, np.int64)
        scan_hi = np.empty(n_nodes + 1, np.int64)
        scan_prefix = np.empty(n_nodes + 1, np.int64)
        level_hist = np.empty(max_span, np.int64)
        hist = np.empty(nbits + 3, np.int64)
        dbuf = np.empty(n_runs, np.uint8)
        tie_runs = np.empty(n_runs, np.int64)
        keys = np.empty(k, np.uint64)
        heap_id = np.empty(n_runs, np.int64)
        heap_pos = np.empty(n_runs, np.int64)
        heap_end = np.empty(n_runs, np.int64)
        for q in range(chunk * nq // n_chunks, (chunk + 1) * nq // n_chunks):
            _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                        child_base, level_bits, leaf_runs, run_offsets, run_words, ids, k, keep_ratio, max_codes,
                        nbits, out_ids, out_dist, scanned, computed, expanded, heads, ent_level, ent_node, ent_next,
                        child_dist, level_hist, hist, dbuf, scan_lo, scan_hi, scan_prefix, tie_runs, keys,
                        heap_id, heap_pos, heap_end)
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
