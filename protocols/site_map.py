"""The site's Table I pages, views of a dataset's tidy frame (:mod:`protocols.frame`).

``map-<dataset>.html``: Table I as mean ± sd (n) over training seeds with the marks of what each cell
rests on (:data:`protocols.markdown.MARKS`) and each method's schedule, beside the paper's figures
where it has them; every metric per column and code length; MAP and precision within Hamming radius 2
against code length; P@N and precision-recall curves per code length. ``records-<dataset>.html``:
every MAP record under its own anchor. The Table I page links the dataset's Table U page
(:mod:`protocols.site_unseen`) where it has unseen-class records. Every number opens the records it
comes from, and every table downloads as CSV and JSON: the cells' numbers (mean, sd, n, marks,
records), the records' fields.
Plots take :func:`protocols.style.column_styles` (colour by method, marker and dash by variant) and
draw the sd over training seeds as error bars where a point rests on two seeds or more.
"""
from __future__ import annotations

import json
import math

from protocols.frame import (
    BULKY,
    REFERENCE,
    column_order,
    frame_of,
    other_search,
    read_map_records,
    table_view,
    train_seeds,
)
from protocols.markdown import MARKS, marks_of, paired_text
from protocols.published import paper_table1
from protocols.rankings import ranking_view
from protocols.site_render import (
    Cell,
    Page,
    Part,
    Row,
    cell,
    error_bars,
    fmt,
    link,
    machine_text,
    page_number,
    plot,
    plot_text,
    swatch,
)
from protocols.site_terms import column_title, term_title
from protocols.stats import cells, paired_differences, spread
from protocols.style import FAMILIES, column_style, column_styles
from protocols.unseen_tables import unseen_records

#: metrics of a MAP record shown in Table I's companions: (field, heading)
METRICS = (("map", "MAP@K"), ("map_tie_aware", "tie-aware MAP@K"), ("map_all", "MAP@all"),
           ("p_r2", "P (Hamming radius 2)"), ("train_s", "train (s)"))


def value_parts(c, digits: int = 4) -> list:
    """A cell's parts: ``mean ± sd``, ``(n)`` (``(n of runs)`` where a record holds no number), its marks."""
    if c is None or math.isnan(c["mean"]):
        return ["–"]
    n, runs = int(c["n"]), int(c["runs"])
    text = f"{c['mean']:.{digits}f}" + (f" ± {c['sd']:.{digits}f}" if n > 1 else "")
    return [text + " ", Part("small", f"({n} of {runs})" if runs > n else f"({n})"),
            *(Part("mark", MARKS[key][0], title=MARKS[key][1]) for key in marks_of(c))]


def mean_sort(c) -> str:
    """A cell's sort key (``data-sort``): its mean, empty where it holds no number."""
    return "" if c is None or math.isnan(c["mean"]) else f"{c['mean']:.6f}"


def map_page(out, dataset: str) -> Page | None:
    """``map-<dataset>.html`` (``site_templates/map.html``), or None when no record is stored."""
    records = read_map_records(out, dataset)
    if not records:
        return None
    frame = frame_of(records)
    seed, topk = table_view(frame)
    view = frame[(frame["seed"] == seed) & (frame["topk"] == topk)]
    order, bits = column_order(view), sorted(int(b) for b in view["bits"].unique())
    k_text = "all" if topk >= int(view["n_db"].fillna(0).max()) else str(topk)
    stats = {field: {(c["column"], int(c["bits"])): c for c in cells(view, field).to_dict("records")}
             for field, _ in METRICS}
    defaults = {row["column"]: (row["method"], row["block"] == "table1" and not other_search(row["default_search"]))
                for row in view.to_dict("records")}
    paper = paper_table1()
    paper = paper[paper["dataset"] == dataset]
    published = {(m, int(b)): float(v) for m, b, v in zip(paper["method"], paper["bits"], paper["map"])}
    # runs with non-default parameters get a table of their own, as in map/<dataset>.md: never Table I's rows
    variant_columns = {c for c, part in view.groupby("column")["block"] if (part == "variant").all()}
    table1_order = [c for c in order if c not in variant_columns]
    variant_order = [c for c in order if c in variant_columns]
    headers, rows, used = _table1(table1_order, bits, stats["map"], view, defaults, published)
    variant_headers, variant_rows, variant_used = _table1(variant_order, bits, stats["map"], view, defaults, {})
    used |= variant_used
    plots = [_bits_plot("plot-map", order, bits, stats["map"], f"MAP@{k_text}", published, defaults),
             _bits_plot("plot-pr2", order, bits, stats["p_r2"], "precision within Hamming radius 2", {}, defaults)]
    for b in bits:
        plots += [_curve_plot(f"plot-pn-{b}", order, stats["map"], records, b, "pn"),
                  _curve_plot(f"plot-prc-{b}", order, stats["map"], records, b, "prc")]
    records_page = f"records-{dataset}.html"
    first = records[view["record_id"].iloc[0]]
    values = {
        "dataset": dataset, "records_page": records_page, "k_text": k_text, "seed": seed, "bits": bits,
        "splits": sorted({str(s)[:12] for s in view["split_sha256"].fillna("")}),
        "n_query": first.get("n_query", "?"), "n_db": first.get("n_db", "?"), "n_train": first.get("n_train", "?"),
        "train_seeds": sorted({int(s) for s in view["training_seed"]}), "n_records": len(view),
        "machines": sorted({machine_text(m, d) for m, d in zip(view["machine"], view["device"])}),
        "others": len(frame) - len(view), "published": bool(published),
        "unseen_page": f"unseen-{dataset}.html" if unseen_records(out, dataset) else "",
        "marks": [MARKS[key] for key in MARKS if key in used],
        "table1_headers": headers, "table1_rows": rows,
        "variant_headers": variant_headers, "variant_rows": variant_rows,
        "metrics_headers": ["method", "bits"] + [h for _, h in METRICS] + ["seeds"],
        "metrics_rows": _metric_rows(order, bits, stats),
    }
    compared = view[view["block"] != "variant"]
    values["differences_headers"], values["differences_rows"], difference_data = difference_table(
        compared, order, (("map", "MAP@K"), ("map_tie_aware", "tie-aware MAP@K")))
    summaries = {i: {"href": f"{records_page}#r-{i}", "fields": {k: v for k, v in records[i].items()
                                                                   if k not in BULKY}} for i in view["record_id"]}
    downloads = {"table1": _table1_data(table1_order, bits, stats["map"], view, defaults, published),
                 "metrics": _metric_data(order, bits, stats)}
    if variant_order:
        downloads["variants"] = _table1_data(variant_order, bits, stats["map"], view, defaults, {})
    if difference_data:
        downloads["differences"] = difference_data
    values["rankings"] = _rankings(view, dataset, k_text, downloads)
    return Page(f"{dataset}: Table I", "map.html", values, {"plots": plots, "records": summaries}, downloads)


def _rankings(view, dataset: str, k_text: str, downloads: dict) -> dict | None:
    """The rankings section's values (:func:`protocols.rankings.ranking_view`), its tables' downloads
    added to ``downloads``; None when there is nothing to rank."""
    found = ranking_view(view, dataset, k_text)
    if found is None:
        return None

    def ranked(text: str) -> Cell:  # "rank: mean (n)" sorts by rank
        return cell(text, sort=int(text.split(":")[0]) if ":" in text else "")

    downloads["rankings"] = found.data
    values = {"title": found.title, "intro": found.intro, "headers": found.headers, "verdicts": found.verdicts,
              "rows": [Row([cell(*label_parts(r[0]), sort=r[0]), *map(ranked, r[1:])]) for r in found.grid],
              "authors_intro": found.authors_intro, "authors_headers": found.authors_headers,
              "authors_rows": [Row([cell(*label_parts(r[0]), sort=r[0]), *map(cell, r[1:])])
                               for r in found.authors_grid]}
    if found.authors_grid:
        downloads["authors"] = [dict(zip(found.authors_headers, r)) for r in found.authors_grid]
    return values


def legend_name(label: str) -> str:
    """A column label in a plot's legend: a variant's parameters each on a line of their own (narrower)."""
    base, bracket, variant = label.partition(" [")
    params = (bracket.strip() + variant).split(",") if bracket else []
    return "<br>".join([plot_text(base)] + [plot_text(p) + "," * (i < len(params) - 1) for i, p in enumerate(params)])


def label_parts(label: str) -> list:
    """A Table I row label: its swatch (the method's colour) and its name with its glossary text."""
    return [swatch(column_style(label)), Part("term", label, title=column_title(label))]


def method_swatches(methods) -> list:
    """A list of methods for a cell: each with its swatch (its colour), a space between them."""
    return [part for i, m in enumerate(methods) for part in [" "] * (i > 0) + [swatch(column_style(m)), m]]


def cell_data(c, prefix: str = "map") -> dict:
    """A cell's numbers for a download: mean, sd, n, runs and the marks of what it rests on."""
    if c is None:
        return {f"{prefix}_mean": None, f"{prefix}_sd": None, f"{prefix}_n": 0, f"{prefix}_runs": 0,
                f"{prefix}_marks": ""}
    shown = not math.isnan(c["mean"])
    return {f"{prefix}_mean": page_number(c["mean"]), f"{prefix}_sd": page_number(c["sd"]),
            f"{prefix}_n": int(c["n"]), f"{prefix}_runs": int(c["runs"]),
            f"{prefix}_marks": "".join(MARKS[key][0] for key in marks_of(c)) if shown else ""}


def _table1_data(order, bits, stats, view, defaults, published) -> list[dict]:
    """Table I's download: one row per (column, bits), its cell's numbers and records, the paper's figure."""
    schedules = {column: " / ".join(sorted({s for s in part if isinstance(s, str)}))
                 for column, part in view.groupby("column")["schedule"]}
    rows = []
    for label in order:
        method, default = defaults[label]
        for b in bits:
            c = stats.get((label, b))
            rows.append({"column": label, "method": method, "family": FAMILIES[column_style(label).family][2],
                         "schedule": schedules[label], "bits": b, **cell_data(c),
                         "paper_map": published.get((method, b)) if default else None,
                         "records": list(c["records"]) if c is not None else []})
    return rows


def _metric_data(order, bits, stats) -> list[dict]:
    """Every metric's download: one row per (column, bits) with a record, each metric's numbers."""
    rows = []
    for label in order:
        for b in bits:
            found = stats["map"].get((label, b))
            if found is not None:
                rows.append({"column": label, "bits": b,
                             **{k: v for field, _ in METRICS for k, v in cell_data(stats[field].get((label, b)),
                                                                                    field).items()},
                             "records": list(found["records"])})
    return rows


def _table1(order, bits, stats, view, defaults, published):
    """Table I: methods as rows (family, schedule), code lengths as columns (the paper's layout), the
    paper's figure beside ours; returns the headers, the rows and the marks used."""
    headers = ["method", "family", "schedule"]
    for b in bits:
        headers += [f"{b} bits"] + ([f"{b} bits: paper"] if published else [])
    schedules = {column: " / ".join(sorted({s for s in part if isinstance(s, str)})) or "–"
                 for column, part in view.groupby("column")["schedule"]}
    rows, used = [], set()
    for label in order:
        family = FAMILIES[column_style(label).family][2]
        cells_ = [cell(*label_parts(label), sort=label), cell(Part("term", family, title=term_title(family))),
                  cell(schedules[label])]
        for b in bits:
            c = stats.get((label, b))
            used.update(marks_of(c) if c is not None and not math.isnan(c["mean"]) else [])
            cells_.append(cell(*value_parts(c), sort=mean_sort(c), records=c["records"] if c else ()))
            if published:
                method, default = defaults[label]
                theirs = published.get((method, b)) if default else None
                cells_.append(cell(fmt(theirs), sort="" if theirs is None else f"{theirs:.6f}", cls="paper"))
        rows.append(Row(cells_))
    return headers, rows, used


def difference_table(part, order, metrics, first: tuple = ()) -> tuple[list[str], list[Row], list[dict]]:
    """Each column's difference to HashNet's (:data:`protocols.frame.REFERENCE`) per code length, paired
    over the training seeds both have (:func:`protocols.stats.paired_differences`), one column per
    ``(field, heading)`` of ``metrics``: ``+mean ± SE (n pairs): verdict``; ``first``: leading
    ``(heading, value)`` cells of every row (Table U's database). Nothing where fewer than two training
    seeds or no HashNet row are stored. Returns the headers, the rows and the download's rows."""
    if part.empty or not (part["column"] == REFERENCE).any() or train_seeds(part).nunique() < 2:
        return [], [], []
    found = {field: {(d["column"], int(d["bits"])): d for d in paired_differences(part, REFERENCE, field)
                     .to_dict("records")} for field, _ in metrics if field in part}
    keys = sorted({k for by_key in found.values() for k in by_key},
                  key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))
    headers = [h for h, _ in first] + ["method", "bits"] + [f"{h} minus {REFERENCE}" for f, h in metrics if f in found]
    rows, data = [], []
    for label, b in keys:
        cells_ = [cell(v) for _, v in first] + [cell(*label_parts(label), sort=label), cell(b, sort=b)]
        entry = {h: v for h, v in first} | {"column": label, "bits": b}
        for field in found:
            d = found[field].get((label, b))
            text = "–" if d is None else paired_text(d["difference"], d["se"], d["n"], d["verdict"])
            cells_.append(cell(text, sort="" if d is None else f"{d['difference']:+.6f}"))
            entry.update({f"{field}_difference": None if d is None else d["difference"],
                          f"{field}_se": None if d is None or math.isnan(d["se"]) else d["se"],
                          f"{field}_pairs": None if d is None else int(d["n"]),
                          f"{field}_verdict": None if d is None else d["verdict"]})
        rows.append(Row(cells_))
        data.append(entry)
    return headers, rows, data


def _metric_rows(order, bits, stats) -> list[Row]:
    """Every metric per (column, bits), and the number of records behind it."""
    rows = []
    for label in order:
        for b in bits:
            found = stats["map"].get((label, b))
            if found is None:
                continue
            cells_ = [cell(*label_parts(label), sort=label), cell(b, sort=b)]
            for field, _ in METRICS:
                c = stats[field].get((label, b))
                cells_.append(cell(*value_parts(c, 1 if field == "train_s" else 4), sort=mean_sort(c),
                                   records=c["records"] if c else ()))
            cells_.append(cell(len(found["records"]), sort=len(found["records"]), records=found["records"]))
            rows.append(Row(cells_))
    return rows


def _bits_plot(plot_id, order, bits, stats, title, published, defaults) -> dict:
    traces, styles = [], column_styles(order)
    for label in order:
        found = [(b, stats[(label, b)]) for b in bits
                 if (label, b) in stats and not math.isnan(stats[(label, b)]["mean"])]
        if not found:
            continue
        texts = [f"{plot_text(label)}, {b} bits<br>{title}: {c['mean']:.4f}"
                 + (f" ± {c['sd']:.4f}" if c["n"] > 1 else "") + f"<br>{c['n']} training seed" + "s" * (c["n"] != 1)
                 for b, c in found]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": legend_name(label),
                       "x": [b for b, _ in found], "y": [page_number(c["mean"]) for _, c in found],
                       "error_y": error_bars([c["sd"] if c["n"] > 1 else None for _, c in found]),
                       "customdata": [list(c["records"]) for _, c in found], "text": texts,
                       "hovertemplate": "%{text}<extra></extra>", **styles[label].plotly()})
        method, default = defaults[label]
        theirs = [(b, published[(method, b)]) for b in bits if default and (method, b) in published]
        if theirs:
            style = styles[label].plotly()
            style["line"]["dash"] = "dot"
            style["marker"]["symbol"] += "-open" if not style["marker"]["symbol"].endswith("-open") else ""
            # the label goes in as meta, not into the hovertemplate, where plotly would read a "%{...}" in it
            traces.append({"type": "scatter", "mode": "lines+markers", "name": legend_name(f"{label} (paper)"),
                           "x": [b for b, _ in theirs], "y": [v for _, v in theirs],
                           "meta": plot_text(f"{label} (paper)"),
                           "hovertemplate": "%{meta}, %{x} bits: %{y:.4f}<extra></extra>", **style})
    return plot(plot_id, traces, {"title": {"text": f"{title} against code length"},
                                  "xaxis": {"title": {"text": "code length (bits)"}, "tickvals": bits},
                                  "yaxis": {"title": {"text": title}}})


def _curve_plot(plot_id, order, stats, records, b, kind) -> dict:
    """P@N (``pn``) or precision-recall (``prc``) at ``b`` bits: one line per column, the mean of each
    point over its training seeds (P@N with the sd as error bars where two seeds or more)."""
    traces, styles = [], column_styles(order)
    for label in order:
        ids = list(stats[(label, b)]["records"]) if (label, b) in stats else []
        field = "p_at_n" if kind == "pn" else "pr_curve"
        curves = [records[i][field] for i in ids if isinstance(records[i].get(field), dict)]
        if not curves:
            continue
        if kind == "pn":
            xs = sorted({int(n) for c in curves for n in c})
            points = [spread([c.get(str(n)) for c in curves]) for n in xs]
            ys = [page_number(p.mean) for p in points]
            error = error_bars([p.sd if p.n > 1 else None for p in points])
            hover = "%{meta}<br>P@%{x}: %{y:.4f}<extra></extra>"
        else:
            length = min(len(c["precision"]) for c in curves)
            xs = [page_number(spread([c["recall"][j] for c in curves]).mean) for j in range(length)]
            ys = [page_number(spread([c["precision"][j] for c in curves]).mean) for j in range(length)]
            hover = "%{meta}<br>recall %{x:.4f}, precision %{y:.4f}<br>Hamming radius %{text}<extra></extra>"
        trace = {"type": "scatter", "mode": "lines+markers", "name": legend_name(label), "x": xs, "y": ys,
                 "customdata": [ids] * len(xs), "meta": plot_text(label), "hovertemplate": hover,
                 **styles[label].plotly(), **({"error_y": error} if kind == "pn" else {})}
        trace["marker"]["size"] = 6
        if kind == "prc":
            trace["text"] = [plot_text(r) for r in curves[0].get("radius", list(range(length)))[:length]]
        traces.append(trace)
    what = ("precision at N", "N (top N retrieved)", "precision") if kind == "pn" else \
        ("precision-recall", "recall", "precision")
    return plot(plot_id, traces, {"title": {"text": f"{what[0]}, {b} bits"}, "xaxis": {"title": {"text": what[1]}},
                                  "yaxis": {"title": {"text": what[2]}}})


def records_page(out, dataset: str) -> Page | None:
    """``records-<dataset>.html``: every MAP record of ``dataset``, each under the anchor ``r-<id>``."""
    records = read_map_records(out, dataset)
    if not records:
        return None
    frame = frame_of(records).set_index("record_id")
    rows = []
    for record_id, r in records.items():
        row = frame.loc[record_id]
        label, train_seed = row["column"], int(row["training_seed"])
        cells_ = [
            cell(link(f"#r-{record_id}", record_id), sort=record_id),
            cell(*label_parts(label), sort=label),
            cell(r["bits"], sort=r["bits"]), cell(r["seed"], sort=r["seed"]),
            cell(train_seed, sort=train_seed), cell(r["topk"], sort=r["topk"]),
            *(cell(fmt(r.get(f)), sort="" if page_number(r.get(f)) is None else page_number(r.get(f)))
              for f in ("map", "map_tie_aware", "map_all", "p_r2")),
            cell(str(r.get("split_sha256", ""))[:12]),
            cell(machine_text(row["machine"], row["device"])),
            cell(Part("code", row["commit"] if isinstance(row["commit"], str) else "?")),
            cell(r.get("timestamp", "")),
            cell(Part("details", json.dumps(r, indent=1, sort_keys=True))),
        ]
        rows.append(Row(cells_, f"r-{record_id}"))
    headers = ["record", "method", "bits", "split seed", "training seed", "K", "MAP@K", "tie-aware MAP@K", "MAP@all",
               "P (radius 2)", "split sha256", "machine", "commit", "time (UTC)", "full record"]
    values = {"dataset": dataset, "n_records": len(records), "headers": headers, "rows": rows}
    data = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
            for row in frame.reset_index().to_dict("records")]
    return Page(f"{dataset}: records", "records.html", values, {"plots": [], "records": {}}, {"records": data})
