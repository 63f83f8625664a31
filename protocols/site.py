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
"""
from __future__ import annotations

import argparse
import html
import json
import math
import statistics
import sys
from pathlib import Path

from common.files import atomic_write_text, strict_json
from protocols.style import FAMILIES, column_style, index_style

PROG = "python -m protocols.site"
ASSETS = Path(__file__).resolve().parent / "site_assets"
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
def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _json(value) -> str:
    """Deterministic JSON, safe inside a ``<script>`` element."""
    return json.dumps(strict_json(value), sort_keys=True, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _page(title: str, body: str, data: dict, nav: list[tuple[str, str]]) -> str:
    links = " ".join(f'<a href="{_e(href)}">{_e(label)}</a>' for href, label in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_e(title)} · hashbench</title>\n"
        '<link rel="icon" href="data:,">\n<link rel="stylesheet" href="assets/site.css">\n'
        '<script src="assets/plotly.min.js"></script>\n<script src="assets/site.js"></script>\n'
        f"</head>\n<body>\n<nav>{links}</nav>\n<main>\n<h1>{_e(title)}</h1>\n{body}\n</main>\n"
        f'<script type="application/json" id="page-data">{_json(data)}</script>\n</body>\n</html>\n')


def _table(table_id: str, headers: list[str], rows: list[str], caption: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="scroll"><table id="{table_id}" class="sortable">{cap}<thead><tr>{head}</tr></thead>\n'
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _cell(text: str, sort=None, records=(), cls: str = "") -> str:
    attrs = ""
    if sort is not None:
        attrs += f' data-sort="{_e(sort)}"'
    if records:
        attrs += f' data-records="{_e(" ".join(records))}" tabindex="0"'
        cls = (cls + " num-link").strip()
    if cls:
        attrs += f' class="{cls}"'
    return f"<td{attrs}>{text}</td>"


def _swatch(style) -> str:
    return f'<span class="swatch" style="background:{style.colour}"></span>'


def _plot(plot_id: str, traces: list, layout: dict) -> dict:
    base = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest", "height": 420,
            "legend": {"font": {"size": 11}}, "template": None}
    layout = {**base, **layout}
    layout["title"] = {**layout.get("title", {}), "x": 0.01, "xanchor": "left"}
    return {"id": plot_id, "data": traces, "layout": layout, "config": PLOT_CONFIG}


def _plot_div(plot_id: str, cls: str = "plot") -> str:
    return f'<div id="{plot_id}" class="{cls}"></div>'


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


def map_page(out: Path, dataset: str) -> tuple[str, str, dict] | None:
    """``(title, body, data)`` of ``map-<dataset>.html``, or None when no record is stored."""
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
        cells = [_cell(f"{_swatch(style)}{_e(label)}", sort=label), _cell(_e(FAMILIES[style.family][2]))]
        for b in bits:
            mean, sd, n, ids = stats(label, b, "map")
            text = "–" if mean is None else f"{mean:.4f}" + (f" ± {sd:.4f} <small>({n})</small>" if sd is not None
                                                             else "")
            if any(stale(r) for _, r in groups.get((label, b), [])):
                text += '<sup title="stored with parameters that differ from today\'s defaults">*</sup>'
                any_stale = True
            cells.append(_cell(text, sort="" if mean is None else f"{mean:.6f}", records=ids))
            if published:
                theirs = published.get((columns[label][1], b)) if columns[label][2] else None
                cells.append(_cell(_fmt(theirs), sort="" if theirs is None else f"{theirs:.6f}", cls="paper"))
        rows.append(f'<tr>{"".join(cells)}</tr>')
    table1 = _table("table1", headers, rows) + (
        "<p>* stored with parameters that differ from today's defaults (e.g. before CNNH's stage 1 ran to "
        "convergence); <code>python -m protocols.paper</code> runs it again.</p>" if any_stale else "")

    # every metric per (column, bits)
    metric_rows = []
    for label in order:
        for b in bits:
            if (label, b) not in groups:
                continue
            cells = [_cell(f"{_swatch(column_style(label))}{_e(label)}", sort=label), _cell(str(b), sort=b)]
            for field, _ in METRICS:
                mean, sd, n, ids = stats(label, b, field)
                digits = 1 if field == "train_s" else 4
                text = "–" if mean is None else f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None
                                                                        else "")
                cells.append(_cell(text, sort="" if mean is None else f"{mean:.6f}", records=ids))
            n_seeds = len(groups[(label, b)])
            cells.append(_cell(str(n_seeds), sort=n_seeds, records=[i for i, _ in groups[(label, b)]]))
            metric_rows.append(f'<tr>{"".join(cells)}</tr>')
    metrics = _table("metrics", ["method", "bits"] + [h for _, h in METRICS] + ["seeds"], metric_rows)

    plots = [_bits_plot("plot-map", order, bits, stats, "map", f"MAP@{k_text}", published, columns),
             _bits_plot("plot-pr2", order, bits, stats, "p_r2", "precision within Hamming radius 2", {}, columns)]
    curve_divs = []
    for b in bits:
        plots.append(_curve_plot(f"plot-pn-{b}", order, groups, b, "pn"))
        plots.append(_curve_plot(f"plot-prc-{b}", order, groups, b, "prc"))
        curve_divs.append(f'<h3>{b} bits</h3><div class="pair">{_plot_div(f"plot-pn-{b}")}'
                          f'{_plot_div(f"plot-prc-{b}")}</div>')

    train_seeds = sorted({_train_seed(r) for _, r in view})
    splits = sorted({str(r.get("split_sha256", ""))[:12] for _, r in view})
    machines = sorted({_machine(r) for _, r in view})
    first = view[0][1]
    others = len(records) - len(view)
    intro = (f"<p>MAP@{_e(k_text)}, split seed {seed} (split sha256 {_e(', '.join(splits))}), "
             f"{first.get('n_query', '?')} queries against {first.get('n_db', '?')} database items, "
             f"{first.get('n_train', '?')} training items; training seeds {_e(', '.join(map(str, train_seeds)))}; "
             f"{len(view)} records; machines: {_e('; '.join(machines))}. A cell reads mean ± sd (n training seeds). "
             "Click any number or plot point for the records it comes from; click a column heading to sort."
             + (f" {others} records of other split seeds or K are on the <a href=\"{records_page}\">records "
                "page</a>." if others else "")
             + ("" if published else " The paper has no figures for this dataset.") + "</p>")
    body = "\n".join([
        intro,
        f"<h2>Table I: MAP@{_e(k_text)}</h2>", table1,
        f'<div class="pair">{_plot_div("plot-map")}{_plot_div("plot-pr2")}</div>',
        "<h2>Every metric</h2>", metrics,
        "<h2>Precision at N and precision-recall (Hamming radius 0 to the code length)</h2>",
        "<p>Mean over the training seeds of each curve point.</p>",
        *curve_divs,
        f'<p><a href="{records_page}">Every record of {_e(dataset)}</a></p>',
    ])
    summaries = {i: _summary(i, r, records_page) for i, r in view}
    return f"{dataset}: Table I", body, {"plots": plots, "records": summaries}


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
            texts.append(f"{label}, {b} bits<br>{title}: {mean:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")
                         + f"<br>{n} training seed" + ("s" if n != 1 else ""))
        if not xs:
            continue
        traces.append({"type": "scatter", "mode": "lines+markers", "name": label, "x": xs, "y": ys,
                       "error_y": {"type": "data", "array": errs, "visible": True, "thickness": 1.2, "width": 4},
                       "customdata": ids, "text": texts, "hovertemplate": "%{text}<extra></extra>",
                       **column_style(label).plotly()})
        method, default = columns[label][1], columns[label][2]
        theirs = [(b, published[(method, b)]) for b in bits if default and (method, b) in published]
        if theirs:
            style = column_style(label).plotly()
            style["line"]["dash"] = "dot"
            style["marker"]["symbol"] += "-open" if not style["marker"]["symbol"].endswith("-open") else ""
            traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{label} (paper)",
                           "x": [b for b, _ in theirs], "y": [v for _, v in theirs],
                           "hovertemplate": f"{label} (paper), %{{x}} bits: %{{y:.4f}}<extra></extra>", **style})
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
            hover = f"{label}<br>P@%{{x}}: %{{y:.4f}}<extra></extra>"
        else:
            curves = [r.get("pr_curve") for _, r in members if isinstance(r.get("pr_curve"), dict)]
            if not curves:
                continue
            length = min(len(c["precision"]) for c in curves)
            xs = [_num(_mean_sd(c["recall"][j] for c in curves)[0]) for j in range(length)]
            ys = [_num(_mean_sd(c["precision"][j] for c in curves)[0]) for j in range(length)]
            radius = curves[0].get("radius", list(range(length)))[:length]
            hover = f"{label}<br>recall %{{x:.4f}}, precision %{{y:.4f}}<br>Hamming radius %{{text}}<extra></extra>"
        trace = {"type": "scatter", "mode": "lines+markers", "name": label, "x": xs, "y": ys,
                 "customdata": [ids] * len(xs), "hovertemplate": hover, **column_style(label).plotly()}
        trace["marker"]["size"] = 6
        if kind == "prc":
            trace["text"] = [str(r) for r in radius]
        traces.append(trace)
    if kind == "pn":
        layout = {"title": {"text": f"precision at N, {b} bits"}, "xaxis": {"title": {"text": "N (top N retrieved)"}},
                  "yaxis": {"title": {"text": "precision"}}}
    else:
        layout = {"title": {"text": f"precision-recall, {b} bits"}, "xaxis": {"title": {"text": "recall"}},
                  "yaxis": {"title": {"text": "precision"}}}
    return _plot(plot_id, traces, layout)


def records_page(out: Path, dataset: str) -> tuple[str, str, dict] | None:
    """``records-<dataset>.html``: every MAP record of ``dataset``, each under the anchor ``r-<id>``."""
    from protocols.runner import runs_folder
    from protocols.tables import column_label

    records = _records(runs_folder(out, dataset), ("dataset", "method", "bits", "search", "map", "seed", "topk"))
    if not records:
        return None
    rows = []
    for record_id, r in records:
        cells = [
            _cell(f'<a href="#r-{_e(record_id)}">{_e(record_id)}</a>', sort=record_id),
            _cell(f"{_swatch(column_style(column_label(r)))}{_e(column_label(r))}", sort=column_label(r)),
            _cell(str(r["bits"]), sort=r["bits"]), _cell(str(r["seed"]), sort=r["seed"]),
            _cell(str(_train_seed(r)), sort=_train_seed(r)), _cell(str(r["topk"]), sort=r["topk"]),
            *(_cell(_fmt(r.get(f)), sort=_num(r.get(f)) if _num(r.get(f)) is not None else "")
              for f in ("map", "map_tie_aware", "map_all", "p_r2")),
            _cell(_e(str(r.get("split_sha256", ""))[:12])),
            _cell(_e(_machine(r))), _cell(f"<code>{_e(_commit(r))}</code>"), _cell(_e(r.get("timestamp", ""))),
            _cell(f"<details><summary>record</summary><pre>{_e(json.dumps(r, indent=1, sort_keys=True))}</pre>"
                  "</details>"),
        ]
        rows.append(f'<tr id="r-{_e(record_id)}">{"".join(cells)}</tr>')
    headers = ["record", "method", "bits", "split seed", "training seed", "K", "MAP@K", "tie-aware MAP@K", "MAP@all",
               "P (radius 2)", "split sha256", "machine", "commit", "time (UTC)", "full record"]
    body = (f"<p>Every stored MAP record of {_e(dataset)} (<code>map/runs/{_e(dataset)}/&lt;record&gt;.json</code>), "
            f"{len(records)} in all: parameters, seeds, split hash, versions, machine and commit under "
            f'"record". Table I: <a href="map-{_e(dataset)}.html">{_e(dataset)}</a>.</p>\n'
            + _table("records", headers, rows))
    return f"{dataset}: records", body, {"plots": [], "records": {}}


# -- Table II ------------------------------------------------------------------------------------
def _index_label(record) -> str:
    params = record.get("params")
    return record["index"] + (f" ({params})" if isinstance(params, str) and params else "")


def efficiency_page(out: Path, dataset: str) -> tuple[str, str, dict] | None:
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
        divs = []
        for accuracy, label in eff.SPEED_ACCURACY:
            plot_id = f"plot-{accuracy}-{int(size)}"
            plots.append(_speed_plot(plot_id, points, accuracy, label.format(k=topk), int(size), eff.pareto_front))
            divs.append(_plot_div(plot_id))
        sections.append(f"<h3>{int(size):,} codes</h3><div class=\"pair\">{''.join(divs)}</div>")
    scaling = []
    for name, label, group in eff.scaling_series(frame):
        texts = [f"<b>{_e(_index_label(r))}</b><br>{int(r['db_size']):,} codes: {r['ms_per_query']:.4f} ms/query"
                 f"<br>recall {_fmt(r['recall'], 3)}<br>threads {_threads(r)}" for r in group.to_dict("records")]
        scaling.append({"type": "scatter", "mode": "lines+markers", "name": label,
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
            _cell(f"{_swatch(index_style(r['index']))}{_e(r['index'])}", sort=r["index"]),
            _cell(_e(r["params"]), sort=r["params"]),
            _cell(_e(r.get("method", "")), sort=r.get("method", "")),
            _cell(_e(r.get("code_bits", ""))), _cell(f"{int(r['db_size']):,}", sort=int(r["db_size"])),
            *(_cell(_fmt(r.get(f), d), sort="" if _num(r.get(f)) is None else _num(r.get(f)), records=[rid])
              for f, d in (("ms_per_query", 4), ("ms_per_query_single", 4), ("recall", 3), ("map", 4),
                           ("map_tie_aware", 4))),
            _cell(f"{int(r['index_bytes']):,}" if _num(r.get("index_bytes")) is not None else "–",
                  sort=_num(r.get("index_bytes")) or ""),
            _cell(_fmt(r.get("build_s"), 2), sort=_num(r.get("build_s")) or ""),
            _cell(_threads(r)),
            _cell(f'<a href="#e-{_e(rid)}" data-records="{_e(rid)}">record</a>'),
        ]
        rows.append(f'<tr id="e-{_e(rid)}">{"".join(cells)}</tr>')
    table = _table("settings", ["index", "setting", "codes of", "code bits", "database", "ms/query",
                                "single query (ms)", "recall", "MAP@K", "tie-aware MAP@K", "index bytes",
                                "build (s)", "threads", "record"], rows)
    paper = eff.paper_table2()
    paper_rows = [f"<tr><td>{_e(m)}</td><td>{_e(b)}</td><td>{_e(t)}</td><td>{_e(mb)}</td></tr>"
                  for m, b, t, mb in zip(paper["method"], paper["code_bits"], paper["search_ms_per_query"],
                                         paper["memory_mb"])]
    first = records[0][1]
    machines = sorted({_machine(r) for _, r in records})
    intro = (f"<p>Top-{topk} per query, {int(first.get('timing_queries', 0)) or '?'} timing queries batched, "
             f"median of {first.get('repeats', '?')} repeats; accuracy over {first.get('n_query', '?')} queries. "
             f"Database sizes {_e(', '.join(f'{int(s):,}' for s in sorted(sizes)))}; machines: "
             f"{_e('; '.join(machines))}. One point per index setting; the grey band is the Pareto front (no "
             "setting both faster and more accurate). Hover a point for its setting, threads and database size; "
             "click it for its record.</p>")
    body = "\n".join([
        intro, "<h2>Speed against accuracy</h2>", *sections,
        "<h2>Scaling</h2>", "<p>For a sublinear index, the fastest setting keeping 95% recall at each size.</p>",
        _plot_div("plot-scaling"),
        "<h2>Every index setting</h2>", table,
        "<h2>The paper's Table II (ImageNet-100, their machine)</h2>",
        "<table><thead><tr><th>method</th><th>code bits</th><th>ms/query</th><th>memory (MB)</th></tr></thead>"
        "<tbody>" + "".join(paper_rows) + "</tbody></table>",
    ])
    page = f"efficiency-{dataset}.html"
    summaries = {i: {"href": f"{page}#e-{i}", "fields": r} for i, r in records}
    return f"{dataset}: Table II (search time and memory)", body, {"plots": plots, "records": summaries}


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
        texts = [f"<b>{_e(_index_label(r))}</b><br>{r['ms_per_query']:.4f} ms/query<br>{label}: "
                 f"{_fmt(r[accuracy], 4)}<br>threads {_threads(r)}<br>database {size:,} codes"
                 for r in group.to_dict("records")]
        traces.append({"type": "scatter", "mode": "lines+markers" if len(group) > 1 else "markers", "name": name,
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
def index_page(out: Path, map_sets: list[str], efficiency_sets: list[str]) -> tuple[str, str, dict]:
    from protocols.efficiency_report import runs_folder as efficiency_runs
    from protocols.runner import runs_folder

    rows = []
    for dataset in map_sets:
        records = [r for _, r in _records(runs_folder(out, dataset), ("method", "bits", "search", "map"))]
        stamps = sorted(str(r.get("timestamp", "")) for r in records if r.get("timestamp"))
        methods = sorted({r["method"] for r in records})
        cells = [
            _cell(f'<a href="map-{_e(dataset)}.html">{_e(dataset)}</a>', sort=dataset),
            _cell(" ".join(f"{_swatch(column_style(m))}{_e(m)}" for m in methods), sort=len(methods)),
            _cell(_e(", ".join(str(b) for b in sorted({int(r["bits"]) for r in records})))),
            _cell(_e(", ".join(str(s) for s in sorted({_train_seed(r) for r in records})))),
            _cell(_e(", ".join(sorted({f"top{r['topk']}" for r in records if 'topk' in r})))),
            _cell(f'<a href="records-{_e(dataset)}.html">{len(records)}</a>', sort=len(records)),
            _cell(_e("; ".join(sorted({_machine(r) for r in records})))),
            _cell(_e(f"{stamps[0]} to {stamps[-1]}" if stamps else "?"), sort=stamps[-1] if stamps else ""),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    map_table = _table("datasets", ["dataset", "methods", "bits", "training seeds", "K", "records", "machines",
                                    "when (UTC)"], rows)
    rows = []
    for dataset in efficiency_sets:
        records = [r for _, r in _records(efficiency_runs(out, dataset), ("index", "db_size", "ms_per_query"))]
        stamps = sorted(str(r.get("timestamp", "")) for r in records if r.get("timestamp"))
        cells = [
            _cell(f'<a href="efficiency-{_e(dataset)}.html">{_e(dataset)}</a>', sort=dataset),
            _cell(_e(", ".join(sorted({r["index"] for r in records})))),
            _cell(_e(", ".join(f"{s:,}" for s in sorted({int(r["db_size"]) for r in records})))),
            _cell(str(len(records)), sort=len(records)),
            _cell(_e("; ".join(sorted({_machine(r) for r in records})))),
            _cell(_e(f"{stamps[0]} to {stamps[-1]}" if stamps else "?")),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    efficiency_table = _table("efficiency", ["dataset", "indexes", "database sizes", "settings", "machines",
                                             "when (UTC)"], rows)
    legend = "".join(f"<li>{_e(desc)}: <svg width=\"40\" height=\"8\"><line x1=\"0\" y1=\"4\" x2=\"40\" y2=\"4\" "
                     f"stroke=\"#333\" stroke-width=\"2\" stroke-dasharray=\"{_svg_dash(dash)}\"/></svg></li>"
                     for _, dash, desc in FAMILIES.values())
    body = "\n".join([
        "<p>Learning-to-hash image retrieval, every figure rebuilt from the stored run records by "
        "<code>python -m protocols.report</code> (this site: <code>python -m protocols.site</code>). "
        "Each method has its own colour and marker; the line style says its family; a method's non-default "
        "search (HDHash's tree) keeps the method's colour with an open marker and a long dash-dot line.</p>",
        "<h2>Table I: MAP</h2>", map_table if map_sets else "<p>No MAP record stored.</p>",
        "<h2>Table II: search time and memory</h2>",
        efficiency_table if efficiency_sets else "<p>No efficiency record stored.</p>",
        f"<h2>Line styles</h2><ul class=\"legend\">{legend}</ul>",
    ])
    return "hashbench results", body, {"plots": [], "records": {}}


def _svg_dash(dash: str) -> str:
    return {"solid": "none", "dash": "8 4", "dot": "2 3", "dashdot": "8 3 2 3", "longdash": "14 4",
            "longdashdot": "14 4 3 4"}.get(dash, "none")


# -- the site ------------------------------------------------------------------------------------
def build_site(out="results", site=None) -> list[Path]:
    """Write the site for the records under ``out`` into ``site`` (default ``<out>/site``); remove
    any file there this build did not write (the site is derived whole). Returns the files written."""
    import plotly.offline

    from protocols.efficiency_report import runs_folder as efficiency_runs

    out = Path(out)
    site = Path(site) if site is not None else out / "site"
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
    written = [atomic_write_text(site / "assets" / "plotly.min.js", plotly.offline.get_plotlyjs()),
               atomic_write_text(site / "assets" / "site.js", (ASSETS / "site.js").read_text()),
               atomic_write_text(site / "assets" / "site.css", (ASSETS / "site.css").read_text())]
    for name, (title, body, data) in pages.items():
        written.append(atomic_write_text(site / name, _page(title, body, data, nav)))
    keep = {p.resolve() for p in written}
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
    return written


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
