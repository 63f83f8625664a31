"""A static results site, rebuilt from the stored records alone: ``results/site/``.

Pages (flat, opening from the file system with no server and no network): ``index.html`` (datasets,
what ran, where, when), ``leaderboard.html`` (ranks across datasets, :mod:`protocols.site_leaderboard`),
``glossary.html`` (:mod:`protocols.site_glossary`), ``map-<dataset>.html`` and ``records-<dataset>.html``
(:mod:`protocols.site_map`), ``efficiency-<dataset>.html`` (:mod:`protocols.site_efficiency`) and, where
unseen-class records are stored, ``unseen-<dataset>.html`` (Table U, :mod:`protocols.site_unseen`). Every
number opens the records it comes from (a click on a cell or a plot point); every table has a filter
box and downloads as CSV and JSON (``data/<page>.<table>.{csv,json}``, :func:`site_render.download_files`).

Plots are plotly.js: its Python package ships the minified bundle (``plotly.offline.get_plotlyjs``),
so the site embeds one local copy (``assets/plotly.min.js``, shared by every page) and works offline;
hover tooltips, error bars, log axes, marker symbols and dash styles are built in; and the figures
are plain JSON (:func:`protocols.site_render.plot`), so a rebuild is byte for byte. Bokeh's inline
output draws random element ids, and Vega-Lite's three bundles would have to be vendored from npm.
The style (colour, marker, line) of every method is :mod:`protocols.style`'s, the same as the PNGs'.
:func:`build_site` is called by ``python -m protocols.report`` and ``python -m protocols.site``.

The build owns only the files it wrote, listed in the folder's manifest
(:func:`protocols.site_folder.owned_files`): it refuses a folder holding anything else.
"""
from __future__ import annotations

from pathlib import Path

from common.files import atomic_write_text
from protocols.efficiency_frame import runs_folder as efficiency_runs
from protocols.frame import device_of, frame_of, machine_of, read_map_records
from protocols.records import read_records_by_id
from protocols.site_efficiency import efficiency_page
from protocols.site_folder import owned_files, write_manifest
from protocols.site_glossary import glossary_page
from protocols.site_leaderboard import leaderboard_page
from protocols.site_map import map_page, method_swatches, records_page
from protocols.site_render import (
    ASSETS,
    Page,
    Row,
    cell,
    download_files,
    environment,
    link,
    machine_text,
    render_page,
    table_data,
)
from protocols.site_unseen import INDEX_HEADERS as UNSEEN_HEADERS
from protocols.site_unseen import unseen_index_rows, unseen_page, unseen_sets
from protocols.style import FAMILIES, SEARCH_LINE, VARIANT_DASHES, variant_line

#: the index page's tables' headings (its template's)
MAP_HEADERS = ["dataset", "methods", "bits", "training seeds", "K", "records", "machines", "when (UTC)"]
EFFICIENCY_HEADERS = ["dataset", "indexes", "database sizes", "settings", "machines", "when (UTC)"]


def index_page(out: Path, map_sets: list[str], efficiency_sets: list[str], unseen: list[str] = ()) -> Page:
    """``index.html``: the datasets, what ran, where and when (Table U's where ``unseen`` names any)."""
    map_rows = []
    for dataset in map_sets:
        records = read_map_records(out, dataset)
        frame = frame_of(records)
        stamps = sorted(str(r.get("timestamp", "")) for r in records.values() if r.get("timestamp"))
        methods = sorted(set(frame["method"]))
        map_rows.append(Row([
            cell(link(f"map-{dataset}.html", dataset), sort=dataset),
            cell(*method_swatches(methods), sort=len(methods)),
            cell(", ".join(str(b) for b in sorted({int(b) for b in frame["bits"]}))),
            cell(", ".join(str(s) for s in sorted({int(s) for s in frame["training_seed"]}))),
            cell(", ".join(sorted({f"top{int(k)}" for k in frame["topk"]}))),
            cell(link(f"records-{dataset}.html", len(records)), sort=len(records)),
            cell("; ".join(sorted({machine_text(m, d) for m, d in zip(frame["machine"], frame["device"])}))),
            cell(f"{stamps[0]} to {stamps[-1]}" if stamps else "?", sort=stamps[-1] if stamps else ""),
        ]))
    efficiency_rows = []
    for dataset in efficiency_sets:
        records = list(read_records_by_id(efficiency_runs(out, dataset), ("index", "db_size", "ms_per_query")).values())
        stamps = sorted(str(r.get("timestamp", "")) for r in records if r.get("timestamp"))
        efficiency_rows.append(Row([
            cell(link(f"efficiency-{dataset}.html", dataset), sort=dataset),
            cell(", ".join(sorted({r["index"] for r in records}))),
            cell(", ".join(f"{s:,}" for s in sorted({int(r["db_size"]) for r in records}))),
            cell(len(records), sort=len(records)),
            cell("; ".join(sorted({machine_text(machine_of(r), device_of(r)) for r in records}))),
            cell(f"{stamps[0]} to {stamps[-1]}" if stamps else "?"),
        ]))
    values = {"map_rows": map_rows, "efficiency_rows": efficiency_rows, "map_headers": MAP_HEADERS,
              "efficiency_headers": EFFICIENCY_HEADERS,
              "line_styles": [(description, _svg_dash(dash)) for _, dash, description in FAMILIES.values()]
              + [("a method's non-default search (open marker)", _svg_dash(SEARCH_LINE[1]))]
              + [(f"a method's variant {i + 1} (and a marker of its own)", _svg_dash(variant_line(i)[1]))
                 for i in range(len(VARIANT_DASHES))]}
    downloads = {"datasets": table_data(MAP_HEADERS, map_rows), "efficiency": table_data(EFFICIENCY_HEADERS,
                                                                                         efficiency_rows)}
    values["unseen_rows"], values["unseen_headers"] = unseen_index_rows(out, unseen), UNSEEN_HEADERS
    if values["unseen_rows"]:  # no Table U record: nothing of it on the site, not even an empty download
        downloads["unseen"] = table_data(UNSEEN_HEADERS, values["unseen_rows"])
    return Page("hashbench results", "index.html", values, {"plots": [], "records": {}}, downloads)


def _svg_dash(dash: str) -> str:
    """A plotly dash as an SVG ``stroke-dasharray``: a named one, or lengths in pixels (``"10px,3px"``)."""
    if "px" in dash:
        return dash.replace("px", "").replace(",", " ")
    return {"solid": "none", "dash": "8 4", "dot": "2 3", "dashdot": "8 3 2 3", "longdash": "14 4",
            "longdashdot": "14 4 3 4"}.get(dash, "none")


def build_site(out="results", site=None) -> list[Path]:
    """Write the site for the records under ``out`` into ``site`` (default ``<out>/site``) and return
    the files written. The build owns only what it wrote: it refuses (:func:`owned_files`) a folder
    holding anything else, and removes the files an earlier build wrote that this one did not."""
    out = Path(out)
    site = Path(site) if site is not None else out / "site"
    owned = owned_files(site)  # first: a folder that is not the site's is refused before any work

    import plotly.offline

    pages = _pages(out)
    map_sets = [name[len("map-"):-len(".html")] for name in pages if name.startswith("map-")]
    efficiency_sets = [name[len("efficiency-"):-len(".html")] for name in pages if name.startswith("efficiency-")]
    unseen = [name[len("unseen-"):-len(".html")] for name in pages if name.startswith("unseen-")]
    board = leaderboard_page(out, map_sets)
    pages = {"index.html": index_page(out, map_sets, efficiency_sets, unseen),
             **({"leaderboard.html": board} if board is not None else {}),
             "glossary.html": glossary_page(unseen=bool(unseen)), **pages}
    nav = [("index.html", "home")] + [("leaderboard.html", "leaderboard")] * (board is not None) + \
          [(f"map-{d}.html", d) for d in map_sets] + \
          [(f"efficiency-{d}.html", f"Table II: {d}") for d in efficiency_sets] + \
          [(f"unseen-{d}.html", f"Table U: {d}") for d in unseen] + [("glossary.html", "glossary")]
    env = environment()
    texts = {"assets/plotly.min.js": plotly.offline.get_plotlyjs(),
             "assets/site.js": (ASSETS / "site.js").read_text(),
             "assets/site.css": (ASSETS / "site.css").read_text(),
             **{name: render_page(page, nav, env, name) for name, page in pages.items()}}
    for name, page in pages.items():
        texts.update(download_files(name, page))
    if set(texts) - owned:  # claimed before they are written, so a build cut short still owns them
        write_manifest(site, owned | set(texts))
    written = [atomic_write_text(site / name, text) for name, text in texts.items()]
    for name in sorted(owned - set(texts)):  # stale files of an earlier build's, never anything else
        path = site / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    return written + [write_manifest(site, texts)]


def _pages(out: Path) -> dict[str, Page]:
    """Every dataset's pages (MAP and records, then Table II, then Table U), for the datasets with records."""
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
    for dataset in unseen_sets(out):
        page = unseen_page(out, dataset)
        if page is not None:
            pages[f"unseen-{dataset}.html"] = page
    return pages
