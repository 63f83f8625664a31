"""Table II's runs: :func:`run_efficiency`, the library call that measures every planned setting.

It checks the plan (:mod:`protocols.efficiency_plan`), fits both methods and grows their codes to the
largest size (:mod:`protocols.efficiency_codes`), then per planned index at each size builds it once
and measures each of its settings (:func:`measure_setting`, with :mod:`protocols.efficiency_measure`),
one index alive at a time; a row left out by the plan or by its warm-up carries the reason. The
command (``python -m protocols.efficiency``) parses flags and stores the rows as they come.
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

from common.provenance import git_state, library_versions, machine_info, now_utc
from common.threads import pin_threads
from protocols.deadline import may_start, not_started, start_until
from protocols.efficiency_codes import GENERATOR, Side, prepare_side
from protocols.efficiency_frame import PHASE_FIELDS, loaded
from protocols.efficiency_grid import GridRow, setting_label
from protocols.efficiency_measure import (
    Measure,
    OtherCpu,
    accuracy,
    distance_shells,
    kth_distances,
    load_average,
    peak_rss_mb,
    probe_ms,
    settle_load,
    time_batched,
    time_single,
)
from protocols.efficiency_paired import paired_timing
from protocols.efficiency_plan import (
    MAX_ROW_MINUTES,
    MAX_TRAIN_MINUTES,
    Built,
    PlannedBuild,
    build_planned,
    checked_plan,
    searches_per_setting,
)
from protocols.efficiency_records import record_name
from search.tree import PHASE_SHARES


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
    # every query scored once, on every core: a ranking does not depend on the thread count (each
    # query is searched alone), and this pass is a quarter of a row's searches (1,000 of 4,061 at the
    # defaults on fashion-mosaic), so on 2 cores a row takes ~7/8 of the time it took at one thread
    pin_threads(m.all_threads)
    try:
        ids = search(queries)
    finally:
        pin_threads(1)
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
                   on_row=None, on_kept=None, resume: dict | None = None, settle_s: float = 0.0) -> list[dict]:
    """Table II's rows for ``dataset`` (a loaded :class:`datasets.Dataset`) at each database size,
    one per setting of every grid row (:func:`protocols.efficiency_grid.default_grid` unless ``grid``),
    the left-out ones included with their reason; batched searches are timed at one thread and at
    ``all_threads`` (default: every core). Codes past ``generate_past`` are generated
    (:func:`protocols.efficiency_codes.scaled_codes`). The plan is checked first
    (:func:`protocols.efficiency_plan.check_plan`; ``force`` runs one over this machine's estimate).
    ``on_row(row)`` is called with each row as soon as it is measured (the command stores it, so a
    run of many hours that dies keeps what it measured). ``resume`` (stored records by
    :func:`protocols.efficiency_records.record_name`, ``--resume``): an index build whose every setting
    an earlier run stored under the same code, machine, settings and codes (:func:`kept_rows`) is not
    measured again; its rows are neither returned nor passed to ``on_row`` (unless the paired timing
    updates them) but to ``on_kept(records)``, once, before anything is measured: they are this run's
    too. Past ``HASHBENCH_START_UNTIL`` (:mod:`protocols.deadline`) no index is built: the run ends
    with what it measured and says how many rows are left for ``--resume``. ``settle_s``: before the
    first row, wait up to this long for the load average to fall below the loaded mark
    (:func:`protocols.efficiency_measure.settle_load`; the command's ``--require-quiet``)."""
    until = start_until()
    all_threads = all_threads or os.cpu_count() or 1
    plan = checked_plan(dataset, sizes, force=force, bits=bits, topk=topk, repeats=repeats,
                        timing_queries=timing_queries, single_queries=single_queries, generate_past=generate_past,
                        grid=grid, keep_ratios=keep_ratios, tree_method=tree_method, seed=seed, skip=skip,
                        max_row_minutes=max_row_minutes, max_train_minutes=max_train_minutes,
                        all_threads=all_threads)
    if not may_start(until):  # before the models are fitted: nothing would be measured
        if progress:
            print(not_started(f"all {sum(len(b.searches) for b in plan.builds)} rows", "run the command before "
                              "it, or unset it"), file=sys.stderr)
        return []
    y_query = dataset.part("query")[1]
    sides = {"baseline": prepare_side(dataset, baseline, bits, max(sizes), seed, params or {}, generate_past),
             "tree": prepare_side(dataset, tree_method, bits, max(sizes), seed, params or {}, generate_past)}
    pin_threads(1)  # training may use every core; the timings use one (and all_threads beside it)
    _settle(settle_s, progress)
    m = Measure(plan.topk, repeats, min(timing_queries, len(y_query)), min(single_queries, len(y_query)), all_threads,
                max_row_minutes)
    context = _context(dataset, seed, len(y_query), m)
    identities = _identities(plan.builds, sides, context)
    kept = {} if resume is None else _kept(plan.builds, sides, m.topk, identities, resume)
    kept_records = [record for records in kept.values() for record in records]
    if on_kept is not None and kept_records:
        on_kept(kept_records)
    rows, late = _measure_builds(plan.builds, sides, kept, identities, y_query, m, on_row, until, progress)
    unpaired = []
    rows = paired_timing(plan.builds, sides, rows, m, on_row, kept=kept_records, incomplete=set(late), until=until,
                         unpaired=unpaired)
    if resume is not None and progress:
        print(f"--resume: kept {len(kept_records)} of {len(kept_records) + len(rows)} rows an earlier run of commit "
              f"{str(context['git_commit'])[:10]} stored; measured {len(rows)}", file=sys.stderr)
    if (late or unpaired) and progress:
        left = [f"{sum(late.values())} rows"] if late else []
        left += [f"the paired timing at {', '.join(f'{n:,}' for n in unpaired)} codes"] if unpaired else []
        print(not_started(" and ".join(left), "run the same command with --resume to go on"), file=sys.stderr)
    return rows


def _settle(settle_s: float, progress: bool) -> None:
    """Up to ``settle_s`` seconds' wait for the load average to fall below the loaded mark, said where it waited."""
    if not settle_s:
        return
    waited = settle_load(lambda load: loaded(load, os.cpu_count()), settle_s)
    if progress and waited:
        load = load_average()
        still = " (still over the mark: the rows timed now are marked)" if loaded(load, os.cpu_count()) else ""
        print(f"waited {waited:.0f} s after fitting and encoding for the load average to settle: {load:.2f}{still}",
              file=sys.stderr)


def _measure_builds(builds: list[PlannedBuild], sides: dict, kept: dict, identities: dict, y_query, m: Measure,
                    on_row, until: float | None, progress: bool) -> tuple[list[dict], dict]:
    """Every planned build but those ``kept`` (:func:`_kept`), built and measured in the plan's order,
    until the start deadline ``until``: ``(rows, late)``, ``late`` the rows per size not started."""
    from tqdm import tqdm

    rows, exact, late, order = [], {}, {}, {}
    bar = tqdm(total=sum(len(b.searches) for b in builds), desc="efficiency", unit="row", file=sys.stderr,
               disable=not progress)
    for i, planned in enumerate(builds):
        side, key = sides[planned.grid.side], (planned.grid.side, planned.size)
        first = order.get(planned.size, -1) + 1  # the rows' place in the grid's order at their size
        order[planned.size] = first + len(planned.searches) - 1
        if i in kept or not may_start(until):
            if i not in kept:
                late[planned.size] = late.get(planned.size, 0) + len(planned.searches)
            bar.update(len(planned.searches))
            continue
        if key not in exact:  # the exact shells and K-th distances that accuracy is measured against
            exact[key] = _exact_distances(side, planned.size, y_query, m)
        rows += _measure_build(planned, side, exact[key], identities[key], first, y_query, m, on_row, bar)
    bar.close()
    return rows, late

def _identities(builds: list[PlannedBuild], sides: dict, context: dict) -> dict:
    """Per (side, size) a build searches, what its rows share: the run's context and the codes' hash."""
    identities = {}
    for planned in builds:
        key = (planned.grid.side, planned.size)
        if key not in identities:
            identities[key] = {**context, "codes_sha256": codes_sha256(sides[key[0]].codes[:planned.size])}
    return identities


def _kept(builds: list[PlannedBuild], sides: dict, topk: int, identities: dict, stored: dict) -> dict:
    """Per build (its index in ``builds``), the stored records ``--resume`` keeps (:func:`kept_rows`)."""
    kept = {}
    for i, planned in enumerate(builds):
        records = kept_rows(planned, sides[planned.grid.side], topk, identities[(planned.grid.side, planned.size)],
                            stored)
        if records is not None:
            kept[i] = records
    return kept


def _measure_build(planned: PlannedBuild, side: Side, exact, identity: dict, first: int, y_query, m: Measure, on_row,
                   bar) -> list[dict]:
    """Build ``planned``'s index once and measure each of its settings: rows numbered from ``first`` in
    the grid's order, each passed to ``on_row`` as soon as it is measured. The index goes when this
    returns: one alive at a time bounds memory."""
    built = build_planned(planned, side, m.topk)
    rows = []
    for i, setting in enumerate(planned.searches):
        fields = _setting_fields(planned, setting, built, side, exact, y_query, m)
        rows.append({**_row_identity(planned, setting, side, m.topk), **fields, **identity, "order": first + i})
        if on_row is not None:
            on_row(rows[-1])
        bar.update()
    return rows


#: what a stored row must share with this run for ``--resume`` to keep it: the same code (a clean
#: tree at one commit), machine, libraries, split, settings, limits and codes
RESUME_FIELDS = ("git_commit", "git_dirty", "dataset", "split_sha256", "seed", "topk", "repeats", "timing_queries",
                 "single_queries", "n_query", "threads", "threads_all", "max_row_minutes", "cpu", "cores", "platform",
                 "python", "numpy", "torch", "faiss", "sklearn", "index", "params", "build_params", "method",
                 "code_bits", "db_size", "encoded_codes", "generator", "codes_sha256")


def codes_sha256(codes: np.ndarray) -> str:
    """The SHA-256 of a database's codes, stored in every row: a resumed run keeps only rows measured
    on the very codes it searches."""
    return hashlib.sha256(np.ascontiguousarray(codes)).hexdigest()


def kept_rows(planned: PlannedBuild, side: Side, topk: int, identity: dict, stored: dict) -> list[dict] | None:
    """The stored records a resumed run keeps for ``planned``: one per setting, each equal to this
    run on every :data:`RESUME_FIELDS` (``identity``: the run's context and the codes' hash); None
    where any setting's is missing or differs, and the build is measured again whole (so an index's
    rows at a size come from one run). A dirty tree keeps nothing."""
    if identity.get("git_dirty") is not False or identity.get("git_commit") is None:
        return None
    records = []
    for setting in planned.searches:
        expected = {**_row_identity(planned, setting, side, topk), **identity}
        record = stored.get(record_name(expected))
        if record is None or any(record.get(k) != expected.get(k) for k in RESUME_FIELDS):
            return None
        records.append(record)
    return records


def _context(dataset, seed: int, n_query: int, m: Measure) -> dict:
    """What every row of a run shares: the dataset and split, the run's settings, the machine, the
    library versions, the commit (and whether the tree differed from it) and when it started measuring."""
    git = git_state()
    return {"dataset": dataset.name, "topk": m.topk, "seed": seed, "split_sha256": dataset.split_sha256,
            "repeats": m.repeats, "timing_queries": m.timing_queries, "single_queries": m.single_queries,
            "n_query": n_query, "threads": 1, "threads_all": m.all_threads, "max_row_minutes": m.max_row_minutes,
            **machine_info(), **library_versions(), "git_commit": git["commit"], "git_dirty": git["dirty"],
            "timestamp": now_utc()}


def _exact_distances(side: Side, size: int, y_query, m: Measure):
    """``(K-th distances, shells)`` of ``side``'s queries against its first ``size`` codes
    (:func:`protocols.efficiency_measure.distance_shells`, on every core; not timed)."""
    codes = side.codes[:size]
    pin_threads(m.all_threads)
    try:
        shells = distance_shells(side.queries, codes, y_query, side.labels, 8 * codes.shape[1])
    finally:
        pin_threads(1)
    return kth_distances(shells, m.topk), shells


def _row_identity(planned: PlannedBuild, setting: dict, side: Side, topk: int) -> dict:
    """The fields that name a row: index, setting, codes, size, K and where its codes come from."""
    encoded = min(planned.size, side.encoded)
    return {"index": planned.grid.row, "params": setting_label(planned.build, setting),
            "build_params": setting_label(planned.build, {}), "code_bits": side.code_bits, "method": side.method,
            "db_size": planned.size, "topk": topk, "encoded_codes": encoded,
            "generator": GENERATOR if encoded < planned.size else None}


def _setting_fields(planned: PlannedBuild, setting: dict, built: Built, side: Side, exact, y_query,
                    m: Measure) -> dict:
    """One setting's measured fields (:func:`measure_setting`) with the index's bytes, the peak RSS so
    far and the build time, and for the tree what its search visited; a build the plan left out: its
    reason alone."""
    if planned.left_out:
        return {"ms_per_query": None, "left_out": planned.left_out}
    if built.index is not None and setting:
        built.index.set_search_params(**setting)
    kth, shells = exact
    fields = measure_setting(built.search, side, planned.size, kth, shells, y_query, m, planned.grid.always)
    fields.update(index_bytes=int(built.nbytes), bytes_per_item=built.nbytes / planned.size,
                  peak_rss_mb=peak_rss_mb(), build_s=built.build_s, candidates_visited=None,
                  codes_scanned=None, distances_computed=None, nodes_expanded=None, **dict.fromkeys(PHASE_FIELDS))
    if planned.grid.index == "tree" and not fields.get("left_out"):  # the last search ran every query
        index = built.index
        fields.update(codes_scanned=float(np.mean(index.last_scanned)),
                      distances_computed=float(np.mean(index.last_distances)),
                      nodes_expanded=float(np.mean(index.last_expanded)),
                      # the keep rule's set, not timed
                      candidates_visited=float(np.mean(index.candidates(side.queries))))
        # where its time goes: one profiled pass over the timing queries at one thread, after the timings
        shares = index.phase_shares(side.queries[:m.timing_queries], m.topk)
        fields.update({field: shares.get(name) for field, name in zip(PHASE_FIELDS, PHASE_SHARES)})
    return fields
