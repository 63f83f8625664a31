"""Table II's records, CSV, Markdown and plots, rebuilt from the run records.

``python -m protocols.efficiency_report [--out results] [--dataset fashion-mnist]`` regenerates the
Markdown and the plots from the stored CSV without rerunning anything. The records are written and
gathered here (:func:`store_rows`, :func:`rebuild_csv`); what the tables compute is
:mod:`protocols.efficiency_frame`'s, the Markdown :mod:`protocols.efficiency_tables`'.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from common.files import atomic_savefig, atomic_write_text

# the frame's names other modules read from here (the paper's Table II, the site)
from protocols.efficiency_frame import (  # noqa: F401
    SPEED_ACCURACY,
    SUBLINEAR,
    TREE_ROWS,
    paper_rows,
    paper_speedups,
    paper_table2,
    pareto_front,
    prepared,
    scaling_series,
    slope,
    speed_points,
)
from protocols.efficiency_tables import markdown
from protocols.plots import legend_outside

#: the CSV's leading columns, in the order the protocol measures them; any other field follows
COLUMNS = ["index", "params", "build_params", "code_bits", "method", "db_size", "encoded_codes", "generator", "topk",
           "left_out", "ms_per_query", "ms_per_query_min", "ms_per_query_max", "ms_per_query_all_threads",
           "ms_per_query_single", "ms_per_query_single_min", "ms_per_query_single_max", "recall", "map",
           "map_tie_aware", "filled", "index_bytes", "bytes_per_item",
           "peak_rss_mb", "build_s", "candidates_visited", "codes_scanned", "distances_computed", "nodes_expanded",
           "load_before", "load_after", "other_cpu_cores", "dataset", "seed", "split_sha256", "repeats",
           "timing_queries", "single_queries", "n_query", "threads", "threads_all", "cpu", "cores", "platform",
           "python", "numpy", "torch", "faiss", "sklearn", "git_commit", "timestamp"]


# -- records -----------------------------------------------------------------------------------------
def runs_folder(out, dataset: str) -> Path:
    """The raw records of Table II: one JSON file per (index, setting, database size, K, codes)."""
    return Path(out) / "efficiency" / "runs" / dataset


#: where a run moves the records of an earlier grid that it replaces (kept, never read by the report)
SUPERSEDED = "superseded"


def record_name(row: dict) -> str:
    """A row's record name: index, setting, size and K, and the encoded codes where the rest were
    generated (a generated set at a size sits beside the encoded one: the generator's check)."""
    from protocols.records import safe_name

    generated = row.get("encoded_codes") is not None and row["encoded_codes"] < row["db_size"]
    suffix = f"-gen{row['encoded_codes']}" if generated else ""
    return safe_name(f"{row['index']}-{row['params'] or 'default'}-n{row['db_size']}-top{row['topk']}{suffix}")


def _family(row: dict) -> tuple:
    """The rows a run replaces as a whole: one index at one size, K and kind of codes."""
    generated = row.get("encoded_codes") is not None and row["encoded_codes"] < row["db_size"]
    return row.get("index"), row.get("db_size"), row.get("topk"), generated


def store_rows(rows: list[dict], out, dataset: str) -> list[Path]:
    """Write each measured row as its own record; a rerun of some settings replaces only theirs.
    ``order`` keeps the grid's order for the CSV; ``schema_version`` the record format's
    (:data:`protocols.records.SCHEMA_VERSION`). A run's rows of one index at one size (K, kind of
    codes) replace that index's stored rows there: records of settings the run does not have, from
    an earlier run (another ``timestamp``: an earlier grid's), move to ``runs/<table>/superseded/``,
    so one size's rows come from one run; a run stores its rows as it measures them."""
    from protocols.records import SCHEMA_VERSION, read_records, write_record

    folder = runs_folder(out, dataset)
    names = {record_name(row) for row in rows}
    runs = {_family(row): row.get("timestamp") for row in rows}
    if folder.is_dir():
        for record in read_records(folder):
            path = folder / f"{record_name(record)}.json"
            family = _family(record)
            if (family in runs and record.get("timestamp") != runs[family] and path.stem not in names
                    and path.is_file()):
                target = folder / SUPERSEDED / path.name
                target.parent.mkdir(exist_ok=True)
                if target.exists():  # an earlier move of the same name: keep both
                    target = target.with_name(f"{path.stem}-{record.get('timestamp', 'old')}.json".replace(":", ""))
                path.replace(target)
    written = []
    for row in rows:
        record = dict(row, schema_version=SCHEMA_VERSION)
        written.append(write_record(folder / f"{record_name(row)}.json", record))
    return written


def rebuild_csv(out, dataset: str) -> Path:
    """``efficiency/<dataset>.csv`` from every stored row record, by database size (encoded codes
    before generated ones), then grid order."""
    from protocols.records import read_records

    records = read_records(runs_folder(out, dataset), required=("index", "db_size", "ms_per_query"))
    frame = pd.DataFrame(records)
    keys = ["db_size", "order"]
    if "encoded_codes" in frame:
        frame["_generated"] = frame["encoded_codes"].notna() & (frame["encoded_codes"] < frame["db_size"])
        keys = ["db_size", "_generated", "order"]
    frame = frame.sort_values(keys, kind="stable").drop(columns=["order", "_generated"], errors="ignore")
    frame = frame[[c for c in COLUMNS if c in frame] + [c for c in frame if c not in COLUMNS]]
    return atomic_write_text(Path(out) / "efficiency" / f"{dataset}.csv",
                             frame.to_csv(index=False, float_format="%.6g"))


def write_efficiency_report(rows: list[dict], out: Path, dataset: str) -> list[Path]:
    """Store the rows' records, then rebuild the CSV (every stored row) and the tables and plots."""
    store_rows(rows, out, dataset)
    return [rebuild_csv(out, dataset), *render(out, dataset)]


# -- the views --------------------------------------------------------------------------------------
def render(out, dataset: str) -> list[Path]:
    """``efficiency/<dataset>.md`` and its plots from ``efficiency/<dataset>.csv``."""
    folder = Path(out) / "efficiency"
    frame = prepared(pd.read_csv(folder / f"{dataset}.csv", keep_default_na=True))
    md = atomic_write_text(folder / f"{dataset}.md", markdown(frame, dataset))
    return [md, *plot(frame, folder, dataset)]


def plot(frame, folder: Path, dataset: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from protocols.style import index_style

    largest = frame["db_size"].max()
    at_largest = speed_points(frame, largest)
    topk = int(frame["topk"].iloc[0])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (accuracy, label) in zip(axes, SPEED_ACCURACY):
        for (name, build), group in at_largest.groupby(["index", "build_params"], sort=False):
            group = group[group[accuracy].notna()]  # in the grid's order: the swept parameter rising
            if len(group):
                style = index_style(name)
                ax.plot(group["ms_per_query"], group[accuracy], label=f"{name} ({build})" if build else name,
                        **dict(style.mpl(), linestyle=style.linestyle if len(group) > 1 else "none"))
        faiss = at_largest[at_largest["index"].str.startswith("faiss-")]
        for points, colour, what in ((at_largest, "#444444", "Pareto front (every setting)"),
                                     (faiss, "#1f77b4", "faiss's Pareto front (every faiss setting)")):
            front = points[pareto_front(points, "ms_per_query", accuracy)].sort_values("ms_per_query")
            if len(front):
                ax.step(front["ms_per_query"], front[accuracy], where="post", color=colour, linewidth=4, alpha=0.25,
                        zorder=0, label=what)
        ax.set_xscale("log")
        ax.set_xlabel("ms per query (batched, 1 thread, log scale)")
        ax.set_ylabel(label.format(k=topk))
        ax.grid(alpha=0.3, which="both")
    # one legend for both panels (the same lines), right of the second: never over data
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=6,
                   ncol=1 + (len(handles) - 1) // 30, frameon=False)
    fig.suptitle(f"{dataset}: speed against accuracy at {int(largest):,} codes (one point per index setting)")
    pareto = atomic_savefig(fig, folder / f"{dataset}-pareto.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, label, group in scaling_series(frame):
        fitted = slope({int(r["db_size"]): r for r in group.to_dict("records")})
        ax.plot(group["db_size"], group["ms_per_query"],
                label=label + ("" if math.isnan(fitted) else f", slope {fitted:.2f}"), **index_style(name).mpl())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("database size (codes)")
    ax.set_ylabel("ms per query (batched, 1 thread)")
    ax.set_title(f"{dataset}: search time against database size")
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax, fontsize=6)
    scaling = atomic_savefig(fig, folder / f"{dataset}-scaling.png")
    plt.close(fig)
    return [pareto, scaling]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m protocols.efficiency_report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default: fashion-mnist)")
    args = parser.parse_args(argv)
    path = Path(args.out) / "efficiency" / f"{args.dataset}.csv"
    if not path.is_file():
        raise SystemExit(f"protocols.efficiency_report: error: {path} not found; run python -m "
                         "protocols.efficiency first")
    for written in render(args.out, args.dataset):
        print(written)


if __name__ == "__main__":
    main()
