"""The site's Table II page: ``efficiency-<dataset>.html``, speed against recall and against tie-aware
MAP with the Pareto front, the scaling plot, and every index setting's record (each point and number
opens its record; the settings table downloads as CSV and JSON with every record field, whatever
fields Table II's records carry). Table II's series (:func:`protocols.efficiency_frame.speed_points`,
its Pareto front and scaling) are :mod:`protocols.efficiency_frame`'s, read here as they are.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from protocols import efficiency_frame as eff
from protocols.frame import device_of, machine_of
from protocols.records import read_records_by_id
from protocols.site_render import Page, Part, Row, cell, fmt, machine_text, page_number, plot, plot_text, swatch
from protocols.site_terms import term_title
from protocols.style import index_style


def _index_label(record) -> str:
    params = record.get("params")
    return record["index"] + (f" ({params})" if isinstance(params, str) and params else "")


def efficiency_page(out: Path, dataset: str) -> Page | None:
    """``efficiency-<dataset>.html``: Table II's plots and every index setting's record."""
    records = read_records_by_id(eff.runs_folder(out, dataset), ("index", "db_size", "ms_per_query"))
    if not records:
        return None
    frame = pd.DataFrame([dict(r, record_id=i, params=r.get("params") or "") for i, r in records.items()])
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
    plots.append(_scaling_plot(frame))
    rows = _setting_rows(frame)
    paper = eff.paper_table2()
    first = next(iter(records.values()))
    values = {
        "topk": topk, "timing_queries": int(first.get("timing_queries", 0)) or "?",
        "repeats": first.get("repeats", "?"), "n_query": first.get("n_query", "?"),
        "sizes": [f"{int(s):,}" for s in sorted(sizes)],
        "machines": sorted({machine_text(machine_of(r), device_of(r)) for r in records.values()}),
        "sections": sections, "rows": rows,
        "headers": ["index", "setting", "codes of", "code bits", "database", "ms/query", "single query (ms)",
                    "recall", "MAP@K", "tie-aware MAP@K", "index bytes", "build (s)", "threads", "record"],
        "paper_headers": ["method", "code bits", "ms/query", "memory (MB)"],
        "paper_rows": [Row([cell(m, sort=m), *(cell(v, sort=page_number(v)) for v in values)]) for m, *values in
                       zip(paper["method"], paper["code_bits"], paper["search_ms_per_query"], paper["memory_mb"])],
    }
    page = f"efficiency-{dataset}.html"
    summaries = {i: {"href": f"{page}#e-{i}", "fields": r} for i, r in records.items()}
    downloads = {"settings": _plain(frame.to_dict("records")), "paper": _plain(paper.to_dict("records"))}
    return Page(f"{dataset}: Table II (search time and memory)", "efficiency.html", values,
                {"plots": plots, "records": summaries}, downloads)


def _plain(rows: list[dict]) -> list[dict]:
    """Rows for a download: a missing number (NaN) as empty."""
    return [{k: None if isinstance(v, float) and v != v else v for k, v in row.items()} for row in rows]


def _scaling_plot(frame) -> dict:
    """Search time against database size, per index (:func:`protocols.efficiency_frame.scaling_series`)."""
    scaling = []
    for name, label, group in eff.scaling_series(frame):
        texts = [f"<b>{plot_text(_index_label(r))}</b><br>{int(r['db_size']):,} codes: "
                 f"{r['ms_per_query']:.4f} ms/query<br>recall {fmt(r['recall'], 3)}<br>threads {_threads(r)}"
                 for r in group.to_dict("records")]
        scaling.append({"type": "scatter", "mode": "lines+markers", "name": plot_text(label),
                        "x": [int(v) for v in group["db_size"]], "y": [page_number(v) for v in group["ms_per_query"]],
                        "text": texts, "customdata": [[i] for i in group["record_id"]],
                        "hovertemplate": "%{text}<extra></extra>", **index_style(name).plotly()})
    return plot("plot-scaling", scaling, {
        "title": {"text": "search time against database size"},
        "xaxis": {"title": {"text": "database size (codes)"}, "type": "log"},
        "yaxis": {"title": {"text": "ms per query (batched, 1 thread)"}, "type": "log"}})


def _setting_rows(frame) -> list[Row]:
    """One row per index setting and database size, each number opening its record."""
    rows = []
    for r in frame.to_dict("records"):
        rid = r["record_id"]
        cells = [
            cell(swatch(index_style(r["index"])), Part("term", r["index"], title=term_title(r["index"])),
                 sort=r["index"]),
            cell(r["params"], sort=r["params"]),
            cell(r.get("method", ""), sort=r.get("method", "")),
            cell(r.get("code_bits", "")), cell(f"{int(r['db_size']):,}", sort=int(r["db_size"])),
            *(cell(fmt(r.get(f), d), sort="" if page_number(r.get(f)) is None else page_number(r.get(f)), records=[rid])
              for f, d in (("ms_per_query", 4), ("ms_per_query_single", 4), ("recall", 3), ("map", 4),
                           ("map_tie_aware", 4))),
            cell(f"{int(r['index_bytes']):,}" if page_number(r.get("index_bytes")) is not None else "–",
                  sort=page_number(r.get("index_bytes")) or ""),
            cell(fmt(r.get("build_s"), 2), sort=page_number(r.get("build_s")) or ""),
            cell(_threads(r)),
            cell(Part("record-link", rid, f"#e-{rid}")),
        ]
        rows.append(Row(cells, f"e-{rid}"))
    return rows


def _threads(row) -> str:
    threads, all_threads = page_number(row.get("threads")), page_number(row.get("threads_all"))
    text = "?" if threads is None else str(int(threads))
    return text + ("" if all_threads is None else f" (all cores: {int(all_threads)})")


def _speed_plot(plot_id, points, accuracy, label, size, pareto_front) -> dict:
    traces = []
    # one line per index build (IVF's nlist, HNSW's M, ...): its search parameter's sweep, as the PNG draws
    # it; records from before builds were named have none (one line per index)
    builds = points.get("build_params", pd.Series("", index=points.index)).fillna("").astype(str)
    for (name, build), group in points.groupby([points["index"], builds], sort=False):
        group = group[group[accuracy].notna()]  # in the grid's order: the swept parameter rising
        if not len(group):
            continue
        texts = [f"<b>{plot_text(_index_label(r))}</b><br>{r['ms_per_query']:.4f} ms/query<br>{label}: "
                 f"{fmt(r[accuracy], 4)}<br>threads {_threads(r)}<br>database {size:,} codes"
                 for r in group.to_dict("records")]
        traces.append({"type": "scatter", "mode": "lines+markers" if len(group) > 1 else "markers",
                       "name": plot_text(f"{name} ({build})" if build else name),
                       "x": [page_number(v) for v in group["ms_per_query"]],
                       "y": [page_number(v) for v in group[accuracy]],
                       "text": texts, "customdata": [[i] for i in group["record_id"]],
                       "hovertemplate": "%{text}<extra></extra>", **index_style(name).plotly()})
    front = points[pareto_front(points, "ms_per_query", accuracy)].sort_values("ms_per_query", kind="stable")
    if len(front):
        traces.insert(0, {"type": "scatter", "mode": "lines", "name": "Pareto front", "line": {
            "shape": "hv", "color": "rgba(68,68,68,0.25)", "width": 10}, "hoverinfo": "skip",
            "x": [page_number(v) for v in front["ms_per_query"]], "y": [page_number(v) for v in front[accuracy]]})
    return plot(plot_id, traces, {"title": {"text": f"{label} against speed, {size:,} codes"},
                                   "xaxis": {"title": {"text": "ms per query (batched, 1 thread)"}, "type": "log"},
                                   "yaxis": {"title": {"text": label}}})
