"""Table II's frame and its statistics: one place for what every view of Table II computes.

The rows of ``efficiency/<table>.csv`` (:mod:`protocols.efficiency_records` gathers it from the run
records under :func:`runs_folder`) as a frame with every column the views read (:func:`prepared`), the
rows a size's tables show (:func:`at_size`: the encoded codes where a size has both encoded and
generated ones), faiss flat at its best (:func:`flat_best`), the headline's criterion
(:func:`meets_criterion`) and each index's point (:func:`family_point`), the old 99%-of-MAP point, the
scaling points and their log-log slope, the Pareto fronts, and which rows were timed on a loaded
machine (:func:`loaded`). The Markdown is :mod:`protocols.efficiency_tables`'; the plots
(:mod:`protocols.efficiency_views`) and the site read the series here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from search.tree import PHASE_SHARES

PAPER_TABLE2 = Path(__file__).resolve().parent / "paper" / "table2_efficiency.csv"
SUBLINEAR = ("faiss-hash", "faiss-multihash", "faiss-ivf", "faiss-hnsw", "hdhash-tree", "hdhash-tree-budget")
#: the tree's rows: the keep rule alone, and keep 1.0 with a budget of codes (``max_codes``)
TREE_ROWS = ("hdhash-tree", "hdhash-tree-budget")
#: the headline's accuracy criterion (issue 30, PROTOCOL.md): recall of the exact top-K, every slot
#: filled, tie-aware MAP@K kept against faiss flat's
CRITERION_RECALL, CRITERION_MAP_SHARE = 0.95, 0.99
#: the tree's profile (TreeIndex.phase_shares: shares of the CPU's cycles in one profiled pass over the
#: timing queries, one thread), one field per phase, by the phase's name
PHASE_FIELDS = tuple("phase_" + name.replace(" ", "_") for name in PHASE_SHARES)
#: the machine counts as loaded (a row is marked) when the load average beyond the run's own timing
#: thread exceeds this per core (issue 30: timings run on a quiet machine)
LOADED_PER_CORE = 0.5


def runs_folder(out, dataset: str) -> Path:
    """Where Table II's raw records are, the frame's source (written by
    :func:`protocols.efficiency_records.store_rows`): one JSON file per (index, setting, database size,
    K, codes)."""
    return Path(out) / "efficiency" / "runs" / dataset


def paper_table2() -> pd.DataFrame:
    """The paper's Table II (ImageNet-100, their machine): the one place its figures are read."""
    return pd.read_csv(PAPER_TABLE2)


def paper_rows(paper: pd.DataFrame):
    """The paper's HDHash(0.3) row and HashNet linear-scan row."""
    return paper[paper["method"].str.startswith("hdhash")].iloc[0], paper[paper["method"] == "hashnet"].iloc[0]


def paper_speedups() -> tuple[float, float]:
    """The paper's HDHash(0.3) against HashNet's linear scan: (time, memory) ratios (4.91x, 6.86x)."""
    tree, hashnet = paper_rows(paper_table2())
    return (float(hashnet["search_ms_per_query"] / tree["search_ms_per_query"]),
            float(hashnet["memory_mb"] / tree["memory_mb"]))


def paper_point_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's operating point, HDHash(0.3): the tree at keep ratio 0.3."""
    return rows[(rows["index"] == "hdhash-tree") & (rows["params"] == "keep_ratio=0.3")]


def row_label(row) -> str:
    """``index (params)``: a setting as the tables name it."""
    return row["index"] + (f" ({row['params']})" if isinstance(row["params"], str) and row["params"] else "")


# -- the frame --------------------------------------------------------------------------------------
#: columns a CSV from before a field existed lacks, and what they read as
OPTIONAL = {"map_tie_aware": np.nan, "ms_per_query_all_threads": np.nan, "codes_scanned": np.nan,
            "distances_computed": np.nan, "nodes_expanded": np.nan, "threads_all": np.nan, "filled": np.nan,
            "ms_per_query_single": np.nan, "ms_per_query_min": np.nan, "ms_per_query_max": np.nan,
            "ms_per_query_single_min": np.nan, "ms_per_query_single_max": np.nan, "left_out": "",
            "build_params": "", "encoded_codes": np.nan, "generator": "", "load_before": np.nan,
            "load_after": np.nan, "other_cpu_cores": np.nan, "cores": np.nan, "candidates_visited": np.nan,
            "recall": np.nan, "map": np.nan, "index_bytes": np.nan, "bytes_per_item": np.nan, "build_s": np.nan,
            "peak_rss_mb": np.nan, "cpu": "", **{field: np.nan for field in PHASE_FIELDS}}


def prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """Table II's frame with every column the views read (old CSVs lack the later ones), the
    accuracy indexes are judged by (``judged_map``: tie-aware MAP@K where measured, else MAP@K), and
    per row whether its codes were generated, it was left out, and it was timed on a loaded machine."""
    frame = frame.copy()
    for column, value in OPTIONAL.items():
        if column not in frame:
            frame[column] = value
    for column in ("params", "left_out", "build_params", "generator", "cpu"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    frame["judged_map"] = frame["map_tie_aware"].where(frame["map_tie_aware"].notna(), frame["map"])
    frame["generated"] = frame["encoded_codes"].notna() & (frame["encoded_codes"] < frame["db_size"])
    frame["is_left_out"] = (frame["left_out"] != "") | frame["ms_per_query"].isna()
    frame["loaded"] = [loaded(max(_none(r["load_before"]) or 0, _none(r["load_after"]) or 0) or None,
                              _none(r["cores"])) for r in frame.to_dict("records")]
    return frame


def _none(value):
    return None if pd.isna(value) else value


def loaded(load: float | None, cores: int | None) -> bool:
    """Whether a load average means a loaded machine for a one-thread timing: the load beyond the
    timing thread itself over :data:`LOADED_PER_CORE` per core."""
    return load is not None and bool(cores) and (load - 1.0) / cores > LOADED_PER_CORE


def at_size(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """The rows of one database size that its tables show: the encoded codes' where the size has
    them, else the generated ones (a generated set beside an encoded one is the generator's check)."""
    rows = frame[frame["db_size"] == size]
    if "encoded_codes" not in rows:
        return rows
    generated = rows["encoded_codes"].notna() & (rows["encoded_codes"] < rows["db_size"])
    return rows[~generated] if (~generated).any() else rows


def measured(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that were timed (not left out)."""
    keep = rows["ms_per_query"].notna()
    if "left_out" in rows:
        keep &= rows["left_out"].isna() | (rows["left_out"].astype(str).isin(["", "nan"]))
    return rows[keep]


def cpu_models(rows: pd.DataFrame) -> list[str]:
    """The CPU models ``rows`` were timed on (a record's ``cpu``; empty where not recorded). Ratios
    between rows timed on different models are not measurements: a size whose rows span several (a
    run resumed on another machine kind, or indexes rerun alone there) is not judged by the goals."""
    return sorted({c for c in rows["cpu"].astype(str) if c and c != "nan"}) if "cpu" in rows else []


# -- the headline ------------------------------------------------------------------------------------
def flat_best(rows: pd.DataFrame):
    """``(row, ms, mode)``: faiss flat at its best among ``rows`` (one size): the fastest per query
    over every flat setting, batched (one thread) or one query at a time; None where no flat row."""
    flat = measured(rows[rows["index"] == "faiss-flat"])
    if not len(flat):
        return None, float("nan"), ""
    single = flat["ms_per_query_single"].fillna(np.inf)
    best_batched, best_single = flat.loc[flat["ms_per_query"].idxmin()], flat.loc[single.idxmin()]
    if best_single["ms_per_query_single"] < best_batched["ms_per_query"]:
        return best_single, float(best_single["ms_per_query_single"]), "one query at a time"
    return best_batched, float(best_batched["ms_per_query"]), "batched"


def meets_criterion(rows: pd.DataFrame, flat_map: float) -> pd.Series:
    """The headline's criterion (PROTOCOL.md): recall of the exact top-K >= :data:`CRITERION_RECALL`,
    every K slot filled for every query, tie-aware MAP@K >= :data:`CRITERION_MAP_SHARE` x faiss flat's."""
    return ((rows["recall"] >= CRITERION_RECALL) & (rows["filled"] >= 1.0)
            & (rows["judged_map"] >= CRITERION_MAP_SHARE * flat_map))


def fastest(rows: pd.DataFrame, column: str = "ms_per_query"):
    rows = rows[rows[column].notna()]
    return rows.loc[rows[column].idxmin()] if len(rows) else None


def family_point(rows: pd.DataFrame, name: str, flat_map: float, column: str = "ms_per_query"):
    """The row an index is represented by at one size: faiss flat's fastest setting; for another
    exact scan its one row; for a sublinear index its fastest setting meeting the criterion."""
    family = measured(rows[rows["index"] == name])
    if name in SUBLINEAR:
        family = family[meets_criterion(family, flat_map)]
    return fastest(family, column)


def old_point(family: pd.DataFrame, flat_map: float):
    """The operating point before issue 30: the fastest setting keeping 99% of faiss flat's
    tie-aware MAP@K, whatever its recall (MAP@K saturates on multi-label data: recall 0.665 passed)."""
    return fastest(family[family["judged_map"] >= CRITERION_MAP_SHARE * flat_map])


def faiss_against_tree(rows: pd.DataFrame):
    """``(faiss setting, tree point, beaten)`` per measured faiss setting: the tree's Pareto point
    next to it is the fastest tree setting whose recall is at least as high, or, where none is, the
    tree's most accurate setting; ``beaten``: the faiss setting is faster than that point and at least
    as high in recall. Nothing where no tree setting was measured."""
    timed = measured(rows)
    trees = timed[timed["index"].isin(TREE_ROWS) & timed["recall"].notna()]
    if not len(trees):
        return
    most_accurate = fastest(trees[trees["recall"] == trees["recall"].max()])
    for f in timed[timed["index"].str.startswith("faiss-") & timed["recall"].notna()].to_dict("records"):
        better = trees[trees["recall"] >= f["recall"]]
        t = fastest(better) if len(better) else most_accurate
        yield f, t, bool(f["ms_per_query"] < t["ms_per_query"] and f["recall"] >= t["recall"])


# -- scaling and speed against accuracy (the plots and the site) ---------------------------------------
def scaling_points(frame: pd.DataFrame) -> dict:
    """Per index, ``{db_size: row}``: what the scaling plot and the slopes rest on (batched, one thread)."""
    frame = prepared(frame)
    points = {}
    for size in sorted(frame["db_size"].unique()):
        rows = at_size(frame, size)
        flat, _, _ = flat_best(rows)
        flat_map = flat["judged_map"] if flat is not None else np.nan
        for name in pd.unique(rows["index"]):
            point = family_point(rows, name, flat_map)
            if point is not None:
                points.setdefault(name, {})[int(size)] = point
    return points


def slope(points: dict) -> float:
    """The least-squares slope of log ms/query against log n (1: linear in n; NaN under two sizes)."""
    if len(points) < 2:
        return float("nan")
    sizes = np.log10(np.array(list(points), float))
    ms = np.log10(np.array([float(r["ms_per_query"]) for r in points.values()]))
    return float(np.polyfit(sizes, ms, 1)[0])


def pareto_front(frame: pd.DataFrame, speed: str, accuracy: str) -> pd.Series:
    """Which rows no other row beats: none is both faster (lower ``speed``) and at least as accurate
    (``accuracy``), or as fast and more accurate. Rows without both values are never on it."""
    valid = frame[speed].notna() & frame[accuracy].notna()
    on = pd.Series(False, index=frame.index)
    best = float("-inf")
    for i, row in frame[valid].sort_values([speed, accuracy], ascending=[True, False], kind="stable").iterrows():
        if row[accuracy] > best:
            on[i], best = True, row[accuracy]
    return on


#: the accuracies the speed plots put on the y axis: recall separates the indexes (their MAP@K all sit
#: within 0.01), tie-aware MAP@K scores the distances an index finds
SPEED_ACCURACY = (("recall", "recall of the exhaustive top-{k}"), ("map_tie_aware", "tie-aware MAP@{k}"))


def speed_points(frame: pd.DataFrame, db_size: int) -> pd.DataFrame:
    """The rows the speed-accuracy plots show at ``db_size``: every index setting timed there with an
    accuracy (the popcount floor computes distances only; left-out settings were never timed), on the
    encoded codes where the size has them."""
    rows = measured(at_size(frame, db_size))
    return rows[rows["index"] != "popcount-floor"]


def scaling_series(frame: pd.DataFrame):
    """``(index, label, rows by database size)`` per index for the scaling plot: its headline point at
    each size (:func:`scaling_points`), so the lines compare like with like."""
    points = scaling_points(frame)
    for name, by_size in points.items():
        label = name
        if name in SUBLINEAR:
            label = f"{name} (fastest meeting the criterion)"
        elif name == "faiss-flat":
            label = "faiss-flat (fastest setting)"
        # the caller's own rows (the site's carry their record ids)
        yield name, label, frame.loc[[by_size[s].name for s in sorted(by_size)]]
