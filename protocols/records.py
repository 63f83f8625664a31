"""Raw run records: one JSON file per run, the suite's product; everything else is derived.

Every run writes one record (config, seed, split hash, versions, machine, commit, timings,
metrics); CSV, Markdown and plots are rebuilt from the records by :mod:`protocols.report`. Writes
are atomic and strict JSON (:mod:`common.files`: a NaN is written as ``null``).

Records are untrusted input (they come back from cluster workers and from other people's result
folders), so every read is checked here, in one place: a record that cannot be read, is not a JSON
object, or has a required field missing or a field of the wrong type (:data:`SCHEMAS`) is skipped
with a one-line warning naming the file and the field, never taken for a good one and never fatal.
Where a record is checked against its kind's schema follows from where it lives: ``map/runs/<dataset>/``
holds MAP records, ``efficiency/runs/<table>/`` Table II's rows. A metric that is NaN (records from
before the writer was strict) or a ``map`` that is null is warned about; the record stays (its
row is in the CSV) and the tables count only the seeds with a number.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from pathlib import Path

from common.files import atomic_write_json, one_line
from common.provenance import git_state, library_versions, machine_info, now_utc

#: the version of the record format that :func:`protocols.runner.run` and Table II's store write
#: (``schema_version``); a record without the field is version 0, from before versions, with the
#: same fields; a record of a later version than this is skipped (written by newer code)
SCHEMA_VERSION = 1

#: a name that may become a folder or a file name: letters, digits, ``.``, ``_``, ``-``; not
#: starting with ``.`` or ``-`` (so never ``..``, never hidden, never an option)
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: a search label (``hamming``, ``adc``, ``tree:0.3``): a plain name with ``:``, ``,``, ``+`` and ``=`` too
SEARCH_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:,+=-]{0,99}")

# a field's kinds: what JSON values it may hold
_KINDS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "positive": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "name": lambda v: isinstance(v, str) and PLAIN_NAME.fullmatch(v) is not None,
    "search": lambda v: isinstance(v, str) and SEARCH_LABEL.fullmatch(v) is not None,
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
}
_WHAT = {"int": "an integer", "count": "an integer >= 0", "positive": "an integer >= 1", "number": "a number",
         "null": "null", "bool": "true or false", "str": "a string", "object": "an object", "list": "a list",
         "name": "a plain name (letters, digits, '.', '_', '-'; not starting with '.' or '-')",
         "search": "a search label such as hamming or tree:0.3"}

_METRIC = ("number", "null")
_SECONDS = ("number", "null")
#: per kind of record: field -> (kinds it may hold, required)
SCHEMAS = {
    "map": {
        "dataset": (("name",), True), "method": (("name",), True), "bits": (("positive",), True),
        "search": (("search",), True), "topk": (("positive",), True), "seed": (("count",), True),
        "map": (_METRIC, True),
        "schema_version": (("count",), False), "train_seed": (("count",), False), "variant": (("str",), False),
        "default_search": (("bool",), False), "map_all": (_METRIC, False), "map_tie_aware": (_METRIC, False),
        "p_r2": (_METRIC, False), "p_r2_empty_frac": (_METRIC, False), "train_s": (_SECONDS, False),
        "fit_wall_s": (_SECONDS, False), "encode_s": (_SECONDS, False), "search_s": (_SECONDS, False),
        "n_query": (("count",), False), "n_db": (("count",), False), "n_train": (("count",), False),
        "n_query_no_relevant_topk": (("count",), False), "index_bytes": (("count",), False),
        "split_sha256": (("str",), False), "data_sha256": (("str",), False), "features": (("str",), False),
        "params": (("object",), False), "fit_info": (("object",), False), "machine": (("object",), False),
        "versions": (("object",), False), "git": (("object",), False), "p_at_n": (("object",), False),
        "pr_curve": (("object",), False), "superseded": (("object",), False), "timestamp": (("str",), False),
        "torch_threads": (("positive", "null"), False), "threads": (("object",), False),
        "val_map_history": (("list",), False),
        # the unseen-class protocol's (datasets.class_split); a record without "protocol" is the standard one's
        "protocol": (("name",), False), "database": (("name",), False), "class_seed": (("count",), False),
        "class_split_sha256": (("str",), False), "seen_classes": (("list",), False),
        "unseen_classes": (("list",), False),
    },
    "efficiency": {
        # ms_per_query is null only in a setting left out before it was timed (left_out says why)
        "index": (("str",), True), "db_size": (("positive",), True), "topk": (("positive",), True),
        "ms_per_query": (("number", "null"), True),
        "schema_version": (("count",), False), "dataset": (("name",), False), "method": (("name",), False),
        "params": (("str",), False), "order": (("int",), False), "seed": (("count",), False),
        "n_query": (("count",), False), "threads": (("positive",), False), "threads_all": (("positive",), False),
        "map": (_METRIC, False), "map_tie_aware": (_METRIC, False), "recall": (_METRIC, False),
        "filled": (_METRIC, False), "split_sha256": (("str",), False),
        "left_out": (("str",), False), "build_params": (("str",), False), "encoded_codes": (("count",), False),
        "generator": (("str", "null"), False), "single_queries": (("count",), False),
        "ms_per_query_min": (_SECONDS, False), "ms_per_query_max": (_SECONDS, False),
        "ms_per_query_single": (_SECONDS, False), "ms_per_query_single_min": (_SECONDS, False),
        "ms_per_query_single_max": (_SECONDS, False), "ms_per_query_all_threads": (_SECONDS, False),
        "load_before": (("number", "null"), False), "load_after": (("number", "null"), False),
        "other_cpu_cores": (("number", "null"), False),
    },
}
#: the protocols a MAP record may name (``protocol``; absent: ``standard``, Table I's), with the fields
#: a record of that protocol must have: the unseen-class protocol's database and class split are
#: part of its identity, so a record without them says nothing comparable
PROTOCOL_FIELDS = {"standard": (),
                   "unseen": ("database", "class_seed", "class_split_sha256", "seen_classes", "unseen_classes")}
#: the metrics whose NaN is warned about, per kind
METRICS = {"map": ("map", "map_all", "map_tie_aware", "p_r2", "p_r2_empty_frac"),
           "efficiency": ("map", "map_tie_aware", "recall")}


def provenance() -> dict:
    """The fields every record carries about where it was made."""
    return {"versions": library_versions(), "machine": machine_info(), "git": git_state(), "timestamp": now_utc()}


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")


def check_name(value, what: str, pattern: re.Pattern = PLAIN_NAME) -> str:
    """``value`` if it is a plain name (it becomes a folder or part of a file name), else a
    one-line ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        kind = "search" if pattern is SEARCH_LABEL else "name"
        raise ValueError(f"{what} {_show(value)} is not {_WHAT[kind]}; refusing to use it in a path")
    return value


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def record_kind(path) -> str | None:
    """``"map"`` or ``"efficiency"`` for a record under ``map/runs/<dataset>/`` or
    ``efficiency/runs/<table>/``, else None (no schema: any JSON object)."""
    parts = Path(path).parts
    return parts[-4] if len(parts) >= 4 and parts[-3] == "runs" and parts[-4] in SCHEMAS else None


def check_record(record: dict, kind: str | None) -> str | None:
    """The first problem of ``record`` as a record of ``kind`` (``"field 'bits' must be ..."``), or None."""
    version = record.get("schema_version", 0)
    if _KINDS["count"](version) and version > SCHEMA_VERSION:
        return (f"field 'schema_version' is {version}, newer than this code reads ({SCHEMA_VERSION}); "
                "update the code to read it")
    for field, (kinds, required) in SCHEMAS.get(kind, {}).items():
        if field not in record:
            if required:
                return f"no field '{field}'"
            continue
        value = record[field]
        if not any(_KINDS[k](value) for k in kinds):
            return f"field '{field}' must be {' or '.join(_WHAT[k] for k in kinds)}, got {_show(value)}"
    if kind == "map":
        protocol = record.get("protocol", "standard")
        if protocol not in PROTOCOL_FIELDS:
            return f"field 'protocol' is {_show(protocol)}, not one this code reads ({', '.join(PROTOCOL_FIELDS)})"
        missing = [field for field in PROTOCOL_FIELDS[protocol] if field not in record]
        if missing:
            return f"no field '{missing[0]}' (every record of the {protocol} protocol has it)"
    return None


def metric_gaps(record: dict, kind: str | None) -> list[str]:
    """The metrics of ``record`` that hold no number where one belongs: NaN anywhere; null in a MAP
    record's ``map`` (every run measures it; Table II's floor rows have no accuracy by design)."""
    return [field for field in METRICS.get(kind, ()) if field in record
            and (_is_nan(record[field]) or (kind == "map" and field == "map" and record[field] is None))]


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


#: warnings already given in this process, so a report that reads a record from several places
#: warns once: (file, its modification time, message)
_WARNED: set = set()
#: (copy, original): records read under a copy are named as the original (a report reads a staged copy)
_SHOWN_AS: list = []


@contextlib.contextmanager
def shown_as(copy, original):
    """Inside the block, warnings about records under the folder ``copy`` name them under ``original``."""
    _SHOWN_AS.append((Path(copy), Path(original)))
    try:
        yield
    finally:
        _SHOWN_AS.pop()


def _shown(path) -> Path:
    path = Path(path)
    for copy, original in reversed(_SHOWN_AS):
        if copy in path.parents:
            return original / path.relative_to(copy)
    return path


def _warn(path, lead: str, detail: str) -> None:
    """``warning: <lead> <file>: <detail>`` on stderr, once per file state; the file as the user
    knows it (:func:`shown_as`)."""
    try:
        stamp = Path(path).stat().st_mtime_ns
    except OSError:
        stamp = None
    shown = _shown(path)
    key = (str(shown.resolve()), stamp, lead, detail)
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"warning: {lead} {shown}: {detail}", file=sys.stderr)


def write_record(path, record: dict) -> Path:
    return atomic_write_json(path, record)


def read_record(path, kind: str | None = None) -> dict | None:
    """The record in ``path``, or None (with a warning on stderr) when it is unreadable, not an
    object, or fails the schema of its ``kind`` (default: :func:`record_kind` of its folder)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        _warn(path, "skipping unreadable record", one_line(exc))
        return None
    if not isinstance(value, dict) or not value:
        _warn(path, "skipping record", "not a JSON object with fields")
        return None
    kind = record_kind(path) if kind is None else kind
    problem = check_record(value, kind)
    if problem:
        _warn(path, "skipping record", problem)
        return None
    gaps = metric_gaps(value, kind)
    if gaps:
        what = ", ".join(f"{field} is {'null' if value[field] is None else 'NaN'}" for field in gaps)
        _warn(path, "record", f"{what}; the run is kept, but left out of the means and of its cell's n")
    return value


def read_records(folder, required: tuple[str, ...] = (), kind: str | None = None) -> list[dict]:
    """Every readable, valid record ``*.json`` in ``folder`` (sorted by file name) that has the
    ``required`` fields."""
    return list(read_records_by_id(folder, required, kind).values())


def read_records_by_id(folder, required: tuple[str, ...] = (), kind: str | None = None) -> dict[str, dict]:
    """:func:`read_records` keyed by each record's id, its file's stem (the site's anchors, a frame's
    ``record_id``), in file-name order."""
    records = {}
    for path in sorted(Path(folder).glob("*.json")):
        record = read_record(path, kind)
        if record is None:
            continue
        missing = [k for k in required if k not in record]
        if missing:
            _warn(path, "skipping record", f"no {', '.join(missing)}")
            continue
        records[path.stem] = record
    return records
