"""The site's leaderboard across datasets: ``leaderboard.html``, every Table I column ranked per (dataset,
code length) by its mean MAP@K over training seeds, from each dataset's tidy frame
(:func:`protocols.frame.frame_of`, the view Table I shows: :func:`protocols.frame.table_view`) and
:func:`protocols.stats.cells`, the same cells as the Table I pages.

What a rank rests on is shown beside it: mean ± sd (n) and the marks (:data:`protocols.markdown.MARKS`).
A cell over one training seed (†) is never ranked: only cells over two seeds or more are, by mean
(equal means share a rank), so a single-seed number is never ranked first over a multi-seed one; and
rank 1 is bold (called best) only where :func:`protocols.markdown.best_in_row` makes it bold, that is
where no cell of that dataset and code length has a higher mean. Rows: Table I's block and the
"beyond the paper" block; parameter variants stay on each dataset's page.
"""
from __future__ import annotations

import math

import pandas as pd

from protocols.frame import column_order, frame_of, read_map_records, table_view
from protocols.markdown import MARKS, best_in_row, marks_of
from protocols.site_map import label_parts, value_parts
from protocols.site_render import Page, Part, Row, cell, link, page_number, table_data
from protocols.site_terms import term_title
from protocols.stats import cells
from protocols.style import FAMILIES, column_style

#: the blocks of Table I the leaderboard ranks (a parameter variant is not a method's entry)
BLOCKS = ("table1", "beyond")


def ranks(row_cells: list) -> list[tuple[int | None, bool]]:
    """``(rank, best)`` per cell of one (dataset, code length): the rank by mean among the cells over two
    training seeds or more (1 + the number of such cells with a higher mean), None for a cell over one
    seed or with no number; ``best`` as :func:`protocols.markdown.best_in_row` (bold)."""
    ranked = [c["mean"] for c in row_cells if c["n"] >= 2 and not math.isnan(c["mean"])]
    return [(1 + sum(m > c["mean"] for m in ranked) if c["n"] >= 2 and not math.isnan(c["mean"]) else None, best)
            for c, best in zip(row_cells, best_in_row(row_cells))]


def entries(out, datasets) -> pd.DataFrame:
    """One row per (dataset, code length, column) of :data:`BLOCKS`: the MAP cell, its rank and whether best."""
    rows, views = [], []
    for dataset in datasets:
        records = read_map_records(out, dataset)
        if not records:
            continue
        frame = frame_of(records)
        seed, topk = table_view(frame)
        view = frame[(frame["seed"] == seed) & (frame["topk"] == topk) & frame["block"].isin(BLOCKS)]
        if view.empty:
            continue
        k_text = "all" if topk >= int(view["n_db"].fillna(0).max()) else str(topk)
        views.append(view)
        for bits, group in cells(view, "map").groupby("bits", sort=True):
            group = group.to_dict("records")
            for c, (rank, best) in zip(group, ranks(group)):
                rows.append({"dataset": dataset, "k": k_text, "bits": int(bits), "rank": rank, "best": best, **c})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {label: i for i, label in enumerate(column_order(pd.concat(views)))}  # one method order for all
    frame["order"] = [order[c] for c in frame["column"]]
    frame["unranked"] = frame["rank"].isna()
    return frame.sort_values(["dataset", "bits", "unranked", "rank", "mean", "order"],
                             ascending=[True, True, True, True, False, True], kind="stable")


def leaderboard_page(out, datasets) -> Page | None:
    """``leaderboard.html`` (``site_templates/leaderboard.html``), or None when no dataset has a record."""
    board = entries(out, datasets)
    if board.empty:
        return None
    headers = ["dataset", "K", "bits", "rank", "method", "family", "MAP@K", "seeds"]
    rows, data = [], []
    for e in board.to_dict("records"):
        family = FAMILIES[column_style(e["column"]).family][2]
        rank = None if pd.isna(e["rank"]) else int(e["rank"])
        rows.append(Row([
            cell(link(f"map-{e['dataset']}.html", e["dataset"]), sort=e["dataset"]), cell(e["k"]),
            cell(e["bits"], sort=e["bits"]),
            cell(rank if rank is not None else "–", sort="" if rank is None else rank, cls="best" if e["best"] else ""),
            cell(*label_parts(e["column"]), sort=e["column"]), cell(Part("term", family, title=term_title(family))),
            cell(*value_parts(e), sort="" if math.isnan(e["mean"]) else f"{e['mean']:.6f}",
                 cls="best" if e["best"] else ""),
            cell(int(e["n"]), sort=int(e["n"])),
        ]))
        data.append({"dataset": e["dataset"], "k": e["k"], "bits": e["bits"], "rank": rank, "best": bool(e["best"]),
                     "column": e["column"], "family": family, "map_mean": page_number(e["mean"]),
                     "map_sd": page_number(e["sd"]), "map_n": int(e["n"]), "map_runs": int(e["runs"]),
                     "map_marks": "".join(MARKS[key][0] for key in marks_of(e)), "records": list(e["records"])})
    matrix_headers, matrix_rows = _rank_matrix(board)
    used = {key for e in board.to_dict("records") if not math.isnan(e["mean"]) for key in marks_of(e)}
    values = {"datasets": sorted(set(board["dataset"])), "headers": headers, "rows": rows,
              "matrix_headers": matrix_headers, "matrix_rows": matrix_rows,
              "marks": [MARKS[key] for key in MARKS if key in used]}
    downloads = {"ranks": table_data(matrix_headers, matrix_rows), "leaderboard": data}
    return Page("Leaderboard: MAP@K across datasets", "leaderboard.html", values, {"plots": [], "records": {}},
                downloads)


def _rank_matrix(board: pd.DataFrame) -> tuple[list[str], list[Row]]:
    """Ranks at a glance: a row per column label, a column per (dataset, code length), each cell its rank
    (bold where best; ``–`` where not ranked, with the mark of why)."""
    keys = list(dict.fromkeys(zip(board["dataset"], board["bits"])))
    labels = list(board.sort_values(["order", "column"], kind="stable")["column"].drop_duplicates())
    found = {(e["dataset"], e["bits"], e["column"]): e for e in board.to_dict("records")}
    rows = []
    for label in labels:
        cells_ = [cell(*label_parts(label), sort=label)]
        for dataset, bits in keys:
            e = found.get((dataset, bits, label))
            if e is None or pd.isna(e["rank"]):
                single = e is not None and e["n"] == 1
                mark = [Part("mark", MARKS["single"][0], title=MARKS["single"][1])] if single else []
                cells_.append(cell("–", *mark, sort=""))
            else:
                cells_.append(cell(int(e["rank"]), sort=int(e["rank"]), cls="best" if e["best"] else ""))
        rows.append(Row(cells_))
    return ["method"] + [f"{dataset}, {bits} bits" for dataset, bits in keys], rows
