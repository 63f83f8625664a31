"""Raw run records: one JSON file per run, the suite's product; everything else is derived.

Every run writes one record (config, seed, split hash, versions, machine, commit, timings,
metrics); CSV, Markdown and plots are rebuilt from the records by :mod:`protocols.report`. Writes
are atomic (:mod:`common.files`). A record that cannot be read, or is not a JSON object, is
skipped with a one-line warning naming it, never taken for a good one and never fatal.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from common.files import atomic_write_json, one_line
from common.provenance import git_state, library_versions, machine_info, now_utc


def provenance() -> dict:
    """The fields every record carries about where it was made."""
    return {"versions": library_versions(), "machine": machine_info(), "git": git_state(), "timestamp": now_utc()}


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")


def write_record(path, record: dict) -> Path:
    return atomic_write_json(path, record)


def read_record(path) -> dict | None:
    """The record in ``path``, or None (with a warning on stderr) when it is unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"warning: skipping unreadable record {path}: {one_line(exc)}", file=sys.stderr)
        return None
    if not isinstance(value, dict) or not value:
        print(f"warning: skipping record {path}: not a JSON object with fields", file=sys.stderr)
        return None
    return value


def read_records(folder, required: tuple[str, ...] = ()) -> list[dict]:
    """Every readable record ``*.json`` in ``folder`` (sorted by file name) that has the ``required`` fields."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        record = read_record(path)
        if record is None:
            continue
        missing = [k for k in required if k not in record]
        if missing:
            print(f"warning: skipping record {path}: no {', '.join(missing)}", file=sys.stderr)
            continue
        records.append(record)
    return records
