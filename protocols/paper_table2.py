"""The paper's Table II beside ours: ``paper/table2.{md,csv}``, from ``efficiency/<dataset>.csv``.

Per dataset the largest database size of the default run (HDHash's tree at keep 0.3, faiss's flat
scan at its best and the numpy linear scan over HashNet's codes) and of every stored hierarchical
variant (HDHash over a later method's loss per level, beyond the paper, beside its own run's flat
scan at its best). faiss's ``IndexBinaryFlat`` is quoted as everywhere in Table II: at its best
settings, the fastest per query of every setting, batched or one query at a time
(:func:`protocols.efficiency_frame.flat_best`). Table II's own tables and plots are
:mod:`protocols.efficiency_views`'; this is the paper's comparison.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from protocols.efficiency_frame import flat_best, paper_point_rows, paper_rows, paper_speedups, paper_table2, prepared
from protocols.efficiency_records import table_name
from protocols.markdown import number, table


def level_loss_tables(out, name: str) -> list[tuple[str, Path]]:
    """``(level loss, CSV)`` of the stored Table II runs of HDHash's tree over another loss per level
    (``protocols.efficiency --param level_loss=<loss>``, written as ``<dataset>--hdhash-level_loss-<loss>``)."""
    from methods.hdhash import LEVEL_LOSSES

    found = []
    for loss in LEVEL_LOSSES:
        if loss == "hashnet":
            continue
        path = Path(out) / "efficiency" / f"{table_name(name, variants={'hdhash': f'level_loss={loss!r}'})}.csv"
        if path.is_file():
            found.append((loss, path))
    return found


def table2_frame(out, names) -> pd.DataFrame:
    """Table II's rows: per dataset the default run's tree (keep 0.3), faiss flat at its best
    (:func:`protocols.efficiency_frame.flat_best`) and numpy scan, then the tree over each stored
    hierarchical variant (HDHash with a later method's loss per level: beyond the paper, with its own
    run's faiss flat at its best to compare against)."""
    p_tree, p_hashnet = paper_rows(paper_table2())
    rows = []

    def largest_of(path):
        frame = pd.read_csv(path, keep_default_na=True)
        frame["params"] = frame["params"].fillna("")
        return frame[frame["db_size"] == frame["db_size"].max()]

    def add(name, label, r, published, run="default", ms=None):
        if r is None:
            return
        tie_aware = float(r["map_tie_aware"]) if "map_tie_aware" in r else float("nan")
        rows.append({"dataset": name, "row": label, "run": run, "code_bits": r["code_bits"],
                     "db_size": int(r["db_size"]), "ms_per_query": float(r["ms_per_query"]) if ms is None else ms,
                     "memory_mb": float(r["index_bytes"]) / 1e6, "map": float(r["map"]),
                     "map_tie_aware": tie_aware, "recall": float(r["recall"]),
                     "paper_ms_per_query": (float(published["search_ms_per_query"]) if published is not None
                                            else float("nan")),
                     "paper_memory_mb": float(published["memory_mb"]) if published is not None else float("nan")})

    def first(found):
        return found.iloc[0] if len(found) else None

    def tree_03(largest):
        return first(paper_point_rows(largest))

    def add_flat(name, largest, run="default"):  # its fastest setting's time, batched or one query at a time
        best, ms, mode = flat_best(prepared(largest))
        same_run = ", same run" if run != "default" else ""
        add(name, f"hashnet, faiss IndexBinaryFlat (best, {mode}{same_run})", best, None, run, ms)

    for name in names:
        path = Path(out) / "efficiency" / f"{name}.csv"
        if path.is_file():
            largest = largest_of(path)
            add(name, "hdhash tree (keep 0.3)", tree_03(largest), p_tree)
            add_flat(name, largest)
            add(name, "hashnet, numpy linear scan", first(largest[largest["index"] == "numpy-scan"]), p_hashnet)
        for loss, variant_path in level_loss_tables(out, name):
            largest = largest_of(variant_path)
            run = variant_path.stem
            add(name, f"hdhash [level_loss={loss}] tree (keep 0.3), beyond the paper", tree_03(largest), None, run)
            add_flat(name, largest, run)
    return pd.DataFrame(rows)


def table2_markdown(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["No efficiency results stored (`results/efficiency/<dataset>.csv`); run `python -m "
                "protocols.efficiency`."]
    header = ["dataset", "row", "code bits", "codes", "ms/query (ours)", "ms/query (paper)", "memory MB (ours)",
              "memory MB (paper)", "MAP@K", "tie-aware MAP@K", "recall"]
    lines = table(header, [[r["dataset"], r["row"], r["code_bits"], f"{r['db_size']:,}", number(r["ms_per_query"], 3),
                            number(r["paper_ms_per_query"], 3), number(r["memory_mb"], 1),
                            number(r["paper_memory_mb"], 0), number(r["map"]), number(r["map_tie_aware"]),
                            number(r["recall"], 3)] for _, r in frame.iterrows()])
    for (name, run), part in frame.groupby(["dataset", "run"], sort=False):
        tree = part[part["row"].str.startswith("hdhash")]
        scan = part[part["row"].str.contains("numpy")]
        flat = part[part["row"].str.contains("faiss")]
        if run == "default" and len(tree) and len(scan):
            t, s = tree.iloc[0], scan.iloc[0]
            speed = f"{s['ms_per_query'] / t['ms_per_query']:.2f}x time, {s['memory_mb'] / t['memory_mb']:.2f}x memory"
            against = (f" (against faiss's SIMD scan: {flat.iloc[0]['ms_per_query'] / t['ms_per_query']:.2f}x "
                       "time)") if len(flat) else ""
            lines.append("")
            paper_time, paper_memory = paper_speedups()
            lines.append(f"{name}: HDHash's tree against the linear scan: {speed}{against}; the paper: "
                         f"{paper_time:.2f}x time, {paper_memory:.2f}x memory (ImageNet-100).")
        elif run != "default" and len(tree) and len(flat):
            t, f = tree.iloc[0], flat.iloc[0]
            lines.append("")
            lines.append(f"{name}, {t['row'].split(' tree')[0]} (`efficiency/{run}.md`): the tree is "
                         f"{f['ms_per_query'] / t['ms_per_query']:.2f}x faster than faiss's flat scan over HashNet's "
                         f"codes in the same run, at tie-aware MAP@K {number(t['map_tie_aware'])} against "
                         f"{number(f['map_tie_aware'])}.")
    return lines


def write_table2(out, names) -> list[Path]:
    """``paper/table2.{csv,md}`` for the datasets ``names`` (those available here)."""
    from common.files import atomic_write_text

    folder = Path(out) / "paper"
    frame = table2_frame(out, names)
    text = ["# Table II: search time and memory, ours beside the paper's", "",
            "Generated by `python -m protocols.paper` from `efficiency/<dataset>.csv` (largest database size of each "
            "run; one thread). faiss's IndexBinaryFlat is quoted at its best settings, as everywhere in Table II: the "
            "fastest per query of every setting (use_heap, query_batch_size), batched or one query at a time. Paper "
            "figures: ImageNet-100, HDHash 8+16+40 bits at keep ratio 0.3 against HashNet's 64-bit linear scan, their "
            "machine. Rows marked beyond the paper come from "
            "`efficiency/<dataset>--hdhash-level_loss-<loss>.csv` (`python -m protocols.efficiency --param "
            "level_loss=<loss>`): HDHash trained with a later method's loss per level, its tree timed beside faiss's "
            "flat scan over HashNet's codes in the same run.", ""]
    return [atomic_write_text(folder / "table2.csv", frame.to_csv(index=False, float_format="%.6g")),
            atomic_write_text(folder / "table2.md", "\n".join(text + table2_markdown(frame)) + "\n")]
