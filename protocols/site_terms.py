"""The site's glossary as data: what every metric, column heading, index and label on the pages means.

:data:`SECTIONS` is the glossary page (``glossary.html``, :mod:`protocols.site_glossary`) in order, and
:func:`term_title` gives a term's text as the tooltip (``title=``) of a column heading or a name in a
cell that reads exactly like the term or one of its aliases. The marks are
:data:`protocols.markdown.MARKS`, the line styles :data:`protocols.style.FAMILIES` and the methods the
first sentence of their module's docstring (metadata next to the thing): none is written twice.
Definitions follow ``protocols/README.md`` (the evaluation protocol).
"""
from __future__ import annotations

import functools
import re
import sys

from protocols.markdown import MARKS
from protocols.style import FAMILIES

#: (term, what it means, aliases: other spellings a page uses)
METRICS = [
    ("MAP@K", "Mean average precision of the top K retrieved (K: the dataset's, PROTOCOL.md: 1000 on "
     "Fashion-MNIST, 5000 on fashion-mosaic). Ties at equal Hamming distance are broken by database index; "
     "on Table II, of the list the index returns.", ("MAP", "MAP@1000", "MAP@5000")),
    ("tie-aware MAP@K", "The expected MAP@K over every order of the items tied at one Hamming distance "
     "(McSherry & Najork, ECIR 2008): it scores the distances, not the tie-break by id.", ("map_tie_aware",)),
    ("MAP@all", "MAP over the whole ranked database.", ("map_all",)),
    ("P (Hamming radius 2)", "Precision of the items within Hamming distance 2 of the query (P@r<=2); 0 for "
     "a query with none (their share is p_r2_empty_frac). Not defined for OPQ's asymmetric distance.",
     ("P (radius 2)", "P@r<=2", "p_r2", "precision within Hamming radius 2")),
    ("P@N", "Precision of the top N retrieved, N = 100 ... 1000.", ("precision at N",)),
    ("precision-recall", "Precision and recall of the items within each Hamming radius 0 ... the code "
     "length, averaged over the queries.", ()),
    ("train (s)", "Seconds the method took to fit (a resumed run: every part together).", ("train_s",)),
    ("recall", "Table II: recall of the exact top-K with ties allowed for: the share of the K slots holding "
     "an item no farther than the exact K-th distance; an empty slot is a miss.", ()),
    ("ms/query", "Table II: milliseconds per query, a batch of queries on one thread (median of the repeats).",
     ("ms per query (batched, 1 thread)", "ms_per_query")),
    ("single query (ms)", "Table II: milliseconds for one query at a time, one thread (median over the queries).",
     ("ms_per_query_single",)),
    ("index bytes", "Table II: the bytes the index holds in memory (its nbytes: codes and structure).",
     ("index_bytes",)),
    ("build (s)", "Table II: seconds to build the index over the database codes.", ("build_s",)),
    ("threads", "Threads a timing ran on (batched; in brackets the all-cores run's).", ()),
    ("Pareto front", "The index settings no other setting beats on both speed and accuracy.", ()),
]
TABLE_TERMS = [
    ("mean ± sd (n)", "A cell: the mean over training seeds ± the sample standard deviation, n the seeds "
     "with a number (n of runs where a record holds none).", ()),
    ("rank", "Leaderboard: the place by mean MAP@K among the cells over two training seeds or more; a cell "
     "over one seed (†) is not ranked, and rank 1 is bold (called best) only where no cell has a higher mean.",
     ()),
    ("bits", "Code length in bits.", ("code bits", "code length (bits)")),
    ("family", "The kind of method; it sets the line style of the method's default row in every plot.", ()),
    ("schedule", "A deep method's training budget: epochs, and the early stopping's patience (epochs "
     "without a better validation MAP).", ()),
    ("seeds", "Training seeds with a record for this cell.", ("training seeds", "training seed")),
    ("split seed", "The seed of the dataset split (0, PROTOCOL.md's), apart from the training seeds.", ()),
    ("K", "The K of MAP@K.", ()),
    ("split sha256", "The SHA-256 of the split's index arrays: records of one split share it.", ()),
    ("records", "Stored run records (one JSON file each, under map/runs/ or efficiency/runs/).", ("record",)),
    ("codes of", "Table II: the method whose codes the index holds.", ()),
    ("setting", "Table II: the index's search parameter (nflip, nprobe, efSearch, keep_ratio, max_codes).", ()),
    ("database", "Table II: the number of codes searched.", ("database size (codes)",)),
]
LABELS = [
    ("method (search)", "A method's rows under a search other than its default, e.g. hdhash (tree:0.3).", ()),
    ("method [parameters]", "A variant: a run with the parameters in brackets set away from the method's "
     "defaults; stored beside the default row, never over it.", ("variant",)),
    ("beyond the paper", "Methods after the HDHash paper (not in its Table I), and HDHash trained with their "
     "losses per level (--param level_loss=...).", ()),
]
#: the unseen-class protocol's (Table U's), on the glossary page only where the site has a Table U page
UNSEEN = [
    ("Table U", "The unseen-class protocol's table (Sablayrolles et al., ICASSP 2017): methods trained on the "
     "seen classes only, queried with items of the classes held out of training.", ()),
    ("class split", "Table U: a dataset's classes split, by a seed of their own (the class split seed), into "
     "the seen (about 70%, the training items) and the unseen (the queries); its SHA-256 is in every record.",
     ("class split seed", "class_seed", "class split sha256", "class_split_sha256")),
    ("unseen@unseen", "Table U: the unseen classes' queries retrieved among the database items of the unseen "
     "classes only.", ()),
    ("unseen@all", "Table U: the unseen classes' queries retrieved among every database item, the seen "
     "classes' items as distractors.", ()),
    ("searched among", "Table U: the database a record's queries searched, unseen@unseen or unseen@all.", ()),
]
SEARCHES = [
    ("hamming", "Exhaustive Hamming ranking of every database code (the default search).", ()),
    ("tree:keep", "HDHash's tree searched coarse to fine: at each level every surviving parent keeps its "
     "nearest children until they hold at least keep of its items (tree:0.3, the paper's HDHash(0.3); "
     "tree:1.0 is exactly the exhaustive ranking).", ("tree:0.3", "tree", "keep_ratio")),
    ("adc", "Asymmetric distance of OPQ's product quantiser (float queries against codes).", ()),
    ("max_codes", "HDHash's tree at keep 1.0 stopping after this many codes: a finer speed-recall dial.", ()),
    ("numpy-scan", "Table II baseline: a numpy linear scan of HashNet's codes.", ()),
    ("faiss-flat", "faiss's IndexBinaryFlat: the exhaustive scan every speedup is quoted against.", ()),
    ("faiss-hash", "faiss's IndexBinaryHash: buckets of a code prefix, probing codes within nflip bit flips.",
     ("nflip",)),
    ("faiss-multihash", "faiss's IndexBinaryMultiHash: several hash tables on parts of the code, nflip flips.",
     ()),
    ("faiss-ivf", "faiss's IndexBinaryIVF: k-means lists, searching the nprobe nearest lists.", ("nprobe",)),
    ("faiss-hnsw", "faiss's IndexBinaryHNSW: a navigable small-world graph, efSearch candidates per query.",
     ("efSearch",)),
    ("hdhash-tree", "HDHash's tree over its 8+16+40-bit codes, swept over keep ratios 0.05 ... 1.0.", ()),
    ("hdhash-tree-budget", "HDHash's tree at keep 1.0 with a budget of max_codes codes.", ()),
    ("hdhash-flat", "The exhaustive Hamming scan of HDHash's codes.", ()),
    ("exhaustive", "The project's compiled exhaustive top-K (HammingIndex.search).", ()),
    ("exhaustive-full", "The project's full stable ranking (HammingIndex.rank, the MAP@all path).", ()),
    ("popcount-floor", "A lower bound: the time of the popcounts alone, no ranking.", ()),
]


def _first_paragraph(text: str) -> str:
    paragraph = " ".join((text or "").strip().split("\n\n")[0].split())
    return paragraph.replace("``", "")


def method_terms() -> list[tuple]:
    """Every registered method: the first paragraph of its module's docstring (the paper it follows)."""
    from methods import get_method_class, list_methods

    terms = []
    for name in list_methods():
        module = sys.modules.get(get_method_class(name).__module__)
        terms.append((name, _first_paragraph(getattr(module, "__doc__", "")) or name, ()))
    return terms


def sections(unseen: bool = True) -> list[tuple[str, str, list[tuple]]]:
    """``(anchor, heading, terms)`` of the glossary page, in order; the unseen-class protocol's with ``unseen``."""
    marks = [(symbol, meaning, ()) for symbol, meaning in MARKS.values()]
    families = [(description, f"line style {dash}", ()) for _, dash, description in FAMILIES.values()]
    return [("metrics", "Metrics", METRICS), ("tables", "Table columns and cells", TABLE_TERMS + marks),
            ("labels", "Row labels and variants", LABELS),
            *([("unseen", "The unseen-class protocol (Table U)", UNSEEN)] if unseen else []),
            ("indexes", "Searches and indexes", SEARCHES),
            ("families", "Families (line styles)", families), ("methods", "Methods", method_terms())]


@functools.lru_cache(maxsize=1)
def _titles() -> dict[str, str]:
    titles = {}
    for _, _, terms in sections():
        for term, what, aliases in terms:
            for name in (term, *aliases):
                titles.setdefault(name, what)
    return titles


#: headings named by their code length (Table I's and the leaderboard's)
_BITS = re.compile(r"(\d+) bits(: paper)?")
#: Table U's headings: database, code length, metric (:func:`protocols.unseen_tables.table_cells`)
_UNSEEN_HEADING = re.compile(r"(unseen@unseen|unseen@all) (\d+) bits (MAP@\w+|tie-aware)")


def term_title(text) -> str:
    """The glossary's text for ``text`` (a column heading, an index or method name), or ``""``."""
    text = str(text)
    found = _titles().get(text)
    if found is not None:
        return found
    heading = _UNSEEN_HEADING.fullmatch(text)
    if heading:
        return (f"{'tie-aware MAP@K' if heading[3] == 'tie-aware' else heading[3]} at {heading[2]}-bit codes, "
                f"{heading[1]}: {_titles()[heading[1]]} Mean ± sd (n training seeds), then the marks of what it "
                "rests on")
    bits = _BITS.fullmatch(text)
    if bits:
        return (f"The paper's MAP@K at {bits[1]} bits (HDHash paper, Table I)" if bits[2] else
                f"MAP@K at {bits[1]}-bit codes: mean ± sd (n training seeds), then the marks of what it rests on")
    return ""


def column_title(label: str) -> str:
    """The tooltip of a Table I row label: its method, its search where not the default, its variant."""
    base, _, variant = str(label).partition(" [")
    method, _, search = base.partition(" (")
    parts = [term_title(method) or method]
    if search:
        parts.append(f"search {search.rstrip(')')}: " + term_title("tree:keep" if search.startswith("tree")
                                                                  else search.rstrip(")")))
    if variant:
        parts.append(f"variant [{variant}: " + term_title("variant"))
    return "; ".join(p for p in parts if p)
