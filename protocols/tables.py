"""Table I per dataset, and the sweeps' tables: views of the stored run records alone.

:func:`write_map_report` writes ``map/<dataset>.{csv,md,png}`` from ``<out>/map/runs/<dataset>/``: the
records' tidy frame (:mod:`protocols.frame`), its statistics (:mod:`protocols.stats`) rendered by
:mod:`protocols.markdown` and :mod:`protocols.plots`. :func:`sweep_table` / :func:`rebuild_tables` write a
sweep's Markdown from its JSON records. ``python -m protocols.report`` rebuilds these and every other
derived file.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols.frame import (
    REFERENCE,
    column_order,
    csv_text,
    default_search,
    records_frame,
    table_view,
    train_seeds,
)
from protocols.markdown import cell_grid, differences_table, number, table
from protocols.plots import plot_map
from protocols.rankings import rankings_section
from protocols.stats import cells, paired_differences

#: how each section of ``map/<dataset>.md`` reads its cells
NOTATION = ("Cells read mean ± sd (n training seeds with a number; the CSV has one row per record); the marks "
            "below a table say what a cell rests on. The best mean of a row is bold only where it rests on two or "
            "more seeds.")


def map_table(frame: pd.DataFrame, value: str = "map", stat: str = "mean") -> pd.DataFrame:
    """Rows: bit lengths; columns: Table I's columns in :func:`protocols.frame.column_order`; each cell
    the ``stat`` (``mean``, ``std`` or ``count``) of ``value`` over the training seeds stored
    (:func:`protocols.stats.cells`); a column or row with no number is left out."""
    found = cells(frame, value)
    found = found[found["mean"].notna()]
    table = found.pivot(index="bits", columns="column", values={"mean": "mean", "std": "sd", "count": "n"}[stat])
    return table[[c for c in column_order(frame) if c in table.columns]]


def seed_table(frame: pd.DataFrame, value: str = "map", digits: int = 4, bold: bool = True,
               schedule: bool = False) -> list[str]:
    """Rows: bit lengths; columns: Table I's; each cell ``mean ± sd (n)`` of ``value`` with its marks
    (:mod:`protocols.markdown`); with ``schedule``, a last row naming each column's training schedule."""
    found = cells(frame, value)
    found = found[found["mean"].notna()]  # a column or row with no number at all is left out
    order = [c for c in column_order(frame) if c in set(found["column"])]
    extra = None
    if schedule:
        named = {column: " / ".join(sorted({s for s in part if isinstance(s, str)})) or "–"
                 for column, part in frame.groupby("column")["schedule"]}
        extra = ["schedule", *(named.get(c, "–") for c in order)]
    return cell_grid(found, sorted(found["bits"].unique()), order, "bits", "column", digits, bold, "bits", extra)


def write_map_report(out, dataset: str) -> list[Path]:
    """Write ``map/<dataset>.csv`` (every record) and the Markdown table and plot of the default
    variant at :func:`protocols.frame.table_view`'s seed and K; runs with non-default parameters
    (variants) get a table of their own below, never a place in Table I, and the methods after the
    paper a block of their own."""
    frame = records_frame(out, dataset)
    if frame.empty:
        return []
    folder = Path(out) / "map"
    written = [atomic_write_text(folder / f"{dataset}.csv", csv_text(frame))]
    seed, topk = table_view(frame)
    view = frame[(frame["seed"] == seed) & (frame["topk"] == topk)]
    chosen, variants, beyond = (view[view["block"] == block] for block in ("table1", "variant", "beyond"))
    shown = chosen if len(chosen) else variants if len(variants) else beyond
    k_text = "all" if int(topk) >= int(shown["n_db"].max()) else str(int(topk))
    text = _header(dataset, frame, view, shown, seed, k_text)
    if len(chosen):
        text += _table1_sections(chosen, k_text)
    else:
        text += ["No run with every parameter at its default is stored yet.", ""]
    if len(variants):
        # no bold: the columns are different methods' settings, not rivals
        text += ["## Variants: runs with non-default parameters (not Table I)", "",
                 *seed_table(variants, "map", bold=False), ""]
    if len(beyond):
        text += _beyond_sections(beyond, chosen, k_text)
    text += rankings_section(view, dataset, k_text)
    written.append(atomic_write_text(folder / f"{dataset}.md", "\n".join(text)))
    written.append(plot_map(cells(shown, "map"), column_order(shown), folder / f"{dataset}.png",
                            f"{dataset}: MAP@{k_text} against code length"))
    return written


def _header(dataset: str, frame, view, shown, seed: int, k_text: str) -> list[str]:
    split = ", ".join(sorted(set(shown["split_sha256"].str[:12])))
    # each row's own CPU and core count: rows may come from several machines (e.g. a GPU host)
    machine = "; ".join(sorted(set(shown["machine"].dropna())))
    beyond, others = int((view["block"] == "beyond").sum()), len(frame) - len(view)
    return [
        f"# {dataset}: MAP@{k_text} (Table I layout)",
        "",
        f"Generated by `python -m protocols.report` from {len(shown)} run records in `map/runs/{dataset}/`"
        + (f" ({beyond} more beyond the paper)" if beyond else "") + "; "
        f"seed {seed}, split sha256 {split}, {int(shown['n_query'].iloc[0])} queries against "
        f"{int(shown['n_db'].iloc[0])} database items; machine: {machine}. {NOTATION}"
        + (f" {others} records of other seeds or K are in `{dataset}.csv`." if others else ""),
        "",
    ]


def _table1_sections(chosen: pd.DataFrame, k_text: str) -> list[str]:
    text = [*seed_table(chosen, "map", schedule=True), ""]
    if "map_tie_aware" in chosen and chosen["map_tie_aware"].notna().any():
        text += [f"## Tie-aware MAP@{k_text} (the expected AP over every order of tied items; records from "
                 "before it was measured show –)", "", *seed_table(chosen, "map_tie_aware"), ""]
    text += ["## MAP@all", "", *seed_table(chosen, "map_all"), "",
             "## Precision within Hamming radius 2", "", *seed_table(chosen, "p_r2"), "",
             "## Training time (s)", "", *seed_table(chosen, "train_s", digits=1, bold=False), ""]
    if train_seeds(chosen).nunique() > 1 and (chosen["method"] == REFERENCE).any():
        text += differences_table(paired_differences(chosen, REFERENCE), REFERENCE, column_order(chosen))
    return text


def _beyond_sections(beyond: pd.DataFrame, chosen: pd.DataFrame, k_text: str) -> list[str]:
    """The "beyond the paper" section: its methods beside HashNet and HDHash (default search) for
    reference, mean ± sd over training seeds, and the paired difference to HashNet."""
    reference = chosen[chosen["method"].isin([REFERENCE, "hdhash"]) & default_search(chosen)]
    both = pd.concat([reference, beyond])
    text = ["## Beyond the paper (not Table I)", "",
            "Methods after the HDHash paper and HDHash with their losses per level (`level_loss`), on the same split "
            f"and MAP@{k_text}; HashNet and HDHash (paper's loss) repeated for reference.", "",
            *seed_table(both, "map", schedule=True), ""]
    if "map_tie_aware" in beyond and beyond["map_tie_aware"].notna().any():
        text += [f"Tie-aware MAP@{k_text}:", "", *seed_table(both, "map_tie_aware"), ""]
    text += ["Training time (s):", "", *seed_table(beyond, "train_s", digits=1, bold=False), ""]
    if train_seeds(both).nunique() > 1 and (both["method"] == REFERENCE).any():
        diffs = paired_differences(both, REFERENCE)
        text += differences_table(diffs[~diffs["column"].isin(["hdhash", "hdhash (tree:0.3)"])], REFERENCE,
                                  column_order(both))
    return text


# -- sweeps -----------------------------------------------------------------------------------------
def sweep_table(records: list[dict], source: str) -> str:
    """The Markdown table of one sweep, from its records alone (one row per swept value)."""
    first = records[0]
    param = next(iter(first["swept"]))
    values = list(dict.fromkeys(json.dumps(r["swept"][param]) for r in records))
    searches = list(dict.fromkeys(r["search"] for r in records))
    lines = [f"# {first['method']} on {first['dataset']}, {first['bits']} bits: sweep of `{param}`", "",
             f"Generated by `python -m protocols.sweep` from `{source}` (seed {first['seed']}, split sha256 "
             f"{first['split_sha256'][:12]}). "
             "Validation MAP: the trainer's held-out training images (what chooses the epoch).", ""]
    rows = []
    for value in values:
        found = {r["search"]: r for r in records if json.dumps(r["swept"][param]) == value}
        row = next(iter(found.values()))
        fit = row.get("fit_info") or {}
        val_map = fit.get("val_map")
        rows.append([_show(row["swept"][param]), *(number(found[s]["map"]) if s in found else "–" for s in searches),
                     number(row["map_all"]), "" if val_map is None else number(val_map), fit.get("epoch", ""),
                     number(row["train_s"], 1)])
    header = [param, *(f"MAP@{first['topk']} ({s})" for s in searches), "MAP@all (hamming)", "validation MAP",
              "chosen epoch", "train (s)"]
    lines += table(header, rows)
    return "\n".join(lines) + "\n"


def _show(value) -> str:
    return f"({', '.join(map(str, value))})" if isinstance(value, list | tuple) else str(value)


def rebuild_tables(folder) -> list[Path]:
    """Rewrite every sweep's Markdown table under ``folder`` from its JSON records."""
    written = []
    for path in sorted(Path(folder).glob("*.json")):
        records = json.loads(path.read_text()).get("records") or []
        if records and "swept" in records[0]:
            written.append(atomic_write_text(path.with_suffix(".md"), sweep_table(records, path.name)))
    return written
