"""Table II's records: one JSON file per measured row, and the CSV gathered from them.

A run stores each row as it is measured (:func:`store_rows`, under ``efficiency/runs/<table>/``,
:func:`protocols.efficiency_frame.runs_folder`), replacing an earlier grid's rows of the same index
and size; :func:`rebuild_csv` gathers every stored row into ``efficiency/<table>.csv``, the frame's
source. :func:`table_name` names the table a run's rows belong to.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols.efficiency_frame import PHASE_FIELDS, runs_folder

#: the CSV's leading columns, in the order the protocol measures them; any other field follows
COLUMNS = ["index", "params", "build_params", "code_bits", "method", "db_size", "encoded_codes", "generator", "topk",
           "left_out", "ms_per_query", "ms_per_query_min", "ms_per_query_max", "ms_per_query_all_threads",
           "ms_per_query_single", "ms_per_query_single_min", "ms_per_query_single_max", "recall", "map",
           "map_tie_aware", "filled", "index_bytes", "bytes_per_item",
           "peak_rss_mb", "build_s", "candidates_visited", "codes_scanned", "distances_computed", "nodes_expanded",
           *PHASE_FIELDS, "load_before", "load_after", "other_cpu_cores", "dataset", "seed", "split_sha256", "repeats",
           "timing_queries", "single_queries", "n_query", "threads", "threads_all", "cpu", "cores", "platform",
           "python", "numpy", "torch", "faiss", "sklearn", "git_commit", "timestamp"]


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


def store_rows(rows: list[dict], out, dataset: str, keep=()) -> list[Path]:
    """Write each measured row as its own record; a rerun of some settings replaces only theirs.
    ``order`` keeps the grid's order for the CSV; ``schema_version`` the record format's
    (:data:`protocols.records.SCHEMA_VERSION`). A run's rows of one index at one size (K, kind of
    codes) replace that index's stored rows there: records of settings the run does not have, from
    an earlier run (another ``timestamp``: an earlier grid's), move to ``runs/<table>/superseded/``,
    so one size's rows come from one run; a run stores its rows as it measures them. ``keep``: the
    names (:func:`record_name`) of rows the run owns without measuring them (those ``--resume`` kept,
    measured by an earlier run of the same commit), never moved."""
    from protocols.records import SCHEMA_VERSION, read_records, write_record

    folder = runs_folder(out, dataset)
    names = {record_name(row) for row in rows}
    runs = {_family(row): row.get("timestamp") for row in rows}
    if folder.is_dir():
        for record in read_records(folder):
            path = folder / f"{record_name(record)}.json"
            family = _family(record)
            if (family in runs and record.get("timestamp") != runs[family] and path.stem not in names
                    and path.stem not in keep and path.is_file()):
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


def read_records_by_name(folder) -> dict[str, dict]:
    """Every valid row record in ``folder`` by :func:`record_name` (what ``--resume`` looks up)."""
    from protocols.records import read_records

    return {record_name(r): r for r in read_records(folder, required=("index", "params", "db_size", "topk"))}


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
