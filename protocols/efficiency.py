"""Efficiency protocol (Table II): search time, memory and scaling on real codes.

    python -m protocols.efficiency --dataset fashion-mnist --db-sizes 10000,100000,1000000

The database grows beyond the dataset by encoding seeded transformed copies of its database images
(shifts, flips, noise) through the trained models, so the codes keep their real distribution. On
the same codes, single-threaded (faiss, torch and BLAS threads = 1), with a warm-up then the median
of ``--repeats`` runs, it times: a plain numpy linear scan and faiss's ``IndexBinaryFlat`` (the
baseline every speedup is quoted against) on HashNet's 64-bit codes; faiss's sublinear binary
indexes on the same codes over a sweep of their search parameter; HDHash's tree over a keep-ratio
sweep on HDHash's 8+16+40-bit codes; and the project's own exhaustive Hamming ranking (the MAP@all
path) beside a popcount floor.

Each row: ms per query (batched at one thread and at every core, and one query at a time), recall
of the exhaustive top-K (a retrieved item counts when its distance is at most the exhaustive K-th
distance, so ties do not matter, as in ann-benchmarks), MAP@K (id order inside ties) and the
tie-aware MAP@K (:func:`common.ranking.tie_aware_average_precision`: the expected AP@K over every
order inside each group of equal distances, which scores the distances an index finds and not its
tie-break; the accuracy indexes are judged by), exact index bytes, the process's peak RSS so far,
build time; for the tree the candidates of its keep rule and the codes it computed a distance for.

The grid of indexes and settings is data (:func:`default_grid`); :func:`run_efficiency` is the
library call, ``main`` parses flags and writes the tables (:mod:`protocols.efficiency_report`).
Bad input is refused in one line before any training: every flag (:func:`validate`), then, with the
dataset loaded, a database smaller than K and a plan whose estimated time, memory or cache exceed
what this machine has (:func:`check_plan`; ``--force`` runs it anyway).
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.files import atomic_save_npy, cache_dir
from common.hamming import as_words, hamming_distances, paired_distances
from common.provenance import git_state, library_versions, machine_info, now_utc
from common.ranking import mean_average_precision, relevance_of, tie_aware_average_precision, tie_groups
from common.threads import pin_threads

PROG = "python -m protocols.efficiency"
DEFAULT_KEEP_RATIOS = "0.05,0.1,0.2,0.3,0.5,1.0"

# What the plan check (:func:`check_plan`) estimates with: costs measured for Table II on this
# project's 2-core AMD EPYC at one thread (results/efficiency/fashion-mnist.csv), rounded in the
# plan's favour, so an estimate is a floor: it refuses what cannot finish here, it does not predict.
#: encoding one database code through a model (the fastest stored: HDHash, 70,000 Fashion-MNIST
#: images in 5.1 s); both methods encode every code of the largest size, copies cached
ENCODE_S_PER_CODE = 70e-6
#: one query against one code, summed over the default grid's rows that scan every code (numpy
#: scan 12.7 ns, full ranking 13.7, the multihash sweep 24, the flat scans 5, at 1,000,000 codes)
SCAN_S_PER_CODE = 40e-9
#: the peak RSS: what the process holds before the database (libraries, dataset, models), and its
#: growth per database code (1,245 MB at 10,000 codes, 1,784 MB at 1,000,000: 545 bytes a code)
BASE_RSS_BYTES = 1.2e9
RSS_BYTES_PER_CODE = 540
#: the longest estimated run accepted without --force
MAX_HOURS = 24


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


def scaled_codes(method, images: np.ndarray, labels: np.ndarray, size: int, seed: int, cache_key: str):
    """Codes and labels of ``size`` items: the database itself, then transformed copies of it,
    encoded through ``method``; each copy's codes are cached under ``.cache/efficiency/``."""
    from tqdm import tqdm

    n = len(images)
    n_copies = math.ceil(size / n)
    folder = cache_dir() / "efficiency"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for copy in tqdm(range(n_copies), desc=f"codes {method.name}", unit="copy", file=sys.stderr, leave=False):
        path = folder / f"{cache_key}-copy{copy}.npy"
        if path.is_file():
            codes = np.load(path)
        else:
            batch = images if copy == 0 else augment(images, copy_rng(seed, copy))
            codes = method.encode(batch)
            atomic_save_npy(path, codes)
        parts.append(codes)
    codes = np.concatenate(parts)[:size]
    return codes, np.tile(labels, (n_copies, 1))[:size]


# -- timing ------------------------------------------------------------------------------------------
def median_ms_per_query(search, queries: np.ndarray, repeats: int) -> float:
    search(queries[: max(1, len(queries) // 10)])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        search(queries)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / len(queries)


def median_ms_single(search, queries: np.ndarray, repeats: int) -> float:
    search(queries[:1])
    per_query = []
    for i in range(len(queries)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            search(queries[i:i + 1])
            times.append(time.perf_counter() - start)
        per_query.append(np.median(times))
    return 1000.0 * float(np.median(per_query))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


# -- accuracy ----------------------------------------------------------------------------------------
def retrieved_distances(query_codes, db_codes, ids):
    """Hamming distances of the retrieved ids (-1 = nothing: distance +inf)."""
    valid = ids >= 0
    distances = paired_distances(query_codes[:, None, :], db_codes[np.where(valid, ids, 0)]).astype(np.float64)
    distances[~valid] = np.inf
    return distances


def distance_shells(query_codes, db_codes, query_labels, db_labels, nbits: int, chunk: int = 8):
    """``(items, relevant)`` ``(n_query, nbits + 1)``: per query, the database items at each Hamming
    distance and how many of them share a label with the query (the tie groups of the exhaustive
    ranking)."""
    n_query = len(query_codes)
    items = np.zeros((n_query, nbits + 1), np.int64)
    relevant = np.zeros((n_query, nbits + 1), np.int64)
    labels_t = np.asarray(db_labels, np.float32).T.copy()
    for start in range(0, n_query, chunk):
        stop = min(start + chunk, n_query)
        distances = hamming_distances(query_codes[start:stop], db_codes).astype(np.int64)
        rel = (np.asarray(query_labels[start:stop], np.float32) @ labels_t) > 0
        flat = (distances + (nbits + 1) * np.arange(stop - start)[:, None]).ravel()
        size = (stop - start) * (nbits + 1)
        items[start:stop] = np.bincount(flat, minlength=size).reshape(stop - start, -1)
        relevant[start:stop] = np.bincount(flat, weights=rel.ravel(), minlength=size).reshape(stop - start, -1)
    return items, relevant


def accuracy(ids, query_codes, db_codes, query_labels, db_labels, kth_exhaustive, topk, shells=None):
    """``(recall, MAP@K, tie-aware MAP@K)`` of retrieved ``ids`` (n_query, K).

    Tie-aware: the groups are the returned items' distances (what the index found); the group at the
    index's K-th distance is completed from ``shells`` (:func:`distance_shells`), every database item
    at that distance: exact for an exhaustive index, and for an approximate one the tie-break it
    would face had it reached that whole shell."""
    distances = retrieved_distances(query_codes, db_codes, ids)
    found = np.minimum((distances <= kth_exhaustive[:, None]).sum(axis=1), topk)
    relevant = relevance_of(query_labels, db_labels, ids)
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


# -- the runs ----------------------------------------------------------------------------------------
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
class GridRow:
    """One family of Table II rows. ``row`` names it in the CSV; ``side`` says whose codes it
    searches (``baseline``: the baseline method's codes; ``tree``: the tree method's multi-level
    codes); ``index`` is a registry index (:mod:`search`) built with ``build`` and the method's own
    build parameters, or None for a reference scan of :data:`SCANS`; ``param`` is the search
    parameter swept over ``values``."""

    row: str
    side: str
    index: str | None = None
    param: str | None = None
    values: tuple = (None,)
    build: tuple = ()


def default_grid(topk: int, keep_ratios, tree_method: str = "hdhash", seed: int = 0) -> list[GridRow]:
    """Table II's rows: the scans and faiss's indexes on the baseline's codes, the tree on the tree
    method's codes (beside faiss's flat scan of the same codes)."""
    return [
        GridRow("numpy-scan", "baseline"),
        GridRow("faiss-flat", "baseline", "faiss-flat"),
        GridRow("faiss-hash", "baseline", "faiss-hash", "nflip", (0, 1, 2, 3)),
        GridRow("faiss-multihash", "baseline", "faiss-multihash", "nflip", (0, 1, 2)),
        GridRow("faiss-ivf", "baseline", "faiss-ivf", "nprobe", (1, 4, 16, 64), (("seed", seed),)),
        GridRow("faiss-hnsw", "baseline", "faiss-hnsw", "efSearch", (topk, 2 * topk)),
        GridRow(f"{tree_method}-flat", "tree", "faiss-flat"),
        GridRow(f"{tree_method}-tree", "tree", "tree", "keep_ratio", tuple(keep_ratios)),
        # every node a candidate (keep 1.0), a budget of codes instead: multiples of K
        GridRow(f"{tree_method}-tree-budget", "tree", "tree", "max_codes",
                tuple(m * topk for m in (1, 2, 5, 10, 20, 50, 100)),
                (("keep_ratio", 1.0),)),
        GridRow("exhaustive", "baseline", "hamming"),  # the project's compiled exhaustive top-K
        GridRow("exhaustive-full", "baseline"),
        GridRow("popcount-floor", "baseline"),
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


@dataclass
class Side:
    """One method's codes at the largest size, its queries and labels, and what its indexes need."""

    method: str
    code_bits: str
    codes: np.ndarray
    labels: np.ndarray
    queries: np.ndarray
    build: dict  # index name -> the method's build parameters for it


def prepare_side(dataset, name: str, bits: int, size: int, seed: int, params: dict) -> Side:
    """Fit (or load) ``name`` and encode the database grown to ``size`` codes (cached per model)."""
    from protocols import runner

    method, _ = runner.fit(dataset, name, bits, seed, params)
    # the codes are the model's: a deep model is named by its cache file (every parameter, the
    # method's cache_version and the training data), so codes of a stale model are never reused
    model = Path(method.fit_info.get("cache_path", "")).name
    key = hashlib.sha256(json.dumps([name, method.cache_params(), dataset.split_sha256, model], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    X_db, y_db = dataset.part("database")
    codes, labels = scaled_codes(method, X_db, y_db, size, seed, f"{dataset.name}-{name}-{bits}-{key}-seed{seed}")
    # what the method's own indexes need beyond the codes (the tree's levels)
    build = {mode.index: method.index_build_params(mode.index) for mode in method.searches}
    levels = build.get("tree", {}).get("levels")
    return Side(name, "+".join(map(str, levels)) if levels else str(bits), codes, labels,
                method.encode(dataset.part("query")[0]), build)


def set_threads(n: int) -> None:
    """Every library's threads, numba's (the compiled tree and scans) included."""
    import numba

    pin_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def time_setting(search, side: Side, size: int, kth, y_query, topk: int, repeats: int, timing: int, single: int,
                 shells=None, all_threads: int = 1):
    """``(ms batched, ms batched at all_threads, ms single, recall, MAP@K, tie-aware MAP@K, filled)``
    of one search function on the first ``size`` codes (one thread but the second figure); filled:
    the share of the K slots the index returned an item for (faiss's IVF and hash indexes return
    fewer than K where the probed lists hold fewer; MAP@K is scored over what is returned)."""
    queries = side.queries
    ms = median_ms_per_query(search, queries[:timing], repeats)
    ms_all = float("nan")
    if all_threads > 1:
        set_threads(all_threads)
        try:
            ms_all = median_ms_per_query(search, queries[:timing], repeats)
        finally:
            set_threads(1)
    ms_single = median_ms_single(search, queries[:single], repeats)
    ids = search(queries)
    if ids is None:  # the popcount floor ranks nothing
        return ms, ms_all, ms_single, float("nan"), float("nan"), float("nan"), float("nan")
    recall, map_k, tie_aware = accuracy(ids, queries, side.codes[:size], y_query, side.labels[:size], kth, topk,
                                        shells)
    return ms, ms_all, ms_single, recall, map_k, tie_aware, float(np.mean(ids >= 0))


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_cache_bytes() -> int:
    """Free space where the codes are cached (the nearest existing folder of the cache's path)."""
    folder = cache_dir().absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_plan(dataset, sizes, *, bits: int = 64, topk: int | None = None, repeats: int = 5,
               timing_queries: int = 200, single_queries: int = 20, force: bool = False) -> int:
    """K for ``dataset`` (``topk``, else the dataset's, else 1000), or a one-line
    :class:`protocols.runner.UsageError` before any work: a size that is not an integer >= K (the
    top-K of a smaller database is all of it: recall and MAP@K would mean nothing), or, unless
    ``force``, an estimated time over :data:`MAX_HOURS`, a peak memory over this machine's or
    cached codes over the free disk (the estimate is a floor, from the constants above)."""
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
    n_query = len(dataset.split.query)
    queries_per_row = n_query + (repeats + 1) * (2 * timing_queries + single_queries)
    hours = (ENCODE_S_PER_CODE * 2 * max(sizes) + SCAN_S_PER_CODE * queries_per_row * sum(sizes)) / 3600
    memory = BASE_RSS_BYTES + RSS_BYTES_PER_CODE * max(sizes)
    cache = 2 * (bits // 8) * max(sizes)
    machine, free = machine_memory_bytes(), free_cache_bytes()
    too_much = [f"an estimated {hours:,.0f} h (more than {MAX_HOURS} h)" if hours > MAX_HOURS else "",
                f"a peak memory of {memory / 1e9:,.1f} GB (this machine has {machine / 1e9:,.1f} GB)"
                if memory > machine else "",
                f"{cache / 1e9:,.1f} GB of cached codes ({free / 1e9:,.1f} GB free under {cache_dir()})"
                if cache > free else ""]
    too_much = [text for text in too_much if text]
    if too_much and not force:
        raise UsageError(f"--db-sizes up to {max(sizes):,} needs at least {' and '.join(too_much)}; "
                         "give smaller sizes, or --force to run anyway")
    return int(k)


def run_efficiency(dataset, sizes, *, bits: int = 64, topk: int | None = None, seed: int = 0,
                   baseline: str = "hashnet", tree_method: str = "hdhash", keep_ratios=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
                   params: dict | None = None, repeats: int = 5, timing_queries: int = 200, single_queries: int = 20,
                   skip=(), grid: list[GridRow] | None = None, progress: bool = True,
                   all_threads: int | None = None, force: bool = False) -> list[dict]:
    """Table II's rows for ``dataset`` (a loaded :class:`datasets.Dataset`) at each database size;
    batched searches are timed at one thread and at ``all_threads`` (default: every core). The plan
    is checked first (:func:`check_plan`; ``force`` runs one over this machine's estimate)."""
    from tqdm import tqdm

    from search import create_index

    topk = check_plan(dataset, sizes, bits=bits, topk=topk, repeats=repeats, timing_queries=timing_queries,
                      single_queries=single_queries, force=force)
    y_query = dataset.part("query")[1]
    sides = {"baseline": prepare_side(dataset, baseline, bits, max(sizes), seed, params or {}),
             "tree": prepare_side(dataset, tree_method, bits, max(sizes), seed, params or {})}
    all_threads = all_threads or os.cpu_count() or 1
    set_threads(1)  # training may use every core; the timings use one (and all_threads beside it)
    grid = [g for g in (grid or default_grid(topk, keep_ratios, tree_method, seed)) if g.row not in set(skip)]
    plan = [(size, g, value) for size in sizes for g in grid for value in g.values]
    order = {(g.row, value): i for i, (g, value) in enumerate((g, v) for g in grid for v in g.values)}
    context = {"dataset": dataset.name, "topk": topk, "seed": seed, "split_sha256": dataset.split_sha256,
               "repeats": repeats, "timing_queries": min(timing_queries, len(y_query)), "n_query": len(y_query),
               "threads": 1, "threads_all": all_threads, **machine_info(), **library_versions(),
               "git_commit": git_state()["commit"], "timestamp": now_utc()}
    rows, truth, built, shells = [], {}, {}, {}
    for size, g, value in tqdm(plan, desc="efficiency", unit="row", file=sys.stderr, disable=not progress):
        side = sides[g.side]
        codes = side.codes[:size]
        if (g.side, size) not in truth:  # the exhaustive K-th distance that recall is measured against
            distances = create_index("faiss-flat", codes).search(side.queries, topk)[0]
            truth[(g.side, size)] = distances[:, -1].astype(np.float64)
            shells[(g.side, size)] = distance_shells(side.queries, codes, y_query, side.labels[:size],
                                                     8 * codes.shape[1])
        build_s, index_bytes, visited, scanned = 0.0, codes.nbytes, None, None
        if g.index is None:
            search = SCANS[g.row](codes, topk)
        else:
            if (g.row, size) not in built:
                built.clear()  # one index alive at a time bounds memory
                start = time.perf_counter()
                index = create_index(g.index, codes, **dict(g.build), **side.build.get(g.index, {}))
                built[(g.row, size)] = (index, time.perf_counter() - start)
            index, build_s = built[(g.row, size)]
            if g.param is not None:
                index.set_search_params(**{g.param: value})
            search = lambda q, index=index: index.search(q, topk)[1]  # noqa: E731
            index_bytes = index.nbytes
        ms, ms_all, ms_single, recall, map_k, tie_aware, filled = time_setting(
            search, side, size, truth[(g.side, size)], y_query, topk, repeats, timing_queries, single_queries,
            shells[(g.side, size)], all_threads)
        distances, expanded = None, None
        if g.index == "tree":  # the last search ran every query
            scanned = float(np.mean(index.last_scanned))
            distances = float(np.mean(index.last_distances))
            expanded = float(np.mean(index.last_expanded))
            visited = float(np.mean(index.candidates(side.queries)))  # the keep rule's set, not timed
        rows.append({
            "index": g.row, "params": "" if g.param is None else f"{g.param}={value}", "code_bits": side.code_bits,
            "method": side.method, "db_size": size, "topk": topk, "ms_per_query": ms,
            "ms_per_query_all_threads": ms_all, "ms_per_query_single": ms_single, "recall": recall, "map": map_k,
            "map_tie_aware": tie_aware, "filled": filled, "index_bytes": int(index_bytes),
            "bytes_per_item": index_bytes / size,
            "peak_rss_mb": peak_rss_mb(), "build_s": build_s, "candidates_visited": visited,
            "codes_scanned": scanned, "distances_computed": distances, "nodes_expanded": expanded, **context,
            "order": order[(g.row, value)],
        })
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
    parser.add_argument("--single-queries", type=int, default=20, help="queries timed one at a time (default: 20)")
    parser.add_argument("--keep-ratios", default=DEFAULT_KEEP_RATIOS, help="tree keep ratios (default: "
                                                                           f"{DEFAULT_KEEP_RATIOS})")
    parser.add_argument("--baseline", default="hashnet", help="method whose single-level codes the baselines "
                                                              "scan (default: hashnet)")
    parser.add_argument("--tree-method", default="hdhash", help="method whose multi-level codes the tree "
                                                                "indexes (default: hdhash)")
    parser.add_argument("--skip", default="", help="row names to leave out, comma-separated (e.g. faiss-hnsw)")
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
    from datasets import list_datasets
    from protocols import runner
    from protocols.runner import UsageError
    from search.tree import TreeIndex

    if args.dataset not in list_datasets():
        raise UsageError(f"unknown dataset {args.dataset!r}; valid datasets: {', '.join(list_datasets())}")
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
                variants=variants, force=args.force)


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
    from protocols.efficiency_report import write_efficiency_report

    def work():
        settings = validate(args)
        runner.check_writable(Path(args.out) / "efficiency", "--out")
        dataset = runner.load(args.dataset, args.data_root, args.seed)
        variants = settings.pop("variants")
        name = table_name(dataset.name, settings["bits"], settings["baseline"], settings["tree_method"], variants)
        rows = run_efficiency(dataset, settings.pop("sizes"), **settings)
        for row in rows:  # what the run changed, in each record (the default run's records have none)
            if any(variants.values()):
                row["variant"] = {k: v for k, v in variants.items() if v}
        for path in write_efficiency_report(rows, Path(args.out), name):
            print(path)

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
