"""The HDHash paper's Table I as published, and the method order every table and plot follows.

The paper's MAP figures live in ``protocols/paper/table1_map.csv`` (HDHash paper, ICPR 2020) and are
read here alone; its Table II's (search time and memory) in :func:`protocols.efficiency_frame.paper_table2`.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent / "paper"
#: the code lengths of the paper's Table I: every table shows them, whatever --bits ran
PAPER_BITS = [16, 32, 48, 64]


def paper_table1() -> pd.DataFrame:
    """The paper's Table I, one row per (dataset, method, bits): its MAP."""
    return _paper_table1().copy()


@functools.lru_cache(maxsize=1)
def _paper_table1() -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "table1_map.csv")


def method_rank(method: str) -> tuple[int, str]:
    """A method's place in every table: the paper's Table I order, then any other method by name."""
    published = list(dict.fromkeys(_paper_table1()["method"]))
    return (published.index(method) if method in published else len(published), method)


def method_order(methods=None) -> list[str]:
    """``methods`` (default: every registered one) in :func:`method_rank`'s order."""
    if methods is None:
        from methods import list_methods

        methods = list_methods()
    return sorted(methods, key=method_rank)
