"""One style table for every plot: a colour and a marker per method, a line style per family.

The matplotlib PNGs (:mod:`protocols.tables`, :mod:`protocols.efficiency_report`, :mod:`protocols.paper`)
and the site's interactive plots (:mod:`protocols.site`) read the same table, so a method looks the
same everywhere. Each method has a colour and a marker of its own (matplotlib's ten default colours
made CNNH and SDH the same blue); its family sets the line style; a method's non-default search
(HDHash's tree) keeps the method's colour with an open marker and a dash-dot line, so it reads as
HDHash's. A name not in the table (a method added later) gets a deterministic fallback from a hash
of its name, never from the order it was drawn in.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: family -> (matplotlib linestyle, plotly dash, what it means)
FAMILIES = {
    "deep": ("-", "solid", "deep (the paper's)"),
    "supervised": ("--", "dash", "supervised shallow"),
    "unsupervised": (":", "dot", "unsupervised shallow"),
    "quantisation": ("-.", "dashdot", "quantisation"),
    "beyond": ((0, (8, 3)), "longdash", "deep, beyond the paper"),
    "other": ("-", "solid", "other"),
}
#: a method's non-default search (HDHash's tree): same colour, open marker, this line
SEARCH_LINE = ((0, (8, 3, 2, 3)), "longdashdot")

#: matplotlib marker -> plotly symbol
MARKERS = {"o": "circle", "s": "square", "D": "diamond", "^": "triangle-up", "v": "triangle-down",
           "<": "triangle-left", ">": "triangle-right", "p": "pentagon", "h": "hexagon", "*": "star",
           "X": "x", "P": "cross", "d": "diamond-tall", "8": "octagon", "H": "hexagon2"}

#: method -> (colour, matplotlib marker, family): the 11 methods of the paper's Table I, the deep methods
#: beyond it, and a few more names kept ready; 20 entries, colours and markers all distinct
METHODS = {
    "hdhash": ("#d62728", "o", "deep"),
    "hashnet": ("#1f77b4", "s", "deep"),
    "dhn": ("#ff7f0e", "D", "deep"),
    "dnnh": ("#2ca02c", "^", "deep"),
    "cnnh": ("#9467bd", "v", "deep"),
    "sdh": ("#8c564b", "<", "supervised"),
    "ksh": ("#e377c2", ">", "supervised"),
    "sh": ("#7f7f7f", "p", "unsupervised"),
    "lsh": ("#bcbd22", "h", "unsupervised"),
    "itq": ("#17becf", "*", "unsupervised"),
    "opq": ("#000000", "X", "quantisation"),
    "dpsh": ("#393b79", "P", "beyond"),
    "greedyhash": ("#637939", "d", "beyond"),
    "csq": ("#7b4173", "8", "beyond"),
    "orthohash": ("#e7ba52", "H", "beyond"),
    "classifier": ("#6b6ecf", "o", "beyond"),
    "dsdh": ("#ad494a", "s", "beyond"),
    "adsh": ("#8ca252", "D", "beyond"),
    "pq": ("#843c39", "^", "quantisation"),
    "sgh": ("#bd9e39", "v", "unsupervised"),
}
#: colours for names outside the table, picked by a hash of the name
FALLBACK_COLOURS = ["#5254a3", "#9c9ede", "#b5cf6b", "#cedb9c", "#8c6d31", "#e7969c", "#d6616b", "#a55194",
                    "#ce6dbd", "#de9ed6", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363", "#fd8d3c"]

#: Table II's indexes: HDHash's (the tree and its exhaustive scan) in HDHash's colour; the others
#: (all on HashNet's codes) a colour and marker each
INDEXES = {
    "hdhash-tree": ("#d62728", "o", "-"),
    "hdhash-flat": ("#d62728", "s", "--"),
    "hdhash-tree-budget": ("#d62728", "d", ":"),
    "faiss-flat": ("#1f77b4", "s", "-"),
    "numpy-scan": ("#7f7f7f", "p", "--"),
    "exhaustive": ("#000000", "X", ":"),
    "exhaustive-full": ("#8c564b", "P", ":"),
    "popcount-floor": ("#bcbd22", "*", ":"),
    "faiss-hash": ("#ff7f0e", "^", "-."),
    "faiss-multihash": ("#2ca02c", "v", "-."),
    "faiss-ivf": ("#9467bd", "D", "-."),
    "faiss-hnsw": ("#17becf", "h", "-."),
}
PLOTLY_DASH = {"-": "solid", "--": "dash", ":": "dot", "-.": "dashdot"}


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str  # matplotlib's
    linestyle: object  # matplotlib's
    dash: str  # plotly's
    filled: bool = True
    family: str = "other"

    @property
    def symbol(self) -> str:
        """The plotly marker symbol (``-open`` when the matplotlib marker is drawn hollow)."""
        return MARKERS.get(self.marker, "circle") + ("" if self.filled else "-open")

    def mpl(self) -> dict:
        """Keyword arguments for ``Axes.plot`` / ``Axes.errorbar``."""
        extra = {} if self.filled else {"markerfacecolor": "white"}
        return {"color": self.colour, "marker": self.marker, "linestyle": self.linestyle, **extra}

    def plotly(self) -> dict:
        """``line`` and ``marker`` of a plotly scatter trace."""
        return {"line": {"color": self.colour, "dash": self.dash, "width": 2},
                "marker": {"color": self.colour, "symbol": self.symbol, "size": 8,
                           "line": {"color": self.colour, "width": 1.5}}}


def _pick(name: str, options):
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return options[digest % len(options)]


def family(method: str) -> str:
    return METHODS[method][2] if method in METHODS else "other"


def method_style(method: str, search_variant: bool = False) -> Style:
    """The style of ``method``'s rows; ``search_variant``: a non-default search of it (HDHash's tree)."""
    if method in METHODS:
        colour, marker, fam = METHODS[method]
    else:
        colour, marker, fam = _pick(method, FALLBACK_COLOURS), _pick(method + "/marker", list(MARKERS)), "other"
    linestyle, dash, _ = FAMILIES[fam]
    if search_variant:
        linestyle, dash = SEARCH_LINE
    return Style(colour, marker, linestyle, dash, filled=not search_variant, family=fam)


def column_style(column: str) -> Style:
    """The style of a Table I column label (``hdhash``, ``hdhash (tree:0.3)``, ``itq [variant]``)."""
    base = column.split(" [")[0]
    method = base.split(" (")[0]
    return method_style(method, search_variant=" (" in base)


def index_style(index: str) -> Style:
    """The style of a Table II index (``hdhash-tree``, ``faiss-ivf``, ...)."""
    if index in INDEXES:
        colour, marker, linestyle = INDEXES[index]
    else:
        colour, marker, linestyle = _pick(index, FALLBACK_COLOURS), _pick(index + "/marker", list(MARKERS)), "-"
    return Style(colour, marker, linestyle, PLOTLY_DASH.get(linestyle, "solid"),
                 family="deep" if index.startswith("hdhash") else "other")
