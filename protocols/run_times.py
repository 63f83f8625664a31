"""What Table I's stored runs cost: the README's timing sentences and table, from the records alone.

The README once said in hand-typed prose how long things take ("50-90 s per code length", "about 30
minutes", "on one H200"); those figures went stale while the records said otherwise. Here they are
views of a dataset's Table I records (:func:`protocols.paper_tables.paper_rows`' rows): a table of
training seconds per method and code length as mean ± sd (n) with the marks of what a cell mixes
(machines, devices, thread counts, commits: :func:`protocols.markdown.cell_grid`), the minutes of
fit + encode + search of every record of the table and of those ``make demo`` reruns, and where the
records ran.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from protocols.markdown import cell_grid
from protocols.stats import cells

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"
#: the fit + encode + search seconds a record holds
STAGES = ("train_s", "encode_s", "search_s")


def demo_settings(makefile: Path = MAKEFILE) -> tuple[list[str], list[int], int]:
    """The methods, code lengths and workers ``make demo`` runs with (the Makefile's ``DEMO_METHODS``,
    ``DEMO_BITS`` and ``DEMO_WORKERS``, 1 where it sets none), so the README's figure for the demo
    follows the Makefile."""
    text = makefile.read_text()

    def value(name: str) -> str | None:
        found = re.search(rf"^{name}\s*\?=\s*(\S+)\s*$", text, re.M)
        return None if found is None else found[1]

    methods, bits, workers = value("DEMO_METHODS"), value("DEMO_BITS"), value("DEMO_WORKERS")
    if methods is None or bits is None:
        raise ValueError(f"{makefile} sets no {'DEMO_METHODS' if methods is None else 'DEMO_BITS'}")
    return methods.split(","), [int(b) for b in bits.split(",")], int(workers or 1)


def wall_minutes(rows: pd.DataFrame, workers: int) -> float:
    """The minutes ``rows``' runs take on ``workers`` workers side by side: the longest worker when each
    run goes, longest first, to the worker with the least so far (how a grid's workers take them)."""
    loads = [0.0] * max(1, workers)
    for run in sorted((minutes(rows.iloc[[i]]) for i in range(len(rows))), reverse=True):
        loads[loads.index(min(loads))] += run
    return max(loads)


def minutes(rows: pd.DataFrame) -> float:
    """Fit + encode + search minutes of ``rows`` (a stage a record does not hold counts 0)."""
    return sum(float(rows[c].fillna(0).sum()) for c in STAGES if c in rows) / 60.0


def where_ran(rows: pd.DataFrame) -> str:
    """``"AMD EPYC (2 cores): 40 records on cpu; ..."``: each machine with its count of records and devices
    (``rows``: a frame of :func:`protocols.frame.records_frame`, whose ``device`` is never empty)."""
    parts = []
    # the frame's provenance columns (protocols.frame): a record that names no machine is one of its own
    for machine, group in rows.groupby(rows["machine"].fillna("a machine the records do not name"), sort=True):
        devices = sorted(set(group["device"]))
        parts.append(f"{machine}: {len(group)} record{'s' if len(group) != 1 else ''} on {', '.join(devices)}")
    return "; ".join(parts)


def time_table(rows: pd.DataFrame, methods: list[str], bits: list[int]) -> list[str]:
    """Training seconds per method (rows, in ``methods``' order) and code length (columns): mean ± sd (n)
    over the training seeds, never bold (a time is not a score), with the legend of the marks used."""
    stored = [m for m in methods if (rows["method"] == m).any()]
    if not stored:
        return []
    per_cell = cells(rows, "train_s", ("method", "bits"))
    return cell_grid(per_cell, stored, [b for b in bits if (rows["bits"] == b).any()], "method", "bits",
                     digits=0, bold=False, first="training s")


def timing_lines(rows: pd.DataFrame, seed: int, methods: list[str], bits: list[int],
                 demo: tuple[list[str], list[int]] | None = None) -> list[str]:
    """The README's timing part for one dataset's Table I records ``rows``: the total, the demo's share
    (``demo``: :func:`demo_settings`, where the dataset is the demo's), where they ran, the seconds table."""
    rows = rows[rows["method"].isin(methods)]
    if rows.empty:
        return []
    first = rows[rows["training_seed"] == seed]
    text = (f"Its {len(rows)} records took {minutes(rows):.1f} min of fit + encode + search in all "
            f"({minutes(first):.1f} min for training seed {seed}'s {len(first)})")
    if demo is not None:
        demo_methods, demo_bits, *more = demo
        workers = more[0] if more else 1
        again = first[first["method"].isin(demo_methods) & first["bits"].isin(demo_bits)]
        # a row stored with other parameters than today's defaults (a rule or default changed since) is
        # not what the demo runs now
        current = again[~again["stale"]] if "stale" in again else again
        if len(current):
            text += (f"; `make demo` reruns {len(current)} of them ({', '.join(demo_methods)} at "
                     f"{', '.join(str(b) for b in demo_bits)} bits, seed {seed}), which took "
                     f"{minutes(current):.1f} min")
            if workers > 1 and len(current) > 1:
                text += f" ({wall_minutes(current, workers):.1f} min on its {workers} workers side by side)"
        elif len(again):
            text += (f"; `make demo` ({', '.join(demo_methods)} at {', '.join(str(b) for b in demo_bits)} bits, "
                     f"seed {seed}) runs them with today's defaults, under which none is stored yet")
    lines = [text + f". They ran on {where_ran(rows)}. Training seconds per run:", ""]
    return lines + time_table(rows, methods, bits) + [""]
