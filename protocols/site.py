"""A static results site, rebuilt from the stored records alone: ``results/site/``.

    python -m protocols.site [--out results]

Pages (flat, opening from the file system with no server and no network): ``index.html`` (datasets,
what ran, where, when), ``map-<dataset>.html`` (Table I as mean ± sd over training seeds beside the
paper's figures where it has them, MAP and precision within Hamming radius 2 against code length,
P@N and precision-recall curves per code length), ``records-<dataset>.html`` (every MAP record,
each under its own anchor) and ``efficiency-<dataset>.html`` (Table II: speed against recall and
against tie-aware MAP with the Pareto front, the scaling plot, every index setting's record). Every
number opens the records it comes from (a click on a cell or a plot point).

Plots are plotly.js: its Python package ships the minified bundle (``plotly.offline.get_plotlyjs``),
so the site embeds one local copy (``assets/plotly.min.js``, shared by every page) and works offline;
hover tooltips, error bars, log axes, marker symbols and dash styles are built in; and the figures
are plain JSON written here, so a rebuild is byte for byte (no build time, no random ids, sorted
keys). Bokeh's inline output draws random element ids, and Vega-Lite's three bundles would have to
be vendored from npm. The style (colour, marker, line) of every method is :mod:`protocols.style`'s,
the same as the PNGs'. :func:`build_site` is called by ``python -m protocols.report``.

Records are untrusted input (they come back from cluster workers and other people's folders): the
pages are Jinja2 templates (``site_templates/``) with autoescape, and the page data is JSON in which
no string can close its ``<script>`` (:func:`script_json`). The build owns only the files it wrote,
listed in the folder's manifest (:func:`owned_files`): it refuses a folder holding anything else.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

from common.files import atomic_write_text, strict_json
from protocols.site_folder import owned_files, write_manifest
from protocols.style import FAMILIES, column_style, index_style

PROG = "python -m protocols.site"
ASSETS = Path(__file__).resolve().parent / "site_assets"
#: the pages' Jinja2 templates (autoescaped: every value reaching a page is escaped by construction)
TEMPLATES = Path(__file__).resolve().parent / "site_templates"
#: the list of files a build wrote, kept in the site folder: a build removes stale files of its own only
#: metrics of a MAP record shown in Table I's companions: (field, heading)
METRICS = (("map", "MAP@K"), ("map_tie_aware", "tie-aware MAP@K"), ("map_all", "MAP@all"),
           ("p_r2", "P (Hamming radius 2)"), ("train_s", "train (s)"))
#: record fields too bulky for the pop-up (the full record is on the records page)
BULKY = ("p_at_n", "pr_curve")
#: no mode bar (it sat over the titles); dragging zooms and a double click resets all the same
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


# -- reading -------------------------------------------------------------------------------------
def _records(folder: Path, required: tuple[str, ...]) -> list[tuple[str, dict]]:
    """``(record id, record)`` for every readable record in ``folder``; the id is the file's stem."""
    from protocols.records import read_record

    found = []
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is not None and all(k in record for k in required):
            found.append((path.stem, record))
    return found


def _num(value):
    """A finite float rounded for the page (6 significant digits), else None."""
    if value is None or isinstance(value, bool):
        return value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{value:.6g}") if math.isfinite(value) else None


def _fmt(value, digits=4) -> str:
    value = _num(value)
    return "–" if value is None else f"{value:.{digits}f}"


def _mean_sd(values):
    values = [v for v in (_num(v) for v in values) if v is not None]
    if not values:
        return None, None, 0
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None), len(values)


def _train_seed(record) -> int:
    return int(record.get("train_seed", record.get("seed", 0)))


def _machine(record) -> str:
    machine = record.get("machine") or {}
    cpu = machine.get("cpu", record.get("cpu", "?"))
    cores = machine.get("cores", record.get("cores", "?"))
    device = (record.get("fit_info") or {}).get("device") if isinstance(record.get("fit_info"), dict) else None
    return f"{cpu} ({cores} cores)" + (f", {device}" if device and device != "cpu" else "")


def _commit(record) -> str:
    git = record.get("git") or {}
    commit = git.get("commit", record.get("git_commit")) or "?"
    return str(commit)[:10] + ("+dirty" if git.get("dirty") else "")


# -- HTML ----------------------------------------------------------------------------------------
class Part(NamedTuple):
    """A piece of a table cell, drawn by ``part`` in ``site_templates/macros.html``: ``text``, ``swatch``
    (``text`` is the colour), ``link`` (to ``href``), ``record-link`` (``text`` is the record id), ``small``,
    ``code``, ``stale`` (the * of a record stored with other parameters) or ``details`` (a record's JSON)."""
    kind: str
    text: str = ""
    href: str = ""


class Cell(NamedTuple):
    """A table cell: its parts, its sort key (``data-sort``) and the records behind it (``data-records``)."""
    parts: tuple
    sort: object = None
    records: tuple = ()
    cls: str = ""


class Row(NamedTuple):
    cells: list
    id: str = ""


def _cell(*parts, sort=None, records=(), cls: str = "") -> Cell:
    """A cell of ``parts`` (a plain value is text)."""
    parts = tuple(p if isinstance(p, Part) else Part("text", str(p)) for p in parts)
    if records:
        cls = (cls + " num-link").strip()
    return Cell(parts, sort, tuple(records), cls)


def _swatch(style) -> Part:
    return Part("swatch", style.colour)


def _link(href: str, text) -> Part:
    return Part("link", str(text), href)


def script_json(value) -> str:
    """``value`` as deterministic JSON (sorted keys, strict) that no string in it can end: ``<``, ``>``
    and ``&`` are written as ``\\u003c``, ``\\u003e`` and ``\\u0026``, so neither ``</script>`` nor
    ``<!--`` can appear inside the ``<script id="page-data">`` block. Returns markup for the templates."""
    from markupsafe import Markup

    text = json.dumps(strict_json(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _plot_text(text) -> str:
    """``text`` for a plotly label or tooltip: plotly reads ``<b>``, ``<br>``, ``<a>`` and entities in
    them, so a value from a record has ``&``, ``<`` and ``>`` escaped to show as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["script_json"] = script_json
    return environment


class Page(NamedTuple):
    """A page before rendering: its title, its template, the template's values, and ``data`` (the plots
    and record pop-ups site.js reads from ``<script id="page-data">``)."""
    title: str
    template: str
    values: dict
    data: dict


def render_page(page: Page, nav: list[tuple[str, str]], environment=None) -> str:
    """The HTML of ``page`` with the navigation ``nav`` (``(href, label)`` pairs)."""
    environment = environment or _environment()
    return environment.get_template(page.template).render(title=page.title, nav=nav, page_data=page.data,
                                                          **page.values)


def _plot(plot_id: str, traces: list, layout: dict) -> dict:
    base = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest", "height": 420,
            "legend": {"font": {"size": 11}}, "template": None}
    layout = {**base, **layout}
    layout["title"] = {**layout.get("title", {}), "x": 0.01, "xanchor": "left"}
    return {"id": plot_id, "data": traces, "layout": layout, "config": PLOT_CONFIG}


# -- MAP pages -----------------------------------------------------------------------------------
def _column_order(columns: list[tuple[str, str, bool]]) -> list[str]:
    """Column labels in the paper's Table I order, then other methods by name; a method's default
    search before its others."""
    from protocols.paper import paper_table1

    published = list(dict.fromkeys(paper_table1()["method"]))
    key = {label: (published.index(m) if m in published else len(published), m, not default, label)
           for label, m, default in columns}
    return sorted(key, key=key.get)


def _summary(record_id: str, record: dict, page: str) -> dict:
    """What a pop-up shows of a record: everything but the curves, and where the full record is."""
    summary = {k: v for k, v in record.items() if k not in BULKY}
    return {"href": f"{page}#r-{record_id}", "fields": summary}


def _map_view(records: list[tuple[str, dict]]):
    """Table I's records: :func:`protocols.tables.table_view`'s seed and K, as in ``map/<dataset>.md``."""
    import pandas as pd

    from protocols.tables import table_view

    frame = pd.DataFrame([{"seed": r["seed"], "topk": r["topk"]} for _, r in records])
    seed, topk = table_view(frame)
    return seed, topk, [(i, r) for i, r in records if r["seed"] == seed and int(r["topk"]) == topk]


def stale(record: dict) -> bool:
    """Whether a default-variant ``record`` was stored with parameters that differ from its method's
    defaults today (a variant differs on purpose)."""
    from protocols.runner import changed_params

    return not record.get("variant") and bool(changed_params(record))


def map_page(out: Path, dataset: str) -> Page | None:
    """``map-<dataset>.html`` (``site_templates/map.html``), or None when no record is stored."""
    from protocols.paper import paper_table1
    from protocols.runner import runs_folder
    from protocols.tables import column_label

    records = _records(runs_folder(out, dataset), ("dataset", "method", "bits", "search", "map", "seed", "topk"))
    if not records:
        return None
    seed, topk, view = _map_view(records)
    records_page = f"records-{dataset}.html"
    groups: dict[tuple[str, int], list[tuple[str, dict]]] = {}
    columns = {}
    for record_id, record in view:
        label = column_label(record)
        columns[label] = (label, record["method"], bool(record.get("default_search", True))
                          and not record.get("variant"))
        groups.setdefault((label, int(record["bits"])), []).append((record_id, record))
    order = _column_order(list(columns.values()))
    bits = sorted({b for _, b in groups})
    n_db = max(int(r.get("n_db", 0)) for _, r in view)
    k_text = "all" if topk >= n_db else str(topk)
    paper = paper_table1()
    paper = paper[paper["dataset"] == dataset]
    published = {(m, int(b)): float(v) for m, b, v in zip(paper["method"], paper["bits"], paper["map"])}

    def stats(label, b, field):
        members = groups.get((label, b), [])
        mean, sd, n = _mean_sd(r.get(field) for _, r in members)
        return mean, sd, n, [i for i, _ in sorted(members, key=lambda m: (_train_seed(m[1]), m[0]))]

    # Table I: methods as rows, code lengths as columns (the paper's layout), the paper's figure beside
    headers = ["method", "family"]
    for b in bits:
        headers.append(f"{b} bits")
        if published:
            headers.append(f"{b} bits: paper")
    rows, any_stale = [], False
    for label in order:
        style = column_style(label)
        cells = [_cell(_swatch(style), label, sort=label), _cell(FAMILIES[style.family][2])]
        for b in bits:
            mean, sd, n, ids = stats(label, b, "map")
            parts = ["–"] if mean is None else [f"{mean:.4f}"]
            if mean is not None and sd is not None:
                parts = [f"{mean:.4f} ± {sd:.4f} ", Part("small", f"({n})")]
            if any(stale(r) for _, r in groups.get((label, b), [])):
                parts.append(Part("stale"))
                any_stale = True
            cells.append(_cell(*parts, sort="" if mean is None else f"{mean:.6f}", records=ids))
            if published:
                theirs = published.get((columns[label][1], b)) if columns[label][2] else None
                cells.append(_cell(_fmt(theirs), sort="" if theirs is None else f"{theirs:.6f}", cls="paper"))
        rows.append(Row(cells))

    # every metric per (column, bits)
    metric_rows = []
    for label in order:
        for b in bits:
            if (label, b) not in groups:
                continue
            cells = [_cell(_swatch(column_style(label)), label, sort=label), _cell(b, sort=b)]
            for field, _ in METRICS:
                mean, sd, n, ids = stats(label, b, field)
                digits = 1 if field == "train_s" else 4
                text = "–" if mean is None else f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None
                                                                        else "")
                cells.append(_cell(text, sort="" if mean is None else f"{mean:.6f}", records=ids))
            n_seeds = len(groups[(label, b)])
            cells.append(_cell(n_seeds, sort=n_seeds, records=[i for i, _ in groups[(label, b)]]))
            metric_rows.append(Row(cells))

    plots = [_bits_plot("plot-map", order, bits, stats, "map", f"MAP@{k_text}", published, columns),
             _bits_plot("plot-pr2", order, bits, stats, "p_r2", "precision within Hamming radius 2", {}, columns)]
    for b in bits:
        plots.append(_curve_plot(f"plot-pn-{b}", order, groups, b, "pn"))
        plots.append(_curve_plot(f"plot-prc-{b}", order, groups, b, "prc"))

    first = view[0][1]
    values = {
        "dataset": dataset, "records_page": records_page, "k_text": k_text, "seed": seed, "bits": bits,
        "splits": sorted({str(r.get("split_sha256", ""))[:12] for _, r in view}),
        "n_query": first.get("n_query", "?"), "n_db": first.get("n_db", "?"), "n_train": first.get("n_train", "?"),
        "train_seeds": sorted({_train_seed(r) for _, r in view}), "n_records": len(view),
        "machines": sorted({_machine(r) for _, r in view}), "others": len(records) - len(view),
        "published": bool(published), "any_stale": any_stale,
        "table1_headers": headers, "table1_rows": rows,
        "metrics_headers": ["method", "bits"] + [h for _, h in METRICS] + ["seeds"], "metrics_rows": metric_rows,
    }
    summaries = {i: _summary(i, r, records_page) for i, r in view}
    return Page(f"{dataset}: Table I", "map.html", values, {"plots": plots, "records": summaries})


def _bits_plot(plot_id, order, bits, stats, field, title, published, columns) -> dict:
    traces = []
    for label in order:
        xs, ys, errs, ids, texts = [], [], [], [], []
        for b in bits:
            mean, sd, n, members = stats(label, b, field)
            if mean is None:
                continue
            xs.append(b)
            ys.append(_num(mean))
            errs.append(_num(sd) or 0.0)
            ids.append(members)
            texts.append(f"{_plot_text(label)}, {b} bits<br>{title}: {mean:.4f}"
                         + (f" ± {sd:.4f}" if sd is not None else "") + f"<br>{n} training seed" + "s" * (n != 1))
        if not xs:
            continue
        traces.append({"type": "scatter", "mode": "lines+markers", "name": _plot_text(label), "x": xs, "y": ys,
                       "error_y": {"type": "data", "array": errs, "visible": True, "thickness": 1.2, "width": 4},
                       "customdata": ids, "text": texts, "hovertemplate": "%{text}<extra></extra>",
                       **column_style(label).plotly()})
        method, default = columns[label][1], columns[label][2]
        theirs = [(b, published[(method, b)]) for b in bits if default and (method, b) in published]
        if theirs:
            style = column_style(label).plotly()
            style["line"]["dash"] = "dot"
            style["marker"]["symbol"] += "-open" if not style["marker"]["symbol"].endswith("-open") else ""
            # the label goes in as meta, not into the hovertemplate, where plotly would read a "%{...}" in it
            traces.append({"type": "scatter", "mode": "lines+markers", "name": _plot_text(f"{label} (paper)"),
                           "x": [b for b, _ in theirs], "y": [v for _, v in theirs],
                           "meta": _plot_text(f"{label} (paper)"),
                           "hovertemplate": "%{meta}, %{x} bits: %{y:.4f}<extra></extra>", **style})
    return _plot(plot_id, traces, {"title": {"text": f"{title} against code length"},
                                   "xaxis": {"title": {"text": "code length (bits)"}, "tickvals": bits},
                                   "yaxis": {"title": {"text": title}}})


def _curve_plot(plot_id, order, groups, b, kind) -> dict:
    """P@N (``pn``) or precision-recall (``prc``) at ``b`` bits: one line per column, the mean of each
    point over its training seeds."""
    traces = []
    for label in order:
        members = groups.get((label, b), [])
        ids = [i for i, _ in members]
        if kind == "pn":
            curves = [r.get("p_at_n") for _, r in members if isinstance(r.get("p_at_n"), dict)]
            if not curves:
                continue
            ns = sorted({int(n) for c in curves for n in c})
            xs = ns
            ys = [_num(_mean_sd(c.get(str(n)) for c in curves)[0]) for n in ns]
            hover = "%{meta}<br>P@%{x}: %{y:.4f}<extra></extra>"
        else:
            curves = [r.get("pr_curve") for _, r in members if isinstance(r.get("pr_curve"), dict)]
            if not curves:
                continue
            length = min(len(c["precision"]) for c in curves)
            xs = [_num(_mean_sd(c["recall"][j] for c in curves)[0]) for j in range(length)]
            ys = [_num(_mean_sd(c["precision"][j] for c in curves)[0]) for j in range(length)]
            radius = curves[0].get("radius", list(range(length)))[:length]
            hover = "%{meta}<br>recall %{x:.4f}, precision %{y:.4f}<br>Hamming radius %{text}<extra></extra>"
        trace = {"type": "scatter", "mode": "lines+markers", "name": _plot_text(label), "x": xs, "y": ys,
                 "customdata": [ids] * len(xs), "meta": _plot_text(label), "hovertemplate": hover,
                 **column_style(label).plotly()}
        trace["marker"]["size"] = 6
        if kind == "prc":
            trace["text"] = [_plot_text(r) for r in radius]
        traces.append(trace)
    if kind == "pn":
        layout = {"title": {"text": f"precision at N, {b} bits"}, "xaxis": {"title": {"text": "N (top N retrieved)"}},
                  "yaxis": {"title": {"text": "precision"}}}
    else:
        layout = {"title": {"text": f"precision-recall, {b} bits"}, "xaxis": {"title": {"text": "recall"}},
                  "yaxis": {"title": {"text": "precision"}}}
    return _plot(plot_id, traces, layout)


def records_page(out: Path, dataset: str) -> Page | None:
    """``records-<dataset>.html``: every MAP record of ``dataset``, each under the anchor ``r-<id>``."""
    from protocols.runner import runs_folder
    from protocols.tables import column_label

    records = _records(runs_folder(out, dataset), ("dataset", "method", "bits", "search", "map", "seed", "topk"))
    if not records:
        return None
    rows = []
    for record_id, r in records:
        label = column_label(r)
        cells = [
            _cell(_link(f"#r-{record_id}", record_id), sort=record_id),
            _cell(_swatch(column_style(label)), label, sort=label),
            _cell(r["bits"], sort=r["bits"]), _cell(r["seed"], sort=r["seed"]),
            _cell(_train_seed(r), sort=_train_seed(r)), _cell(r["topk"], sort=r["topk"]),
            *(_cell(_fmt(r.get(f)), sort=_num(r.get(f)) if _num(r.get(f)) is not None else "")
              for f in ("map", "map_tie_aware", "map_all", "p_r2")),
            _cell(str(r.get("split_sha256", ""))[:12]),
            _cell(_machine(r)), _cell(Part("code", _commit(r))), _cell(r.get("timestamp", "")),
            _cell(Part("details", json.dumps(r, indent=1, sort_keys=True))),
        ]
        rows.append(Row(cells, f"r-{record_id}"))
    headers = ["record", "method", "bits", "split seed", "training seed", "K", "MAP@K", "tie-aware MAP@K", "MAP@all",
               "P (radius 2)", "split sha256", "machine", "commit", "time (UTC)", "full record"]
    values = {"dataset": dataset, "n_records": len(records), "headers": headers, "rows": rows}
    return Page(f"{dataset}: records", "records.html", values, {"plots": [], "records": {}})


# -- Table II ------------------------------------------------------------------------------------
def _index_label(record) -> str:
    params = record.get("params")
    return record["index"] + (f" ({params})" if isinstance(params, str) and params else "")


def efficiency_page(out: Path, dataset: str) -> Page | None:
    """``efficiency-<dataset>.html``: Table II's plots and every index setting's record."""
    import pandas as pd

    from protocols import efficiency_report as eff

    records = _records(eff.runs_folder(out, dataset), ("index", "db_size", "ms_per_query"))
    if not records:
        return None
    frame = pd.DataFrame([dict(r, record_id=i, params=r.get("params") or "") for i, r in records])
    frame = frame.sort_values(["db_size", "order"] if "order" in frame else ["db_size"], kind="stable")
    for column in ("recall", "map", "map_tie_aware", "threads", "threads_all", "ms_per_query_single"):
        if column not in frame:
            frame[column] = float("nan")
    topk = int(frame["topk"].iloc[0])
    sizes = sorted(frame["db_size"].unique(), reverse=True)
    plots, sections = [], []
    for size in sizes:
        points = eff.speed_points(frame, size)
        plot_ids = []
        for accuracy, label in eff.SPEED_ACCURACY:
            plot_id = f"plot-{accuracy}-{int(size)}"
            plots.append(_speed_plot(plot_id, points, accuracy, label.format(k=topk), int(size), eff.pareto_front))
            plot_ids.append(plot_id)
        sections.append((f"{int(size):,}", plot_ids))
    scaling = []
    for name, label, group in eff.scaling_series(frame):
        texts = [f"<b>{_plot_text(_index_label(r))}</b><br>{int(r['db_size']):,} codes: "
                 f"{r['ms_per_query']:.4f} ms/query<br>recall {_fmt(r['recall'], 3)}<br>threads {_threads(r)}"
                 for r in group.to_dict("records")]
        scaling.append({"type": "scatter", "mode": "lines+markers", "name": _plot_text(label),
                        "x": [int(v) for v in group["db_size"]], "y": [_num(v) for v in group["ms_per_query"]],
                        "text": texts, "customdata": [[i] for i in group["record_id"]],
                        "hovertemplate": "%{text}<extra></extra>", **index_style(name).plotly()})
    plots.append(_plot("plot-scaling", scaling, {
        "title": {"text": "search time against database size"},
        "xaxis": {"title": {"text": "database size (codes)"}, "type": "log"},
        "yaxis": {"title": {"text": "ms per query (batched, 1 thread)"}, "type": "log"}}))

    rows = []
    for r in frame.to_dict("records"):
        rid = r["record_id"]
        cells = [
            _cell(_swatch(index_style(r["index"])), r["index"], sort=r["index"]),
            _cell(r["params"], sort=r["params"]),
            _cell(r.get("method", ""), sort=r.get("method", "")),
            _cell(r.get("code_bits", "")), _cell(f"{int(r['db_size']):,}", sort=int(r["db_size"])),
            *(_cell(_fmt(r.get(f), d), sort="" if _num(r.get(f)) is None else _num(r.get(f)), records=[rid])
              for f, d in (("ms_per_query", 4), ("ms_per_query_single", 4), ("recall", 3), ("map", 4),
                           ("map_tie_aware", 4))),
            _cell(f"{int(r['index_bytes']):,}" if _num(r.get("index_bytes")) is not None else "–",
                  sort=_num(r.get("index_bytes")) or ""),
            _cell(_fmt(r.get("build_s"), 2), sort=_num(r.get("build_s")) or ""),
            _cell(_threads(r)),
            _cell(Part("record-link", rid, f"#e-{rid}")),
        ]
        rows.append(Row(cells, f"e-{rid}"))
    paper = eff.paper_table2()
    first = records[0][1]
    values = {
        "topk": topk, "timing_queries": int(first.get("timing_queries", 0)) or "?",
        "repeats": first.get("repeats", "?"), "n_query": first.get("n_query", "?"),
        "sizes": [f"{int(s):,}" for s in sorted(sizes)], "machines": sorted({_machine(r) for _, r in records}),
        "sections": sections, "rows": rows,
        "headers": ["index", "setting", "codes of", "code bits", "database", "ms/query", "single query (ms)",
                    "recall", "MAP@K", "tie-aware MAP@K", "index bytes", "build (s)", "threads", "record"],
        "paper_rows": list(zip(paper["method"], paper["code_bits"], paper["search_ms_per_query"],
                               paper["memory_mb"])),
    }
    page = f"efficiency-{dataset}.html"
    summaries = {i: {"href": f"{page}#e-{i}", "fields": r} for i, r in records}
    return Page(f"{dataset}: Table II (search time and memory)", "efficiency.html", values,
                {"plots": plots, "records": summaries})


def _threads(row) -> str:
    threads, all_threads = _num(row.get("threads")), _num(row.get("threads_all"))
    text = "?" if threads is None else str(int(threads))
    return text + ("" if all_threads is None else f" (all cores: {int(all_threads)})")


def _speed_plot(plot_id, points, accuracy, label, size, pareto_front) -> dict:
    traces = []
    for name, group in points.groupby("index", sort=False):
        group = group[group[accuracy].notna()]  # in the grid's order: the swept parameter rising
        if not len(group):
            continue
        texts = [f"<b>{_plot_text(_index_label(r))}</b><br>{r['ms_per_query']:.4f} ms/query<br>{label}: "
                 f"{_fmt(r[accuracy], 4)}<br>threads {_threads(r)}<br>database {size:,} codes"
                 for r in group.to_dict("records")]
        traces.append({"type": "scatter", "mode": "lines+markers" if len(group) > 1 else "markers",
                       "name": _plot_text(name),
                       "x": [_num(v) for v in group["ms_per_query"]], "y": [_num(v) for v in group[accuracy]],
                       "text": texts, "customdata": [[i] for i in group["record_id"]],
                       "hovertemplate": "%{text}<extra></extra>", **index_style(name).plotly()})
    front = points[pareto_front(points, "ms_per_query", accuracy)].sort_values("ms_per_query", kind="stable")
    if len(front):
        traces.insert(0, {"type": "scatter", "mode": "lines", "name": "Pareto front", "line": {
            "shape": "hv", "color": "rgba(68,68,68,0.25)", "width": 10}, "hoverinfo": "skip",
            "x": [_num(v) for v in front["ms_per_query"]], "y": [_num(v) for v in front[accuracy]]})
    return _plot(plot_id, traces, {"title": {"text": f"{label} against speed, {size:,} codes"},
                                   "xaxis": {"title": {"text": "ms per query (batched, 1 thread)"}, "type": "log"},
                                   "yaxis": {"title": {"text": label}}})


# -- index ---------------------------------------------------------------------------------------
def index_page(out: Path, map_sets: list[str], efficiency_sets: list[str]) -> Page:
    """``index.html``: the datasets, what ran, where and when."""
    from protocols.efficiency_report import runs_folder as efficiency_runs
    from protocols.runner import runs_folder

    map_rows = []
    for dataset in map_sets:
        records = [r for _, r in _records(runs_folder(out, dataset), ("method", "bits", "search", "map"))]
        stamps = sorted(str(r.get("timestamp", "")) for r in records if r.get("timestamp"))
        methods = sorted({r["method"] for r in records})
        swatches = [part for i, m in enumerate(methods) for part in [" "] * (i > 0) + [_swatch(column_style(m)), m]]
        map_rows.append(Row([
            _cell(_link(f"map-{dataset}.html", dataset), sort=dataset),
            _cell(*swatches, sort=len(methods)),
            _cell(", ".join(str(b) for b in sorted({int(r["bits"]) for r in records}))),
            _cell(", ".join(str(s) for s in sorted({_train_seed(r) for r in records}))),
            _cell(", ".join(sorted({f"top{r['topk']}" for r in records if 'topk' in r}))),
            _cell(_link(f"records-{dataset}.html", len(records)), sort=len(records)),
            _cell("; ".join(sorted({_machine(r) for r in records}))),
            _cell(f"{stamps[0]} to {stamps[-1]}" if stamps else "?", sort=stamps[-1] if stamps else ""),
        ]))
    efficiency_rows = []
    for dataset in efficiency_sets:
        records = [r for _, r in _records(efficiency_runs(out, dataset), ("index", "db_size", "ms_per_query"))]
        stamps = sorted(str(r.get("timestamp", "")) for r in records if r.get("timestamp"))
        efficiency_rows.append(Row([
            _cell(_link(f"efficiency-{dataset}.html", dataset), sort=dataset),
            _cell(", ".join(sorted({r["index"] for r in records}))),
            _cell(", ".join(f"{s:,}" for s in sorted({int(r["db_size"]) for r in records}))),
            _cell(len(records), sort=len(records)),
            _cell("; ".join(sorted({_machine(r) for r in records}))),
            _cell(f"{stamps[0]} to {stamps[-1]}" if stamps else "?"),
        ]))
    values = {"map_rows": map_rows, "efficiency_rows": efficiency_rows,
              "line_styles": [(description, _svg_dash(dash)) for _, dash, description in FAMILIES.values()]}
    return Page("hashbench results", "index.html", values, {"plots": [], "records": {}})


def _svg_dash(dash: str) -> str:
    return {"solid": "none", "dash": "8 4", "dot": "2 3", "dashdot": "8 3 2 3", "longdash": "14 4",
            "longdashdot": "14 4 3 4"}.get(dash, "none")


# -- the site ------------------------------------------------------------------------------------
def build_site(out="results", site=None) -> list[Path]:
    """Write the site for the records under ``out`` into ``site`` (default ``<out>/site``) and return
    the files written. The build owns only what it wrote: it refuses (:func:`owned_files`) a folder
    holding anything else, and removes the files an earlier build wrote that this one did not."""
    out = Path(out)
    site = Path(site) if site is not None else out / "site"
    owned = owned_files(site)  # first: a folder that is not the site's is refused before any work

    import plotly.offline

    from protocols.efficiency_report import runs_folder as efficiency_runs

    map_root, efficiency_root = out / "map" / "runs", efficiency_runs(out, "x").parent
    map_sets = sorted(p.name for p in map_root.iterdir() if p.is_dir()) if map_root.is_dir() else []
    efficiency_sets = (sorted(p.name for p in efficiency_root.iterdir() if p.is_dir())
                       if efficiency_root.is_dir() else [])
    pages = {}
    for dataset in map_sets:
        for prefix, make in (("map", map_page), ("records", records_page)):
            page = make(out, dataset)
            if page is not None:
                pages[f"{prefix}-{dataset}.html"] = page
    for dataset in efficiency_sets:
        page = efficiency_page(out, dataset)
        if page is not None:
            pages[f"efficiency-{dataset}.html"] = page
    map_sets = [d for d in map_sets if f"map-{d}.html" in pages]
    efficiency_sets = [d for d in efficiency_sets if f"efficiency-{d}.html" in pages]
    pages = {"index.html": index_page(out, map_sets, efficiency_sets), **pages}
    nav = [("index.html", "home")] + [(f"map-{d}.html", d) for d in map_sets] + \
          [(f"efficiency-{d}.html", f"Table II: {d}") for d in efficiency_sets]
    environment = _environment()
    texts = {"assets/plotly.min.js": plotly.offline.get_plotlyjs(),
             "assets/site.js": (ASSETS / "site.js").read_text(),
             "assets/site.css": (ASSETS / "site.css").read_text(),
             **{name: render_page(page, nav, environment) for name, page in pages.items()}}
    if set(texts) - owned:  # claimed before they are written, so a build cut short still owns them
        write_manifest(site, owned | set(texts))
    written = [atomic_write_text(site / name, text) for name, text in texts.items()]
    for name in sorted(owned - set(texts)):  # stale files of an earlier build's, never anything else
        path = site / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    return written + [write_manifest(site, texts)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder holding the raw records (default: results)")
    parser.add_argument("--site", default=None, help="folder the site is written to (default: <out>/site)")
    args = parser.parse_args(argv)
    from protocols.cli import run_command

    if not Path(args.out).is_dir():
        print(f"{PROG}: error: no results folder {args.out}; run python -m protocols.map first", file=sys.stderr)
        return 1

    def build():
        written = build_site(args.out, args.site)
        print(f"{PROG}: {len(written)} files in {Path(written[-1]).parent}; open index.html in a browser")
        return 0

    return run_command(PROG, build)


if __name__ == "__main__":
    sys.exit(main())
