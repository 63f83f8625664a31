"""The site's glossary page, ``glossary.html``: every term of :func:`protocols.site_terms.sections` (metrics,
table columns and marks, row labels and variants, searches and indexes, line styles, methods), a table
per section, each term under the anchor ``g-<term>``. The same texts are the tooltips of the column
headings and names on every page (:func:`protocols.site_terms.term_title`).
"""
from __future__ import annotations

import re

from protocols.site_render import Page, Part, Row, cell
from protocols.site_terms import sections


def anchor(term: str) -> str:
    """A term's anchor on the glossary page: ``g-`` and its letters and digits, the rest as ``-``."""
    return "g-" + re.sub(r"[^A-Za-z0-9]+", "-", term).strip("-").lower()


def glossary_page(unseen: bool = False) -> Page:
    """``glossary.html`` (``site_templates/glossary.html``); the unseen-class protocol's terms where the
    site has a Table U page (``unseen``)."""
    parts, downloads = [], {}
    for section, heading, terms in sections(unseen):
        rows = [Row([cell(Part("code", term), sort=term.lower()), cell(what), cell(", ".join(aliases))],
                    anchor(term)) for term, what, aliases in terms]
        parts.append((f"{section}-terms", section, heading, rows))
        downloads[f"{section}-terms"] = [{"term": term, "what": what, "also written": ", ".join(aliases)}
                                            for term, what, aliases in terms]
    values = {"glossary": parts, "headers": ["term", "what it means", "also written"]}
    return Page("Glossary: metrics, columns, indexes, variants", "glossary.html", values,
                {"plots": [], "records": {}}, downloads)
