"""Table II's headline timed in pairs: :func:`paired_timing`, the last step of
:func:`protocols.efficiency_run.run_efficiency`.

A ratio between two rows timed minutes apart moves with whatever else the machine does then; timing
faiss flat at its best and the tree's headline points in turn, round after round, makes both sides of
each ratio meet the same minutes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from protocols.deadline import may_start
from protocols.efficiency_grid import setting_label
from protocols.efficiency_measure import Measure, time_batched, time_single
from protocols.efficiency_plan import build_planned

if TYPE_CHECKING:
    from protocols.efficiency_plan import PlannedBuild


#: rounds of :func:`paired_timing`: each round times faiss flat at its best and the tree's headline points once each
PAIRED_ROUNDS = 5


def paired_timing(builds: list[PlannedBuild], sides: dict, rows: list[dict], m: Measure, on_row=None, *,
                  kept: list[dict] = (), incomplete=frozenset(), until: float | None = None,
                  unpaired: list | None = None) -> list[dict]:
    """The headline ratios timed in pairs (issue 30: a ratio between rows timed minutes apart moved by
    20-30 % between two runs on this shared machine, its memory-bound rows by up to 60 %). At each
    size, faiss flat at its best (:func:`protocols.efficiency_frame.flat_best`, in the
    mode it was fastest in), each tree family's fastest setting meeting the criterion (the keep rule's
    and the ``max_codes`` budget's) and HDHash(0.3) are built
    again and timed in turn, one repeat each, for :data:`PAIRED_ROUNDS` rounds (the tree batched, as the
    headline quotes it), so both sides of each ratio meet the machine at the same minutes. Each tree
    row gets ``paired_ratio`` (the median over the rounds of flat's ms over its ms in the same round),
    ``paired_ms``, ``paired_flat_ms`` (the medians) and ``paired_flat`` (flat's setting and mode); the
    rows are passed to ``on_row`` again (stored over their first write). The rows ``kept`` by
    ``--resume`` count as this run's: a size whose rows were all kept is timed again only where its
    points lack the paired fields. Left as they are: sizes in ``incomplete`` (builds not started past
    the deadline ``until``, which also stops the pairing: those sizes go to ``unpaired``), and sizes
    where a side is missing."""
    import pandas as pd

    from protocols.efficiency_frame import TREE_ROWS, at_size, family_point, flat_best, paper_point_rows, prepared

    both = [*rows, *kept]
    by_key = {(r["index"], r["params"], r["db_size"], _encoded(r)): r for r in both}
    measured = {r["db_size"] for r in rows}
    for size in sorted({r["db_size"] for r in both} - set(incomplete)):
        frame = prepared(at_size(pd.DataFrame([r for r in both if r["db_size"] == size]), size))
        flat, _, mode = flat_best(frame)
        if flat is None:
            continue
        # each tree family's headline point: the goals quote the fastest of them, which on fashion-mosaic at
        # 10^6 was a max_codes budget (before, only the keep-rule family was paired)
        trees = [family_point(frame, name, flat["judged_map"]) for name in TREE_ROWS]
        paper = paper_point_rows(frame)
        paper = paper[paper["ms_per_query"].notna()]
        points = [p for p in (*trees, paper.iloc[0] if len(paper) else None) if p is not None]
        points = list({p["params"]: p for p in points}.values())
        if not points or (size not in measured and all(_number(p.get("paired_ratio")) for p in points)):
            continue  # nothing to pair, or every row here was kept, paired by the run that measured them
        if not may_start(until):
            if unpaired is not None:
                unpaired.append(size)
            continue
        contenders = [(flat, mode)] + [(p, "batched") for p in points]
        timers = [_paired_timer(builds, sides, r, how, m) for r, how in contenders]
        if any(t is None for t in timers):
            continue
        ms = np.array([[timer() for timer in timers] for _ in range(PAIRED_ROUNDS)])
        for i, (point, _) in enumerate(contenders[1:], start=1):
            row = by_key[(point["index"], point["params"], size, _encoded(point))]
            row.update(paired_ratio=float(np.median(ms[:, 0] / ms[:, i])), paired_ms=float(np.median(ms[:, i])),
                       paired_flat_ms=float(np.median(ms[:, 0])), paired_rounds=PAIRED_ROUNDS,
                       paired_flat=f"{flat['params']} ({mode})")
            if on_row is not None:
                on_row(row)
    return rows


def _number(value) -> bool:
    """Whether a record's field holds a value (a frame holds a missing one as NaN, a record as None)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _encoded(row):
    value = row.get("encoded_codes")
    return int(value) if _number(value) else None


def _paired_timer(builds: list[PlannedBuild], sides: dict, row, how: str, m: Measure):
    """A callable timing ``row``'s setting once (ms per query, ``how``: ``"batched"``, else one query at
    a time, as :func:`protocols.efficiency_frame.flat_best` names its modes), its index
    built again as the plan built it; None where the plan has no such setting."""
    for planned in builds:
        if (planned.size == row["db_size"] and planned.grid.row == row["index"] and not planned.left_out
                and setting_label(planned.build, {}) == (row["build_params"] or "")):
            for setting in planned.searches:
                if setting_label(planned.build, setting) == (row["params"] or ""):
                    side = sides[planned.grid.side]
                    built = build_planned(planned, side, m.topk)
                    if built.index is not None and setting:
                        built.index.set_search_params(**setting)
                    if how == "batched":
                        return lambda: time_batched(built.search, side.queries[:m.timing_queries], 1).ms
                    return lambda: time_single(built.search, side.queries[:m.single_queries], 1).ms
    return None
