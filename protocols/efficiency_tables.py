"""Table II's Markdown (``efficiency/<table>.md``), from the frame of :mod:`protocols.efficiency_frame`.

Per database size: the headline (issue 30: per index the fastest setting with recall >= 0.95 of the
exact top-K and every slot filled, its tie-aware MAP@K against faiss flat's, against faiss flat
(best); the single-query column against faiss's MultiHash at its best, the all-cores column, the old
99%-of-MAP point, bytes per code), the faiss settings beside the tree's nearest Pareto point, what was
left out and why, every setting with its timing spread; then issue 30's goals, the generator's
validity where a size has both encoded and generated codes, and the scaling table with each index's
fitted slope (the goals and the generator's check are :mod:`protocols.efficiency_checks`'). A row
timed on a loaded machine carries :data:`LOADED_MARK`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from protocols.efficiency_checks import generator_lines, goal_lines
from protocols.efficiency_frame import (
    CRITERION_MAP_SHARE,
    CRITERION_RECALL,
    PHASE_FIELDS,
    SUBLINEAR,
    TREE_ROWS,
    at_size,
    cpu_models,
    faiss_against_tree,
    family_point,
    fastest,
    flat_best,
    measured,
    meets_criterion,
    old_point,
    paper_point_rows,
    paper_rows,
    paper_speedups,
    paper_table2,
    row_label,
    scaling_points,
    slope,
)
from search.tree import PHASE_SHARES

#: a row timed on a loaded machine (:func:`protocols.efficiency_frame.loaded`) carries this mark
LOADED_MARK = "ˡ"


def _filled_label(row) -> str:
    """The setting, and how much of the top K it returned where that was not all of it."""
    return row_label(row) + (f" [returns {row['filled']:.0%} of K]" if row["filled"] < 0.999 else "")


def _fmt(value, digits=3):
    return "–" if pd.isna(value) else f"{value:.{digits}f}"


def _ms(row, column="ms_per_query") -> str:
    """A time with the loaded-machine mark where it applies."""
    return _fmt(row[column]) + (LOADED_MARK if row.get("loaded") else "")


def _ratio(base, value) -> str:
    return "–" if pd.isna(base) or pd.isna(value) or not value else f"{base / value:.2f}x"


def _threads(row) -> str:
    return "–" if pd.isna(row["threads_all"]) else str(int(row["threads_all"]))


def _codes_text(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    dataset = first.get("dataset", "the dataset's")
    if not first["generated"]:
        return (f"{dataset} database plus seeded transformed copies, encoded by the trained models")
    return (f"the first {int(first['encoded_codes']):,} encoded ({dataset} database plus seeded transformed copies), "
            f"the rest generated at the code level ({first['generator']}, protocols/README.md)")


def _load_text(rows: pd.DataFrame) -> str:
    loads = pd.concat([rows["load_before"], rows["load_after"]]).dropna()
    if not len(loads):
        return "load not recorded (records from before issue 30)"
    others = rows["other_cpu_cores"].dropna()
    marked = int(rows["loaded"].sum())
    return (f"load average {loads.min():.2f}-{loads.max():.2f} around the rows"
            + (f", other processes used {others.min():.2f}-{others.max():.2f} cores meanwhile" if len(others) else "")
            + (f"; {marked} row(s) timed on a loaded machine (load beyond the timing thread over 0.5 a core), "
               f"marked {LOADED_MARK}: their times are not valid" if marked else "; no row timed on a loaded machine"))


def _runs_text(rows: pd.DataFrame) -> str:
    """Which runs measured a size's rows (a run is its start ``timestamp``): one, or several (a resumed
    run beside the stopped one, or indexes rerun alone), where the ratios between rows span runs."""
    stamps = rows["timestamp"].dropna().unique() if "timestamp" in rows else []
    commits = sorted({str(c)[:7] for c in rows["git_commit"].dropna()}) if "git_commit" in rows else []
    of = f"commit {', '.join(commits)}" if commits else "commit not recorded"
    models = cpu_models(rows)
    if len(models) > 1:
        counts = rows["cpu"].astype(str).value_counts()
        return (f"{len(stamps)} runs ({of}) on {len(models)} CPU models ("
                + ", ".join(f"{m}: {counts[m]} rows" for m in models) + "): ratios between rows timed on different "
                "machines are not measurements, and the goals do not judge this size")
    if len(stamps) <= 1:
        return f"one run ({of})"
    return (f"{len(stamps)} runs ({of}; started {min(stamps)} to {max(stamps)}): a stopped run resumed or indexes "
            "rerun alone, so ratios between rows of different runs are not from one run")


def markdown(frame: pd.DataFrame, dataset: str) -> str:
    """``efficiency/<dataset>.md`` from the prepared frame (:func:`protocols.efficiency_frame.prepared`)."""
    sizes = sorted(frame["db_size"].unique(), reverse=True)
    size_rows = {int(size): at_size(frame, size) for size in sizes}
    largest = int(sizes[0])
    timed = measured(frame)
    first = (timed if len(timed) else frame).iloc[0]
    topk = int(frame["topk"].iloc[0])
    single = "" if pd.isna(first.get("single_queries", np.nan)) else f"{int(first['single_queries'])} "
    lines = [
        f"# {dataset}: search time and memory (Table II layout)",
        "",
        f"Generated from `efficiency/{dataset}.csv` by `python -m protocols.efficiency_report`. "
        f"Top-{topk} per query, {int(first['timing_queries'])} queries batched, single thread, median of "
        f"{int(first['repeats'])} repeats after a warm-up (min-max beside it where recorded); {single}queries one at "
        f"a time (a batch of 1); 'all cores': the same batch split over {_threads(first)} threads; {first['cpu']}; "
        f"faiss {first['faiss']}, numpy {first['numpy']}.",
        f"Recall is of the exact top-K on the same codes, ties allowed for (an item at the exact K-th distance "
        "counts, whichever of the tied items an index returns); MAP@K (ties in id order) and tie-aware MAP@K (the "
        "expected AP@K over every order inside each group of equal distances: it scores the distances an index "
        f"finds, not its tie-break) over all {int(first['n_query'])} queries. The headline criterion (issue 30): "
        f"recall >= {CRITERION_RECALL} with every one of the K slots filled and tie-aware MAP@K >= "
        f"{CRITERION_MAP_SHARE:.0%} of faiss flat's; every ratio is against faiss flat (best), the fastest faiss "
        "flat setting per query (use_heap on or off, any query_batch_size, batched or one query at a time), on "
        f"{_codes_of(frame, 'faiss-flat')}; the tree searches {_codes_of(frame, 'hdhash-tree')}. Paper figures: "
        "ImageNet-100, their machine.",
    ]
    lines += _paper_lines(size_rows[largest])
    lines += goal_lines(frame, size_rows)
    for size in sizes:
        rows = size_rows[int(size)]
        lines += ["", f"## {int(size):,} codes", "",
                  f"Codes: {_codes_text(rows)}. Machine: {_load_text(rows)}. Measured in {_runs_text(rows)}.", ""]
        lines += headline_lines(rows, int(size))
        lines += against_faiss_lines(rows)
        lines += left_out_lines(rows)
        lines += _exhaustive_lines(rows)
        lines += phase_lines(rows)
    lines += generator_lines(frame)
    lines += ["", "## Scaling: ms/query (batched, one thread) by database size", "",
              "Each index at its headline point per size (faiss flat: its fastest setting; a sublinear index: its "
              "fastest setting meeting the criterion), and the slope of log ms/query against log n fitted over the "
              "sizes (1: linear in n).", ""]
    lines += scaling_lines(frame)
    lines += ["", "Every setting:", "", _scaling_table(frame[~frame["is_left_out"]]), ""]
    for size in sizes:
        lines += every_index_lines(size_rows[int(size)], int(size))
    lines.append("")
    return "\n".join(lines)


def _codes_of(frame: pd.DataFrame, index: str) -> str:
    """Whose codes an index searches, as the rows say (``HashNet's 64-bit codes``)."""
    rows = frame[frame["index"] == index]
    if not len(rows) or "method" not in rows:
        return "its method's codes"
    r = rows.iloc[0]
    return f"{r['method']}'s {r['code_bits']}-bit codes"


def _paper_lines(rows: pd.DataFrame) -> list[str]:
    """HDHash(0.3) and the numpy scan beside the paper's figures (ImageNet-100, their machine), at
    the largest size."""
    timed = measured(rows)
    tree = paper_point_rows(timed)
    scan = timed[timed["index"] == "numpy-scan"]
    if not len(tree) or not len(scan):
        return []
    paper_tree, paper_scan = paper_rows(paper_table2())
    paper_time, paper_memory = paper_speedups()
    t, s = tree.iloc[0], scan.iloc[0]
    return ["", f"Beside the paper (largest size, {int(t['db_size']):,} codes): HDHash(0.3) {t['ms_per_query']:.3f} "
            f"ms/query and {t['index_bytes'] / 1e6:.1f} MB against the numpy linear scan's {s['ms_per_query']:.3f} ms "
            f"and {s['index_bytes'] / 1e6:.1f} MB: {s['ms_per_query'] / t['ms_per_query']:.2f}x time, "
            f"{s['index_bytes'] / t['index_bytes']:.2f}x memory; the paper: {paper_tree['search_ms_per_query']} "
            f"against {paper_scan['search_ms_per_query']} ms, {paper_time:.2f}x time, {paper_memory:.2f}x memory."]


def headline_lines(rows: pd.DataFrame, size: int) -> list[str]:
    """The headline table at one size (see the module docstring)."""
    flat, flat_ms, mode = flat_best(rows)
    if flat is None:
        return ["No faiss flat row at this size: no baseline to quote ratios against."]
    flat_map = flat["judged_map"]
    timed = measured(rows)
    flat_all = fastest(timed[timed["index"] == "faiss-flat"], "ms_per_query_all_threads")
    multihash = timed[timed["index"] == "faiss-multihash"]
    multihash_single = fastest(multihash[meets_criterion(multihash, flat_map)], "ms_per_query_single")
    flat_all_ms = flat_all["ms_per_query_all_threads"] if flat_all is not None else np.nan
    mh_ms = multihash_single["ms_per_query_single"] if multihash_single is not None else np.nan
    lines = [f"faiss flat (best): {row_label(flat)}, {mode}, {flat_ms:.3f} ms/query (one thread), tie-aware MAP@K "
             f"{_fmt(flat_map, 4)}; all cores: "
             + (f"{row_label(flat_all)}, {flat_all_ms:.3f} ms/query" if flat_all is not None else "–")
             + "; faiss MultiHash at its best one query at a time (meeting the criterion): "
             + (f"{row_label(multihash_single)}, {mh_ms:.3f} ms" if multihash_single is not None else "none meets it"),
             "",
             f"| index | fastest setting with recall >= {CRITERION_RECALL} and every slot filled | ms/query | "
             "vs faiss flat (best) | recall | tie-aware MAP@K (of flat's) | single query (ms) | vs MultiHash best "
             "(single) | all cores (ms) | vs flat best (all cores) | old point: fastest keeping 99% of MAP | "
             "bytes/code |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def line(name, r, ms_column="ms_per_query"):
        old = old_point(timed[timed["index"] == r["index"]], flat_map) if r["index"] in SUBLINEAR else None
        old_text = "–" if old is None else (f"{old['params'] or '-'}: {old['ms_per_query']:.3f} ms, "
                                            f"{_ratio(flat_ms, old['ms_per_query'])}, recall {old['recall']:.3f}")
        return (f"| {name} | {r['params'] or '-'} | {_ms(r, ms_column)} | {_ratio(flat_ms, r[ms_column])} | "
                f"{_fmt(r['recall'])} | {_fmt(r['judged_map'], 4)} ({r['judged_map'] / flat_map:.1%}) | "
                f"{_ms(r, 'ms_per_query_single')} | {_ratio(mh_ms, r['ms_per_query_single'])} | "
                f"{_ms(r, 'ms_per_query_all_threads')} | {_ratio(flat_all_ms, r['ms_per_query_all_threads'])} | "
                f"{old_text} | {_fmt(r['bytes_per_item'], 2)} |")

    best_column = "ms_per_query" if mode == "batched" else "ms_per_query_single"
    lines.append(line(f"faiss flat (best), {mode}", flat, best_column))
    for name in pd.unique(timed["index"]):
        if name == "faiss-flat" or name == "popcount-floor":
            continue
        point = family_point(rows, name, flat_map)
        if point is not None:
            lines.append(line(name, point))
        elif name in SUBLINEAR:
            old = old_point(timed[timed["index"] == name], flat_map)
            lines.append(f"| {name} | none meets the criterion | | | | | | | | | "
                         + ("–" if old is None else f"{old['params']}: {old['ms_per_query']:.3f} ms, recall "
                                                    f"{old['recall']:.3f}") + " | |")
    paper_point = paper_point_rows(timed)
    if len(paper_point):
        r = paper_point.iloc[0]
        meets = bool(meets_criterion(paper_point, flat_map).iloc[0])
        lines.append(line(f"HDHash(0.3), the paper's point ({'meets' if meets else 'does not meet'} the criterion)",
                          r))
    return lines + _paired_lines(timed)


def _paired_lines(timed: pd.DataFrame) -> list[str]:
    """The headline's ratios timed in pairs (:func:`protocols.efficiency_paired.paired_timing`), where the run did."""
    if "paired_ratio" not in timed:
        return []
    paired = timed[timed["paired_ratio"].notna()]
    if paired.empty:
        return []
    parts = [f"{row_label(r)} {r['paired_ratio']:.2f}x ({r['paired_flat_ms']:.3f} against {r['paired_ms']:.3f} ms)"
             for r in paired.sort_values("paired_ms").to_dict("records")]
    first = paired.iloc[0]
    return ["", f"Timed in pairs after the grid ({int(first['paired_rounds'])} rounds, faiss flat's "
                f"{first['paired_flat']} and each tree point in turn, one repeat each; the ratio is the median of the "
                f"rounds' ratios, so both sides meet the machine at the same minutes): " + "; ".join(parts) + "."]


def against_faiss_lines(rows: pd.DataFrame) -> list[str]:
    """Per faiss setting, the fastest tree setting with at least its recall (one thread, same run)."""
    pairs = list(faiss_against_tree(rows))
    if not pairs:
        return []
    lines = ["", "Per faiss setting (HashNet's codes), the tree's Pareto point next to it (HDHash's codes): the "
             "fastest tree setting whose recall is at least as high (where none is, the tree's most accurate, "
             "marked *); one thread, the same run. 'faiss wins': the faiss setting is faster at at least the "
             "tree point's recall.", "",
             "| faiss setting | recall | filled | ms/query | tie-aware MAP@K | tree point | recall | "
             "ms/query | tie-aware MAP@K | tree speedup | faiss wins |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f, t, beaten in pairs:
        lines.append(f"| {row_label(f)} | {_fmt(f['recall'])} | {_fmt(f['filled'])} | {_ms(f)} | "
                     f"{_fmt(f['judged_map'], 4)} | {row_label(t)}{'*' if t['recall'] < f['recall'] else ''} | "
                     f"{_fmt(t['recall'])} | {_ms(t)} | {_fmt(t['judged_map'], 4)} | "
                     f"{_ratio(f['ms_per_query'], t['ms_per_query'])} | {'yes' if beaten else 'no'} |")
    return lines


def left_out_lines(rows: pd.DataFrame) -> list[str]:
    gone = rows[rows["is_left_out"]]
    if not len(gone):
        return []
    lines = ["", "Left out here (never timed; the reason is the run's, from its estimate or a measured warm-up):", ""]
    for (index, build), group in gone.groupby(["index", "build_params"], sort=False):
        reasons = pd.unique(group["left_out"].replace("", "no reason recorded"))
        settings = ", ".join(p for p in group["params"] if p) or "-"
        lines.append(f"- {index} ({settings}): " + "; ".join(reasons))
    return lines


def _exhaustive_lines(rows: pd.DataFrame) -> list[str]:
    timed = measured(rows)
    floor = timed[timed["index"] == "popcount-floor"]
    lines = []
    for name, what in (("exhaustive", "compiled exhaustive top-K (`HammingIndex.search`)"),
                       ("exhaustive-full", "full stable ranking (`HammingIndex.rank`, the MAP@all path)")):
        row = timed[timed["index"] == name]
        if len(floor) and len(row):
            lines.append(f"\nThe project's {what}: {row.iloc[0]['ms_per_query']:.3f} ms/query, "
                         f"{row.iloc[0]['ms_per_query'] / floor.iloc[0]['ms_per_query']:.2f}x the popcount floor "
                         f"({floor.iloc[0]['ms_per_query']:.3f} ms/query: distances only, compiled) measured in "
                         "the same run.")
    trees = timed[timed["index"].isin(TREE_ROWS)]
    if len(floor) and len(trees) and trees["distances_computed"].notna().all():
        size = int(floor.iloc[0]["db_size"])
        floor_ns = floor.iloc[0]["ms_per_query"] * 1e6 / size
        per_code = trees["ms_per_query"] * 1e6 / trees["codes_scanned"]
        per_distance = trees["ms_per_query"] * 1e6 / trees["distances_computed"]
        lines.append(f"\nThe tree's cost per code whose distance it knows (ms/query over codes scanned, node work "
                     f"included): {per_code.min():.2f}-{per_code.max():.2f} ns, against the popcount floor's "
                     f"{floor_ns:.2f} ns per code measured in the same run ({per_code.min() / floor_ns:.2f}-"
                     f"{per_code.max() / floor_ns:.2f}x); per distance computed (one per run of equal codes) "
                     f"{per_distance.min():.2f}-{per_distance.max():.2f} ns.")
    return lines


def phase_lines(rows: pd.DataFrame) -> list[str]:
    """Where the tree's time goes, per setting (``TreeIndex.phase_shares``, stored with each tree row)."""
    trees = measured(rows[rows["index"].isin(TREE_ROWS)])
    trees = trees[trees[PHASE_FIELDS[0]].notna()]
    if not len(trees):
        return []
    lines = ["", "Where the tree's time goes: shares of the CPU's cycles in one profiled pass over the timing queries "
             "at one thread, after the timings (expansions: the keep rule over a node's children; leaf scans: a "
             "distance per run of equal codes; counting: the histogram the stop test reads; selection: the top K "
             "ranked; queue: the rest).", "",
             "| setting | ms/query | codes scanned | " + " | ".join(PHASE_SHARES) + " |",
             "|---|---|---|" + "---|" * len(PHASE_SHARES)]
    for r in trees.to_dict("records"):
        lines.append(f"| {row_label(r)} | {r['ms_per_query']:.3f} | {_fmt(r['codes_scanned'], 0)} | "
                     + " | ".join(f"{r[field]:.0%}" for field in PHASE_FIELDS) + " |")
    return lines


def every_index_lines(rows: pd.DataFrame, size: int) -> list[str]:
    lines = ["", f"### Every setting at {size:,} codes", "",
             "| index | params | code bits | ms/query (min-max) | all cores (ms) | single (ms, min-max) | recall | "
             "MAP@K | tie-aware MAP@K | filled | index bytes | bytes/item | candidates | codes scanned | "
             "distances computed | nodes expanded | peak RSS (MB) | build (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows.to_dict("records"):
        if r["is_left_out"]:
            lines.append(f"| {r['index']} | {r['params']} | {r['code_bits']} | left out | | | | | | | | | | | | | | |")
            continue
        spread = (f" ({r['ms_per_query_min']:.3f}-{r['ms_per_query_max']:.3f})" if not pd.isna(r["ms_per_query_min"])
                  else "")
        single_spread = (f" ({r['ms_per_query_single_min']:.3f}-{r['ms_per_query_single_max']:.3f})"
                         if not pd.isna(r["ms_per_query_single_min"]) else "")
        lines.append(f"| {r['index']} | {r['params']} | {r['code_bits']} | {_ms(r)}{spread} | "
                     f"{_ms(r, 'ms_per_query_all_threads')} | {_ms(r, 'ms_per_query_single')}{single_spread} | "
                     f"{_fmt(r['recall'])} | {_fmt(r['map'], 4)} | {_fmt(r['map_tie_aware'], 4)} | "
                     f"{_fmt(r['filled'], 3)} | {_int(r['index_bytes'])} | {_fmt(r['bytes_per_item'], 2)} | "
                     f"{_fmt(r['candidates_visited'], 0)} | {_fmt(r['codes_scanned'], 0)} | "
                     f"{_fmt(r['distances_computed'], 0)} | {_fmt(r['nodes_expanded'], 1)} | "
                     f"{_fmt(r['peak_rss_mb'], 0)} | {_fmt(r['build_s'], 2)} |")
    return lines


def _int(value) -> str:
    return "–" if pd.isna(value) else f"{int(value):,}"


def scaling_lines(frame: pd.DataFrame) -> list[str]:
    """Per index, its headline point's ms/query at every size and the fitted log-log slope."""
    points = scaling_points(frame)
    sizes = sorted({s for p in points.values() for s in p})
    lines = ["| index (headline point) | " + " | ".join(f"{s:,}" for s in sizes) + " | slope (log ms / log n) |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for name, by_size in points.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(by_size[s]["ms_per_query"]) if s in by_size else "–"
                                                 for s in sizes) + f" | {_fmt(slope(by_size), 2)} |")
    return lines


def _scaling_table(frame) -> str:
    frame = frame[~frame["generated"]] if "generated" in frame else frame
    labelled = frame.assign(label=[row_label(r) for r in frame.to_dict("records")])
    table = labelled.pivot_table(index="label", columns="db_size", values="ms_per_query", aggfunc="last")
    order = [lab for name in pd.unique(frame["index"])
             for lab in pd.unique(labelled[labelled["index"] == name]["label"]) if lab in table.index]
    table = table.loc[order]
    lines = ["| index | " + " | ".join(f"{c:,}" for c in table.columns) + " |", "|---|" + "---|" * len(table.columns)]
    lines += [f"| {label} | " + " | ".join(_fmt(v) for v in row) + " |" for label, row in table.iterrows()]
    return "\n".join(lines)
