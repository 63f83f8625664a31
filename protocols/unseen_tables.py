"""Table U: the unseen-class protocol's view (:mod:`datasets.class_split`), from its stored records alone.

:func:`write_unseen_report` writes ``<out>/map/<dataset>-unseen.csv`` (every record, one row each) and
``.md`` from the records under ``<out>/unseen/map/runs/<dataset>/`` (:func:`protocols.runner.protocol_root`),
and nothing where none is stored. The Markdown table: rows the methods (HDHash's tree rows too), columns
database (unseen@unseen, unseen@all) x bits, each cell MAP@K and, beside it, tie-aware MAP@K: the cells of
:func:`protocols.stats.cells` over the training seeds stored, written by :mod:`protocols.markdown` (mean ± sd
(n) and the marks of what a cell rests on; the best of a column bold only over two seeds or more); then
the paired differences to HashNet (:func:`protocols.stats.paired_differences`). The site's Table U page
(:mod:`protocols.site_unseen`) shows the same cells (:func:`table_cells`). ``python -m protocols.report``
rebuilds both with every other derived file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols.frame import REFERENCE, column_label, frame_of, read_map_records, train_seeds
from protocols.markdown import cell_grid, paired_text
from protocols.runner import protocol_root
from protocols.stats import cells, paired_differences

#: the protocol whose records this table reads (and their folder inside the results folder)
UNSEEN = "unseen"
#: a database's name in the tables, in their order (datasets.class_split.DATABASES)
DATABASE_LABELS = {"unseen": "unseen@unseen", "all": "unseen@all"}
#: the unseen protocol's fields, put right after a row's identity in the CSV
FIELDS = ["protocol", "database", "class_seed", "class_split_sha256", "seen_classes", "unseen_classes"]


def unseen_records(out, dataset: str) -> dict[str, dict]:
    """``{record id: record}`` of every readable unseen-protocol record of ``dataset`` under ``out``."""
    records = read_map_records(protocol_root(out, UNSEEN), dataset)
    return {record_id: r for record_id, r in records.items() if r.get("protocol") == UNSEEN}


def unseen_frame(out, dataset: str, records: dict | None = None) -> pd.DataFrame:
    """One row per stored unseen-protocol record of ``dataset`` (:func:`protocols.frame.frame_of`'s
    columns, class ids as space-separated text); ``records`` where :func:`unseen_records` has read them."""
    frame = frame_of(unseen_records(out, dataset) if records is None else records)
    if frame.empty:
        return pd.DataFrame()
    for key in ("seen_classes", "unseen_classes"):
        frame[key] = [" ".join(str(c) for c in ids) for ids in frame[key]]
    head = [c for c in frame if c not in FIELDS][:4]  # dataset, method, bits, search
    frame = frame[head + FIELDS + [c for c in frame if c not in head + FIELDS]]
    return frame.sort_values(["seed", "class_seed", "database", "topk", "method", "search", "bits"], kind="stable")


def table_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The records Table U shows: split seed 0 and class split seed 0 where stored (else the smallest),
    and per database the K most records have; chosen from the store alone, so any order of runs gives
    the same table."""
    seed = 0 if (frame["seed"] == 0).any() else int(frame["seed"].min())
    view = frame[frame["seed"] == seed]
    class_seed = 0 if (view["class_seed"] == 0).any() else int(view["class_seed"].min())
    view = view[view["class_seed"] == class_seed]
    parts = []
    for _, part in view.groupby("database", sort=False):
        counts = part["topk"].value_counts()
        parts.append(part[part["topk"] == sorted(counts[counts == counts.max()].index)[0]])
    return pd.concat(parts)


def row_order(frame: pd.DataFrame) -> list[str]:
    """Row labels: Table I's methods, then those beyond the paper (the classifier among them), then any
    other; by name, each method's default search before its others."""
    from methods import UnknownMethodError, get_method_class

    def group(method):
        try:
            cls = get_method_class(method)
        except UnknownMethodError:
            return 2
        return 0 if cls.paper_table1 else 1 if cls.beyond_paper else 2

    rows = frame.assign(label=[column_label(r) for r in frame.to_dict("records")],
                        other_search=~frame["default_search"].fillna(True).astype(bool))
    rows = rows.assign(group=[group(m) for m in rows["method"]])
    return list(dict.fromkeys(rows.sort_values(["group", "method", "other_search", "search", "label"])["label"]))


def table_cells(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Table U's cells and its column headings in order (database, then bits, then MAP@K before
    tie-aware MAP@K): :func:`protocols.stats.cells` per row label (``column``), database and bits over the
    training seeds, each cell with its ``database``, ``metric`` (the record field) and ``heading``."""
    found, headings = [], []
    for database, name in DATABASE_LABELS.items():
        part = frame[frame["database"] == database]
        if part.empty:
            continue
        k = int(part["topk"].iloc[0])
        what = {"map": f"MAP@{'all' if k >= int(part['n_db'].max()) else k}", "map_tie_aware": "tie-aware"}
        for metric in what:
            part_cells = cells(part, metric)
            named = [f"{name} {int(b)} bits {what[metric]}" for b in part_cells["bits"]]
            found.append(part_cells.assign(database=database, metric=metric, heading=named))
        headings += [f"{name} {int(b)} bits {what[m]}" for b in sorted(part["bits"].unique()) for m in what]
    return pd.concat(found, ignore_index=True), headings


def seed_table(frame: pd.DataFrame) -> list[str]:
    """Markdown rows: one per method (and search), columns database x bits x (MAP@K, tie-aware MAP@K), each
    cell :func:`protocols.markdown.cell_text`; the best of a column bold where it rests on two seeds or
    more; the legend of the marks used below."""
    found, headings = table_cells(frame)
    return cell_grid(found, row_order(frame), headings, "column", "heading", first="method", best_of="column")


def differences(frame: pd.DataFrame) -> list[str]:
    """Each row's difference to HashNet's default search, per database and bits, paired over the
    training seeds both have (:func:`protocols.tables.paired_differences`), for MAP@K and tie-aware MAP@K."""
    lines = []
    for database, name in DATABASE_LABELS.items():
        part = frame[frame["database"] == database]
        if part.empty or not (part["method"] == REFERENCE).any() or train_seeds(part).nunique() < 2:
            continue
        both = paired_differences(part, REFERENCE, "map").merge(
            paired_differences(part, REFERENCE, "map_tie_aware"), on=["column", "bits"], how="outer",
            suffixes=("", "_ties"))
        order = {label: i for i, label in enumerate(row_order(part))}
        both = both.assign(row=[order.get(c, len(order)) for c in both["column"]])
        for r in both.sort_values(["row", "bits"], kind="stable").to_dict("records"):
            lines.append(f"| {r['column']} | {name} | {r['bits']} | {_difference(r, '')} | {_difference(r, '_ties')} |")
    if not lines:
        return []
    return [f"## Difference to {REFERENCE} (paired over training seeds)", "",
            f"Each row minus {REFERENCE}'s on the same database, bits and training seed: mean ± standard error (n "
            "pairs), and the verdict: a win or a loss only beyond two standard errors, with three seeds or more.", "",
            "| method | database | bits | MAP@K | tie-aware MAP@K |", "|---|---|---|---|---|", *lines, ""]


def _difference(row: dict, suffix: str) -> str:
    return paired_text(row.get(f"difference{suffix}"), row.get(f"se{suffix}"), row.get(f"n{suffix}"),
                       row.get(f"verdict{suffix}"))


def unseen_markdown(frame: pd.DataFrame, dataset: str) -> str:
    view = table_view(frame)
    chosen, variants = view[view["variant"].fillna("") == ""], view[view["variant"].fillna("") != ""]
    first = view.iloc[0]
    sizes = "; ".join(f"{DATABASE_LABELS[d]}: {int(part['n_db'].iloc[0])} database items"
                      for d, part in sorted(view.groupby("database"), key=lambda p: list(DATABASE_LABELS).index(p[0])))
    machine = "; ".join(sorted(set(view["cpu"].astype(str) + " (" + view["cores"].astype(str) + " cores)"))) \
        if "cpu" in view else "not recorded"
    commits = sorted(set(view["git_commit"].dropna().astype(str).str[:7])) if "git_commit" in view else []
    others = len(frame) - len(view)
    text = [
        f"# {dataset}: unseen classes (Table U)", "",
        f"Generated by `python -m protocols.report` from {len(view)} run records in `unseen/map/runs/{dataset}/`. "
        f"Trained on the seen classes {first['seen_classes']}, queried with the unseen classes "
        f"{first['unseen_classes']} "
        f"({int(first['n_query'])} queries; class split seed {int(first['class_seed'])}, sha256 "
        f"{str(first['class_split_sha256'])[:12]}); split seed {int(first['seed'])}, split sha256 "
        f"{str(first['split_sha256'])[:12]}; {sizes}. unseen@unseen retrieves among the unseen classes only, "
        "unseen@all among every item (the seen classes as distractors). Cells: mean ± sd (n training seeds), then "
        "the marks of what a cell rests on (below the table); the best mean of a column is bold only where it rests "
        "on two or more seeds; tie-aware MAP@K (the expected AP over every order of tied items) beside MAP@K. "
        f"Machine: {machine}; code: {', '.join(commits) or 'not recorded'}."
        + (f" {others} records of other seeds, class splits or K are in `{dataset}-unseen.csv`." if others else ""),
        "",
    ]
    if "classifier" in set(view["method"]):
        text += ["The classifier's code is its predicted seen class's codeword, so its ties are whole classes: "
                 "read it by tie-aware MAP.", ""]
    if len(chosen):
        text += [*seed_table(chosen), "", *differences(chosen)]
    else:
        text += ["No run with every parameter at its default is stored yet.", ""]
    if len(variants):
        text += ["## Variants: runs with non-default parameters", "", *seed_table(variants), ""]
    return "\n".join(text)


def write_unseen_report(out, dataset: str) -> list[Path]:
    """``<out>/map/<dataset>-unseen.{csv,md}`` from the stored unseen-protocol records; nothing when none."""
    frame = unseen_frame(out, dataset)
    if frame.empty:
        return []
    folder = Path(out) / "map"
    return [atomic_write_text(folder / f"{dataset}-unseen.csv", frame.to_csv(index=False, float_format="%.6g")),
            atomic_write_text(folder / f"{dataset}-unseen.md", unseen_markdown(frame, dataset))]
