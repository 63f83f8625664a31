"""Markdown rendering: every number of a Markdown table is written here, saying what it rests on.

A cell of :func:`protocols.stats.cells` reads ``mean ± sd (n)``: n (the training seeds with a number)
always, ``(n of runs)`` where a record holds no number; then its marks (:data:`MARKS`): ``†`` for one
seed (no spread: never bold, never called best), a letter for each provenance its records mix
(commits, machines, devices, thread counts) and ``*`` for a record stored with parameters that differ
from today's defaults. A table lists the marks it uses below it (:func:`legend`). The best mean of a
row (of a column, in a table whose rows are the methods) is bold only where it rests on two or more
seeds (:func:`best_in_row`).
"""
from __future__ import annotations

import pandas as pd

#: a cell's marks and their footnotes, in the order they follow a number
MARKS = {
    "single": ("†", "one training seed, so no spread: never bold, never called best"),
    "commit": ("ᶜ", "records from more than one commit (or not all say which)"),
    "machine": ("ᵐ", "records from more than one machine"),
    "device": ("ᵈ", "records trained on more than one device"),
    "thread_counts": ("ᵗ", "records run with more than one thread count (or not all say which)"),
    "stale": ("*", "stored with parameters that differ from today's defaults (e.g. before a default changed); "
                   "python -m protocols.paper runs it again"),
}

#: a mark as a footnote line writes it: a line starting with "* " would be a Markdown list item
IN_TEXT = {"*": "\\*"}


def number(value, digits: int = 4) -> str:
    return "–" if pd.isna(value) else f"{value:.{digits}f}"


def signed(value, digits: int = 4) -> str:
    return "–" if pd.isna(value) else f"{value:+.{digits}f}"


def marks_of(cell) -> list[str]:
    """The :data:`MARKS` keys that apply to ``cell`` (a row of :func:`protocols.stats.cells`)."""
    keys = ["single"] if cell["n"] == 1 else []
    keys += [name for name in ("commit", "machine", "device", "thread_counts") if name in cell["mixes"]]
    return keys + (["stale"] if cell["stale"] else [])


def cell_text(cell, digits: int = 4, bold: bool = False) -> str:
    """``mean ± sd (n)`` and the cell's marks; ``–`` where it holds no number."""
    if cell is None or pd.isna(cell["mean"]):
        return "–"
    n, runs = int(cell["n"]), int(cell["runs"])
    text = f"{cell['mean']:.{digits}f}" + (f" ± {cell['sd']:.{digits}f}" if n > 1 else "")
    text += f" ({n} of {runs})" if runs > n else f" ({n})"
    return (f"**{text}**" if bold else text) + "".join(MARKS[key][0] for key in marks_of(cell))


def best_in_row(row_cells: list) -> list[bool]:
    """Which cells of a row are bold: those with the row's best mean, where that mean rests on two or
    more seeds (a row whose best mean rests on one seed has no bold cell: nothing there is known best)."""
    means = [c["mean"] for c in row_cells if c is not None and not pd.isna(c["mean"])]
    if not means:
        return [False] * len(row_cells)
    best = max(means)
    return [c is not None and c["mean"] == best and c["n"] >= 2 for c in row_cells]


def best_cells(grid: list[list], best_of: str = "row") -> list[list[bool]]:
    """Which cells of ``grid`` (rows of cells) are bold: :func:`best_in_row` along each row, or along
    each column with ``best_of="column"``."""
    if best_of == "row":
        return [best_in_row(row) for row in grid]
    by_column = [best_in_row(list(column)) for column in zip(*grid)]
    return [list(row) for row in zip(*by_column)] if by_column else [[] for _ in grid]


def difference_text(difference, se) -> str:
    """A paired difference: ``+mean ± SE`` (no SE over one pair)."""
    return signed(difference) + ("" if pd.isna(se) else f" ± {se:.4f}")


def paired_text(difference, se, n, verdict) -> str:
    """A paired difference with its pairs and verdict: ``+mean ± SE (n): verdict``; ``–`` where none."""
    if difference is None or pd.isna(difference):
        return "–"
    return f"{difference_text(difference, se)} ({int(n)}): {verdict}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def legend(used) -> list[str]:
    """The footnote line of the :data:`MARKS` keys in ``used`` (none: no line)."""
    keys = [key for key in MARKS if key in set(used)]
    if not keys:
        return []
    return ["", "; ".join(f"{IN_TEXT.get(MARKS[key][0], MARKS[key][0])} {MARKS[key][1]}" for key in keys) + "."]


def cell_grid(cells: pd.DataFrame, rows: list, columns: list, row_key: str, column_key: str, digits: int = 4,
              bold: bool = True, first: str = "", extra_row: list | None = None, best_of: str = "row") -> list[str]:
    """A table of :func:`cell_text` cells: one line per ``rows`` value (of ``row_key``), one column per
    ``columns`` value (of ``column_key``), headed ``first``; ``extra_row`` (e.g. the schedules) last; the
    legend of the marks used below it. With ``bold``, the best of each row is bold (:func:`best_in_row`),
    or of each column with ``best_of="column"`` (a table whose rows are the methods)."""
    lookup = {(r[row_key], r[column_key]): r for r in cells.to_dict("records")}
    grid = [[lookup.get((row, column)) for column in columns] for row in rows]
    bolds = best_cells(grid, best_of) if bold else [[False] * len(columns) for _ in rows]
    lines, used = [], set()
    for row, row_cells, row_bolds in zip(rows, grid, bolds):
        used.update(key for c in row_cells if c is not None and not pd.isna(c["mean"]) for key in marks_of(c))
        lines.append([str(row)] + [cell_text(c, digits, b) for c, b in zip(row_cells, row_bolds)])
    if extra_row is not None:
        lines.append(extra_row)
    return table([first] + [str(c) for c in columns], lines) + legend(used)


def differences_table(diffs: pd.DataFrame, reference: str, order: list[str]) -> list[str]:
    """The section of the paired differences to ``reference`` (:func:`protocols.stats.paired_differences`),
    its columns in ``order``."""
    if diffs.empty:
        return []
    rank = {label: i for i, label in enumerate(order)}
    diffs = diffs.assign(rank=[rank.get(c, len(rank)) for c in diffs["column"]])
    ordered = diffs.sort_values(["rank", "column", "bits"], kind="stable").to_dict("records")
    rows = [[r["column"], r["bits"], difference_text(r["difference"], r["se"]), r["n"], r["verdict"]] for r in ordered]
    return [f"## Difference to {reference} (paired over training seeds)", "",
            f"MAP@K minus {reference}'s, mean ± standard error over the seeds both have (n); a difference is a "
            "win or a loss only beyond two standard errors, with three seeds or more.", "",
            *table(["method", "bits", "difference", "n", "verdict"], rows), ""]
