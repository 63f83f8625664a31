"""The matplotlib figures of Table I, in one style: :mod:`protocols.style`'s colour, marker and line
per column (:func:`protocols.style.column_styles`: colour by method, marker and dash by variant, so no
two lines look alike), one figure size, a light grid, the legend outside the axes (never over data),
the sd over training seeds as error bars wherever a point rests on two seeds or more.

:func:`plot_map` draws ``map/<dataset>.png`` (MAP against code length) and :func:`plot_against_paper`
``paper/table1-<dataset>.png`` (ours solid; the paper's dotted where it has figures for the dataset,
and the title says which), both from :func:`protocols.stats.cells`. (Table II's figures and the
pilot's are still drawn by :mod:`protocols.efficiency_report` and :mod:`protocols.pilot`; they can
place their legends with :func:`legend_outside`.)
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.files import atomic_savefig
from protocols.style import column_styles, method_style

FIGSIZE = (6.4, 4.2)
#: error bars: drawn wherever a point rests on two seeds or more, with caps wide enough to see
ERRORBAR = {"capsize": 4, "elinewidth": 1.2, "capthick": 1.2}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def legend_outside(ax, fontsize: int = 8) -> None:
    """The legend to the right of the axes, top-aligned, one column per 22 entries: it never covers
    data (the saved figure grows to hold it: :func:`common.files.atomic_savefig` saves ``tight``)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize=fontsize, ncol=1 + (len(handles) - 1) // 22, frameon=False)


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, bits, legend_size: int) -> Path:
    """The shared frame of every figure: axes labels, the code lengths as ticks, the grid and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(sorted(bits))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_outside(ax, legend_size)
    path = atomic_savefig(fig, path)
    _pyplot().close(fig)
    return path


def _errors(sd: pd.Series, n: pd.Series):
    """The error bars of points: the sd where a point rests on two seeds or more, none where on one."""
    err = sd.where(n >= 2)
    return None if err.isna().all() else err.fillna(0)


def plot_map(cells: pd.DataFrame, order: list[str], path: Path, title: str) -> Path:
    """MAP against code length: one line per column of ``order`` with the sd over training seeds as
    error bars (none for a single seed), from the ``map`` cells of :func:`protocols.stats.cells`."""
    fig, ax = _pyplot().subplots(figsize=FIGSIZE)
    styles = column_styles(order)
    for column in order:
        part = cells[(cells["column"] == column) & cells["mean"].notna()].sort_values("bits")
        if part.empty:
            continue
        ax.errorbar(part["bits"], part["mean"], yerr=_errors(part["sd"], part["n"]), label=column, **ERRORBAR,
                    **styles[column].mpl())
    return _finish(fig, ax, path, "code length (bits)", "MAP", title, cells["bits"].unique(), 8)


def plot_against_paper(table: pd.DataFrame, path: Path, ylabel: str, title: str) -> Path:
    """Ours (solid, the sd over training seeds as error bars) against the paper's figures (dotted, open
    markers) per method, from the rows of one dataset of the paper's Table I view (``method``, ``bits``,
    ``map``, ``map_sd``, ``n_seeds``, ``paper_map``). ``title`` is completed with what is drawn: the
    paper's dotted lines only where it has figures for the dataset."""
    fig, ax = _pyplot().subplots(figsize=FIGSIZE)
    drawn = table["paper_map"].notna().any()
    for method, group in table.groupby("method", sort=False):
        group = group.sort_values("bits")
        style = method_style(method)
        if group["map"].notna().any():
            ax.errorbar(group["bits"], group["map"], yerr=_errors(group["map_sd"], group["n_seeds"]),
                        label=f"{method} (ours)" if drawn else method, **ERRORBAR, **dict(style.mpl(), linestyle="-"))
        if group["paper_map"].notna().any():
            ax.plot(group["bits"], group["paper_map"], label=f"{method} (paper)",
                    **dict(style.mpl(), linestyle=":", markerfacecolor="white"))
    title += (": ours (solid) against the paper (dotted)" if drawn else
              ": ours (the paper has no figures for this dataset)")
    return _finish(fig, ax, path, "code length (bits)", ylabel, title, table["bits"].unique(), 7)
