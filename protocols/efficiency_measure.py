"""What Table II measures per setting, and how: timings, the machine's load, accuracy, the reference scans.

Timings (:func:`time_batched`, :func:`time_single`: a warm-up, then repeats; the median and the
spread) and the process's peak RSS; whether the machine is quiet (:func:`load_average`,
:class:`OtherCpu`); accuracy against the exact top-K (:func:`distance_shells` and
:func:`kth_distances` from the exhaustive distance histogram, then :func:`accuracy`: recall with ties
allowed for, MAP@K, tie-aware MAP@K); and the scans that are not indexes (:func:`numpy_scan`, the one
the paper timed, and :func:`popcount_floor`), run over query chunks (:func:`chunked`); a run's
settings of all that (:class:`Measure`).
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from common.hamming import as_words, hamming_distances, paired_distances
from common.ranking import mean_average_precision, relevance, relevance_of, tie_aware_average_precision, tie_groups


# -- timing ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Milliseconds per query: the median, and the spread (the fastest and slowest repeat)."""

    ms: float
    low: float
    high: float


def time_batched(search, queries: np.ndarray, repeats: int) -> Timing:
    """The batch ``queries`` searched ``repeats`` times after a warm-up (a tenth of the batch)."""
    search(queries[: max(1, len(queries) // 10)])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        search(queries)
        times.append(1000.0 * (time.perf_counter() - start) / len(queries))
    return Timing(float(np.median(times)), float(np.min(times)), float(np.max(times)))


def time_single(search, queries: np.ndarray, repeats: int) -> Timing:
    """One query at a time (a batch of 1): the median over the queries of each one's median over
    ``repeats``; the spread is the fastest and slowest repeat's median over the queries."""
    search(queries[:1])
    times = np.empty((repeats, len(queries)))
    for r in range(repeats):
        for i in range(len(queries)):
            start = time.perf_counter()
            search(queries[i:i + 1])
            times[r, i] = 1000.0 * (time.perf_counter() - start)
    per_repeat = np.median(times, axis=1)
    return Timing(float(np.median(np.median(times, axis=0))), float(per_repeat.min()), float(per_repeat.max()))


def probe_ms(search, queries: np.ndarray) -> float:
    """ms per query of one untimed pass over ``queries`` (a warm-up that also sizes the row)."""
    start = time.perf_counter()
    search(queries)
    return 1000.0 * (time.perf_counter() - start) / len(queries)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


# -- is the machine quiet? -----------------------------------------------------------------------------
def load_average() -> float | None:
    """The one-minute load average (None where the system has none)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def settle_load(is_loaded, max_wait_s: float, poll_s: float = 5.0, sleep=time.sleep, read=load_average) -> float:
    """Wait while ``is_loaded(load average)`` holds, at most ``max_wait_s``; returns the seconds waited.
    Why: the one-minute load average lags the CPU by about a minute, so the rows timed right after the
    run's own training and encoding were marked loaded while no other process ran (Fashion-MNIST, 10^4
    codes at 0cfa6b0: load 1.54-2.00, other processes 0.00-0.08 cores)."""
    waited = 0.0
    while waited < max_wait_s and is_loaded(read()):
        sleep(poll_s)
        waited += poll_s
    return waited


class OtherCpu:
    """The CPU that other processes use while a row is measured, in cores: the machine's busy time
    (``/proc/stat``) less this process's own (every thread of it), over the wall time. None where
    ``/proc/stat`` cannot be read."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields[:8]) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # less idle and iowait
        own = os.times()
        return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter()

    def cores(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        return max(0.0, ((end[0] - self.start[0]) - (end[1] - self.start[1])) / (end[2] - self.start[2]))


# -- accuracy ----------------------------------------------------------------------------------------
def retrieved_distances(query_codes, db_codes, ids):
    """Hamming distances of the retrieved ids (-1 = nothing: distance +inf)."""
    valid = ids >= 0
    distances = paired_distances(query_codes[:, None, :], db_codes[np.where(valid, ids, 0)]).astype(np.float64)
    distances[~valid] = np.inf
    return distances


def label_ids(ids: np.ndarray, n_labels: int) -> np.ndarray:
    """The rows of the database's labels that ids have: code ``p`` is a copy of item ``p % n_labels``
    (:func:`protocols.efficiency_codes.scaled_codes`); -1 (nothing) stays -1."""
    return np.where(ids >= 0, ids % n_labels, -1)


@njit(inline="always")
def _popcount64(x):
    # the SWAR popcount, which LLVM compiles to one POPCNT where the CPU has it
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(parallel=True, nogil=True, cache=True)
def _shell_counts(query_words, db_words, relevant_to_item, nbits):
    n_query, n_words = query_words.shape
    n_db, n_items = db_words.shape[0], relevant_to_item.shape[1]
    items = np.zeros((n_query, nbits + 1), np.int64)
    relevant = np.zeros((n_query, nbits + 1), np.int64)
    for q in prange(n_query):
        item = 0
        for j in range(n_db):
            d = 0
            for w in range(n_words):
                d += _popcount64(query_words[q, w] ^ db_words[j, w])
            items[q, d] += 1
            if relevant_to_item[q, item]:
                relevant[q, d] += 1
            item += 1
            if item == n_items:
                item = 0
    return items, relevant


def distance_shells(query_codes, db_codes, query_labels, db_labels, nbits: int):
    """``(items, relevant)`` ``(n_query, nbits + 1)``: per query, the database items at each Hamming
    distance and how many of them share a label with the query (the tie groups of the exhaustive
    ranking). ``db_labels`` are the labels of the database's items; code ``p`` has those of item
    ``p % len(db_labels)`` (:func:`protocols.efficiency_codes.scaled_codes`). Compiled, in one pass
    over the codes per query, on every numba thread (not timed)."""
    relevant_to_item = relevance(query_labels, db_labels)
    return _shell_counts(as_words(query_codes), as_words(db_codes), relevant_to_item, int(nbits))


def kth_distances(shells, topk: int) -> np.ndarray:
    """The exact K-th distance per query, from the shells: the smallest d with at least K items at
    distances <= d (float64; +inf where the database holds fewer than K)."""
    reached = np.cumsum(shells[0], axis=1) >= topk
    return np.where(reached.any(axis=1), reached.argmax(axis=1), np.inf).astype(np.float64)


def accuracy(ids, query_codes, db_codes, query_labels, db_labels, kth_exhaustive, topk, shells=None):
    """``(recall, MAP@K, tie-aware MAP@K)`` of retrieved ``ids`` (n_query, K).

    Recall of the exact top-K, ties allowed for (protocols/README.md): the retrieved items at a
    distance at most the exact K-th distance, over K (at most 1; an empty slot, id -1, counts as a
    miss). Labels as in :func:`distance_shells` (code ``p`` has item ``p % len(db_labels)``'s).
    Tie-aware: the groups are the returned items' distances (what the index found); the group at the
    index's K-th distance is completed from ``shells`` (:func:`distance_shells`), every database item
    at that distance: exact for an exhaustive index, and for an approximate one the tie-break it
    would face had it reached that whole shell."""
    distances = retrieved_distances(query_codes, db_codes, ids)
    found = np.minimum((distances <= kth_exhaustive[:, None]).sum(axis=1), topk)
    relevant = relevance_of(query_labels, db_labels, label_ids(ids, len(db_labels)))
    tie_aware = float("nan")
    if shells is not None:
        kth = distances[:, -1]
        reachable = np.isfinite(kth)
        at = np.where(reachable, kth, 0).astype(np.int64)
        rows = np.arange(len(ids))
        in_list = (distances == kth[:, None]).sum(axis=1)
        in_list_relevant = ((distances == kth[:, None]) & relevant).sum(axis=1)
        boundary = np.where(reachable, np.maximum(shells[0][rows, at], in_list), in_list)
        boundary_relevant = np.where(reachable, np.maximum(shells[1][rows, at], in_list_relevant), in_list_relevant)
        sizes, rel = tie_groups(relevant, distances, topk, boundary, boundary_relevant)
        tie_aware = float(np.mean(tie_aware_average_precision(sizes, rel, topk)))
    return float(np.mean(found / topk)), mean_average_precision(relevant), tie_aware


# -- the reference scans ---------------------------------------------------------------------------------
def chunked(search, chunk: int = 16):
    """Run ``search`` over query chunks: exhaustive paths hold a (chunk, n_db) matrix, not (n_query, n_db)."""

    def run(query_codes):
        parts = [search(query_codes[i:i + chunk]) for i in range(0, len(query_codes), chunk)]
        return None if parts[0] is None else np.concatenate(parts)

    return run


def numpy_scan(db_codes: np.ndarray, topk: int):
    """The plain linear scan the paper timed: XOR + popcount per item, then the top K by partial
    sort. Ties at the K-th distance are taken by ascending index, as PROTOCOL.md ranks (an
    unstable partition picks other tied items, and MAP@K depends on which: measured 0.801 against
    0.813 on 207,000 Fashion-MNIST HashNet codes)."""
    def search(query_codes):
        distances = hamming_distances(query_codes, db_codes, chunk=1)
        k = min(topk, distances.shape[1])
        kth = np.partition(distances, k - 1, axis=1)[:, k - 1:k]
        below = distances < kth
        at_kth = distances == kth
        room = k - below.sum(axis=1, keepdims=True)
        chosen = below | (at_kth & (np.cumsum(at_kth, axis=1) <= room))
        ids = np.nonzero(chosen)[1].reshape(len(distances), k)  # index order within each row
        order = np.argsort(np.take_along_axis(distances, ids, axis=1), axis=1, kind="stable")
        return np.take_along_axis(ids, order, axis=1)

    return search


def popcount_floor(db_codes: np.ndarray):
    """The least a full scan must do: one XOR and popcount per database word, distances written,
    nothing ranked (compiled, like the exhaustive top-K it is compared with)."""
    from search.kernels import popcount_scan

    db_words = as_words(db_codes)

    def scan(query_codes):
        popcount_scan(as_words(query_codes), db_words)  # ranks nothing: no ids to score

    return scan


@dataclass
class Measure:
    """What :func:`protocols.efficiency_run.measure_setting` needs beside the search: the run's settings."""

    topk: int
    repeats: int
    timing_queries: int
    single_queries: int
    all_threads: int
    max_row_minutes: float
