"""Table II's views, written from its CSV: ``efficiency/<table>.md`` and its two plots.

:func:`render` writes the Markdown (:mod:`protocols.efficiency_tables`) and the plots (:mod:`protocols.plots`:
speed against recall and tie-aware MAP@K with the Pareto fronts at the largest size, and search time
against database size) from ``efficiency/<table>.csv``; what they show is
:mod:`protocols.efficiency_frame`'s. :func:`write_efficiency_report` stores a run's rows first
(:mod:`protocols.efficiency_records`) and rebuilds the CSV.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols.efficiency_frame import prepared
from protocols.efficiency_records import rebuild_csv, store_rows
from protocols.efficiency_tables import markdown
from protocols.plots import plot_scaling, plot_speed_accuracy


def write_efficiency_report(rows: list[dict], out: Path, dataset: str) -> list[Path]:
    """Store the rows' records, then rebuild the CSV (every stored row) and the tables and plots."""
    store_rows(rows, out, dataset)
    return [rebuild_csv(out, dataset), *render(out, dataset)]


def render(out, dataset: str) -> list[Path]:
    """``efficiency/<dataset>.md`` and its plots from ``efficiency/<dataset>.csv``."""
    folder = Path(out) / "efficiency"
    frame = prepared(pd.read_csv(folder / f"{dataset}.csv", keep_default_na=True))
    md = atomic_write_text(folder / f"{dataset}.md", markdown(frame, dataset))
    return [md, plot_speed_accuracy(frame, folder / f"{dataset}-pareto.png", dataset),
            plot_scaling(frame, folder / f"{dataset}-scaling.png", dataset)]
