"""HDHash's tree index: multi-level codes searched coarse to fine (Zhang et al., ICPR 2020, Fig. 2).

A code is the concatenation of K level codes (default 8 + 16 + 40 bits, level 1 first, each a whole
number of bytes). The database is grouped by level-1 code (the root's children), each group by
level-2 code, and so on down to level K-1; the leaves under a level-(K-1) node hold the item ids
and their codes. Items are laid out sorted by (level 1, level 2, ..., level K, id), so every node
is a contiguous slice ``[start, end)`` of that order; per branching level the index stores the
unique node codes and CSR-like offsets (node -> items, parent -> children).

Search (one query): starting from the root, at each branching level l = 1 .. K-1 every surviving
parent ``p`` keeps its children nearest to the query's level-l code until they cover a
``keep_ratio`` share of ``p``'s items (the precise rule is in :class:`TreeIndex`); the items
under the surviving level-(K-1) nodes are scanned with the full code and ranked by
(full-code Hamming distance, database index), as PROTOCOL.md ranks. Items the tree never reaches
rank after all reached ones, by database index, with distance ``nbits + 1``.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from common.hamming import as_words
from search.base import Index, check_k, register_index

#: largest number of (query, node) or (query, item) pairs one batch step holds in memory
_BATCH_ELEMENTS = 1 << 21
#: longest run of equal codes stored as one (its length is a uint16)
_MAX_RUN = 65535
#: largest scratch (bytes allocated) a thread keeps between serial searches of one index (TreeIndex._scratch):
#: 1,000,000 64-bit codes need ~40 MB, 10,000,000 ~400 MB
_SCRATCH_KEPT_BYTES = 512 << 20
_THREAD_SCRATCH = threading.local()
#: where a tree search spends its time (TreeIndex.phase_shares), in the order of the kernel's cycle slots
#: (search.kernels.N_TREE_PHASE_SLOTS), the last being what the others leave of the whole query
PHASE_SHARES = ("expansions", "leaf scans", "counting", "selection", "queue")


def check_levels(levels, nbits: int) -> tuple[int, ...]:
    """``levels`` as a tuple of ints, or ValueError unless they are whole bytes summing to ``nbits``."""
    try:
        levels = tuple(levels)
    except TypeError:
        raise ValueError(f"levels must be a sequence of bit lengths, got {levels!r}") from None
    if not levels:
        raise ValueError("levels must name at least one level")
    for bits in levels:
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits <= 0 or bits % 8:
            raise ValueError(f"every level must be a positive multiple of 8 bits (whole bytes), got levels={levels}")
    if sum(levels) != nbits:
        raise ValueError(f"levels {levels} sum to {sum(levels)} bits, not nbits={nbits}; "
                         "pass levels that add up to the code length")
    return tuple(int(b) for b in levels)


def _level_values(code_bytes: np.ndarray) -> np.ndarray:
    """Packed level bytes ``(n, b)`` -> one unsigned integer per row (b <= 8) or uint64 words."""
    n, nbytes = code_bytes.shape
    if nbytes > 8:
        return as_words(code_bytes)
    width = next(w for w in (1, 2, 4, 8) if w >= nbytes)
    padded = np.zeros((n, width), np.uint8)
    padded[:, width - nbytes:] = code_bytes  # big-endian value; any fixed bijection would do
    return padded.view(f">u{width}").ravel().astype(f"u{width}")


def _popcount_xor(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between rows of ``a`` and ``b`` (same shapes), as uint16."""
    counts = np.bitwise_count(a ^ b)
    if counts.ndim == 2:
        return counts.sum(axis=1, dtype=np.uint16)
    return counts.astype(np.uint16, copy=False)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate the ranges ``[starts[i], starts[i] + lengths[i])`` without a Python loop."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def _offset_dtype(n: int):
    return np.int32 if n < 2**31 - 1 else np.int64


@register_index("tree")
class TreeIndex(Index):
    """HDHash tree over packed codes; ``search`` / ``rank`` as every index (:mod:`search.base`).

    Parameters
    ----------
    db_codes : uint8 array ``(n, nbits // 8)``, the concatenated level codes, level 1 first.
    levels : bit length of each level (multiples of 8 summing to ``nbits``), default HDHash's 8+16+40.
    keep_ratio : float in (0, 1], the share kept at each branching level (HDHash(0.3) is 0.3).
    max_codes : int >= 0, a budget for :meth:`search` only (0, the default: none). Nodes are opened
        best first (increasing prefix distance), leaves too under a budget; once k items are found
        and at least ``max_codes`` codes have known distances, no further node is opened. It trades recall for time more
        finely than ``keep_ratio``, whose kept distance shells of 8- and 16-bit level codes
        overshoot: on 1,000,000 Fashion-MNIST codes (top-1000) keep 1.0 with ``max_codes=10000``
        reached recall 0.973 computing 4,759 distances per query where keep 0.05 reached 0.959
        with 5,101; on fashion-mosaic (top-5000) ``max_codes=5000`` kept the tie-aware MAP@K of
        the exact search at recall 0.665 (``results/efficiency/``). ``rank`` (the MAP@all path)
        ranks every candidate and refuses a budget.

    ``keep_ratio`` (precise rule). At branching level l (1 .. K-1), for each surviving parent ``p``
    (the root at level 1) with ``N_p`` items, let ``d(c)`` be the Hamming distance between the
    query's level-l code and child ``c``'s, and ``t_p`` the smallest distance such that the children
    with ``d(c) <= t_p`` hold at least ``ceil(keep_ratio * N_p)`` items (float64 product). Exactly
    the children with ``d(c) <= t_p`` survive: whole distance ties are kept, so the result does not
    depend on the order of the nodes. The items under the surviving level-(K-1) nodes are the
    candidates ("visited"); all of them are scanned with the full code (dropping items whose full
    distance is already paid for could only lose neighbours).

    Why this rule:

    - ``keep_ratio=1.0`` keeps every child (``t_p`` is the largest distance), so the ranking is
      exactly the exhaustive one, ties included.
    - It is monotone as sets: for r' <= r each parent's target and so ``t_p`` can only shrink, and by
      induction over the levels the candidates for r' are a subset of those for r. A rule where the
      children of *all* surviving parents compete for one share of their items is not: a smaller
      ratio can drop a near branch at level l-1 and then have to take more items from far branches
      at level l.
    - It is a ratio per level, as the paper's HDHash(0.3) reads: the candidates are at least
      ``keep_ratio ** (K - 1)`` of the database (0.09 at 0.3 for 8+16+40; ties add a little), which is
      where the speedup comes from. For a target share ``s`` of the database reaching the leaves pass
      ``keep_ratio = s ** (1 / (K - 1))`` (:meth:`keep_ratio_for_share`).

    After ``rank`` or ``search``, ``last_visited`` holds per query the number of items scanned with
    the full code and ``last_nodes_visited`` ``(n_query, K - 1)`` the nodes whose level distance was
    computed at each branching level.
    """

    # distances: full-code Hamming distances (items ranked but not reached: nbits + 1)
    search_param_names = ("keep_ratio", "max_codes")

    @classmethod
    def check_search_params(cls, **params) -> dict:
        params = super().check_search_params(**params)
        if "keep_ratio" in params:
            ratio = params["keep_ratio"]
            try:
                params["keep_ratio"] = float(ratio)
            except (TypeError, ValueError):
                raise ValueError(f"keep_ratio must be a number in (0, 1], got {ratio!r}") from None
            if not (0.0 < params["keep_ratio"] <= 1.0):  # also refuses NaN
                raise ValueError(f"keep_ratio must be in (0, 1], got {ratio!r}")
        if "max_codes" in params:
            budget = params["max_codes"]
            if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
                raise ValueError(f"max_codes must be an integer >= 0 (0: no budget), got {budget!r}")
            params["max_codes"] = int(budget)
        return params

    def __init__(self, db_codes: np.ndarray, levels=(8, 16, 40), keep_ratio: float = 0.3, max_codes: int = 0):
        codes = self.check_database(db_codes)
        n, nbytes = codes.shape
        if n >= 2**32:
            raise ValueError("TreeIndex supports fewer than 2**32 database items")
        self.nbits = 8 * nbytes
        self.levels = check_levels(levels, self.nbits)
        self.set_search_params(keep_ratio=keep_ratio, max_codes=max_codes)

        words = as_words(codes)
        # lexicographic byte order = sort by (level 1, ..., level K); lexsort is stable, so ties by id
        be_words = words.byteswap() if np.little_endian else words
        order = np.lexsort(be_words.T[::-1]) if n else np.zeros(0, np.int64)
        sorted_codes = codes[order]
        off_dtype = _offset_dtype(n)
        self.ids = order.astype(np.uint32)
        # each code once per run of equal codes (class-clustered codes repeat: 1,000,000 Fashion-MNIST
        # HDHash codes are 348,134 runs), so a distance is computed once per run and a run at the
        # k-th distance is a block of ascending ids
        sorted_words = words[order]
        new_run = np.ones(n, bool)
        new_run[1:] = np.any(sorted_words[1:] != sorted_words[:-1], axis=1)
        # a run's length, not its offset, is stored (2 bytes a run, not 4: on fashion-mosaic's codes,
        # which rarely repeat, offsets alone cost 2.4 bytes a code); runs over 65,535 are split
        run_id = np.cumsum(new_run) - 1
        first = np.flatnonzero(new_run)
        new_run[np.flatnonzero((np.arange(n) - first[run_id]) % _MAX_RUN == 0)] = True
        run_starts = np.flatnonzero(new_run)
        self.run_len = np.diff(np.append(run_starts, n)).astype(np.uint16)
        self.run_words = np.ascontiguousarray(sorted_words[run_starts])
        if self.run_words.shape[1] == 1:
            self.run_words = self.run_words.ravel()

        # per branching level: node codes, node -> items offsets, parent -> children offsets
        self.node_codes: list[np.ndarray] = []
        self.item_offsets: list[np.ndarray] = []
        self.child_offsets: list[np.ndarray] = []
        changed = np.zeros(max(n - 1, 0), bool)
        parent_starts = np.array([0], np.int64)  # the root
        byte = 0
        for bits in self.levels[:-1]:
            level_bytes = sorted_codes[:, byte:byte + bits // 8]
            byte += bits // 8
            changed |= np.any(level_bytes[1:] != level_bytes[:-1], axis=1)
            starts = np.flatnonzero(np.concatenate([[n > 0], changed]))
            self.node_codes.append(_level_values(level_bytes[starts]))
            self.item_offsets.append(np.append(starts, n).astype(off_dtype))
            children = np.searchsorted(starts, np.append(parent_starts, n)) if n else np.zeros(2, np.int64)
            self.child_offsets.append(children.astype(off_dtype))
            parent_starts = starts
        if len(self.levels) == 1:  # no branching level: the root's one leaf holds every item
            self.item_offsets.append(np.array([0, n], off_dtype))
        # the last branching level's nodes (the root's one leaf if none) as ranges of runs
        self.leaf_runs = np.searchsorted(run_starts, self.item_offsets[-1]).astype(off_dtype)
        self._concatenate_levels()
        self.last_visited = np.zeros(0, np.int64)
        self.last_scanned = np.zeros(0, np.int64)
        self.last_distances = np.zeros(0, np.int64)
        self.last_expanded = np.zeros(0, np.int64)
        self.last_nodes_visited = np.zeros((0, len(self.levels) - 1), np.int64)

    def _concatenate_levels(self):
        """Keep each kind of per-level array in one buffer (the per-level arrays become views of
        it), which is the layout the compiled search (:func:`search.kernels.tree_search`) takes.
        Node codes are stored as one type for every level, uint32 where every branching level fits
        (8 and 16 bits by default: 4 bytes a node, not 8), else uint64; levels over 64 bits keep
        their word matrices and use the numpy path."""
        self._compiled = all(codes.ndim == 1 for codes in self.node_codes)
        if not self._compiled:
            return
        code_type = np.uint32 if max(self.levels[:-1], default=0) <= 32 else np.uint64
        for name, dtype in (("node_codes", code_type), ("item_offsets", None), ("child_offsets", None)):
            parts = getattr(self, name)
            if not parts:
                setattr(self, f"_{name}_base", np.zeros(1, np.int64))
                setattr(self, f"_{name}_all", np.zeros(0, dtype or np.int32))
                continue
            buffer = np.concatenate([p.astype(dtype or parts[0].dtype) for p in parts])
            base = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
            setattr(self, f"_{name}_all", buffer)
            setattr(self, f"_{name}_base", base)
            setattr(self, name, [buffer[base[i]:base[i + 1]] for i in range(len(parts))])
        self._max_nodes = max([len(codes) for codes in self.node_codes] + [1])

    # -- facts --------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Every array the index holds (its memory is exactly the sum of their ``nbytes``)."""
        out = {"ids": self.ids, "run_words": self.run_words, "run_len": self.run_len, "leaf_runs": self.leaf_runs}
        for level, (codes, items, children) in enumerate(
                zip(self.node_codes, self.item_offsets, self.child_offsets), start=1):
            out[f"level{level}_codes"] = codes
            out[f"level{level}_item_offsets"] = items
            out[f"level{level}_child_offsets"] = children
        if not self.node_codes:
            out["root_item_offsets"] = self.item_offsets[0]
        if self._compiled:  # the per-level arrays above are views of these buffers: count the bases only
            out.update({f"{name}_base": getattr(self, f"_{name}_base")
                        for name in ("node_codes", "item_offsets", "child_offsets")})
        return out

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays().values()))

    @property
    def n_nodes(self) -> tuple[int, ...]:
        """Number of nodes at each branching level (1 .. K-1)."""
        return tuple(len(c) for c in self.node_codes)

    def __len__(self):
        return len(self.ids)

    @staticmethod
    def keep_ratio_for_share(share: float, levels=(8, 16, 40)) -> float:
        """The per-level ``keep_ratio`` whose compounded product over the branching levels is ``share``."""
        branching = len(tuple(levels)) - 1
        return 1.0 if branching == 0 else float(share) ** (1.0 / branching)

    # -- search -------------------------------------------------------------------------------
    def _query_levels(self, query_codes: np.ndarray) -> np.ndarray:
        """The queries' branching-level codes, one uint64 per level (the compiled layout)."""
        query_levels, byte = np.zeros((len(query_codes), len(self.levels) - 1), np.uint64), 0
        for level, bits in enumerate(self.levels[:-1]):
            query_levels[:, level] = _level_values(query_codes[:, byte:byte + bits // 8])
            byte += bits // 8
        return query_levels

    def _search(self, query_codes: np.ndarray, k: int):
        """Top-``k`` ``(distances, ids)`` per query, the same as ``_rank(query_codes, k)``, through
        the compiled best-first search (:func:`search.kernels.tree_search`).

        The keep rule decides which nodes are candidates; of those, nodes are opened in increasing
        prefix distance (the sum of their level distances, a lower bound of every full distance
        below them; a leaf's parent scans its kept leaves when opened) and the search stops when
        the next prefix exceeds the distance of the k-th item found: nothing below such a node can
        enter the top k, not even as a tie, so the result is the keep rule's exactly while the
        codes paid for shrink (measured on 1,000,000 Fashion-MNIST codes, keep 1.0, leaves opened
        best first: 10.6% of the database, the exact top-1000). After it,
        ``last_scanned`` holds per query the items whose distance became known, ``last_distances``
        the distances computed (one per run of equal codes) and ``last_expanded`` the nodes whose
        children were scored; :meth:`candidates` counts the keep rule's whole candidate set."""
        if not self._compiled:
            return self._rank(query_codes, min(k, len(self)))
        import numba

        from search.kernels import tree_search, tree_search_serial

        args = self._kernel_args(query_codes, k)
        if len(query_codes) == 1 or numba.get_num_threads() == 1:
            result = tree_search_serial(*args, self._scratch(), np.zeros(0, np.int64))
        else:
            # chunks: a few per thread so one slow chunk (a query with many ties) does not hold the batch
            result = tree_search(*args, int(sum(self.n_nodes)), 4 * numba.get_num_threads(), self._key_type())
        ids, distances, scanned, computed, expanded = result
        self.last_scanned, self.last_distances, self.last_expanded = scanned, computed, expanded
        return distances, ids

    def phase_shares(self, query_codes, k: int) -> dict[str, float]:
        """Where the search of ``query_codes`` spends its time, as shares of the CPU's cycles: node
        expansions (the keep rule over a node's children), leaf scans (a distance per run), counting
        (the histogram the stop test reads), selection (the top ``k`` ranked) and the queue's own work
        (the rest); ``cycles_per_query`` beside them. One profiled pass on this thread, results as
        ``search``'s; a time measurement is ``search`` alone (the profile reads the cycle counter a few
        times per node). Empty where the search is not compiled or the CPU has no cycle counter."""
        from search.kernels import N_TREE_PHASE_SLOTS, tree_search_serial

        query_codes, k = self.check_queries(query_codes), check_k(k, "k")
        if not self._compiled or len(query_codes) == 0:
            return {}
        phases = np.zeros(N_TREE_PHASE_SLOTS, np.int64)
        tree_search_serial(*self._kernel_args(query_codes, k), self._scratch(), phases)
        total = int(phases[-1])
        if total <= 0:
            return {}
        shares = {name: int(cycles) / total for name, cycles in zip(PHASE_SHARES[:-1], phases[:-1])}
        shares[PHASE_SHARES[-1]] = max(0.0, 1.0 - sum(shares.values()))
        shares["cycles_per_query"] = total / len(query_codes)
        return shares

    def _kernel_args(self, query_codes: np.ndarray, k: int) -> tuple:
        """The arguments :func:`search.kernels.tree_search` and ``tree_search_serial`` share: the
        queries in the compiled layout, the index's arrays, ``k`` and the search settings."""
        return (self._query_levels(query_codes), as_words(query_codes), self._node_codes_all, self._node_codes_base,
                self._item_offsets_all, self._item_offsets_base, self._child_offsets_all, self._child_offsets_base,
                np.array(self.levels[:-1], np.int64), self.leaf_runs, self.run_len,
                self.run_words.reshape(len(self.run_words), -1), self.ids, int(k), float(self.keep_ratio),
                int(self.max_codes), self.nbits)

    def _key_type(self) -> np.ndarray:
        from search.kernels import sort_key_type

        return sort_key_type(len(self), self.nbits)

    def _scratch(self) -> tuple:
        """This thread's scratch for the serial search (:func:`search.kernels.tree_buffers`), kept
        between calls while it is at most ``_SCRATCH_KEPT_BYTES`` (allocated; only the pages queries
        touch become memory): a search of one query then costs its work, not ~60 us of allocation
        (1,000,000 fashion-mosaic codes). Per thread, since the search releases the GIL; dropped with
        the index. Not the index's memory (``nbytes``): faiss too allocates while it searches."""
        from search.kernels import tree_buffers

        kept = _THREAD_SCRATCH.__dict__.setdefault("by_index", weakref.WeakKeyDictionary())
        buffers = kept.get(self)
        if buffers is None:
            buffers = tree_buffers(len(self), len(self.run_len), int(sum(self.n_nodes)),
                                   np.array(self.levels[:-1], np.int64), self.nbits, self._key_type())
            if sum(b.nbytes for b in buffers) <= _SCRATCH_KEPT_BYTES:
                kept[self] = buffers
        return buffers

    def candidates(self, query_codes: np.ndarray) -> np.ndarray:
        """Per query, the items under the nodes the keep rule keeps (what ``rank`` reaches)."""
        query_codes = self.check_queries(query_codes)
        if not self._compiled:
            self._rank(query_codes, 1)
            return self.last_visited.copy()
        from search.kernels import tree_candidates

        return tree_candidates(self._query_levels(query_codes), self._node_codes_all, self._node_codes_base,
                               self._item_offsets_all, self._item_offsets_base, self._child_offsets_all,
                               self._child_offsets_base, np.array(self.levels[:-1], np.int64),
                               float(self.keep_ratio), self._max_nodes)

    def _rank(self, query_codes: np.ndarray, k: int):
        """``(distances, order)`` per query, the first ``k``: reached items by (distance, index), then
        the rest (distance ``nbits + 1``: the tree did not reach them)."""
        if self.max_codes:
            raise ValueError(f"max_codes={self.max_codes} bounds search() only; rank() ranks every candidate of "
                             "the keep rule: set max_codes=0 to rank")
        n_query = len(query_codes)
        order = np.empty((n_query, k), np.int64)
        distances = np.empty((n_query, k), np.uint16)
        self.last_visited = np.zeros(n_query, np.int64)
        self.last_nodes_visited = np.zeros((n_query, len(self.levels) - 1), np.int64)

        # query level codes in the index's representations
        query_levels, byte = [], 0
        for bits in self.levels[:-1]:
            query_levels.append(_level_values(query_codes[:, byte:byte + bits // 8]))
            byte += bits // 8
        query_words = as_words(query_codes)
        if query_words.shape[1] == 1:
            query_words = query_words.ravel()
        # the reference path scores every reached item: the codes per item, from the runs
        item_words = np.repeat(self.run_words, self.run_len, axis=0)

        batch = 16
        start = 0
        while start < n_query:
            stop = min(start + batch, n_query)
            work = self._rank_batch(query_levels, query_words, item_words, start, stop, k, order, distances)
            start = stop
            batch = int(np.clip(batch * _BATCH_ELEMENTS / max(work, 1), 1, 4096))
        return distances, order

    def _descend(self, query_levels, start: int, stop: int):
        """The keep rule over the branching levels for queries ``start:stop``: ``(query, lo, hi,
        largest step)``, one entry per surviving level-(K-1) node and query (sorted by query, then
        node) with the node's items ``[lo, hi)`` of the layout; counts ``last_nodes_visited``."""
        n_batch = stop - start
        work = 0
        # surviving (query, node) pairs at the current level, sorted by query then node
        pair_query = np.arange(n_batch)
        pair_node = np.zeros(n_batch, np.int64)  # the root
        pair_lo = np.zeros(n_batch, np.int64)  # the pair's items: [pair_lo, pair_hi) of the layout
        pair_hi = np.full(n_batch, len(self), np.int64)
        ratio = self.keep_ratio
        for level, bits in enumerate(self.levels[:-1]):
            children = self.child_offsets[level]
            first = children[pair_node].astype(np.int64)
            counts = children[pair_node + 1] - first
            child = _expand(first, counts)
            pair = np.repeat(np.arange(len(pair_node)), counts)
            query = pair_query[pair]
            work = max(work, len(child))
            self.last_nodes_visited[start:stop, level] = np.bincount(pair_query, counts, n_batch)
            offsets = self.item_offsets[level]
            item_lo, item_hi = offsets[child].astype(np.int64), offsets[child + 1].astype(np.int64)
            if ratio < 1.0:
                dist = _popcount_xor(self.node_codes[level][child], query_levels[level][start + query])
                # per parent: items at each level distance, cumulated; t_p = first distance reaching the target
                span = bits + 1
                hist = np.bincount(pair * span + dist, weights=item_hi - item_lo,
                                   minlength=len(pair_node) * span).reshape(len(pair_node), span)
                target = np.ceil(ratio * (pair_hi - pair_lo))
                threshold = (np.cumsum(hist, axis=1) < target[:, None]).sum(axis=1)
                keep = np.flatnonzero(dist <= threshold[pair])
                query, child, item_lo, item_hi = query[keep], child[keep], item_lo[keep], item_hi[keep]
            pair_query, pair_node, pair_lo, pair_hi = query, child, item_lo, item_hi
        return pair_query, pair_lo, pair_hi, work

    def _rank_batch(self, query_levels, query_words, item_words, start, stop, k, order, distances) -> int:
        """Rank queries ``start:stop`` into ``order`` / ``distances``; returns the largest step size."""
        n_batch = stop - start
        pair_query, item_lo, item_hi, nodes_work = self._descend(query_levels, start, stop)
        work = max(n_batch * k, nodes_work)

        # leaves: scan the items under the surviving nodes with the full code; merging adjacent
        # ranges of one query first makes the expansion cheap where whole runs of siblings survive
        counts = item_hi - item_lo
        reached = np.bincount(pair_query, counts, n_batch).astype(np.int64)
        self.last_visited[start:stop] = reached
        if len(counts):
            run = np.ones(len(counts), bool)
            run[1:] = (item_lo[1:] != item_hi[:-1]) | (pair_query[1:] != pair_query[:-1])
            run_start = np.flatnonzero(run)
            run_end = np.append(run_start[1:], len(counts)) - 1
            run_lo, run_len = item_lo[run_start], item_hi[run_end] - item_lo[run_start]
            position = _expand(run_lo, run_len)
            query = np.repeat(pair_query[run_start], run_len)
        else:
            position = query = np.zeros(0, np.int64)
        work = max(work, len(position))
        dist = _popcount_xor(item_words[position], query_words[start + query])

        # per query: the smallest distance D whose cumulated count reaches min(k, reached); the items
        # with distance <= D hold the top k, sorted below by one key (query, distance, id)
        wanted = np.minimum(k, reached)
        span = self.nbits + 1
        hist = np.bincount(query * span + dist, minlength=n_batch * span).reshape(n_batch, span)
        cut = (np.cumsum(hist, axis=1) < wanted[:, None]).sum(axis=1)
        chosen = np.flatnonzero(dist <= cut[query])
        keys = ((query[chosen].astype(np.uint64) << np.uint64(48))
                | (dist[chosen].astype(np.uint64) << np.uint64(32))
                | self.ids[position[chosen]].astype(np.uint64))
        keys.sort()
        per_query = np.bincount(query[chosen], minlength=n_batch)
        segment = np.cumsum(per_query) - per_query
        take = _expand(segment, wanted)
        row = np.repeat(np.arange(n_batch), wanted)
        col = take - np.repeat(segment, wanted)
        order[start + row, col] = (keys[take] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        distances[start + row, col] = ((keys[take] >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.uint16)

        # fewer than k reached: the unreached items follow by database index, distance nbits + 1
        short = np.flatnonzero(wanted < k)
        if len(short):
            bounds = np.concatenate([[0], np.cumsum(reached)])
            for q in short:
                unreached = np.ones(len(self), bool)
                unreached[self.ids[position[bounds[q]:bounds[q + 1]]]] = False
                order[start + q, wanted[q]:] = np.flatnonzero(unreached)[:k - wanted[q]]
                distances[start + q, wanted[q]:] = self.nbits + 1
        return work
