"""Every matplotlib figure of the project, in one style: :mod:`protocols.style`'s colour, marker and line
per column (:func:`protocols.style.column_styles`: colour by method, marker and dash by variant, so no
two lines look alike), one figure size, a light grid, the legend outside the axes (never over data),
the sd over training seeds as error bars wherever a point rests on two seeds or more.

:func:`plot_map` draws ``map/<dataset>.png`` (MAP against code length) and :func:`plot_against_paper`
``paper/table1-<dataset>.png`` (ours solid; the paper's dotted where it has figures for the dataset,
and the title says which), both from :func:`protocols.stats.cells`; :func:`plot_pilot` the training-budget
pilot's ``pilot/<dataset>.png``; :func:`plot_speed_accuracy` and :func:`plot_scaling` Table II's
``efficiency/<dataset>-pareto.png`` and ``-scaling.png`` (what they show: :mod:`protocols.efficiency_frame`).
"""
from __future__ import annotations

import math
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


def plot_pilot(chosen: pd.DataFrame, path: Path, title: str) -> Path:
    """The pilot's figure: validation MAP against epoch, one line per method at its chosen rate
    (``chosen``: a row per method with its ``history`` and ``legend``; HDHash over another loss dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for _, row in chosen.iterrows():
        style = method_style(row["method"].split("[")[0])
        epochs = range(1, len(row["history"]) + 1)
        ax.plot(epochs, row["history"], color=style.colour, linestyle="--" if "[" in row["method"] else "-",
                linewidth=1.2, label=row["legend"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MAP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_speed_accuracy(frame: pd.DataFrame, path: Path, dataset: str) -> Path:
    """Table II's ``<dataset>-pareto.png``: ms/query against recall and against tie-aware MAP@K at the
    largest database size, one point per index setting, the Pareto fronts (all settings; faiss's) shaded."""
    from protocols.efficiency_frame import SPEED_ACCURACY, pareto_front, speed_points
    from protocols.style import index_style

    plt = _pyplot()
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
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path


def plot_scaling(frame: pd.DataFrame, path: Path, dataset: str) -> Path:
    """Table II's ``<dataset>-scaling.png``: ms/query against database size per index, with the fitted slope."""
    from protocols.efficiency_frame import scaling_series, slope
    from protocols.style import index_style

    plt = _pyplot()
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
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path
