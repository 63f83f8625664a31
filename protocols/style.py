"""One style table for every plot: a colour and a marker per method, a line style per family.

The matplotlib PNGs (:mod:`protocols.plots`) and the site's interactive plots
(:mod:`protocols.site_map`, :mod:`protocols.site_efficiency`) read the same table, so a method looks the
same everywhere. Each method has a colour and a marker of its own (matplotlib's ten default colours made
CNNH and SDH the same blue); its family sets the line style; a method's non-default search (HDHash's
tree) keeps the method's colour with an open marker and a dash-dot line, so it reads as HDHash's. The
family is read from the method's class in the registry (:func:`family`: ``beyond_paper``, ``deep``,
``supervised``, a search that is not Hamming), never kept here a second time. A name not in the table (a
method added later) gets a deterministic fallback from a hash of its name, never from the order it was
drawn in.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

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
#: a variant's lines (runs with non-default parameters): the method's colour, the i-th of these dashes
#: (matplotlib's on/off lengths in line widths; plotly's in pixels, twice them) and the i-th of the
#: markers other than the method's own (:func:`column_styles`), so no two lines of one method look alike
VARIANT_DASHES = ((5, 1.5, 1, 1.5, 1, 1.5), (1, 2.5), (12, 2.5), (3, 1.5, 3, 1.5, 1, 1.5), (2, 4))
VARIANT_MARKERS = ("D", "^", "s", "v", "P", "X", "p", "<", "h", ">", "*", "d", "8", "H", "o")

#: matplotlib marker -> plotly symbol
MARKERS = {"o": "circle", "s": "square", "D": "diamond", "^": "triangle-up", "v": "triangle-down",
           "<": "triangle-left", ">": "triangle-right", "p": "pentagon", "h": "hexagon", "*": "star",
           "X": "x", "P": "cross", "d": "diamond-tall", "8": "octagon", "H": "hexagon2"}

#: registered method -> (colour, matplotlib marker): the 11 methods of the paper's Table I and those
#: after it (every entry a registered method: tests/test_style.py), colours all distinct
METHODS = {
    "hdhash": ("#d62728", "o"),
    "hashnet": ("#1f77b4", "s"),
    "dhn": ("#ff7f0e", "D"),
    "dnnh": ("#2ca02c", "^"),
    "cnnh": ("#9467bd", "v"),
    "sdh": ("#8c564b", "<"),
    "ksh": ("#e377c2", ">"),
    "sh": ("#7f7f7f", "p"),
    "lsh": ("#bcbd22", "h"),
    "itq": ("#17becf", "*"),
    "opq": ("#000000", "X"),
    "dpsh": ("#393b79", "P"),
    "greedyhash": ("#637939", "d"),
    "csq": ("#7b4173", "8"),
    "orthohash": ("#e7ba52", "H"),
    "classifier": ("#6b6ecf", "o"),
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
    """A method's family (:data:`FAMILIES`), from its class: after the paper (``beyond_paper``), deep,
    quantisation (its default search is not Hamming: OPQ's asymmetric distance), supervised shallow
    (``supervised``), unsupervised shallow; ``other`` for a name not registered."""
    from methods import UnknownMethodError, get_method_class

    try:
        cls = get_method_class(method)
    except UnknownMethodError:
        return "other"
    if cls.beyond_paper:
        return "beyond"
    if cls.deep:
        return "deep"
    if cls.searches[0].index != "hamming":
        return "quantisation"
    return "supervised" if cls.supervised else "unsupervised"


def method_style(method: str, search_variant: bool = False) -> Style:
    """The style of ``method``'s rows; ``search_variant``: a non-default search of it (HDHash's tree)."""
    fam = family(method)
    if method in METHODS:
        colour, marker = METHODS[method]
    else:
        colour, marker = _pick(method, FALLBACK_COLOURS), _pick(method + "/marker", list(MARKERS))
    linestyle, dash, _ = FAMILIES[fam]
    if search_variant:
        linestyle, dash = SEARCH_LINE
    return Style(colour, marker, linestyle, dash, filled=not search_variant, family=fam)


def column_style(column: str) -> Style:
    """The style of a Table I column label (``hdhash``, ``hdhash (tree:0.3)``, ``itq [variant]``) alone:
    its method's colour and family (a swatch); a plot with variants takes :func:`column_styles`."""
    base = column.split(" [")[0]
    method = base.split(" (")[0]
    return method_style(method, search_variant=" (" in base)


def column_styles(columns) -> dict[str, Style]:
    """The style of each Table I column label of one plot, no two alike: colour by method; a method's
    default parameters take its marker and its family's line (its non-default search an open marker and
    :data:`SEARCH_LINE`); its variants (``label [params]``), in the order of their parameter text, each
    a marker and a dash of their own (:data:`VARIANT_MARKERS`, :data:`VARIANT_DASHES`), open with the
    search line under a non-default search."""
    variants = {}
    for column in columns:
        base, _, variant = column.partition(" [")
        if variant:
            variants.setdefault(base.split(" (")[0], set()).add(variant)
    styles = {}
    for column in columns:
        base, _, variant = column.partition(" [")
        style = column_style(column)
        if not variant:
            styles[column] = style
            continue
        method = base.split(" (")[0]
        i = sorted(variants[method]).index(variant)
        markers = [m for m in VARIANT_MARKERS if m != style.marker]
        linestyle, dash = SEARCH_LINE if not style.filled else variant_line(i)
        styles[column] = replace(style, marker=markers[i % len(markers)], linestyle=linestyle, dash=dash)
    return styles


def variant_line(i: int) -> tuple:
    """The line of a method's ``i``-th variant: (matplotlib linestyle, plotly dash in pixels)."""
    dashes = VARIANT_DASHES[i % len(VARIANT_DASHES)]
    return (0, dashes), ",".join(f"{2 * length:g}px" for length in dashes)


def index_style(index: str) -> Style:
    """The style of a Table II index (``hdhash-tree``, ``faiss-ivf``, ...)."""
    if index in INDEXES:
        colour, marker, linestyle = INDEXES[index]
    else:
        colour, marker, linestyle = _pick(index, FALLBACK_COLOURS), _pick(index + "/marker", list(MARKERS)), "-"
    return Style(colour, marker, linestyle, PLOTLY_DASH.get(linestyle, "solid"),
                 family="deep" if index.startswith("hdhash") else "other")
