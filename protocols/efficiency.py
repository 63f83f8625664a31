"""Efficiency protocol (Table II): search time, memory and scaling on real codes.

    python -m protocols.efficiency --dataset fashion-mnist --db-sizes 10000,100000,1000000
    python -m protocols.efficiency --dataset fashion-mnist --db-sizes 100000000 --generate-past 1000000 --dry-run

The database grows beyond the dataset by encoding seeded transformed copies of its database images
(shifts, flips, noise) through the trained models, so the codes keep their real distribution; past
``--generate-past`` codes it grows at the code level instead (:func:`generated_codes`: each source
code with its bits flipped at the rates its encoded copies showed, calibrated on the encoded codes;
written down in ``protocols/README.md``). On the same codes, single-threaded (faiss, torch, BLAS and
numba threads = 1), with a warm-up then ``--repeats`` timed runs (median, and the spread min/max),
it times: a plain numpy linear scan and faiss's ``IndexBinaryFlat`` at every setting a user would try
(``use_heap`` on and off, ``query_batch_size``; the fastest per query, batched or one query at a
time, is "faiss flat (best)", the baseline every ratio is quoted against) on HashNet's 64-bit codes;
faiss's sublinear binary indexes over their build and search parameters (hash widths and flips,
multi-hash tables, IVF lists x probes, HNSW links x efSearch); HDHash's tree over a keep-ratio
sweep and code budgets on HDHash's 8+16+40-bit codes; and the project's own exhaustive Hamming
ranking (the MAP@all path) beside a popcount floor.

Each row: ms per query batched at one thread (median, min, max over the repeats), at every core
(queries in parallel), and one query at a time (``--single-queries`` queries, batch of 1), recall of
the exact top-K (a retrieved item counts when its distance is at most the exact K-th distance, so
items tied at the K-th distance count whichever of them an index returns, as in ann-benchmarks;
capped at K), the share of the K slots filled, MAP@K (id order inside ties) and the tie-aware MAP@K
(:func:`common.ranking.tie_aware_average_precision`: the expected AP@K over every order inside each
group of equal distances), exact index bytes, the process's peak RSS so far, build time, the load
average before and after and the CPU other processes used meanwhile; for the tree the candidates of
its keep rule and the codes it computed a distance for. A setting this machine cannot run (its index
would not fit in memory, IVF's k-means would train for over ``--max-train-minutes``, its row would
take over ``--max-row-minutes``, HNSW past 10^7 codes) is a row of its own with the reason
(``left_out``), never silently missing.

The grid of indexes and settings is data (:func:`default_grid`); :func:`run_efficiency` is the
library call, ``main`` parses flags and writes the tables (:mod:`protocols.efficiency_report`).
Bad input is refused in one line before any training: every flag (:func:`validate`), then, with the
dataset loaded, a database smaller than K and a plan whose estimated time, memory or cache exceed
what this machine has (:func:`check_plan`; ``--force`` runs it anyway; ``--dry-run`` prints the
plan, what it leaves out and why, and its estimates, without fitting anything).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit, prange

from common.files import atomic_save_npy, cache_dir
from common.hamming import as_words, hamming_distances, paired_distances
from common.provenance import git_state, library_versions, machine_info, now_utc
from common.ranking import mean_average_precision, relevance, relevance_of, tie_aware_average_precision, tie_groups
from common.threads import pin_threads
from protocols.efficiency_frame import LOADED_PER_CORE

PROG = "python -m protocols.efficiency"
DEFAULT_KEEP_RATIOS = "0.05,0.1,0.2,0.3,0.5,1.0"

# What the plan (:func:`plan_builds`, :func:`check_plan`) estimates with: costs measured for Table II
# on this project's 2-core AMD EPYC at one thread (results/efficiency/*.csv, the stored run at
# 10,000 to 1,000,000 codes; the slower of Fashion-MNIST and fashion-mosaic), rounded up. They refuse
# or leave out what cannot run here and size a run; they are not timings.
#: encoding one database image through a model, per pixel (70,000 Fashion-MNIST images of 784 pixels
#: in 5.1-30 s, 20,000 fashion-mosaic images of 3,136 pixels in 9-27 s: 0.1-0.5 us a pixel); both
#: methods encode every encoded code (the copies are cached: a rerun encodes nothing)
ENCODE_S_PER_PIXEL = 0.1e-6
#: growing one code bit at the code level (:func:`generated_codes`)
GENERATE_S_PER_BIT = 2e-9
#: the exact distance shells (:func:`distance_shells`): one query against one code, compiled, every core
SHELL_S_PER_CODE = 1.5e-9
#: faiss's flat scan, one query against one code: 1.5 ns at K=1000 (Fashion-MNIST), 3.6 ns at K=5000
#: (fashion-mosaic), at 1,000,000 codes
FLAT_S_PER_CODE, FLAT_S_PER_CODE_PER_K = 1.0e-9, 0.52e-12
#: what the process holds besides the database (libraries, dataset, models: 1,245 MB on Fashion-MNIST,
#: 1,608 MB on fashion-mosaic at 10,000 codes)
BASE_RSS_BYTES = 1.7e9
#: the peak RSS of a reference scan beyond the codes, per code (numpy's scan: 16 queries x (distances,
#: partition, masks, cumsum); the full stable ranking: 8,891 MB peak at 1,000,000 codes)
SCAN_BYTES_PER_CODE = {"numpy-scan": 540, "exhaustive-full": 7000}
#: faiss's hash tables in memory (RSS measured here on 1,000,000 random 64-bit codes, every key
#: distinct: IndexBinaryHash b=32 155 bytes a code, b=16 35; IndexBinaryMultiHash 2 x 32 bits 191,
#: 4 x 16 bits 88): per distinct key of a table, and per code the ids (and codes) with vectors' slack
HASH_KEY_BYTES, MULTIHASH_KEY_BYTES, HASH_SLACK = 140, 90, 1.75
#: HDHash's tree: 10.7 bytes a code built (fashion-mosaic, 1,000,000 codes), 71 held in RSS after its
#: build (measured here), more while it sorts
TREE_BYTES_PER_CODE, TREE_BUILD_BYTES_PER_CODE = 12, 100
#: build seconds: per code (faiss-hash 0.05 s, faiss-multihash 0.3 s with 4 tables, the tree 0.2 s,
#: HNSW with M=16 46 s at 1,000,000 codes); IVF's k-means per nlist^2 (50 training codes a list,
#: 20.7 s at nlist=4,000) and its assignment per code and list
BUILD_S_PER_CODE = {"faiss-flat": 1e-9, "hamming": 0.0, "faiss-hash": 60e-9, "faiss-multihash": 80e-9,
                    "tree": 0.25e-6, "faiss-hnsw": 46e-6}
IVF_TRAIN_S_PER_NLIST2, IVF_ADD_S_PER_CODE_LIST = 1.3e-6, 0.5e-9
#: the share of this machine's memory a plan may count on
MEMORY_SHARE = 0.85
#: the longest estimated run accepted without --force
MAX_HOURS = 24
#: a row's default time limit (build and every timed search), and IVF's training limit (issue 30: the
#: lists that train within 10 minutes here)
MAX_ROW_MINUTES, MAX_TRAIN_MINUTES = 45.0, 10.0


# -- the database at scale -------------------------------------------------------------------------
def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A transformed copy of ``images`` (n, C, H, W) in [0, 1]: a random shift of up to 2 pixels
    (zero fill), a horizontal flip with probability 1/2, Gaussian noise (sigma 0.03), clipped."""
    n, _, height, width = images.shape
    out = np.zeros_like(images)
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            if not len(rows):
                continue
            src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
            src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
            out[rows, :, dst_y, dst_x] = images[rows, :, src_y, src_x]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, :, ::-1]
    out += rng.normal(0.0, 0.03, size=out.shape).astype(out.dtype)
    return np.clip(out, 0.0, 1.0, out=out)


def copy_rng(seed: int, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, copy])


#: the code-level generator's name in every record it made (raise it when its output changes)
GENERATOR = "bitflip-v1"
#: the generator's random stream: ``default_rng([seed, GENERATOR_STREAM, copy])``, apart from the
#: image augmentation's ``[seed, copy]``
GENERATOR_STREAM = 0x6E6


def flip_rates(codes: np.ndarray, n_base: int) -> tuple[np.ndarray, np.ndarray]:
    """The generator's calibration: ``(rates (n_base, nbits) float32, copies (n_base,))``. Code ``p``
    of an encoded database is a copy of source item ``p % n_base`` (copy 0 is the source itself);
    ``rates[i, b]`` is the share of item i's encoded copies whose bit b differs from the source's."""
    codes = np.asarray(codes)
    if len(codes) < 2 * n_base:
        raise ValueError(f"the generator is calibrated on encoded copies: {len(codes):,} codes hold no full copy "
                         f"of the {n_base:,} source items")
    source_bits = np.unpackbits(codes[:n_base], axis=1)
    flips = np.zeros(source_bits.shape, np.int64)
    copies = np.zeros(n_base, np.int64)
    for start in range(n_base, len(codes), n_base):
        part = np.unpackbits(codes[start:start + n_base], axis=1)
        flips[:len(part)] += part != source_bits[:len(part)]
        copies[:len(part)] += 1
    return (flips / copies[:, None]).astype(np.float32), copies


def generated_codes(source: np.ndarray, rates: np.ndarray, start: int, stop: int, seed: int) -> np.ndarray:
    """Codes at positions ``[start, stop)`` of a database grown at the code level: position ``p`` is
    copy ``p // n_base`` of source item ``i = p % n_base``, its code the source's with each bit b
    flipped independently with probability ``rates[i, b]`` (:func:`flip_rates`). Each copy draws from
    its own seeded stream, so a code does not depend on which range is asked for."""
    n_base = len(source)
    out = np.empty((stop - start, source.shape[1]), np.uint8)
    for copy in range(start // n_base, (stop - 1) // n_base + 1 if stop > start else 0):
        rng = np.random.default_rng([seed, GENERATOR_STREAM, copy])
        flips = rng.random(rates.shape, dtype=np.float32) < rates
        codes = source ^ np.packbits(flips, axis=1)
        lo, hi = max(start, copy * n_base), min(stop, (copy + 1) * n_base)
        out[lo - start:hi - start] = codes[lo - copy * n_base:hi - copy * n_base]
    return out


def scaled_codes(method, images: np.ndarray, size: int, seed: int, cache_key: str,
                 generate_past: int | None = None) -> np.ndarray:
    """Codes of ``size`` items: the database itself, then transformed copies of it, encoded through
    ``method`` (each copy's codes cached under ``.cache/efficiency/``), up to ``generate_past`` codes;
    past that, grown at the code level (:func:`generated_codes`) from the database's own codes with
    the flip rates of the encoded copies. Code ``p`` is a copy of database item ``p % len(images)``
    and has its labels."""
    from tqdm import tqdm

    n = len(images)
    encoded = size if generate_past is None else min(size, generate_past)
    folder = cache_dir() / "efficiency"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for copy in tqdm(range(math.ceil(encoded / n)), desc=f"codes {method.name}", unit="copy", file=sys.stderr,
                     leave=False):
        path = folder / f"{cache_key}-copy{copy}.npy"
        if path.is_file():
            codes = np.load(path)
        else:
            batch = images if copy == 0 else augment(images, copy_rng(seed, copy))
            codes = method.encode(batch)
            atomic_save_npy(path, codes)
        parts.append(codes)
    codes = np.concatenate(parts)[:encoded]
    if encoded == size:
        return codes
    rates, _ = flip_rates(codes, n)
    grown = np.empty((size, codes.shape[1]), np.uint8)
    grown[:encoded] = codes
    step = 64 * n  # a few copies at a time: the draws of one copy are (n, nbits) float32
    for start in range(encoded, size, step):
        grown[start:min(size, start + step)] = generated_codes(codes[:n], rates, start, min(size, start + step),
                                                               seed)
    return grown


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
    (:func:`scaled_codes`); -1 (nothing) stays -1."""
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
    ``p % len(db_labels)`` (:func:`scaled_codes`). Compiled, in one pass over the codes per query,
    on every numba thread (not timed)."""
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



# -- the grid ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """What a grid's settings depend on: the database size, the code length and K."""

    size: int
    nbits: int
    topk: int


@dataclass(frozen=True)
class GridRow:
    """One family of Table II rows. ``row`` names it in the CSV; ``side`` says whose codes it
    searches (``baseline``: the baseline method's codes; ``tree``: the tree method's multi-level
    codes); ``index`` is a registry index (:mod:`search`), built once per entry of ``builds`` (named
    in each row's ``params``) with the ``fixed`` build arguments and the method's own build
    parameters, then searched at each entry of ``searches``; or None for a reference scan of
    :data:`SCANS`. ``builds`` and ``searches`` are tuples of dicts, or functions giving them from the
    :class:`Scale` (``searches`` also from the build: IVF's nprobe is at most its nlist). ``cost``
    sizes the plan (:func:`search_seconds`); ``always``: the baseline, never left out for time;
    ``max_size``: the largest database it runs on."""

    row: str
    side: str
    index: str | None = None
    searches: object = ({},)
    builds: object = ({},)
    fixed: tuple = ()
    cost: tuple = ("flat", 1.0)
    always: bool = False
    max_size: int | None = None

    def settings(self, scale: Scale) -> list[tuple[dict, list[dict]]]:
        """``[(build, [search, ...]), ...]`` at ``scale``, in the order the rows are shown."""
        builds = self.builds(scale) if callable(self.builds) else self.builds
        return [(dict(build), [dict(s) for s in (self.searches(scale, build) if callable(self.searches)
                                                 else self.searches)]) for build in builds]


def setting_label(build: dict, search: dict) -> str:
    """A row's ``params``: its build settings, then its search settings (``nlist=1000,nprobe=4``)."""
    return ",".join(f"{name}={value}" for name, value in {**build, **search}.items())


def _hash_builds(scale: Scale):
    # a quarter, three eighths and half the code as the bucket key (16, 24 and 32 of 64 bits)
    return [{"hash_bits": b} for b in sorted({max(1, scale.nbits * eighths // 8) for eighths in (2, 3, 4)})]


def _multihash_builds(scale: Scale):
    # multi-index hashing's disjoint substrings: 2, 4 or 8 tables of nbits / nhash bits
    return [{"nhash": h, "hash_bits": scale.nbits // h} for h in (2, 4, 8) if scale.nbits // h >= 1]


def _flips(scale: Scale, build: dict, most: int):
    return [{"nflip": f} for f in range(most + 1) if f <= build["hash_bits"]]


def _ivf_builds(scale: Scale):
    # issue 30: sqrt(n), 4 sqrt(n) and 16 sqrt(n) lists (faiss's k-means needs a point per list)
    return [{"nlist": nlist} for nlist in sorted({min(scale.size, max(1, round(f * math.sqrt(scale.size))))
                                                  for f in (1, 4, 16)})]


def _ivf_probes(scale: Scale, build: dict):
    return [{"nprobe": p} for p in (1, 4, 16, 64, 256, 1024) if p <= build["nlist"]]


def default_grid(topk: int, keep_ratios, tree_method: str = "hdhash", seed: int = 0) -> list[GridRow]:
    """Table II's rows: the scans and faiss's indexes on the baseline's codes, each over the build and
    search settings a user would tune (issue 30), the tree on the tree method's codes (beside faiss's
    flat scan of the same codes). Costs: ms at 1,000,000 codes in the stored Table II (see the
    constants at the top)."""
    return [
        GridRow("numpy-scan", "baseline", cost=("scan", 12.7e-9)),
        # faiss's default first (use_heap on, 32 queries a block): counting selection and the block
        # size beside it; one query at a time is every row's single-query column
        GridRow("faiss-flat", "baseline", "faiss-flat", always=True,
                searches=tuple({"use_heap": heap, "query_batch_size": block} for heap in (1, 0)
                               for block in (32, 1, 256))),
        GridRow("faiss-hash", "baseline", "faiss-hash", builds=_hash_builds,
                searches=lambda scale, build: _flips(scale, build, 3), cost=("flat", 0.35)),
        GridRow("faiss-multihash", "baseline", "faiss-multihash", builds=_multihash_builds,
                searches=lambda scale, build: _flips(scale, build, 2), cost=("flat", 7.0)),
        GridRow("faiss-ivf", "baseline", "faiss-ivf", builds=_ivf_builds, searches=_ivf_probes,
                fixed=(("seed", seed),), cost=("flat", 0.25)),
        # issue 30: HNSW up to 10^7 codes (its graph at 10^8 outgrows this machine's memory)
        GridRow("faiss-hnsw", "baseline", "faiss-hnsw", builds=({"M": 16}, {"M": 32}),
                searches=({"efSearch": topk}, {"efSearch": 2 * topk}), cost=("graph", 6.1), max_size=10**7),
        GridRow(f"{tree_method}-flat", "tree", "faiss-flat"),
        GridRow(f"{tree_method}-tree", "tree", "tree", searches=tuple({"keep_ratio": r} for r in keep_ratios),
                cost=("flat", 0.45)),
        # every node a candidate (keep 1.0), a budget of codes instead: multiples of K
        GridRow(f"{tree_method}-tree-budget", "tree", "tree",
                searches=tuple({"max_codes": m * topk} for m in (1, 2, 5, 10, 20, 50, 100)),
                fixed=(("keep_ratio", 1.0),), cost=("flat", 0.4)),
        GridRow("exhaustive", "baseline", "hamming", cost=("scan", 1.7e-9)),  # the compiled exhaustive top-K
        GridRow("exhaustive-full", "baseline", cost=("scan", 13.9e-9)),
        GridRow("popcount-floor", "baseline", cost=("scan", 1.0e-9)),
    ]


def _full_ranking(codes, topk):
    """The MAP@all path: a full stable ranking of the database, cut at K."""
    from search.hamming import HammingIndex

    index = HammingIndex(codes)
    # rank(q, topk) returns the head as its own array: a view of each chunk's full ranking would
    # keep every chunk's (16, n) order alive until the concatenation (8 GB at 1,000,000 codes)
    return chunked(lambda q: index.rank(q, topk)[1])


#: reference scans that are not indexes: ``(codes, topk) -> search(query_codes) -> ids``
SCANS = {
    "numpy-scan": lambda codes, topk: chunked(numpy_scan(codes, topk)),
    "exhaustive-full": _full_ranking,
    "popcount-floor": lambda codes, topk: popcount_floor(codes),
}


# -- the plan: what runs, what is left out and why, what it costs ------------------------------------
def flat_seconds(size: int, topk: int) -> float:
    """faiss's flat scan of ``size`` codes for one query (the constants above)."""
    return (FLAT_S_PER_CODE + FLAT_S_PER_CODE_PER_K * topk) * size


def search_seconds(g: GridRow, size: int, topk: int) -> float:
    """The estimated seconds of one query of a row of ``g``: ``("scan", s)`` s per code; ``("flat",
    r)`` r times faiss's flat scan; ``("graph", r)`` r times the flat scan of 1,000,000 codes, growing
    with log n (a graph walk)."""
    kind, factor = g.cost
    if kind == "scan":
        return factor * size
    if kind == "graph":
        return factor * flat_seconds(min(size, 10**6), topk) * max(1.0, math.log(size) / math.log(10**6))
    return factor * flat_seconds(size, topk)


def build_estimate(g: GridRow, build: dict, size: int) -> tuple[float, float, float]:
    """``(bytes, build seconds, training seconds)`` of one index of ``g``: what it holds beyond the
    codes the run keeps (and what building or scanning it needs meanwhile), and its build time."""
    code_bytes = 8  # the estimates are for 64-bit codes; shorter ones cost less
    if g.index is None:
        return SCAN_BYTES_PER_CODE.get(g.row, 0) * size, 0.0, 0.0
    seconds = BUILD_S_PER_CODE.get(g.index, 0.0) * size
    if g.index == "faiss-flat":
        return code_bytes * size, seconds, 0.0  # faiss keeps its own copy of the codes
    if g.index == "hamming":
        return 0.0, 0.0, 0.0
    if g.index == "faiss-hash":  # every key distinct at most: clustered codes share keys
        keys = min(size, 2 ** build["hash_bits"])
        return HASH_SLACK * (code_bytes + 8) * size + HASH_KEY_BYTES * keys, seconds, 0.0
    if g.index == "faiss-multihash":
        tables = build["nhash"] * (HASH_SLACK * 8 * size + MULTIHASH_KEY_BYTES * min(size, 2 ** build["hash_bits"]))
        return code_bytes * size + tables, seconds * build["nhash"] / 4, 0.0
    if g.index == "faiss-ivf":
        nlist = build["nlist"]
        train = IVF_TRAIN_S_PER_NLIST2 * nlist**2
        # lists (codes + ids, 30 bytes a code held, measured here) and the assignment made while adding
        return (code_bytes + 8 + 24) * size, train + IVF_ADD_S_PER_CODE_LIST * size * nlist, train
    growth = max(1.0, math.log(size) / math.log(10**6))
    if g.index == "faiss-hnsw":
        links = build["M"]
        # links of the bottom layer (2M int32) and the upper ones: 182 bytes a code held at M=16 (measured here)
        return (code_bytes + 4 * 2 * links * 1.25 + 16) * size, seconds * links / 16 * growth, 0.0
    if g.index == "tree":
        return (TREE_BYTES_PER_CODE + TREE_BUILD_BYTES_PER_CODE) * size, seconds * growth, 0.0
    return code_bytes * size, seconds, 0.0


@dataclass
class PlannedBuild:
    """One index (or scan) of the plan at one size, with the search settings it is timed at; a
    ``left_out`` one is written as rows with the reason and never built."""

    size: int
    grid: GridRow
    build: dict
    searches: list
    left_out: str | None
    index_bytes: float
    build_s: float
    search_s: float  # every timed and scored search of every setting, each capped at the row limit


@dataclass
class Plan:
    """What a run does and what it costs (:func:`make_plan`)."""

    topk: int
    sizes: list
    builds: list = field(default_factory=list)
    encode_s: float = 0.0
    generate_s: float = 0.0
    shells_s: float = 0.0
    resident_bytes: float = 0.0
    cache_bytes: float = 0.0
    memory_bytes: float = 0.0

    @property
    def hours(self) -> float:
        return (self.encode_s + self.generate_s + self.shells_s
                + sum(b.build_s + b.search_s for b in self.builds if not b.left_out)) / 3600

    @property
    def peak_bytes(self) -> float:
        return self.resident_bytes + max([b.index_bytes for b in self.builds if not b.left_out] + [0.0])


def searches_per_setting(n_query: int, repeats: int, timing_queries: int, single_queries: int) -> int:
    """The searches one setting's row makes: every query scored once, the probe, the warm-ups and
    repeats of the batch at one thread and at every core, and of the queries one at a time."""
    warm_up = max(1, timing_queries // 10)
    return n_query + 3 * warm_up + 2 * repeats * timing_queries + 1 + repeats * single_queries


def make_plan(dataset, sizes, *, bits: int = 64, topk: int | None = None, repeats: int = 5,
              timing_queries: int = 200, single_queries: int = 200, generate_past: int | None = None,
              grid: list[GridRow] | None = None, keep_ratios=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
              tree_method: str = "hdhash", seed: int = 0, max_row_minutes: float = MAX_ROW_MINUTES,
              max_train_minutes: float = MAX_TRAIN_MINUTES, all_threads: int | None = None) -> Plan:
    """The run's plan for ``dataset``: K (``topk``, else the dataset's, else 1000), every index and
    setting per size, those left out before any work (a size past the row's ``max_size``, an index
    that would not fit in :data:`MEMORY_SHARE` of this machine's memory beside the codes, IVF lists
    whose k-means would train over ``max_train_minutes``, a build over ``max_row_minutes``), and the
    estimates. Refuses (one-line :class:`protocols.runner.UsageError`) a size that is not an integer
    >= K (the top-K of a smaller database is all of it: recall and MAP@K would mean nothing) and a
    ``generate_past`` with no full encoded copy to calibrate on or nothing to generate."""
    from protocols.runner import UsageError

    k = (dataset.topk or 1000) if topk is None else topk
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"--topk must be a positive integer, got {topk!r}")
    sizes = list(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in sizes):
        raise UsageError(f"--db-sizes must be positive integers, got {sizes!r}")
    if min(sizes) < k:
        default = f"{dataset.name}'s K" if dataset.topk else "the default K"
        source = "--topk" if topk is not None else f"{default}; --topk sets another"
        raise UsageError(f"--db-sizes {min(sizes)} is smaller than K={k} ({source}): the top-K of a smaller "
                         "database is all of it; give sizes of at least K")
    n_base, n_query = len(dataset.split.database), len(dataset.split.query)
    if generate_past is not None:
        if generate_past < 2 * n_base:
            raise UsageError(f"--generate-past {generate_past:,} holds no encoded copy of {dataset.name}'s "
                             f"{n_base:,} database items to calibrate the generator on; give at least "
                             f"{2 * n_base:,}")
        if generate_past >= max(sizes):
            raise UsageError(f"--generate-past {generate_past:,} is not below the largest --db-sizes "
                             f"{max(sizes):,}: nothing would be generated; leave it out to encode every code")
    grid = grid or default_grid(k, keep_ratios, tree_method, seed)
    threads = all_threads or os.cpu_count() or 1
    largest = max(sizes)
    encoded = largest if generate_past is None else min(largest, generate_past)
    pixels = int(np.prod(getattr(dataset.X, "shape", (0, 3 * 224 * 224))[1:]))
    plan = Plan(k, sorted(sizes), memory_bytes=MEMORY_SHARE * machine_memory_bytes())
    plan.encode_s = 2 * encoded * pixels * ENCODE_S_PER_PIXEL
    plan.generate_s = 2 * (largest - encoded) * bits * GENERATE_S_PER_BIT
    plan.shells_s = 2 * n_query * sum(sizes) * SHELL_S_PER_CODE / threads
    plan.cache_bytes = 2 * (bits // 8) * encoded
    # both methods' codes at the largest size, which queries the relevance of each database item,
    # and the scored ids, distances and relevance of every query's top K
    plan.resident_bytes = BASE_RSS_BYTES + 2 * (bits // 8) * largest + n_query * n_base + 48 * n_query * k
    per_setting = searches_per_setting(n_query, repeats, timing_queries, single_queries)
    for size in plan.sizes:
        for g in grid:
            for build, searches in g.settings(Scale(size, bits, k)):
                index_bytes, build_s, train_s = build_estimate(g, build, size)
                search_s = sum(min(search_seconds(g, size, k) * per_setting,
                                   math.inf if g.always else 60 * max_row_minutes) for _ in searches)
                reason = left_out_reason(g, build, size, plan, index_bytes, build_s, train_s, max_row_minutes,
                                         max_train_minutes)
                plan.builds.append(PlannedBuild(size, g, build, searches, reason, index_bytes, build_s, search_s))
    return plan


def left_out_reason(g: GridRow, build: dict, size: int, plan: Plan, index_bytes: float, build_s: float,
                    train_s: float, max_row_minutes: float, max_train_minutes: float) -> str | None:
    """Why the plan leaves an index out before building it (None: it runs): a size past the row's
    ``max_size``, memory beside the held codes over :data:`MEMORY_SHARE` of this machine's, IVF's
    k-means over ``max_train_minutes``, a build over ``max_row_minutes`` (never for the baseline)."""
    if g.max_size is not None and size > g.max_size:
        return (f"{g.row} runs up to {g.max_size:,} codes (issue 30); at {size:,} its index would need "
                f"~{index_bytes / 1e9:,.1f} GB and ~{build_s / 60:,.0f} min to build here")
    if plan.resident_bytes + index_bytes > plan.memory_bytes:
        return (f"needs ~{(plan.resident_bytes + index_bytes) / 1e9:,.1f} GB with the codes held "
                f"({index_bytes / 1e9:,.1f} GB for the index or scan), over {MEMORY_SHARE:.0%} of "
                f"this machine's {machine_memory_bytes() / 1e9:,.1f} GB")
    if train_s > 60 * max_train_minutes:
        return (f"k-means over {build['nlist']:,} lists would train for ~{train_s / 60:,.0f} min here, "
                f"over --max-train-minutes {max_train_minutes:g}")
    if not g.always and build_s > 60 * max_row_minutes:
        return f"its build would take ~{build_s / 60:,.0f} min here, over --max-row-minutes {max_row_minutes:g}"
    return None


def describe_plan(plan: Plan) -> list[str]:
    """The plan in lines (``--dry-run``): per size the settings to run and their estimated minutes,
    what is left out and why; then the totals."""
    lines = []
    for size in plan.sizes:
        at = [b for b in plan.builds if b.size == size]
        run = [b for b in at if not b.left_out]
        lines.append(f"{size:,} codes: {sum(len(b.searches) for b in run)} settings to run, "
                     f"~{sum(b.build_s + b.search_s for b in run) / 60:,.0f} min")
        for b in run:
            lines.append(f"  {b.grid.row} {setting_label(b.build, {}) or '-'}: {len(b.searches)} setting(s), "
                         f"~{(b.build_s + b.search_s) / 60:,.1f} min, ~{b.index_bytes / 1e9:,.2f} GB")
        for b in at:
            if b.left_out:
                lines.append(f"  left out: {b.grid.row} {setting_label(b.build, {}) or '-'} "
                             f"({len(b.searches)} setting(s)): {b.left_out}")
    lines.append(f"total: ~{plan.hours:,.1f} h (encoding up to {plan.encode_s / 3600:,.1f} h where the codes are not "
                 f"cached, generating {plan.generate_s / 60:,.1f} min, exact shells {plan.shells_s / 60:,.1f} min); "
                 f"peak memory ~{plan.peak_bytes / 1e9:,.1f} GB of {plan.memory_bytes / 1e9:,.1f} GB; cached codes "
                 f"{plan.cache_bytes / 1e9:,.2f} GB; a row whose warm-up shows it would run over --max-row-minutes "
                 "is left out then, with the measured reason")
    return lines


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_cache_bytes() -> int:
    """Free space where the codes are cached (the nearest existing folder of the cache's path)."""
    folder = cache_dir().absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_plan(dataset, sizes, *, force: bool = False, **settings) -> int:
    """K for ``dataset``, or a one-line :class:`protocols.runner.UsageError` before any work: what
    :func:`make_plan` refuses, or, unless ``force``, an estimated time over :data:`MAX_HOURS`, codes
    that alone would not fit in this machine's memory, or cached codes over the free disk (the
    estimates come from the constants above). ``settings``: :func:`make_plan`'s."""
    return checked_plan(dataset, sizes, force=force, **settings).topk


def checked_plan(dataset, sizes, *, force: bool = False, **settings) -> Plan:
    from protocols.runner import UsageError

    plan = make_plan(dataset, sizes, **settings)
    free = free_cache_bytes()
    too_much = [f"an estimated {plan.hours:,.0f} h (more than {MAX_HOURS} h)" if plan.hours > MAX_HOURS else "",
                f"a peak memory of {plan.resident_bytes / 1e9:,.1f} GB for the codes alone (this machine has "
                f"{machine_memory_bytes() / 1e9:,.1f} GB)" if plan.resident_bytes > plan.memory_bytes else "",
                f"{plan.cache_bytes / 1e9:,.1f} GB of cached codes ({free / 1e9:,.1f} GB free under {cache_dir()})"
                if plan.cache_bytes > free else ""]
    too_much = [text for text in too_much if text]
    if too_much and not force:
        raise UsageError(f"--db-sizes up to {max(plan.sizes):,} needs at least {' and '.join(too_much)}; "
                         "give smaller sizes (--dry-run shows the plan), or --force to run anyway")
    return plan


# -- the runs ----------------------------------------------------------------------------------------
@dataclass
class Side:
    """One method's codes at the largest size, its queries and labels, and what its indexes need."""

    method: str
    code_bits: str
    codes: np.ndarray
    labels: np.ndarray  # the database items'; code p has item p % len(labels)'s (scaled_codes)
    queries: np.ndarray
    build: dict  # index name -> the method's build parameters for it
    encoded: int  # the leading codes that were encoded; the rest were generated


def prepare_side(dataset, name: str, bits: int, size: int, seed: int, params: dict,
                 generate_past: int | None = None) -> Side:
    """Fit (or load) ``name`` and grow its database to ``size`` codes (:func:`scaled_codes`)."""
    from protocols import runner

    method, _ = runner.fit(dataset, name, bits, seed, params)
    # the codes are the model's: a deep model is named by its cache file (every parameter, the
    # method's cache_version and the training data), so codes of a stale model are never reused
    model = Path(method.fit_info.get("cache_path", "")).name
    key = hashlib.sha256(json.dumps([name, method.cache_params(), dataset.split_sha256, model], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    X_db, y_db = dataset.part("database")
    codes = scaled_codes(method, X_db, size, seed, f"{dataset.name}-{name}-{bits}-{key}-seed{seed}", generate_past)
    # what the method's own indexes need beyond the codes (the tree's levels)
    build = {mode.index: method.index_build_params(mode.index) for mode in method.searches}
    levels = build.get("tree", {}).get("levels")
    return Side(name, "+".join(map(str, levels)) if levels else str(bits), codes, y_db,
                method.encode(dataset.part("query")[0]), build, size if generate_past is None else generate_past)


@dataclass
class Measure:
    """What :func:`measure_setting` needs beside the search: the run's settings."""

    topk: int
    repeats: int
    timing_queries: int
    single_queries: int
    all_threads: int
    max_row_minutes: float


def measure_setting(search, side: Side, size: int, kth, shells, y_query, m: Measure, always: bool = False) -> dict:
    """One row's fields: first a probe of a tenth of the batch (the warm-up) and, unless ``always``,
    the row left out (``left_out``, the measured reason) when its searches would take over
    ``m.max_row_minutes``; then ms per query batched at one thread (median, min, max over the
    repeats), at ``m.all_threads`` and one query at a time, recall, MAP@K, tie-aware MAP@K, the
    share of the K slots filled, the load average before and after and the CPU other processes
    used meanwhile. ``search(query_codes) -> ids`` (None: scores nothing, the popcount floor)."""
    load_before, others = load_average(), OtherCpu()
    queries = side.queries
    warm_up = queries[: max(1, m.timing_queries // 10)]
    search(warm_up[:1])  # a compiled search compiles (or loads its cache) on its first call: not the probe's
    probe = probe_ms(search, warm_up)
    searches = searches_per_setting(len(queries), m.repeats, m.timing_queries, m.single_queries)
    if not always and probe * searches / 60000 > m.max_row_minutes:
        return {"ms_per_query": None, "load_before": load_before, "load_after": load_average(),
                "left_out": f"measured {probe:,.3g} ms/query on a warm-up of {len(warm_up)} queries: its "
                            f"{searches:,} timed and scored searches would take ~{probe * searches / 60000:,.0f} min, "
                            f"over --max-row-minutes {m.max_row_minutes:g}"}
    batched = time_batched(search, queries[:m.timing_queries], m.repeats)
    ms_all = float("nan")
    if m.all_threads > 1:
        pin_threads(m.all_threads)
        try:
            ms_all = time_batched(search, queries[:m.timing_queries], m.repeats).ms
        finally:
            pin_threads(1)
    single = time_single(search, queries[:m.single_queries], m.repeats)
    fields = {"ms_per_query": batched.ms, "ms_per_query_min": batched.low, "ms_per_query_max": batched.high,
              "ms_per_query_all_threads": ms_all, "ms_per_query_single": single.ms,
              "ms_per_query_single_min": single.low, "ms_per_query_single_max": single.high,
              "recall": float("nan"), "map": float("nan"), "map_tie_aware": float("nan"), "filled": float("nan")}
    ids = search(queries)
    if ids is not None:  # the popcount floor ranks nothing
        recall, map_k, tie_aware = accuracy(ids, queries, side.codes[:size], y_query, side.labels, kth, m.topk,
                                            shells)
        fields.update(recall=recall, map=map_k, map_tie_aware=tie_aware, filled=float(np.mean(ids >= 0)))
    fields.update(load_before=load_before, load_after=load_average(), other_cpu_cores=others.cores())
    return fields


def run_efficiency(dataset, sizes, *, bits: int = 64, topk: int | None = None, seed: int = 0,
                   baseline: str = "hashnet", tree_method: str = "hdhash", keep_ratios=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                   params: dict | None = None, repeats: int = 5, timing_queries: int = 200, single_queries: int = 200,
                   skip=(), grid: list[GridRow] | None = None, progress: bool = True,
                   all_threads: int | None = None, force: bool = False, generate_past: int | None = None,
                   max_row_minutes: float = MAX_ROW_MINUTES, max_train_minutes: float = MAX_TRAIN_MINUTES,
                   on_row=None) -> list[dict]:
    """Table II's rows for ``dataset`` (a loaded :class:`datasets.Dataset`) at each database size,
    one per setting of every grid row (:func:`default_grid` unless ``grid``), the left-out ones
    included with their reason; batched searches are timed at one thread and at ``all_threads``
    (default: every core). Codes past ``generate_past`` are generated (:func:`scaled_codes`). The
    plan is checked first (:func:`check_plan`; ``force`` runs one over this machine's estimate).
    ``on_row(row)`` is called with each row as soon as it is measured (the command stores it, so a
    run of many hours that dies keeps what it measured)."""
    from tqdm import tqdm

    from search import create_index

    all_threads = all_threads or os.cpu_count() or 1
    grid = [g for g in (grid or default_grid(topk or dataset.topk or 1000, keep_ratios, tree_method, seed))
            if g.row not in set(skip)]
    plan = checked_plan(dataset, sizes, force=force, bits=bits, topk=topk, repeats=repeats,
                        timing_queries=timing_queries, single_queries=single_queries, generate_past=generate_past,
                        grid=grid, max_row_minutes=max_row_minutes, max_train_minutes=max_train_minutes,
                        all_threads=all_threads)
    topk = plan.topk
    y_query = dataset.part("query")[1]
    sides = {"baseline": prepare_side(dataset, baseline, bits, max(sizes), seed, params or {}, generate_past),
             "tree": prepare_side(dataset, tree_method, bits, max(sizes), seed, params or {}, generate_past)}
    pin_threads(1)  # training may use every core; the timings use one (and all_threads beside it)
    m = Measure(topk, repeats, min(timing_queries, len(y_query)), min(single_queries, len(y_query)), all_threads,
                max_row_minutes)
    context = {"dataset": dataset.name, "topk": topk, "seed": seed, "split_sha256": dataset.split_sha256,
               "repeats": repeats, "timing_queries": m.timing_queries, "single_queries": m.single_queries,
               "n_query": len(y_query), "threads": 1, "threads_all": all_threads, **machine_info(),
               **library_versions(), "git_commit": git_state()["commit"], "timestamp": now_utc()}
    rows, exact = [], {}
    order = {}  # per size, the rows in the grid's order
    bar = tqdm(total=sum(len(b.searches) for b in plan.builds), desc="efficiency", unit="row", file=sys.stderr,
               disable=not progress)
    for planned in plan.builds:
        size, g = planned.size, planned.grid
        side = sides[g.side]
        encoded = min(size, side.encoded)
        codes = side.codes[:size]
        if (g.side, size) not in exact:  # the exact shells and K-th distances that accuracy is measured against
            pin_threads(all_threads)
            try:
                shells = distance_shells(side.queries, codes, y_query, side.labels, 8 * codes.shape[1])
            finally:
                pin_threads(1)
            exact[(g.side, size)] = (kth_distances(shells, topk), shells)
        kth, shells = exact[(g.side, size)]
        index, search, build_s, index_bytes = None, None, 0.0, codes.nbytes
        if not planned.left_out:
            if g.index is None:
                search = SCANS[g.row](codes, topk)
            else:
                start = time.perf_counter()
                index = create_index(g.index, codes, **dict(g.fixed), **planned.build, **side.build.get(g.index, {}))
                build_s, index_bytes = time.perf_counter() - start, index.nbytes
                search = lambda q, index=index: index.search(q, topk)[1]  # noqa: E731
        for setting in planned.searches:
            params = setting_label(planned.build, setting)
            order[size] = order.get(size, -1) + 1
            row = {"index": g.row, "params": params, "build_params": setting_label(planned.build, {}),
                   "code_bits": side.code_bits, "method": side.method, "db_size": size, "topk": topk,
                   "encoded_codes": encoded, "generator": GENERATOR if encoded < size else None}
            if planned.left_out:
                fields = {"ms_per_query": None, "left_out": planned.left_out}
            else:
                if index is not None and setting:
                    index.set_search_params(**setting)
                fields = measure_setting(search, side, size, kth, shells, y_query, m, g.always)
                fields.update(index_bytes=int(index_bytes), bytes_per_item=index_bytes / size,
                              peak_rss_mb=peak_rss_mb(), build_s=build_s, candidates_visited=None,
                              codes_scanned=None, distances_computed=None, nodes_expanded=None)
                if g.index == "tree" and not fields.get("left_out"):  # the last search ran every query
                    fields.update(codes_scanned=float(np.mean(index.last_scanned)),
                                  distances_computed=float(np.mean(index.last_distances)),
                                  nodes_expanded=float(np.mean(index.last_expanded)),
                                  # the keep rule's set, not timed
                                  candidates_visited=float(np.mean(index.candidates(side.queries))))
            rows.append({**row, **fields, **context, "order": order[size]})
            if on_row is not None:
                on_row(rows[-1])
            bar.update()
        del index, search  # one index alive at a time bounds memory
    bar.close()
    return rows


# -- the command --------------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset whose models and images are used "
                                                                   "(default: fashion-mnist)")
    parser.add_argument("--db-sizes", default="10000,100000,1000000",
                        help="database sizes in codes, comma-separated (default: 10000,100000,1000000)")
    parser.add_argument("--bits", default="64", help="code length of both methods (default: 64; HDHash splits "
                                                     "it 8+16+40)")
    parser.add_argument("--topk", type=int, default=None, help="K of the top-K searched and of MAP@K (default: "
                                                               "the dataset's, 1000 for fashion-mnist)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the models and the augmentation "
                                                            "(default: 0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after a warm-up; the median is "
                                                               "kept (default: 5, the protocol's minimum)")
    parser.add_argument("--timing-queries", type=int, default=200, help="queries in each batched timing run "
                                                                        "(default: 200; accuracy uses all queries)")
    parser.add_argument("--single-queries", type=int, default=200, help="queries timed one at a time, a batch of "
                                                                        "1 (default: 200)")
    parser.add_argument("--keep-ratios", default=DEFAULT_KEEP_RATIOS, help="tree keep ratios (default: "
                                                                           f"{DEFAULT_KEEP_RATIOS})")
    parser.add_argument("--baseline", default="hashnet", help="method whose single-level codes the baselines "
                                                              "scan (default: hashnet)")
    parser.add_argument("--tree-method", default="hdhash", help="method whose multi-level codes the tree "
                                                                "indexes (default: hdhash)")
    parser.add_argument("--skip", default="", help="row names to leave out, comma-separated (e.g. faiss-hnsw)")
    parser.add_argument("--generate-past", type=int, default=None, metavar="N",
                        help="encode the first N codes and grow the database past them at the code level, each "
                             "code a source code with bits flipped at the rates its encoded copies showed "
                             "(protocols/README.md); at least 2x the dataset's database (default: encode every code)")
    parser.add_argument("--max-row-minutes", type=float, default=MAX_ROW_MINUTES,
                        help="leave out (with the reason, as a row) an index whose build, or a setting whose "
                             f"searches, would take longer; faiss flat is always run (default: {MAX_ROW_MINUTES:g})")
    parser.add_argument("--max-train-minutes", type=float, default=MAX_TRAIN_MINUTES,
                        help="leave out IVF lists whose k-means would train longer here (default: "
                             f"{MAX_TRAIN_MINUTES:g}, issue 30)")
    parser.add_argument("--require-quiet", action="store_true",
                        help="refuse to start on a loaded machine (load average above "
                             f"{LOADED_PER_CORE} per core): timings there are not valid")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (every setting per size, what is "
                                                              "left out and why, time and memory estimates) and "
                                                              "stop before fitting anything")
    parser.add_argument("--force", action="store_true", help="run even where the estimated time, memory or cache "
                                                            "exceed what this machine has (see the refusal)")
    parser.add_argument("--device", default=None, help="device for training and encoding the models (cpu, cuda, auto)")
    parser.add_argument("--data-root", default=None, help="folder with the dataset's files")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="parameter for both models where they accept it (repeatable), as in protocols.map, "
                             "e.g. levels=(8,16,40); a run with parameters away from the defaults, or other "
                             "--bits, --baseline or --tree-method, writes its own table "
                             "(efficiency/<dataset>--<what changed>.*), never the default one")
    return parser


def validate(args) -> dict:
    """The keyword arguments of :func:`run_efficiency` (but the dataset), every flag checked;
    what needs the dataset (K against the sizes, the estimates) is :func:`check_plan`'s."""
    from datasets import dataset_name
    from protocols import runner
    from protocols.runner import UsageError
    from search.tree import TreeIndex

    args.dataset = dataset_name(args.dataset)  # listfile:NAME is stored as listfile-NAME; unknown: one line
    size_items = runner.parse_names(args.db_sizes, "--db-sizes")
    ratio_items = runner.parse_names(args.keep_ratios, "--keep-ratios")
    try:
        sizes = [int(s) for s in size_items]
    except ValueError:
        raise UsageError(f"--db-sizes must be positive integers, got {args.db_sizes!r}") from None
    if min(sizes) <= 0 or len(set(sizes)) != len(sizes):
        raise UsageError(f"--db-sizes must be distinct positive integers, got {args.db_sizes!r}")
    try:
        keep_ratios = [float(r) for r in ratio_items]
    except ValueError:
        raise UsageError(f"--keep-ratios must be numbers, got {args.keep_ratios!r}") from None
    for ratio in keep_ratios:
        try:
            TreeIndex.check_search_params(keep_ratio=ratio)
        except ValueError as exc:
            raise UsageError(f"--keep-ratios: {exc}") from None
    if args.topk is not None and args.topk < 1:  # 0 is not "the default": leave the flag out for that
        raise UsageError(f"--topk must be a positive integer, got {args.topk}")
    for flag, value in (("--repeats", args.repeats), ("--timing-queries", args.timing_queries),
                        ("--single-queries", args.single_queries)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer, got {value}")
    if args.generate_past is not None and args.generate_past < 1:
        raise UsageError(f"--generate-past must be a positive integer, got {args.generate_past}")
    for flag, value in (("--max-row-minutes", args.max_row_minutes), ("--max-train-minutes", args.max_train_minutes)):
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{flag} must be a positive number of minutes, got {value:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    bits = runner.parse_bits(args.bits)
    if len(bits) != 1:
        raise UsageError(f"--bits takes one code length, got {args.bits!r}")
    classes = runner.method_classes([args.baseline, args.tree_method])
    params = dict(runner.parse_params(args.param), **({"device": args.device} if args.device else {}))
    runner.check_jobs(classes, bits, params)
    from methods import create_method

    tree = runner.create_for(args.dataset, args.tree_method, bits[0], params)
    if not any(mode.index == "tree" for mode in tree.searches):
        raise UsageError(f"--tree-method {args.tree_method} has no tree search; methods with one: "
                         + ", ".join(m for m in runner.method_classes(["paper"])
                                     if any(s.index == "tree" for s in create_method(m).searches)))
    rows = [g.row for g in default_grid(args.topk or 1, keep_ratios, args.tree_method, args.seed)]
    skip = runner.parse_names(args.skip, "--skip") if args.skip.strip() else []
    unknown = [name for name in skip if name not in rows]
    if unknown:
        raise UsageError(f"--skip {unknown[0]!r} is not a row; rows: {', '.join(rows)}")
    if set(rows) <= set(skip):
        raise UsageError("--skip leaves no row to run")
    baseline = runner.create_for(args.dataset, args.baseline, bits[0], params)
    variants = {name: runner.variant_of(name, bits[0], model.get_params(), args.dataset)
                for name, model in ((args.baseline, baseline), (args.tree_method, tree))}
    return dict(sizes=sizes, bits=bits[0], topk=args.topk, seed=args.seed, baseline=args.baseline,
                tree_method=args.tree_method, keep_ratios=keep_ratios, params=params, repeats=args.repeats,
                timing_queries=args.timing_queries, single_queries=args.single_queries, skip=tuple(skip),
                variants=variants, force=args.force, generate_past=args.generate_past,
                max_row_minutes=args.max_row_minutes, max_train_minutes=args.max_train_minutes)


def check_quiet() -> None:
    """A one-line refusal on a loaded machine (``--require-quiet``): load average over
    :data:`LOADED_PER_CORE` per core before any work."""
    from protocols.runner import UsageError

    load, cores = load_average(), os.cpu_count() or 1
    if load is not None and load / cores > LOADED_PER_CORE:
        raise UsageError(f"--require-quiet: this machine is loaded (load average {load:.2f} on {cores} cores, over "
                         f"{LOADED_PER_CORE} per core): timings would not be valid; stop the other work first")


def table_name(dataset: str, bits: int = 64, baseline: str = "hashnet", tree_method: str = "hdhash",
               variants: dict | None = None) -> str:
    """The name of the Table II a run's rows belong to: the dataset's for the default run, else the
    dataset's with what the run changed, so that a run with other code lengths, methods or method
    parameters (``--param``) never replaces the default rows (their record names carry only the
    index, its setting, the database size and K)."""
    from protocols.records import safe_name

    changes = [f"{bits}bits"] if bits != 64 else []
    changes += [f"baseline-{baseline}"] if baseline != "hashnet" else []
    changes += [f"tree-{tree_method}"] if tree_method != "hdhash" else []
    changes += [f"{name}-{text}" for name, text in sorted((variants or {}).items()) if text]
    return dataset if not changes else f"{dataset}--{safe_name('-'.join(changes))}"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from protocols import runner
    from protocols.cli import run_command
    from protocols.efficiency_report import rebuild_csv, render, store_rows

    def work():
        settings = validate(args)
        runner.check_writable(Path(args.out) / "efficiency", "--out")
        if args.require_quiet:
            check_quiet()
        dataset = runner.load(args.dataset, args.data_root, args.seed)
        variants = settings.pop("variants")
        if args.dry_run:
            grid = [g for g in default_grid(settings["topk"] or dataset.topk or 1000, settings["keep_ratios"],
                                            settings["tree_method"], settings["seed"])
                    if g.row not in set(settings["skip"])]
            plan = make_plan(dataset, settings["sizes"], bits=settings["bits"], topk=settings["topk"],
                             repeats=settings["repeats"], timing_queries=settings["timing_queries"],
                             single_queries=settings["single_queries"], generate_past=settings["generate_past"],
                             grid=grid, max_row_minutes=settings["max_row_minutes"],
                             max_train_minutes=settings["max_train_minutes"])
            print("\n".join(describe_plan(plan)))
            return
        name = table_name(dataset.name, settings["bits"], settings["baseline"], settings["tree_method"], variants)

        def keep(row):  # stored as measured; what the run changed in each record (the default run's: nothing)
            if any(variants.values()):
                row["variant"] = {k: v for k, v in variants.items() if v}
            store_rows([row], Path(args.out), name)

        run_efficiency(dataset, settings.pop("sizes"), **settings, on_row=keep)
        for path in [rebuild_csv(Path(args.out), name), *render(Path(args.out), name)]:
            print(path)

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
