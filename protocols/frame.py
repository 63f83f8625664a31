"""Records -> one tidy frame: the one place the report side reads MAP records.

:func:`records_frame` reads ``<out>/map/runs/<dataset>/*.json`` through :mod:`protocols.records`
(every record checked against its schema; a corrupt or invalid file is skipped with one warning)
into one row per record: the record's fields, flattened as the CSV holds them (:func:`csv_text`),
then the columns a view needs to say what a number rests on (:data:`DERIVED`): the record's id, its
Table I column, its provenance (commit, machine, device, thread counts, schedule), its block of
Table I and whether it is stale. Every table, plot, site page and the README block is a view of this
frame; the statistics over it are :mod:`protocols.stats`', each computed there once.
"""
from __future__ import annotations

import functools
import json
import re

import pandas as pd

from protocols.published import method_rank
from protocols.records import read_records_by_id
from protocols.runner import changed_params, record_threads, runs_folder, runs_root, training_seconds, variant_of

#: leading CSV columns (PROTOCOL.md / the map issue); everything else in a record follows
MAP_COLUMNS = [
    "dataset", "method", "bits", "search", "variant", "topk", "map", "map_tie_aware", "map_all", "p_r2",
    "p_r2_empty_frac",
    "n_query_no_relevant_topk", "train_s", "encode_s", "search_s", "seed", "split_sha256",
    "n_query", "n_db", "n_train",
]
#: the fields every MAP record has (the site's and the tables' reads require them)
REQUIRED = ("dataset", "method", "bits", "search", "map", "seed", "topk")
#: record fields too bulky for the CSV and the pop-ups (kept in the JSON records)
BULKY = ("p_at_n", "pr_curve")
#: the method the paired differences of Table I are taken against
REFERENCE = "hashnet"
#: the provenance a cell's records may mix, which its cell then says: more than one value, a record
#: that does not say (older records) counting as one, since nothing says it matches the others
PROVENANCE = ("commit", "machine", "device", "thread_counts")
#: columns this module derives (not a record's fields, so not in the CSV, which holds the records as stored):
#: ``record_id`` the file's stem; ``training_seed`` (the split seed for records from before training
#: seeds); ``column`` Table I's column label; the :data:`PROVENANCE` columns and ``schedule`` (a deep
#: method's epochs and early stopping; None for a shallow one); ``block`` (``table1``: every parameter at
#: its default; ``beyond``: Table I's "beyond the paper" block; ``variant``: any other); ``stale``
#: (stored with parameters that differ from what its variant would use today)
DERIVED = ("record_id", "training_seed", "column", *PROVENANCE, "schedule", "block", "stale")


def read_map_records(out, dataset: str) -> dict[str, dict]:
    """``{record id: record}`` of every readable MAP record of ``dataset`` under ``out``."""
    return read_records_by_id(runs_folder(out, dataset), required=REQUIRED)


def stored_datasets(out) -> list[str]:
    """The datasets with a folder of MAP records under ``out`` (``<out>/map/runs/<dataset>/``), sorted."""
    runs = runs_root(out)
    return sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def records_frame(out, dataset: str) -> pd.DataFrame:
    """The tidy frame of ``dataset``'s records under ``out`` (empty when none is stored)."""
    return frame_of(read_map_records(out, dataset))


def frame_of(records: dict[str, dict]) -> pd.DataFrame:
    """One row per record of ``{record id: record}``: its flattened fields, then :data:`DERIVED`."""
    rows = [dict(_flat(record), **_derived(record_id, record)) for record_id, record in records.items()]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    ordered = [c for c in MAP_COLUMNS if c in frame] + [c for c in frame if c not in MAP_COLUMNS]
    frame = frame[ordered].sort_values(["seed", "topk", "method", "search", "bits"], kind="stable")
    frame["training_seed"] = train_seeds(frame)
    return frame


def _flat(record: dict) -> dict:
    """A record's fields as the CSV holds them: the bulky curves left out, ``params`` and ``fit_info``
    as JSON text, ``versions`` and ``machine`` spread into columns, ``git`` as ``git_<field>``."""
    row = {k: v for k, v in record.items() if k not in BULKY}
    if isinstance(record.get("fit_info"), dict) and "train_s" in row:
        # records of resumed runs from before training_seconds counted only the part after the resume
        row["train_s"] = training_seconds(record["fit_info"], row["train_s"])
    for key in ("params", "fit_info", "versions", "machine", "git"):
        if isinstance(row.get(key), dict):
            value = row.pop(key)
            if key in ("versions", "machine"):
                row.update(value)
            elif key == "git":
                row.update({f"git_{k}": v for k, v in value.items()})
            else:
                row[key] = json.dumps(value, sort_keys=True)
    row.setdefault("variant", "")  # records from before variants were all default runs
    return row


def _derived(record_id: str, record: dict) -> dict:
    variant = record.get("variant") or ""
    row = {"record_id": record_id, "column": column_label(dict(record, variant=variant)),
           "commit": commit_of(record), "machine": machine_of(record), "device": device_of(record),
           "thread_counts": threads_of(record), "schedule": schedule_of(record)}
    beyond = "method" in record and "bits" in record and is_beyond(dict(record, variant=variant))
    row["block"] = "beyond" if beyond else "table1" if not variant else "variant"
    row["stale"] = is_stale(record)
    return row


def csv_text(frame: pd.DataFrame) -> str:
    """The CSV of a frame: every record's fields as stored (no :data:`DERIVED` column), one row each."""
    return frame.drop(columns=[c for c in DERIVED if c in frame]).to_csv(index=False, float_format="%.6g")


# -- provenance -------------------------------------------------------------------------------------
def commit_of(record: dict) -> str | None:
    """The commit a record's code was at (10 hex digits, ``+dirty`` for a dirty tree), or None."""
    git = record.get("git") if isinstance(record.get("git"), dict) else {}
    commit = git.get("commit", record.get("git_commit"))
    return None if not commit else str(commit)[:10] + ("+dirty" if git.get("dirty") else "")


def machine_of(record: dict) -> str | None:
    """``CPU (n cores)`` of a MAP record (``machine``) or a Table II row (``cpu``, ``cores``), or None."""
    machine = record.get("machine") if isinstance(record.get("machine"), dict) else {}
    cpu, cores = machine.get("cpu", record.get("cpu")), machine.get("cores", record.get("cores"))
    return None if cpu is None and cores is None else f"{cpu or '?'} ({cores or '?'} cores)"


def device_of(record: dict) -> str:
    """The device a model trained on (``fit_info.device``); a record that does not say ran on the CPU."""
    fit_info = record.get("fit_info") if isinstance(record.get("fit_info"), dict) else {}
    return str(fit_info.get("device") or "cpu")


def threads_of(record: dict) -> str | None:
    """The thread counts a record ran with (torch's, BLAS's and OpenMP's): ``"1"`` when they agree,
    ``"blas 1, openmp 2, torch 1"`` when not, None when the record does not say."""
    counts = dict(record_threads(record))
    torch = record.get("torch_threads")
    if isinstance(torch, int) and not isinstance(torch, bool):
        counts["torch"] = torch
    if not counts:
        return None
    if len(set(counts.values())) == 1:
        return str(next(iter(counts.values())))
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))


def schedule_of(record: dict) -> str | None:
    """A deep run's schedule, ``"30 epochs, patience 5"`` (early stopping after 5 epochs without a better
    validation MAP) or ``"150 epochs, no early stop"``; None for a method that does not train for epochs."""
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    if "epochs" not in params:
        return None
    patience = params.get("patience")
    return f"{params['epochs']} epochs, " + (f"patience {patience}" if patience else "no early stop")


def mixed_provenance(records: pd.DataFrame) -> tuple[str, ...]:
    """The :data:`PROVENANCE` columns in which ``records`` (a cell's) hold more than one value (None,
    a record that does not say, is one: it may differ from the others)."""
    return tuple(c for c in PROVENANCE if c in records and records[c].nunique(dropna=False) > 1)


# -- what a record is to Table I --------------------------------------------------------------------
def column_label(row) -> str:
    """Table I's column of a record: the method, its search where not the default, its variant."""
    label = row["method"] if row.get("default_search", True) else f"{row['method']} ({row['search']})"
    variant = row.get("variant")
    return f"{label} [{variant}]" if isinstance(variant, str) and variant else label


def column_order(frame: pd.DataFrame) -> list[str]:
    """The column labels of ``frame`` in the one method order (:func:`protocols.published.method_rank`):
    per method its default parameters first, then each variant; per variant its default search first."""
    keys = {}
    for row in frame.reindex(columns=["column", "method", "default_search", "variant"]).to_dict("records"):
        variant = row["variant"] if isinstance(row["variant"], str) else ""
        keys[row["column"]] = (method_rank(row["method"]), variant != "", variant, other_search(row["default_search"]),
                               row["column"])
    return sorted(keys, key=keys.get)


def default_search(frame: pd.DataFrame) -> pd.Series:
    """Whether each row is its method's default search (records from before the field were)."""
    if "default_search" not in frame:
        return pd.Series(True, index=frame.index)
    return frame["default_search"].fillna(True).astype(bool)


def other_search(default_search) -> bool:
    """A record's ``default_search`` field read: False only where it says False (older records lack it)."""
    return not pd.isna(default_search) and not default_search


def train_seeds(frame: pd.DataFrame) -> pd.Series:
    """Each row's training seed (records from before training seeds had the split seed as theirs)."""
    return frame["train_seed"].fillna(frame["seed"]) if "train_seed" in frame else frame["seed"]


def table_view(frame: pd.DataFrame) -> tuple[int, int]:
    """The (seed, MAP@K) Table I shows: seed 0 if stored (PROTOCOL.md's), else the smallest; the K
    most records have. Chosen from the store alone, never by which run came last, so a rebuild after
    any subset of runs gives the same tables."""
    seeds = sorted(frame["seed"].unique())
    seed = 0 if 0 in seeds else seeds[0]
    counts = frame[frame["seed"] == seed]["topk"].value_counts()
    return int(seed), int(sorted(counts[counts == counts.max()].index)[0])


def is_beyond(row) -> bool:
    """A row of Table I's "beyond the paper" block: a method after the paper (``beyond_paper``), or
    HDHash over one of their losses per level on the schedule the block trains it with on the row's
    dataset (:func:`protocols.runner.beyond_schedule`: the training-budget rule where it lists the
    dataset, else that loss's own) and every other parameter at its default."""
    from methods import UnknownMethodError, get_method_class
    from protocols.runner import training_budget

    try:
        if get_method_class(row["method"]).beyond_paper:
            return not row.get("variant")
    except UnknownMethodError:
        return False
    dataset = row.get("dataset") if isinstance(row.get("dataset"), str) else None
    rule = json.dumps(training_budget().get(dataset), sort_keys=True)
    return row["method"] == "hdhash" and row.get("variant") in _hdhash_beyond_variants(int(row["bits"]), dataset, rule)


@functools.lru_cache(maxsize=None)
def _hdhash_beyond_variants(bits: int, dataset: str | None, rule: str) -> frozenset[str]:
    """The variants of HDHash's beyond-block rows at ``bits`` on ``dataset`` (``rule``: the dataset's
    training-budget entry as JSON, so a changed rule is not answered from the cache)."""
    from methods.hdhash import LEVEL_LOSSES
    from protocols.runner import beyond_schedule, create_for

    return frozenset(variant_of("hdhash", bits, create_for(dataset, "hdhash", bits,
                                                           beyond_schedule(loss, bits, dataset)).get_params(), dataset)
                     for loss in LEVEL_LOSSES if loss != "hashnet")


#: a parameter's name in a variant's ``name=value,...`` text
_VARIANT_NAME = re.compile(r"(?:^|,)([A-Za-z_][A-Za-z0-9_]*)=")


def is_stale(record: dict) -> bool:
    """Whether ``record`` ran with parameters its variant would not use today: those its variant
    names aside, any that differ from the method's defaults now (:func:`protocols.runner.changed_params`;
    e.g. a row stored before a default changed)."""
    if "method" not in record or "bits" not in record:
        return False
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    named = {k: params[k] for k in _VARIANT_NAME.findall(record.get("variant") or "") if k in params}
    return bool(changed_params(record, named))
