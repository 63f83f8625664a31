"""Table II's plan: what a run does on this machine, what it leaves out and why, and what it costs.

:func:`make_plan` expands the grid (:mod:`protocols.efficiency_grid`) per database size into the
indexes to build and the settings to time, leaves out before any work what this machine cannot run
(:func:`left_out_reason`: a size past a row's limit, memory, IVF's training time, a build over the
row limit), and estimates the time, memory and cache from the measured costs below;
:func:`describe_plan` says it in lines (``--dry-run``), :func:`check_plan` refuses a plan beyond
this machine in one line (``--force`` runs it anyway); :func:`build_planned` builds one planned
index (the run measures it, the paired timing builds it again).
"""
from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from common.files import cache_dir
from protocols.efficiency_grid import SCANS, GridRow, Scale, default_grid, setting_label

if TYPE_CHECKING:
    from protocols.efficiency_codes import Side

# What the plan (:func:`make_plan`, :func:`check_plan`) estimates with: costs measured for Table II
# on this project's 2-core AMD EPYC at one thread (results/efficiency/*.csv, the stored run at
# 10,000 to 1,000,000 codes; the slower of Fashion-MNIST and fashion-mosaic), rounded up; IVF's
# training, MultiHash's per-setting factors and the per-query overhead recalibrated on the 2-core
# Intel Xeon's Fashion-MNIST run of 2026-12-06 (the plan had put it at 24 min; it took 38). They
# refuse or leave out what cannot run here and size a run; they are not timings.
#: encoding one database image through a model, per pixel (70,000 Fashion-MNIST images of 784 pixels
#: in 5.1-30 s, 20,000 fashion-mosaic images of 3,136 pixels in 9-27 s: 0.1-0.5 us a pixel); both
#: methods encode every encoded code (the copies are cached: a rerun encodes nothing)
ENCODE_S_PER_PIXEL = 0.1e-6
#: growing one code bit at the code level (:func:`protocols.efficiency_codes.generated_codes`)
GENERATE_S_PER_BIT = 2e-9
#: the exact distance shells (:func:`protocols.efficiency_measure.distance_shells`): one query against one
#: code, compiled, every core
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
IVF_TRAIN_S_PER_NLIST2, IVF_ADD_S_PER_CODE_LIST = 3.0e-6, 0.5e-9
#: what every search costs beside its scan (a call into faiss or numba, the ids it returns, Python):
#: at 10,000 codes the flat scans' rows took ~0.2 ms a query over their ~0.015 ms scan (2-core Intel
#: Xeon, Fashion-MNIST Table II of 2026-12-06)
SEARCH_S_PER_QUERY = 0.2e-3
#: the share of this machine's memory a plan may count on
MEMORY_SHARE = 0.85
#: the longest estimated run accepted without --force
MAX_HOURS = 24
#: a row's default time limit (build and every timed search), and IVF's training limit (issue 30: the
#: lists that train within 10 minutes here)
MAX_ROW_MINUTES, MAX_TRAIN_MINUTES = 45.0, 10.0


# -- the plan: what runs, what is left out and why, what it costs ------------------------------------
def flat_seconds(size: int, topk: int) -> float:
    """faiss's flat scan of ``size`` codes for one query (the constants above)."""
    return (FLAT_S_PER_CODE + FLAT_S_PER_CODE_PER_K * topk) * size


def search_seconds(g: GridRow, size: int, topk: int, build: dict | None = None, setting: dict | None = None) -> float:
    """The estimated seconds of one query of a row of ``g`` (at ``build`` and search ``setting``, where
    its cost depends on them): ``("scan", s)`` s per code; ``("flat", r)`` r times faiss's flat scan;
    ``("graph", r)`` r times the flat scan of 1,000,000 codes, growing with log n (a graph walk); ``r``
    a function of ``(build, setting)`` where it is (MultiHash's layout and flips); plus
    :data:`SEARCH_S_PER_QUERY`."""
    kind, factor = g.cost
    if callable(factor):
        factor = factor(build or {}, setting or {})
    if kind == "scan":
        seconds = factor * size
    elif kind == "graph":
        seconds = factor * flat_seconds(min(size, 10**6), topk) * max(1.0, math.log(size) / math.log(10**6))
    else:
        seconds = factor * flat_seconds(size, topk)
    return SEARCH_S_PER_QUERY + seconds


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
              max_train_minutes: float = MAX_TRAIN_MINUTES, all_threads: int | None = None, skip=()) -> Plan:
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
    # the rows the run measures: ``grid`` (default: Table II's at this K) less the ``skip``ped ones
    grid = [g for g in (grid or default_grid(k, keep_ratios, tree_method, seed)) if g.row not in set(skip)]
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
                search_s = sum(min(search_seconds(g, size, k, build, setting) * per_setting,
                                   math.inf if g.always else 60 * max_row_minutes) for setting in searches)
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


@dataclass
class Built:
    """One planned index (or reference scan) as built: ``search(query_codes) -> ids`` (None where the
    plan left it out), the index (None for a scan), its build seconds and its bytes (a scan's: the
    codes')."""

    search: object = None
    index: object = None
    build_s: float = 0.0
    nbytes: float = 0.0


def build_planned(planned: PlannedBuild, side: Side, topk: int) -> Built:
    """Build ``planned``'s index (timed) over ``side``'s codes at its size, or set up its scan."""
    from search import create_index

    codes, g = side.codes[:planned.size], planned.grid
    if planned.left_out:
        return Built(nbytes=codes.nbytes)
    if g.index is None:
        return Built(SCANS[g.row](codes, topk), nbytes=codes.nbytes)
    start = time.perf_counter()
    index = create_index(g.index, codes, **dict(g.fixed), **planned.build, **side.build.get(g.index, {}))
    build_s = time.perf_counter() - start
    return Built(lambda q, index=index: index.search(q, topk)[1], index, build_s, index.nbytes)
