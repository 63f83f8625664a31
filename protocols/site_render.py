"""The site's HTML renderer: pages are Jinja2 templates (``site_templates/``, autoescaped) filled with
values and cells of parts, never with markup written in Python.

Records are untrusted input (they come back from cluster workers and other people's folders): every
value reaching a page is escaped by the templates; the page data is JSON in which no string can
close its ``<script>`` (:func:`script_json`); a record's string in a plotly label or tooltip goes
through :func:`plot_text` (plotly reads tags in them). Plots are plotly.js figures written here as
plain JSON (:func:`plot`), so a rebuild is byte for byte: no build time, no random ids, sorted keys.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

from common.files import strict_json
from protocols.site_terms import term_title

ASSETS = Path(__file__).resolve().parent / "site_assets"
#: the pages' Jinja2 templates (autoescaped: every value reaching a page is escaped by construction)
TEMPLATES = Path(__file__).resolve().parent / "site_templates"
#: no mode bar (it sat over the titles); dragging zooms and a double click resets all the same
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


class Part(NamedTuple):
    """A piece of a table cell, drawn by ``part`` in ``site_templates/macros.html``: ``text``, ``swatch``
    (``text`` is the colour), ``link`` (to ``href``), ``record-link`` (``text`` is the record id), ``small``,
    ``code``, ``mark`` (a cell's mark, :data:`protocols.markdown.MARKS`, with its meaning as ``title``),
    ``term`` (a name with its glossary text as ``title``, :mod:`protocols.site_terms`) or ``details`` (a
    record's JSON)."""
    kind: str
    text: str = ""
    href: str = ""
    title: str = ""


class Cell(NamedTuple):
    """A table cell: its parts, its sort key (``data-sort``) and the records behind it (``data-records``)."""
    parts: tuple
    sort: object = None
    records: tuple = ()
    cls: str = ""


class Row(NamedTuple):
    cells: list
    id: str = ""


class Page(NamedTuple):
    """A page before rendering: its title, its template, the template's values, ``data`` (the plots
    and record pop-ups site.js reads from ``<script id="page-data">``) and ``downloads``: per table id,
    its rows as dicts (the tidy numbers of the frame), written beside the page as CSV and JSON
    (:func:`download_files`) and linked under the table."""
    title: str
    template: str
    values: dict
    data: dict
    downloads: dict = {}


def cell(*parts, sort=None, records=(), cls: str = "") -> Cell:
    """A cell of ``parts`` (a plain value is text)."""
    parts = tuple(p if isinstance(p, Part) else Part("text", str(p)) for p in parts)
    if records:
        cls = (cls + " num-link").strip()
    return Cell(parts, sort, tuple(records), cls)


def swatch(style) -> Part:
    return Part("swatch", style.colour)


def link(href: str, text) -> Part:
    return Part("link", str(text), href)


def page_number(value):
    """A finite float rounded for the page (6 significant digits), else None."""
    if value is None or isinstance(value, bool):
        return value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{value:.6g}") if math.isfinite(value) else None


def fmt(value, digits=4) -> str:
    value = page_number(value)
    return "–" if value is None else f"{value:.{digits}f}"


def script_json(value) -> str:
    """``value`` as deterministic JSON (sorted keys, strict) that no string in it can end: ``<``, ``>``
    and ``&`` are written as ``\\u003c``, ``\\u003e`` and ``\\u0026``, so neither ``</script>`` nor
    ``<!--`` can appear inside the ``<script id="page-data">`` block. Returns markup for the templates."""
    from markupsafe import Markup

    text = json.dumps(strict_json(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def download_stem(page_name: str, table_id: str) -> str:
    """Where a page's table is downloaded from, without the extension: ``data/<page>.<table>``."""
    return f"data/{page_name.rsplit('.', 1)[0]}.{table_id}"


def download_files(page_name: str, page: Page) -> dict[str, str]:
    """``{path in the site: text}`` of the CSV and JSON of every table of ``page`` with download rows:
    the CSV with floats to 6 significant digits and a list (a cell's records) as space-separated text,
    the JSON a list of objects, strict (NaN as null), keys in the columns' order."""
    import pandas as pd

    files = {}
    for table_id, rows in page.downloads.items():
        rows = [{k: " ".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in row.items()}
                for row in rows]
        stem = download_stem(page_name, table_id)
        files[f"{stem}.csv"] = pd.DataFrame(rows).to_csv(index=False, float_format="%.6g", lineterminator="\n")
        files[f"{stem}.json"] = json.dumps(strict_json(rows), indent=1, ensure_ascii=False, allow_nan=False,
                                           default=str) + "\n"
    return files


def table_data(headers: list[str], rows: list[Row]) -> list[dict]:
    """A table's download as it reads: per row, each heading's cell as text (for tables whose rows are no
    frame's: the index's). Swatches and a record's JSON are left out."""
    def text(c: Cell) -> str:
        return "".join(p.text for p in c.parts if p.kind not in ("swatch", "details")).strip()

    return [dict(zip(headers, (text(c) for c in row.cells))) for row in rows]


def plot_text(text) -> str:
    """``text`` for a plotly label or tooltip: plotly reads ``<b>``, ``<br>``, ``<a>`` and entities in
    them, so a value from a record has ``&``, ``<`` and ``>`` escaped to show as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["script_json"] = script_json
    env.globals["term"] = term_title  # a heading's or a name's glossary text, for its title= tooltip
    return env


def render_page(page: Page, nav: list[tuple[str, str]], env=None, name: str = "") -> str:
    """The HTML of ``page`` (written as ``name``: its tables link their downloads, :func:`download_stem`)
    with the navigation ``nav`` (``(href, label)`` pairs)."""
    env = env or environment()
    downloads = {table_id: download_stem(name, table_id) for table_id in page.downloads} if name else {}
    return env.get_template(page.template).render(title=page.title, nav=nav, page_data=page.data,
                                                  downloads=downloads, **page.values)


def plot(plot_id: str, traces: list, layout: dict) -> dict:
    """A plotly figure in the site's one style (margins, hover, title at the left), its legend outside
    the plotting area, on the right, and the figure tall enough for every legend entry (no scrolling)."""
    names = [str(t.get("name", "")) for t in traces if t.get("showlegend", True)]
    base = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "hovermode": "closest",
            "height": max(420, 110 + 20 * len(names) + 14 * sum(n.count("<br>") for n in names)), "template": None,
            "legend": {"font": {"size": 11}, "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top",
                       "tracegroupgap": 2}}
    layout = {**base, **layout}
    layout["title"] = {**layout.get("title", {}), "x": 0.01, "xanchor": "left"}
    return {"id": plot_id, "data": traces, "layout": layout, "config": PLOT_CONFIG}


def error_bars(sds) -> dict:
    """A plotly trace's ``error_y``: each point's sd, or none (null) where it rests on one seed (None)."""
    array = [page_number(sd) for sd in sds]
    return {"type": "data", "array": array, "visible": any(v is not None for v in array), "thickness": 1.5,
            "width": 5}


def machine_text(machine, device) -> str:
    """A record's machine for a page: the CPU and cores, and the device where it is not the CPU."""
    machine = machine if isinstance(machine, str) else "? (? cores)"  # None, or NaN in a frame: not recorded
    return machine + (f", {device}" if isinstance(device, str) and device != "cpu" else "")
