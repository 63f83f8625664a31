"""The site's Table U page, ``unseen-<dataset>.html``: the unseen-class protocol's table and every
unseen-class record of the dataset under its own anchor (``u-<record id>``).

The table is the Markdown one's (``map/<dataset>-unseen.md``, :mod:`protocols.unseen_tables`): rows the
methods, columns database (unseen@unseen, unseen@all) x bits x (MAP@K, tie-aware MAP@K), the same cells
(:func:`protocols.unseen_tables.table_cells`) drawn as Table I's are (:func:`protocols.site_map.value_parts`:
mean ± sd (n) and the marks), the best of a column bold only where it rests on two seeds or more
(:func:`protocols.markdown.best_cells`). Every number opens the records it comes from; every table has a
filter box and downloads as CSV and JSON. A dataset with no unseen-class record has no page, and the
site then holds nothing of Table U.
"""
from __future__ import annotations

import json
import math

import pandas as pd

from protocols.frame import BULKY, read_map_records, stored_datasets
from protocols.markdown import MARKS, best_cells, marks_of
from protocols.runner import protocol_root
from protocols.site_map import cell_data, difference_table, label_parts, mean_sort, method_swatches, value_parts
from protocols.site_render import Page, Part, Row, cell, fmt, link, machine_text, page_number
from protocols.site_terms import term_title
from protocols.unseen_tables import (
    DATABASE_LABELS,
    UNSEEN,
    row_order,
    table_cells,
    table_view,
    unseen_frame,
    unseen_records,
)

#: the index page's Table U table
INDEX_HEADERS = ["dataset", "methods", "bits", "training seeds", "class split seed", "records", "machines",
                 "when (UTC)"]
RECORD_HEADERS = ["record", "method", "bits", "searched among", "split seed", "class split seed", "training seed",
                  "K", "MAP@K", "tie-aware MAP@K", "machine", "commit", "time (UTC)", "full record"]


def unseen_sets(out) -> list[str]:
    """The datasets with a folder of unseen-class records under ``out`` (``unseen/map/runs/<dataset>/``)."""
    return stored_datasets(protocol_root(out, UNSEEN))


def unseen_page(out, dataset: str) -> Page | None:
    """``unseen-<dataset>.html`` (``site_templates/unseen.html``), or None when no record is stored."""
    records = unseen_records(out, dataset)
    if not records:
        return None
    frame = unseen_frame(out, dataset, records)
    view = table_view(frame)
    default = view["variant"].fillna("") == ""
    name = f"unseen-{dataset}.html"
    tables, downloads, used = {}, {}, set()
    for table_id, part in (("table-u", view[default]), ("variants", view[~default])):
        if len(part):
            headers, rows, data = _table(part, used)
            tables[table_id] = (headers, rows)
            downloads[table_id] = data
    first = view.iloc[0]
    sizes = {d: int(part["n_db"].iloc[0]) for d, part in view.groupby("database")}
    values = {
        "dataset": dataset, "seen": first["seen_classes"], "unseen": first["unseen_classes"],
        "n_query": int(first["n_query"]), "class_seed": int(first["class_seed"]),
        "class_sha": str(first["class_split_sha256"])[:12], "seed": int(first["seed"]),
        "split_sha": str(first["split_sha256"])[:12],
        "sizes": [f"{label}: {sizes[d]} database items" for d, label in DATABASE_LABELS.items() if d in sizes],
        "train_seeds": sorted({int(s) for s in view["training_seed"]}), "n_records": len(view),
        "machines": sorted({machine_text(m, d) for m, d in zip(view["machine"], view["device"])}),
        "others": len(frame) - len(view), "classifier": "classifier" in set(view["method"]),
        "map_page": f"map-{dataset}.html" if read_map_records(out, dataset) else "",
        "tables": tables, "marks": [MARKS[key] for key in MARKS if key in used],
        "record_headers": RECORD_HEADERS, "record_rows": _record_rows(frame, records),
    }
    values["differences_headers"], values["differences_rows"], differences = _differences(view[default])
    if differences:
        downloads["differences"] = differences
    summaries = {i: {"href": f"{name}#u-{i}", "fields": {k: v for k, v in r.items() if k not in BULKY}}
                 for i, r in records.items()}
    downloads["records"] = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
                            for row in frame.to_dict("records")]
    return Page(f"{dataset}: Table U (unseen classes)", "unseen.html", values, {"plots": [], "records": summaries},
                downloads)


def _table(part: pd.DataFrame, used: set) -> tuple[list[str], list[Row], list[dict]]:
    """Table U over ``part``: its headings, its rows (each number opening its records, the best of a column
    bold), its download (one row per method, database and bits: MAP@K's and tie-aware MAP@K's numbers);
    adds the marks its cells use to ``used``."""
    found, headings = table_cells(part)
    order = row_order(part)
    lookup = {(c["column"], c["heading"]): c for c in found.to_dict("records")}
    grid = [[lookup.get((label, heading)) for heading in headings] for label in order]
    rows = []
    for label, row_cells, bolds in zip(order, grid, best_cells(grid, "column")):
        used.update(key for c in row_cells if c is not None and not math.isnan(c["mean"]) for key in marks_of(c))
        rows.append(Row([cell(*label_parts(label), sort=label)]
                        + [cell(*value_parts(c), sort=mean_sort(c), records=c["records"] if c else (),
                                cls="best" if bold else "") for c, bold in zip(row_cells, bolds)]))
    by_key = {(c["column"], c["database"], int(c["bits"]), c["metric"]): c for c in found.to_dict("records")}
    data = []
    for label in order:
        for database, name in DATABASE_LABELS.items():
            for bits in sorted({b for (column, d, b, _) in by_key if column == label and d == database}):
                ours = [by_key.get((label, database, bits, metric)) for metric in ("map", "map_tie_aware")]
                data.append({"column": label, "database": name, "bits": bits, **cell_data(ours[0], "map"),
                             **cell_data(ours[1], "map_tie_aware"),
                             "records": list(next(c["records"] for c in ours if c is not None))})
    return ["method", *headings], rows, data


def _differences(part: pd.DataFrame) -> tuple[list[str], list[Row], list[dict]]:
    """Table U's paired differences to HashNet per database (:func:`protocols.site_map.difference_table`,
    as ``map/<dataset>-unseen.md`` has them), MAP@K's and tie-aware MAP@K's."""
    headers, rows, data = [], [], []
    for database, name in DATABASE_LABELS.items():
        found = part[part["database"] == database]
        h, r, d = difference_table(found, row_order(found), (("map", "MAP@K"), ("map_tie_aware", "tie-aware MAP@K")),
                                   first=(("database", name),))
        headers, rows, data = h or headers, rows + r, data + d
    return headers, rows, data


def _record_rows(frame: pd.DataFrame, records: dict) -> list[Row]:
    """Every record of ``frame`` under its anchor ``u-<record id>``, its full JSON in a fold."""
    rows = []
    for row in frame.to_dict("records"):
        record_id, database = row["record_id"], DATABASE_LABELS.get(row["database"], str(row["database"]))
        rows.append(Row([
            cell(link(f"#u-{record_id}", record_id), sort=record_id),
            cell(*label_parts(row["column"]), sort=row["column"]),
            cell(row["bits"], sort=row["bits"]), cell(Part("term", database, title=term_title(database))),
            cell(row["seed"], sort=row["seed"]), cell(row["class_seed"], sort=row["class_seed"]),
            cell(int(row["training_seed"]), sort=int(row["training_seed"])), cell(row["topk"], sort=row["topk"]),
            *(cell(fmt(row.get(f)), sort="" if page_number(row.get(f)) is None else page_number(row.get(f)),
                   records=[record_id]) for f in ("map", "map_tie_aware")),
            cell(machine_text(row["machine"], row["device"])),
            cell(Part("code", row["commit"] if isinstance(row["commit"], str) else "?")),
            cell(records[record_id].get("timestamp", "")),
            cell(Part("details", json.dumps(records[record_id], indent=1, sort_keys=True))),
        ], f"u-{record_id}"))
    return rows


def unseen_index_rows(out, datasets: list[str]) -> list[Row]:
    """The index page's Table U rows: per dataset, what ran, where and when, linking its page."""
    rows = []
    for dataset in datasets:
        records = unseen_records(out, dataset)
        frame = unseen_frame(out, dataset, records)
        stamps = sorted(str(r.get("timestamp", "")) for r in records.values() if r.get("timestamp"))
        methods = sorted(set(frame["method"]))
        rows.append(Row([
            cell(link(f"unseen-{dataset}.html", dataset), sort=dataset),
            cell(*method_swatches(methods), sort=len(methods)),
            cell(", ".join(str(b) for b in sorted({int(b) for b in frame["bits"]}))),
            cell(", ".join(str(s) for s in sorted({int(s) for s in frame["training_seed"]}))),
            cell(", ".join(str(s) for s in sorted({int(s) for s in frame["class_seed"]}))),
            cell(link(f"unseen-{dataset}.html#records", len(records)), sort=len(records)),
            cell("; ".join(sorted({machine_text(m, d) for m, d in zip(frame["machine"], frame["device"])}))),
            cell(f"{stamps[0]} to {stamps[-1]}" if stamps else "?", sort=stamps[-1] if stamps else ""),
        ]))
    return rows
