"""Compiled inner loops of the search paths (numba).

numpy costs ~50 ns per visited item on the tree's query path (range expansion, gathers, popcount,
histogram and selection are separate passes with temporaries) against ~2 ns for faiss's SIMD scan,
so the top-k paths that efficiency is measured on run here as fused loops with the hardware popcount.
Ties are broken by ascending database index, as PROTOCOL.md ranks.

The tree (:func:`tree_search`), route chosen by measurement (``results/efficiency/``):

- best first, not level by level: nodes are opened in increasing prefix distance (the sum of their
  level distances, a lower bound of every full distance below them) from a bucket queue, and the
  search stops at the first prefix above the distance of the k-th item found. Descending every
  level for the keep rule first (an earlier kernel) scored every surviving node's children,
  thousands per query at keep 1.0, though the top k lies in a few of them. An expansion queues its
  kept children as one entry per level distance (at most level bits + 1), not one per child.
- best first down to the leaves' parents, not the leaves: a parent's kept children (those within
  the bound) are scanned when it is expanded, in layout order, adjacent ones as one range of up to
  ``_RANGE_RUNS`` runs. Opened best first, each leaf was a random read (a leaf is a few hundred
  bytes anywhere in the index: ~1.8 ns a run against 0.6 in layout order, measured alone), and on
  codes that rarely repeat the prefix bound prunes almost no leaf anyway. Scanning a child early
  changes no result (its items are at least the parent's prefix away, and the search stops only
  when the k-th distance found is below the current prefix), only how many codes are read: on
  1,000,000 synthetic fashion-mosaic-like codes (K=5000, one thread, same process, loaded 2-core
  Xeon, results identical) 2.30 -> 1.30 ms a query at keep 1.0 (1.48x the popcount floor per code,
  from 2.63x), 0.44 -> 0.40 at keep 0.3, 0.158 -> 0.157 at keep 0.1; on 1,000,000 Fashion-MNIST
  HDHash codes (K=1000) 0.028 -> 0.027, 0.023 -> 0.021, 0.017 -> 0.016 ms at keep 1.0 / 0.3 / 0.1,
  though 23% more codes are read at keep 1.0. The root's children, in a two-level tree, are still
  queued (scanning them at once would be a full scan), and so are the leaves under a code budget
  (``max_codes``: which codes it pays for depends on the order).
- one distance per run of equal codes: the layout is sorted by code, and class-clustered codes
  repeat (1,000,000 Fashion-MNIST HDHash codes are 348,134 runs), so a run at the k-th distance is
  a block of ascending ids. A run is stored as its code and its length (uint16), not its offset:
  fashion-mosaic's codes rarely repeat (605,536 runs in 1,000,000), and 4-byte offsets took the
  index over nbits / 8 + 4 bytes a code.
- nothing but the distance per run while scanning: on codes that rarely repeat a leaf holds a
  dozen runs, and the per-run bookkeeping of an earlier kernel (histogram, candidate list, radius
  update after every leaf) cost 4-15 ns a code against a popcount floor of 0.9. The scan writes
  each run's (length, distance) to a buffer; a second pass over it, at each new prefix only,
  counts items per distance into four interleaved histograms (runs of one leaf often share a
  distance: with one histogram each increment waited on the previous). The stop test needs
  nothing in between: the items scanned at prefix p are at least p away, so the items nearer than
  the current prefix change only when the prefix does. Where leaves are queued, siblings queued
  together whose runs are adjacent are scanned as one range, and an entry's leaves are prefetched
  before its scan.
- selection from the histogram: it gives the radius (the k-th distance) and where each distance's
  items start in the output, so only ids are sorted (an LSD radix sort over the id bits, then one
  stable placement by distance). The candidates are read from the few scanned ranges whose
  nearest run is within the radius. The ties at the radius, tens of thousands per query on
  class-clustered Fashion-MNIST codes, are taken smallest id first by a k-way merge of the tied
  runs (need * log(runs) steps) when they outnumber that, else sorted with the rest. Earlier
  kernels collected every tie (into a sort, then a bitmap over database ids; a bitmap with a
  distance per id measured slower than the sort for the items below the radius, its random
  accesses over 1,000,000 ids missing the cache); handing the leaves to faiss's heap search
  measured ~5x the popcount pass.

Against the kernel with per-run bookkeeping, on 1,000,000 synthetic clustered 64-bit codes at one
thread (same process, loaded 2-core machine, results identical): 1.4x faster per query where codes
repeat (Fashion-MNIST-like, K=1000), 1.2-1.8x where they rarely do (fashion-mosaic-like, K=5000;
1.5-1.8x at keep 0.3-1.0, where the scan dominates).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _ctpop(typingctx, x):
    """The hardware popcount (LLVM's ctpop: one POPCNT on x86-64 with the host's features)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@intrinsic
def _prefetch(typingctx, array, index):
    """Ask the cache for ``array[index]`` (its first element along the other axes) without waiting
    (LLVM's prefetch: read, keep in every level): the tree's leaves lie anywhere in memory, and
    requesting a group of them at once overlaps their misses."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array_value = context.make_array(array_type)(context, builder, args[0])
        first = context.cast(builder, args[1], signature.args[1], types.intp)
        indices = [first] + [context.get_constant(types.intp, 0)] * (array_type.ndim - 1)
        pointer = cgutils.get_item_pointer(context, builder, array_type, array_value, indices, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]), "llvm.prefetch.p0")
        builder.call(function, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (LLVM's readcyclecounter: RDTSC on x86-64; 0 where a target has none),
    read only when a search is profiled (:func:`tree_search_serial`'s ``phases``)."""
    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                                  "llvm.readcyclecounter")
        return builder.call(function, [])
    return types.uint64(), codegen


#: a profiled tree search's cycle slots (:func:`tree_search_serial`'s ``phases``): expansions, leaf scans,
#: counting, selection, then the whole query (the queue's own work is what the others leave);
#: :data:`search.tree.PHASE_SHARES` names them
N_TREE_PHASE_SLOTS = 5

#: adjacent kept leaves are scanned as one range of up to this many runs (a range is also what
#: selection keeps or skips by its nearest distance): on 1,000,000 fashion-mosaic-like codes, K=5000,
#: keep 1.0, one thread, 1 / 32 / 64 / 128 / 256 runs took 1.50 / 1.36 / 1.15 / 1.54 / 1.31 ms a query
#: (noisy, loaded machine; 64 best, the ranges' bookkeeping against selection reading runs beyond the radius)
_RANGE_RUNS = 64


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
    codes = node_codes[nb + c0:nb + c1]  # a slice: indices from 0 need no negative-index fix-up: it vectorises
    # one pass, the distances as bytes (a level's distance is at most 64): against two passes over
    # int64 distances, 23% less time in expansions (on 1,000,000 fashion-mosaic HDHash codes, K=5000,
    # one thread, keep 1.0; 27% at max_codes=25000, where expansions are half the time before selection)
    child_count[:span] = 0
    for i in range(c1 - c0):
        d = _popcount(codes[i] ^ qcode)
        child_dist[i] = np.uint8(d)
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
    child_dist = np.empty(max_nodes + 1, np.uint8)
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


@njit(inline="always")
def _radix_pass(src, dst, count, n_keys, shift, mask):
    """One stable LSD pass: ``src[:n_keys]`` into ``dst`` by the digit ``(key >> shift) & mask``,
    ``count`` holding each digit's next slot."""
    for i in range(n_keys):
        b = (src[i] >> shift) & mask
        dst[count[b]] = src[i]
        count[b] += 1


@njit(nogil=True, cache=True)
def _rank_by_distance_then_id(keys, tmp, count, n_keys, id_bits, d_lo, d_bits, out_ids, out_dist, q, wanted):
    """Write ``keys[:n_keys]`` (``(distance - d_lo) << id_bits | id``, ``d_bits`` bits above the id
    bits) to ``out_ids[q]`` and ``out_dist[q]`` ranked by (distance, id), the first ``wanted``: an LSD
    radix sort of the whole key in digits of at most 11 bits (every digit counted in one pass), so
    the sorted keys are the ranking. The keys are uint32 where the key fits (up to 2**25 items):
    half the memory each pass moves. Measured against sorting the ids and then placing each key at
    its distance's next slot (whose few counters each key waited on), one thread: 5,700 keys of a
    1,000,000-code database alone 11-12 ns a key instead of 15-17; the tree's search on 1,000,000
    fashion-mosaic-like codes, K=5000, 1.06-1.12x faster below keep 1.0 (keep 0.05: 0.238 -> 0.213
    ms a query), results identical."""
    total = id_bits + d_bits
    passes = (total + 10) // 11  # at most 4: ids < 2**32, distances < 2**7 above d_lo
    digit = (total + passes - 1) // passes
    buckets = 1 << digit
    mask = np.uint64(buckets - 1)
    count[:4 * buckets] = 0
    # the digits counted in one pass over the keys, unrolled (a loop over the digits cost ~25 %)
    c0, c1, c2, c3 = count[:buckets], count[buckets:2 * buckets], count[2 * buckets:3 * buckets], count[3 * buckets:]
    s1, s2, s3 = np.uint64(digit), np.uint64(2 * digit), np.uint64(3 * digit)
    if passes <= 2:
        for i in range(n_keys):
            key = np.uint64(keys[i])
            c0[key & mask] += 1
            c1[(key >> s1) & mask] += 1
    else:
        for i in range(n_keys):
            key = np.uint64(keys[i])
            c0[key & mask] += 1
            c1[(key >> s1) & mask] += 1
            c2[(key >> s2) & mask] += 1
            c3[(key >> s3) & mask] += 1
    for p in range(passes):
        acc = 0
        for b in range(p * buckets, (p + 1) * buckets):
            c = count[b]
            count[b] = acc
            acc += c
    src, dst = keys, tmp
    for p in range(passes):
        _radix_pass(src, dst, count[p * buckets:(p + 1) * buckets], n_keys, np.uint64(p * digit), mask)
        src, dst = dst, src
    id_mask = (np.uint64(1) << np.uint64(id_bits)) - np.uint64(1)
    for i in range(min(wanted, n_keys)):
        key = np.uint64(src[i])
        out_ids[q, i] = np.int64(key & id_mask)
        out_dist[q, i] = np.uint16(np.int64(key >> np.uint64(id_bits)) + d_lo)


@njit(inline="always")
def _scan_runs(run_words, run_len, query_words, q, r, hi, dist_buf, j):
    """The distances of runs ``r:hi`` to query ``q``, each run's ``length << 16 | distance``
    appended to ``dist_buf`` from ``j``; returns the new end of ``dist_buf``, the items scanned and
    the nearest distance. Indices are unsigned so that numba adds no negative-index fix-up to each
    access (it doubled this loop's cost)."""
    total = np.uint64(0)
    nearest = np.uint64(0xFFFF)
    n_words = run_words.shape[1]
    qw = query_words[q, 0]
    while r < hi:
        if n_words == 1:
            d = _popcount(run_words[r, 0] ^ qw)
        else:
            d = _distance(query_words, q, run_words, r, n_words)
        c = np.uint64(run_len[r])
        dist_buf[j] = np.uint32((c << np.uint64(16)) | d)
        total += c
        nearest = min(nearest, d)
        j += np.uint64(1)
        r += np.uint64(1)
    return j, np.int64(total), np.int64(nearest)


@njit(inline="always")
def _scan_leaves(first, stop, leaf_runs, run_words, run_len, query_words, q, dist_buf, j, scan_first, scan_stop,
                 scan_start, scan_near, n_scan, scanned):
    """Scan leaves ``first:stop`` (adjacent: one range of runs) and record the range where selection
    finds it (``scan_*[n_scan]``: its leaves, where its entries start in ``dist_buf``, its nearest
    distance); returns the new ends of ``dist_buf`` and of the ranges, and the items scanned so far."""
    scan_first[n_scan] = first
    scan_stop[n_scan] = stop
    scan_start[n_scan] = np.int64(j)
    j, total, nearest = _scan_runs(run_words, run_len, query_words, q, np.uint64(leaf_runs[first]),
                                   np.uint64(leaf_runs[stop]), dist_buf, j)
    scan_near[n_scan] = nearest
    return j, n_scan + 1, scanned + total


@njit(inline="always")
def _count_distances(dist_buf, start, stop, hist4, hist, span):
    """The second pass over the scan: the items of ``dist_buf[start:stop]`` per distance, added to
    ``hist``. Four interleaved histograms, summed at the end: consecutive runs (one leaf's) often
    share a distance, and with one histogram each increment waited on the previous one."""
    i = start
    while i + np.uint64(4) <= stop:
        for u in range(4):
            e = dist_buf[i + np.uint64(u)]
            hist4[u, e & np.uint32(0xFFFF)] += np.int64(e >> np.uint32(16))
        i += np.uint64(4)
    while i < stop:
        e = dist_buf[i]
        hist4[0, e & np.uint32(0xFFFF)] += np.int64(e >> np.uint32(16))
        i += np.uint64(1)
    for d in range(span):
        hist[d] += hist4[0, d] + hist4[1, d] + hist4[2, d] + hist4[3, d]
    hist4[:, :span] = 0


@njit(nogil=True, cache=True)
def _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                out_ids, out_dist, scanned_out, computed_out, expanded_out, buffers, phases):
    (heads, ent_level, ent_lo, ent_hi, ent_next, order, child_dist, level_hist, child_count, group_start, hist, hist4,
     dist_buf, scan_first, scan_stop, scan_start, scan_near, cand_first, cand_start, cand_stop, sel_pos, sel_run,
     heap_id, heap_pos, heap_end, keys, keys_tmp, radix_count) = buffers
    n = ids.shape[0]
    n_levels = level_bits.shape[0]
    leaf_level = n_levels - 1  # -1: no branching level, the root is the one leaf
    leaf_items = item_base[max(leaf_level, 0)]
    max_prefix = 0
    for lev in range(n_levels):
        max_prefix += level_bits[lev]
    span = nbits + 1
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
    hist[:span + 1] = 0
    hist4[:, :span] = 0
    cur = 0
    bound = max_prefix  # the distance of the k-th nearest item scanned (once k are): no node beyond is opened
    scanned = 0  # items whose distance is known (every item of a run shares its run's)
    expanded = 0
    n_scan = 0  # ranges of runs scanned: scan_first:scan_stop leaves, dist_buf[scan_start:...]
    j = np.uint64(0)  # runs scanned (entries of dist_buf)
    counted = np.uint64(0)  # entries of dist_buf already in hist
    # profiled (phases given): cycles per slot of N_TREE_PHASE_SLOTS; the checks cost nothing measurable otherwise
    profiling = phases.shape[0] > 0
    t_query = _cycles() if profiling else np.uint64(0)
    t_phase = np.uint64(0)
    done = False
    while not done:
        nxt = cur
        while nxt <= max_prefix and heads[nxt] < 0:
            nxt += 1
        if nxt > max_prefix:
            break
        if nxt != cur:
            # a new prefix: the items scanned at the previous ones are counted. Items found at
            # prefix p are at least p away, so the items nearer than the current prefix change only
            # here: once they are k (the k-th distance is below it), nothing left can enter the top k
            cur = nxt
            if profiling:
                t_phase = _cycles()
            _count_distances(dist_buf, counted, j, hist4, hist, span)
            if profiling:
                phases[2] += np.int64(_cycles() - t_phase)
            counted = j
            if scanned >= k:
                within = 0
                bound = 0
                while within + hist[bound] < k:
                    within += hist[bound]
                    bound += 1
                if bound < cur:
                    break
        e = heads[cur]
        heads[cur] = ent_next[e]
        lev = ent_level[e]
        o = ent_lo[e]
        if profiling:
            t_phase = _cycles()
        if lev == leaf_level:  # last-branching-level nodes: their runs of equal codes
            for p in range(o, ent_hi[e]):
                r = leaf_runs[order[p]]
                _prefetch(run_words, r)
                _prefetch(run_len, r)
            while o < ent_hi[e]:
                # a budget is checked per leaf, as it was documented; without one, siblings whose
                # runs are adjacent are one range (nothing is decided inside a prefix)
                if max_codes > 0 and scanned >= max_codes and scanned >= k:
                    done = True
                    break
                first = order[o]
                last = first
                o += 1
                while max_codes == 0 and o < ent_hi[e] and order[o] == last + 1:
                    last += 1
                    o += 1
                j, n_scan, scanned = _scan_leaves(first, last + 1, leaf_runs, run_words, run_len, query_words, q,
                                                  dist_buf, j, scan_first, scan_stop, scan_start, scan_near, n_scan,
                                                  scanned)
        else:  # the keep rule over each node's children; the survivors are queued by prefix
            while o < ent_hi[e]:
                if max_codes > 0 and scanned >= max_codes and scanned >= k:
                    done = True
                    break
                node = order[o]
                o += 1
                expanded += 1
                cl = lev + 1
                cb, ib, nb = child_base[cl], item_base[cl], node_base[cl]
                level_span = level_bits[cl] + 1
                c0 = child_offsets[cb + node]
                c1 = child_offsets[cb + node + 1]
                threshold = _keep_threshold(node_codes, nb, item_offsets, ib, c0, c1, query_levels[q, cl],
                                            level_span, keep_ratio, child_dist, child_count, level_hist)
                threshold = min(threshold, bound - cur)  # a child past the bound would never be opened
                if cl == leaf_level and lev >= 0 and max_codes == 0:
                    # a leaf parent below the root: its kept children are scanned now, in layout order,
                    # not queued (see the module's notes: scanned later, best first, each leaf was a
                    # random access into memory)
                    if profiling:
                        phases[0] += np.int64(_cycles() - t_phase)
                        t_phase = _cycles()
                    i = 0
                    while i < c1 - c0:
                        if child_dist[i] > threshold:
                            i += 1
                            continue
                        first = c0 + i
                        i += 1
                        while (i < c1 - c0 and child_dist[i] <= threshold
                               and leaf_runs[c0 + i] - leaf_runs[first] < _RANGE_RUNS):
                            i += 1
                        j, n_scan, scanned = _scan_leaves(first, c0 + i, leaf_runs, run_words, run_len, query_words,
                                                          q, dist_buf, j, scan_first, scan_stop, scan_start, scan_near,
                                                          n_scan, scanned)
                    if profiling:
                        phases[1] += np.int64(_cycles() - t_phase)
                        t_phase = _cycles()
                    continue
                # every child placed by distance (a counting sort; no branch on the threshold to
                # mispredict): the groups up to the threshold are queued, the rest lie past
                # n_order, overwritten by the next expansion
                slot = n_order
                for d in range(level_span):
                    group_start[d] = slot
                    if d <= threshold and child_count[d] > 0:
                        ent_level[n_ent] = cl
                        ent_lo[n_ent] = slot
                        ent_hi[n_ent] = slot + child_count[d]
                        ent_next[n_ent] = heads[cur + d]
                        heads[cur + d] = n_ent
                        n_ent += 1
                    slot += child_count[d]
                    if d == threshold:
                        n_order = slot
                for i in range(c1 - c0):
                    d = child_dist[i]
                    order[group_start[d]] = c0 + i
                    group_start[d] += 1
        if profiling:
            phases[1 if lev == leaf_level else 0] += np.int64(_cycles() - t_phase)
    if profiling:
        t_phase = _cycles()
    _count_distances(dist_buf, counted, j, hist4, hist, span)
    if profiling:
        phases[2] += np.int64(_cycles() - t_phase)
        t_phase = _cycles()
    scan_start[n_scan] = np.int64(j)
    scanned_out[q] = scanned
    computed_out[q] = np.int64(j)
    expanded_out[q] = expanded
    # the queue ran dry before k were found: every candidate was scanned, the list is short
    wanted = min(k, scanned)
    if wanted > 0:
        radius = 0  # the k-th distance: the smallest whose items and nearer ones are at least wanted
        within = hist[0]
        while within < wanted:
            radius += 1
            within += hist[radius]
        below = within - hist[radius]
        need = wanted - below
        id_bits = _bits_for(n)  # database ids < n
        # the items within the radius lie in the few scanned ranges whose nearest run is within
        # (on fashion-mosaic-like codes ~250 of ~13,000), in memory the scan did not touch (item
        # offsets, ids): each group of addresses is prefetched before it is read
        n_cand = 0
        for t in range(n_scan):
            if scan_near[t] <= radius:
                cand_first[n_cand] = scan_first[t]
                cand_start[n_cand] = scan_start[t]
                cand_stop[n_cand] = scan_start[t + 1]
                _prefetch(item_offsets, leaf_items + scan_first[t])
                n_cand += 1
        n_sel = 0  # their runs within the radius: first item and (length << 16 | distance)
        for t in range(n_cand):
            pos = np.int64(item_offsets[leaf_items + cand_first[t]])
            for i in range(cand_start[t], cand_stop[t]):
                e = np.int64(dist_buf[i])
                sel_pos[n_sel] = pos
                sel_run[n_sel] = e
                n_sel += (e & 0xFFFF) <= radius  # kept by advancing the count: no branch
                pos += e >> 16
        for t in range(n_sel):
            _prefetch(ids, sel_pos[t])
        # the items nearer than the radius become sort keys (distance, id), the distance counted from
        # the nearest scanned (d_lo); the runs at the radius are set aside (their first and end
        # positions, in sel_pos / sel_run from the front)
        d_lo = 0
        while hist[d_lo] == 0:
            d_lo += 1
        n_keys = 0
        n_tie = 0
        for t in range(n_sel):
            pos = sel_pos[t]
            count = sel_run[t] >> 16
            d = sel_run[t] & 0xFFFF
            if d < radius:
                head = np.uint64(d - d_lo) << np.uint64(id_bits)
                for p in range(pos, pos + count):
                    keys[n_keys] = head | np.uint64(ids[p])
                    n_keys += 1
            else:
                sel_pos[n_tie] = pos
                sel_run[n_tie] = pos + count
                n_tie += 1
        # the ties at the radius (hist[radius] items, tens of thousands on class-clustered codes) join
        # the sort when few; when many, the smallest ``need`` ids come from a k-way merge of their runs
        merge = hist[radius] > need * (_bits_for(n_tie) + 1)
        if not merge:
            head = np.uint64(radius - d_lo) << np.uint64(id_bits)
            for t in range(n_tie):
                for p in range(sel_pos[t], sel_run[t]):
                    keys[n_keys] = head | np.uint64(ids[p])
                    n_keys += 1
        _rank_by_distance_then_id(keys, keys_tmp, radix_count, n_keys, id_bits, d_lo, _bits_for(radius - d_lo + 1),
                                  out_ids, out_dist, q, wanted)
        if merge:
            _smallest_ids(ids, sel_pos, sel_run, n_tie, need, out_ids, q, below, heap_id, heap_pos, heap_end)
            for i in range(need):
                out_dist[q, below + i] = radius
    if wanted < k:  # the unreached items follow by database index, distance nbits + 1
        seen = np.zeros(n, np.bool_)
        for t in range(n_scan):
            for pos in range(item_offsets[leaf_items + scan_first[t]], item_offsets[leaf_items + scan_stop[t]]):
                seen[ids[pos]] = True
        i = 0
        for jj in range(wanted, k):
            while seen[i]:
                i += 1
            out_ids[q, jj] = i
            out_dist[q, jj] = nbits + 1
            i += 1
    if profiling:
        phases[3] += np.int64(_cycles() - t_phase)
        phases[4] += np.int64(_cycles() - t_query)


def sort_key_type(n: int, nbits: int) -> np.ndarray:
    """The dtype of :func:`tree_search`'s sort keys for ``n`` items of ``nbits``-bit codes, as an empty
    array: uint32 where a key (an id and a distance above the nearest) always fits, else uint64; the
    widths as the search computes them (``_bits_for``: ids < n, distances 0 .. nbits)."""
    return np.empty(0, np.uint32 if _bits_for(n) + _bits_for(nbits + 1) <= 32 else np.uint64)


@njit(nogil=True, cache=True)
def tree_buffers(n, n_runs, n_nodes, level_bits, nbits, key_type):
    """The scratch :func:`_tree_query` works in, sized for the worst query on an index of ``n``
    items, ``n_runs`` runs and ``n_nodes`` nodes: one set per thread. Only the pages a query touches
    become memory; :func:`tree_search_serial` takes a set kept between calls."""
    max_span = 1
    total_bits = 0
    for lev in range(level_bits.shape[0]):
        max_span = max(max_span, level_bits[lev] + 1)
        total_bits += level_bits[lev]
    return (np.empty(total_bits + 1, np.int64),  # heads
            np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64),  # ent_level, ent_lo
            np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64),  # ent_hi, ent_next
            np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.uint8),  # order, child_dist
            np.empty(max_span, np.int64), np.empty(max_span, np.int64), np.empty(max_span, np.int64),
            np.empty(nbits + 3, np.int64), np.empty((4, nbits + 2), np.int64),  # hist, hist4
            np.empty(n_runs + 1, np.uint32),  # dist_buf
            np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64),  # scan_first, scan_stop
            np.empty(n_nodes + 2, np.int64), np.empty(n_nodes + 1, np.int64),  # scan_start, scan_near
            np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64),  # cand_first, cand_start
            np.empty(n_nodes + 1, np.int64),  # cand_stop
            np.empty(n_runs + 1, np.int64), np.empty(n_runs + 1, np.int64),  # sel_pos, sel_run
            np.empty(n_runs, np.int64), np.empty(n_runs, np.int64), np.empty(n_runs, np.int64),  # the merge's heap
            np.empty(n, key_type.dtype), np.empty(n, key_type.dtype),  # keys, keys_tmp
            np.empty(4 * 2048, np.int64))  # radix_count


@njit(nogil=True, cache=True)
def _tree_outputs(nq, k):
    return (np.empty((nq, k), np.int64), np.empty((nq, k), np.uint16), np.zeros(nq, np.int64),
            np.zeros(nq, np.int64), np.zeros(nq, np.int64))


@njit(nogil=True, parallel=True, cache=True)
def tree_search(query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                n_nodes, n_chunks, key_type):
    """Top-k through HDHash's tree for every query (the rule of :class:`search.tree.TreeIndex`),
    the queries split into ``n_chunks`` contiguous chunks run in parallel (numba's threads: the
    caller sets their number with ``numba.set_num_threads``), each chunk with its own scratch
    (:func:`tree_buffers`).

    Per level ``l`` the index's arrays are concatenated: level ``l``'s node codes are
    ``node_codes[node_base[l]:node_base[l + 1]]``, and likewise the item offsets (``item_base``)
    and child offsets (``child_base``); ``n_nodes`` is the number of nodes of all levels. The
    codes are stored once per run of equal codes (``run_words``; the run's ``run_len[r]`` items
    follow one another in the layout ``ids``); the last branching level's node ``c`` holds runs
    ``leaf_runs[c]:leaf_runs[c + 1]``, starting at its first item. Returns ``(ids, distances,
    scanned, computed, expanded)``: the ranking by (distance, id) of the candidates, unreached
    items filling a short list by database index with distance ``nbits + 1``; per query the items
    whose distance became known, the distances computed (runs) and the nodes expanded.
    ``key_type`` (an empty array, :func:`sort_key_type`) gives the dtype of the final sort's keys.
    """
    n = ids.shape[0]
    nq = query_words.shape[0]
    k = min(k, n)
    out_ids, out_dist, scanned, computed, expanded = _tree_outputs(nq, k)
    n_chunks = max(1, min(n_chunks, nq))
    for chunk in prange(n_chunks):
        buffers = tree_buffers(n, run_words.shape[0], n_nodes, level_bits, nbits, key_type)
        for q in range(chunk * nq // n_chunks, (chunk + 1) * nq // n_chunks):
            _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                        child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes,
                        nbits, out_ids, out_dist, scanned, computed, expanded, buffers, np.zeros(0, np.int64))
    return out_ids, out_dist, scanned, computed, expanded


@njit(nogil=True, cache=True)
def tree_search_serial(query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                       child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                       buffers, phases):
    """:func:`tree_search` on the calling thread, in the scratch ``buffers`` (:func:`tree_buffers`,
    kept by the caller between calls). A search of one query pays neither the scratch's allocation
    (its first touch of each page: ~60 us a call on 1,000,000 fashion-mosaic codes) nor the start of
    numba's threads (milliseconds where the other cores are busy). ``phases``: an empty int64 array, or
    one of ``N_TREE_PHASE_SLOTS`` to which every query's cycles per phase are added (profiling)."""
    nq = query_words.shape[0]
    k = min(k, ids.shape[0])
    out_ids, out_dist, scanned, computed, expanded = _tree_outputs(nq, k)
    for q in range(nq):
        _tree_query(q, query_levels, query_words, node_codes, node_base, item_offsets, item_base, child_offsets,
                    child_base, level_bits, leaf_runs, run_len, run_words, ids, k, keep_ratio, max_codes, nbits,
                    out_ids, out_dist, scanned, computed, expanded, buffers, phases)
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
