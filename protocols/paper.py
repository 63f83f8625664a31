"""One command for the paper's tables: run what is missing, then regenerate Table I and Table II.

    python -m protocols.paper                      # every available dataset, all 11 methods, 16-64 bits
    python -m protocols.paper --dry-run            # say what would run (and what each paper dataset needs)

For each dataset (built-in: ``fashion-mnist``, ``fashion-mosaic``; paper: ``imagenet-100``,
``nus-wide-21``, ``ms-coco`` where their list files are found, see :mod:`datasets.listfile`), every
(method, bits) pair that has no stored run record is run through :mod:`protocols.map`; a stored
record is reused when its dataset, method, bits, search (the method's default), MAP@K, seed and
split SHA-256 (and, for the photo datasets, the list files' SHA-256) match, and its parameters are
those a run would use now (the method's defaults with ``--param``; a row stored with other values,
say before a default changed, is run again and the dry run says which parameter differs). Table II comes from
``<out>/efficiency/<dataset>.csv`` (:mod:`protocols.efficiency`), run for the ``--efficiency``
datasets when that file is missing.

Writes ``<out>/paper/``: ``table1.md`` / ``table1.csv`` (our MAP beside the paper's and the
difference, in the paper's layout: a block per dataset, methods as rows, code lengths as columns),
``table1-<dataset>.png``, ``table2.md`` / ``table2.csv`` (search time and memory beside the paper's),
``status.md`` (per paper dataset: rows stored, or which files it needs and where). With ``--readme``
(default: the project's README.md when ``--out`` is the project's own ``results/``) the block between
``<!-- results:begin -->`` and ``<!-- results:end -->`` is rewritten with the built-in datasets'
tables. Whatever subset ran, these files are rebuilt from the whole store (:func:`rebuild_tables`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from common.files import atomic_savefig, atomic_write_text
from protocols import grid, runner
from protocols.cli import add_grid_flags, grid_settings, run_command
from protocols.runner import UsageError

PROG = "python -m protocols.paper"
PAPER_DIR = Path(__file__).resolve().parent / "paper"
REPO_README = Path(__file__).resolve().parent.parent / "README.md"
BUILTIN = ["fashion-mnist", "fashion-mosaic"]
PAPER = ["imagenet-100", "nus-wide-21", "ms-coco"]
#: the code lengths of the paper's Table I: every table shows them, whatever --bits ran
PAPER_BITS = [16, 32, 48, 64]
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def build_parser():
    from methods import list_methods

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=None, help="comma-separated (default: all registered: "
                                                        f"{','.join(list_methods())})")
    parser.add_argument("--bits", default="16,32,48,64", help="code lengths (default: 16,32,48,64, the paper's)")
    parser.add_argument("--datasets", default=",".join(BUILTIN + PAPER),
                        help=f"comma-separated (default: {','.join(BUILTIN + PAPER)}; unavailable ones are "
                             "reported, not run)")
    parser.add_argument("--data-root", action="append", metavar="DATASET=DIR", default=[],
                        help="folder of a dataset (repeatable), e.g. imagenet-100=/data/imagenet; else its env "
                             "variable")
    parser.add_argument("--efficiency", default="fashion-mnist,imagenet-100",
                        help="datasets whose Table II is run when missing (default: fashion-mnist,imagenet-100; "
                             "'' = none)")
    parser.add_argument("--efficiency-sizes", default="10000,100000,1000000", help="--db-sizes of protocols.efficiency")
    parser.add_argument("--dry-run", action="store_true", help="say what would run and what is reused; run and "
                                                               "write nothing")
    parser.add_argument("--no-run", action="store_true",
                        help="run nothing: rebuild the tables and the README block from the stored rows alone "
                             "(missing rows are listed in status.md)")
    parser.add_argument("--device", default=None, help="device for deep methods (cpu, cuda, auto)")
    parser.add_argument("--threads", type=int, default=None, help="as protocols.map --threads")
    parser.add_argument("--features", default="alexnet-fc7", help="shallow methods' features on photo datasets "
                                                                  "(protocols.map --features)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="method parameter, as protocols.map's (repeatable)")
    add_grid_flags(parser, "each (method, bits)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--readme", default=None, help="README whose marked results block is rewritten "
                        "(default: the project's README.md when --out is the project's results/ folder, "
                        "wherever the command runs from; 'none' = no README)")
    return parser


# -- what is there, what is missing --------------------------------------------------------------
def probe(name: str, data_root=None, seed: int = 0):
    """``(dataset or None, status text)``: the loaded dataset, or why it is unavailable."""
    from datasets import DatasetError, load_dataset

    try:
        dataset = load_dataset(name, data_root=data_root, seed=seed)
    except DatasetError as exc:
        return None, str(exc)
    return dataset, f"available ({dataset.info.get('root', 'built in')})"


def method_order() -> list[str]:
    """Table I's rows in the paper's order (from ``protocols/paper/table1_map.csv``), then any other
    registered method by name."""
    from methods import list_methods

    published = list(dict.fromkeys(paper_table1()["method"]))
    return sorted(list_methods(), key=lambda m: (published.index(m) if m in published else len(published), m))


def stored_rows(out, dataset, seed: int, shared: dict | None = None, all_seeds: bool = False) -> dict:
    """Stored records of ``dataset``: ``{(method, bits): record}`` (default search) of the variant a
    run with ``shared`` (``--param``) makes: the default variant, the one Table I shows, without.
    The run trained with the split's seed; with ``all_seeds``, ``{(method, bits): [record per
    training seed]}``."""
    from methods import UnknownMethodError

    topk, data_sha = runner.resolve_topk(dataset), dataset.info.get("data_sha256")
    wanted = {}

    def variant(method, bits):
        if (method, bits) not in wanted:
            try:
                now = runner.create_for(dataset.name, method, bits, shared).get_params()
                wanted[(method, bits)] = runner.variant_of(method, bits, now, dataset.name)
            except UnknownMethodError:  # a record of a method no longer registered matches nothing
                wanted[(method, bits)] = None
        return wanted[(method, bits)]

    rows = {}
    for record in runner.stored(out, dataset.name):
        if (record.get("dataset") == dataset.name and record.get("default_search", True)
                and record.get("seed") == seed and int(record.get("topk", -1)) == topk
                and record.get("split_sha256") == dataset.split_sha256
                and (data_sha is None or record.get("data_sha256") == data_sha)
                and record.get("variant", "") == variant(record["method"], int(record["bits"]))):
            key = (record["method"], int(record["bits"]))
            if all_seeds:
                rows.setdefault(key, []).append(record)
            elif record.get("train_seed", seed) == seed:
                rows[key] = record
    return rows


def stale_params(record: dict, shared: dict | None = None) -> list[str]:
    """Why a stored row is stale, as ``"name old -> new"`` per parameter that differs from what a
    run would use now (:func:`protocols.runner.changed_params`)."""
    return [f"{k} {old!r} -> {new!r}" for k, (old, new) in runner.changed_params(record, shared).items()]


def plan(dataset, methods, bits, out, seed, shared=None) -> tuple[dict, list, dict]:
    """``(reusable, to_run, stale)``: stored rows run with today's parameters, the (method, bits)
    pairs to run (absent or stale), and why each stale one is (:func:`stale_params`)."""
    stored = stored_rows(out, dataset, seed, shared)
    stale = {key: why for key, record in stored.items() if (why := stale_params(record, shared))}
    reusable = {key: record for key, record in stored.items() if key not in stale}
    missing = [(m, b) for m in methods for b in bits if (m, b) not in reusable]
    return reusable, missing, stale


def run_missing(dataset, jobs, out, workers: int = 0, scheduler=None) -> int:
    """Run the missing jobs (:func:`protocols.grid.run_grid`: in process or on a cluster), store
    each as it finishes, rebuild the dataset's MAP tables; returns how many failed."""
    from protocols import grid
    from protocols.tables import write_map_report

    try:
        result = grid.run_grid(jobs, out, workers=workers, scheduler=scheduler, dataset=dataset)
    finally:
        write_map_report(out, dataset.name)
    return len(result.failures)


# -- tables --------------------------------------------------------------------------------------
def paper_table1() -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "table1_map.csv")


def table1_frame(out, datasets: dict, methods, bits, seed, shared: dict | None = None) -> pd.DataFrame:
    """One row per (dataset, method, bits): our MAP (mean, sd and count over the training seeds
    stored) beside the paper's; ``shared``: the ``--param`` variant to read (default: the default one)."""
    paper = paper_table1()
    rows = []
    for name, dataset in datasets.items():
        stored = stored_rows(out, dataset, seed, shared, all_seeds=True) if dataset is not None else {}
        published = paper[paper["dataset"] == name]
        for method in methods:
            for b in bits:
                seeds = sorted(stored.get((method, b), []), key=lambda r: r.get("train_seed", seed))
                record = seeds[0] if seeds else None
                match = published[(published["method"] == method) & (published["bits"] == b)]
                values = pd.Series([float(r["map"]) for r in seeds], dtype=float)
                ours = float(values.mean()) if len(values) else float("nan")
                theirs = float(match["map"].iloc[0]) if len(match) else float("nan")
                rows.append({"dataset": name, "method": method, "bits": b,
                             "topk": (int(record["topk"]) if record
                                      else runner.resolve_topk(dataset) if dataset else None),
                             "map": ours, "map_sd": float(values.std()) if len(values) > 1 else float("nan"),
                             "n_seeds": len(values), "stale": any(runner.changed_params(r, shared) for r in seeds),
                             "paper_map": theirs, "difference": ours - theirs,
                             "train_s": float(record["train_s"]) if record else float("nan"),
                             "split_sha256": record["split_sha256"] if record else None,
                             "features": record.get("features") if record else None})
    return pd.DataFrame(rows)


def _cell(value, digits=4, sd=float("nan"), n=1):
    """``value``, or ``mean ± sd (n)`` over several training seeds."""
    if pd.isna(value):
        return "–"
    return f"{value:.{digits}f}" + (f" ± {sd:.{digits}f} ({int(n)})" if n and n > 1 and not pd.isna(sd) else "")


def _signed(value):
    return "–" if pd.isna(value) else f"{value:+.4f}"


def dataset_block(frame: pd.DataFrame, name: str, with_paper: bool, stored_only: bool = False) -> list[str]:
    part = frame[frame["dataset"] == name]
    if stored_only:  # methods with at least one stored row
        part = part[part.groupby("method")["map"].transform(lambda v: v.notna().any())]
    bits = sorted(part["bits"].unique())
    if with_paper:
        header = "| method | " + " | ".join(f"{b} bits: ours / paper / diff" for b in bits) + " |"
    else:
        header = "| method | " + " | ".join(f"{b} bits" for b in bits) + " |"
    lines = [header, "|---|" + "---|" * len(bits)]
    for method in pd.unique(part["method"]):
        cells = []
        for b in bits:
            row = part[(part["method"] == method) & (part["bits"] == b)].iloc[0]
            ours = _cell(row["map"], sd=row.get("map_sd", float("nan")), n=row.get("n_seeds", 1))
            ours += "*" if bool(row.get("stale", False)) else ""
            cells.append(f"{ours} / {_cell(row['paper_map'])} / {_signed(row['difference'])}" if with_paper else ours)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if part["stale"].astype(bool).any():
        lines += ["", "\\* stored with parameters that differ from today's defaults (e.g. before CNNH's stage 1 "
                  "ran to convergence); `python -m protocols.paper` runs it again."]
    return lines


def beyond_rows() -> list[tuple[str, str, dict]]:
    """``(row label, method, --param)`` of Table I's "beyond the paper" block: every method after the
    paper (``beyond_paper``), then HDHash trained with each of their losses per level, on that loss's
    schedule (DPSH's 150 epochs without early stopping; :func:`methods.hdhash.on_loss_schedule`)."""
    from methods import list_methods
    from methods.hdhash import LEVEL_LOSSES, on_loss_schedule

    rows = [(method, method, {}) for method in list_methods(beyond=True)]
    return rows + [(f"hdhash [level_loss={loss}]", "hdhash", on_loss_schedule(loss)) for loss in LEVEL_LOSSES
                   if loss != "hashnet"]


def beyond_frame(out, datasets: dict, bits, seed) -> pd.DataFrame:
    """:func:`table1_frame`'s rows for :func:`beyond_rows` (no paper figures: the paper has none),
    labelled by row; only rows with a stored run."""
    parts = []
    for label, method, shared in beyond_rows():
        part = table1_frame(out, datasets, [method], bits, seed, shared)
        parts.append(part.assign(method=label))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        return frame
    return frame[frame.groupby(["dataset", "method"])["map"].transform(lambda v: v.notna().any())]


def beyond_block(frame: pd.DataFrame, name: str) -> list[str]:
    """The "beyond the paper" lines of dataset ``name`` (none when nothing of it is stored)."""
    if frame.empty or not (frame["dataset"] == name).any():
        return []
    return ([f"### {name}: beyond the paper", "",
             "Methods after the HDHash paper (not in its Table I; the same protocol, split and MAP@K), and HDHash "
             "with their losses per level (`--param level_loss=<name>`, on that method's schedule: DPSH's adds "
             "`--param epochs=150 --param patience=None`); mean ± sd (n training seeds).", ""]
            + dataset_block(frame, name, with_paper=False, stored_only=True) + [""])


def k_text(frame, name) -> str:
    topk = frame.loc[frame["dataset"] == name, "topk"].dropna()
    return f"MAP@{int(topk.iloc[0])}" if len(topk) else "MAP@K"


def plot_dataset(frame: pd.DataFrame, name: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = frame[frame["dataset"] == name]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    from protocols.style import method_style

    for method, group in part.groupby("method", sort=False):
        group = group.sort_values("bits")
        style = method_style(method)
        if group["map"].notna().any():
            ax.plot(group["bits"], group["map"], label=f"{method} (ours)", **dict(style.mpl(), linestyle="-"))
        if group["paper_map"].notna().any():
            ax.plot(group["bits"], group["paper_map"], label=f"{method} (paper)",
                    **dict(style.mpl(), linestyle=":", markerfacecolor="white"))
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel(k_text(frame, name))
    ax.set_xticks(sorted(part["bits"].unique()))
    ax.set_title(f"{name}: ours (solid) against the paper (dotted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path


def compute_minutes(out, dataset, seed, methods=None) -> tuple[float, str]:
    """Minutes of fit + encode + search of the stored rows (of ``methods`` only, when given) and the machines."""
    rows = [r for (method, _), r in stored_rows(out, dataset, seed).items() if methods is None or method in methods]
    seconds = sum(float(r.get("train_s", 0)) + float(r.get("encode_s", 0)) + float(r.get("search_s", 0)) for r in rows)
    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores" for r in rows if "machine" in r})
    return seconds / 60.0, "; ".join(machines)


def level_loss_tables(out, name: str) -> list[tuple[str, Path]]:
    """``(level loss, CSV)`` of the stored Table II runs of HDHash's tree over another loss per level
    (``protocols.efficiency --param level_loss=<loss>``, written as ``<dataset>--hdhash-level_loss-<loss>``)."""
    from methods.hdhash import LEVEL_LOSSES
    from protocols.efficiency import table_name

    found = []
    for loss in LEVEL_LOSSES:
        if loss == "hashnet":
            continue
        path = Path(out) / "efficiency" / f"{table_name(name, variants={'hdhash': f'level_loss={loss!r}'})}.csv"
        if path.is_file():
            found.append((loss, path))
    return found


def table2_frame(out, names) -> pd.DataFrame:
    """Table II's rows: per dataset the default run's tree (keep 0.3), faiss flat and numpy scan, then
    the tree over each stored hierarchical variant (HDHash with a later method's loss per level: beyond
    the paper, with its own run's faiss flat to compare against)."""
    from protocols.efficiency_report import paper_rows, paper_table2

    p_tree, p_hashnet = paper_rows(paper_table2())
    rows = []

    def largest_of(path):
        frame = pd.read_csv(path, keep_default_na=True)
        frame["params"] = frame["params"].fillna("")
        return frame[frame["db_size"] == frame["db_size"].max()]

    def add(name, label, found, published, run="default"):
        if not len(found):
            return
        r = found.iloc[0]
        tie_aware = float(r["map_tie_aware"]) if "map_tie_aware" in r else float("nan")
        rows.append({"dataset": name, "row": label, "run": run, "code_bits": r["code_bits"],
                     "db_size": int(r["db_size"]), "ms_per_query": float(r["ms_per_query"]),
                     "memory_mb": float(r["index_bytes"]) / 1e6, "map": float(r["map"]),
                     "map_tie_aware": tie_aware, "recall": float(r["recall"]),
                     "paper_ms_per_query": (float(published["search_ms_per_query"]) if published is not None
                                            else float("nan")),
                     "paper_memory_mb": float(published["memory_mb"]) if published is not None else float("nan")})

    def tree_03(largest):
        return largest[(largest["index"] == "hdhash-tree") & (largest["params"] == "keep_ratio=0.3")]

    for name in names:
        path = Path(out) / "efficiency" / f"{name}.csv"
        if path.is_file():
            largest = largest_of(path)
            add(name, "hdhash tree (keep 0.3)", tree_03(largest), p_tree)
            add(name, "hashnet, faiss IndexBinaryFlat", largest[largest["index"] == "faiss-flat"], None)
            add(name, "hashnet, numpy linear scan", largest[largest["index"] == "numpy-scan"], p_hashnet)
        for loss, variant_path in level_loss_tables(out, name):
            largest = largest_of(variant_path)
            run = variant_path.stem
            add(name, f"hdhash [level_loss={loss}] tree (keep 0.3), beyond the paper", tree_03(largest), None, run)
            add(name, "hashnet, faiss IndexBinaryFlat (same run)", largest[largest["index"] == "faiss-flat"], None,
                run)
    return pd.DataFrame(rows)


def table2_markdown(frame: pd.DataFrame) -> list[str]:
    from protocols.efficiency_report import paper_speedups

    if frame.empty:
        return ["No efficiency results stored (`results/efficiency/<dataset>.csv`); run `python -m "
                "protocols.efficiency`."]
    lines = ["| dataset | row | code bits | codes | ms/query (ours) | ms/query (paper) | memory MB (ours) | "
             "memory MB (paper) | MAP@K | tie-aware MAP@K | recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r['dataset']} | {r['row']} | {r['code_bits']} | {r['db_size']:,} | "
                     f"{_cell(r['ms_per_query'], 3)} | "
                     f"{_cell(r['paper_ms_per_query'], 3)} | {_cell(r['memory_mb'], 1)} | "
                     f"{_cell(r['paper_memory_mb'], 0)} | "
                     f"{_cell(r['map'])} | {_cell(r['map_tie_aware'])} | {_cell(r['recall'], 3)} |")
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
                         f"codes in the same run, at tie-aware MAP@K {_cell(t['map_tie_aware'])} against "
                         f"{_cell(f['map_tie_aware'])}.")
    return lines


def write_tables(out, seed: int, datasets: dict, statuses: dict, methods, bits) -> list[Path]:
    folder = Path(out) / "paper"
    frame = table1_frame(out, datasets, methods, bits, seed)
    written = [atomic_write_text(folder / "table1.csv", frame.to_csv(index=False, float_format="%.6g"))]
    lines = ["# Table I: MAP, ours beside the paper's", "",
             f"Generated by `{PROG}` from the run records in `map/runs/`; paper figures from "
             "`protocols/paper/table1_map.csv` (HDHash paper, ICPR 2020). difference = ours - paper. "
             "Shallow methods on the photo datasets run on the features named in `table1.csv`'s `features` column.", ""]
    beyond = beyond_frame(out, {n: d for n, d in datasets.items() if d is not None}, bits, seed)
    for name, dataset in datasets.items():
        with_paper = name in PAPER
        lines += [f"## {name} ({k_text(frame, name)})", "", statuses[name], ""]
        if dataset is None and not with_paper:
            continue
        lines += dataset_block(frame, name, with_paper) + [""]  # the paper's figures even where we have none
        lines += beyond_block(beyond, name)
        if dataset is not None and frame.loc[frame["dataset"] == name, "map"].notna().any():
            written.append(plot_dataset(frame, name, folder / f"table1-{name}.png"))
    if not beyond.empty:
        written.append(atomic_write_text(folder / "table1-beyond.csv", beyond.drop(
            columns=["paper_map", "difference"]).to_csv(index=False, float_format="%.6g")))
    written.append(atomic_write_text(folder / "table1.md", "\n".join(lines)))

    t2 = table2_frame(out, [n for n, d in datasets.items() if d is not None])
    written.append(atomic_write_text(folder / "table2.csv", t2.to_csv(index=False, float_format="%.6g")))
    text = ["# Table II: search time and memory, ours beside the paper's", "",
            f"Generated by `{PROG}` from `efficiency/<dataset>.csv` (largest database size of each run; one thread). "
            "Paper figures: ImageNet-100, HDHash 8+16+40 bits at keep ratio 0.3 against HashNet's 64-bit linear "
            "scan, their machine. Rows marked beyond the paper come from "
            "`efficiency/<dataset>--hdhash-level_loss-<loss>.csv` (`python -m protocols.efficiency --param "
            "level_loss=<loss>`): HDHash trained with a later method's loss per level, its tree timed beside faiss's "
            "flat scan over HashNet's codes in the same run.", ""]
    written.append(atomic_write_text(folder / "table2.md", "\n".join(text + table2_markdown(t2)) + "\n"))
    status = ["# Datasets of the paper's tables", ""] + [f"- **{n}**: {statuses[n]}" for n in datasets]
    written.append(atomic_write_text(folder / "status.md", "\n".join(status) + "\n"))
    return written


def readme_block(out, seed: int, datasets, statuses, bits) -> str:
    """The README's block: every stored row of the built-in datasets (whatever ``--methods`` was)."""
    methods = [m for m in method_order() if m in runner.method_classes(["paper"])]
    frame = table1_frame(out, datasets, methods, bits, seed)
    lines = [f"Generated by `{PROG}` (do not edit between the markers); full tables in "
             "[results/paper/](results/paper/table1.md).", ""]
    for name in BUILTIN:
        if datasets.get(name) is None:
            continue
        minutes, machine = compute_minutes(out, datasets[name], seed, methods)
        done = frame[(frame["dataset"] == name) & frame["map"].notna()]
        if done.empty:
            lines += [f"**{name}**: no rows stored yet.", ""]
            continue
        lines += [f"**{name}**, {k_text(frame, name)} ({len(done)} of {len(frame[frame['dataset'] == name])} "
                  "rows of the "
                  f"{len(methods)} methods stored; they took {minutes:.1f} min of fit + encode + search on "
                  f"{machine or 'this machine'}):", ""]
        lines += dataset_block(frame, name, with_paper=False, stored_only=True) + [""]
    for name in PAPER:
        if name in statuses:
            lines.append(f"- {name}: {statuses[name]}")
    return "\n".join(lines).rstrip() + "\n"


def update_readme(path: Path, block: str) -> bool:
    text = path.read_text() if path.is_file() else ""
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(path, f"{head}{README_BEGIN}\n{block}{README_END}{tail}")
    return True


# -- main ----------------------------------------------------------------------------------------
@dataclass
class PaperRun:
    """What one ``protocols.paper`` call does, every flag checked (:func:`settings`)."""

    methods: list
    bits: list
    shared: dict
    datasets: list
    roots: dict
    seed: int = 0
    out: str = "results"
    features: str = "alexnet-fc7"
    device: str | None = None
    threads: int | None = None
    efficiency: list = field(default_factory=list)
    efficiency_sizes: list = field(default_factory=lambda: [10000, 100000, 1000000])
    dry_run: bool = False
    no_run: bool = False
    readme: str | None = None
    train_seeds: list = field(default_factory=lambda: [0])
    workers: int = 0
    scheduler: str | None = None

    @property
    def runs(self) -> bool:
        return not (self.dry_run or self.no_run)


def settings(args) -> PaperRun:
    """The :class:`PaperRun` of the parsed flags; bad input raises :class:`UsageError`."""
    from datasets import list_datasets

    order = method_order()
    methods = list(runner.method_classes(runner.parse_names(args.methods, "--methods")) if args.methods
                   else runner.method_classes(["paper"]))
    methods = sorted(methods, key=order.index)
    bits, shared = runner.parse_bits(args.bits), runner.parse_params(args.param)
    names = runner.parse_names(args.datasets, "--datasets")
    for name in names:
        if name not in list_datasets():
            raise UsageError(f"unknown dataset {name!r}; valid datasets: {', '.join(list_datasets())}")
    roots = {}
    for item in args.data_root:
        if "=" not in item:
            raise UsageError(f"--data-root takes DATASET=DIR, got {item!r}")
        key, value = item.split("=", 1)
        if key.strip() not in names:
            raise UsageError(f"--data-root names {key.strip()!r}, which is not among --datasets ({', '.join(names)})")
        roots[key.strip()] = value
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    train_seeds, workers, scheduler = grid_settings(args)
    try:
        sizes = [int(size) for size in runner.parse_names(args.efficiency_sizes, "--efficiency-sizes")]
    except ValueError:
        raise UsageError(f"--efficiency-sizes must be positive integers, got {args.efficiency_sizes!r}") from None
    runner.check_jobs(runner.method_classes(methods), bits, shared, device=args.device)
    if not args.dry_run:
        runner.check_writable(args.out, "--out")
    return PaperRun(methods, bits, shared, names, roots, seed=args.seed, out=args.out, features=args.features,
                    device=args.device, threads=args.threads,
                    efficiency=[d.strip() for d in args.efficiency.split(",") if d.strip()], efficiency_sizes=sizes,
                    dry_run=args.dry_run, no_run=args.no_run, readme=args.readme,
                    train_seeds=train_seeds, workers=workers, scheduler=scheduler)


def table1_datasets(run: PaperRun) -> tuple[dict, dict]:
    """Per dataset: load it, say what is stored and what would run, run what is missing unless
    ``--dry-run`` / ``--no-run``; returns the loaded datasets (None where unavailable) and statuses."""
    datasets, statuses = {}, {}
    methods, bits = run.methods, run.bits
    for name in run.datasets:
        dataset, status = probe(name, run.roots.get(name), run.seed)
        datasets[name] = dataset
        if dataset is None:
            statuses[name] = f"not run: {status}"
            print(f"{name}: {statuses[name]}")
            continue
        statuses[name] = status
        _, _, stale = plan(dataset, methods, bits, run.out, run.seed, run.shared)
        jobs = grid.expand(name, methods, bits, run.train_seeds, seed=run.seed, params=run.shared,
                           data_root=run.roots.get(name), features=run.features, device=run.device)
        todo, reused = grid.pending(jobs, run.out, dataset, workers=run.workers, scheduler=run.scheduler)

        def label(job):
            text = f"{job.method}@{job.bits}" + (f" seed {job.train_seed}" if job.train_seed != run.seed else "")
            why = stale.get((job.method, job.bits)) if job.train_seed == run.seed else None
            return text + (f" (stored with other parameters: {'; '.join(why)})" if why else "")

        print(f"{name}: {status}; {reused} rows stored and reused, {len(todo)} to run"
              + (": " + ", ".join(label(job) for job in todo) if todo else ""))
        if todo and run.runs:
            failed = run_missing(dataset, todo, run.out, run.workers, run.scheduler)
            if failed:
                raise RuntimeError(f"{name}: {failed} runs failed (each said why above); stored rows are kept, "
                                   "rerun to resume")
            print(f"{name}: {len(todo)} rows computed by this run, {reused} reused")
    return datasets, statuses


def table_datasets(run: PaperRun, loaded: dict, statuses: dict) -> tuple[dict, dict]:
    """Every dataset the tables show (the built-in and the paper's, whatever ``--datasets`` ran):
    ``{name: dataset or None}`` and the probe's text; those this run loaded are reused."""
    datasets, texts = {}, {}
    for name in dict.fromkeys([*BUILTIN, *PAPER, *run.datasets]):
        if name in loaded:
            datasets[name], texts[name] = loaded[name], statuses[name]
        else:
            datasets[name], texts[name] = probe(name, run.roots.get(name), run.seed)
    return datasets, texts


def store_status(out, seed: int, dataset, probe_text: str, methods, bits) -> str:
    """A dataset's line in the tables, from the store alone: how many of Table I's rows it holds."""
    if dataset is None:
        return probe_text if probe_text.startswith("not run") else f"not run: {probe_text}"
    stored = stored_rows(out, dataset, seed)
    count = sum((m, b) in stored for m in methods for b in bits)
    return f"{count} of {len(methods) * len(bits)} rows stored; data: {dataset.info.get('root', 'built in')}"


def table2_datasets(run: PaperRun, datasets: dict) -> None:
    """Run :func:`protocols.efficiency.run_efficiency` where a ``--efficiency`` dataset has no Table II."""
    from protocols.efficiency import run_efficiency
    from protocols.efficiency_report import write_efficiency_report

    for name in run.efficiency:
        if datasets.get(name) is None:
            continue
        path = Path(run.out) / "efficiency" / f"{name}.csv"
        if path.is_file():
            print(f"{name}: Table II rows stored in {path}, reused")
            continue
        print(f"{name}: Table II missing, {'not run' if run.no_run else 'would run' if run.dry_run else 'running'} "
              f"protocols.efficiency --db-sizes {','.join(map(str, run.efficiency_sizes))}")
        if run.runs:
            params = dict(run.shared, **({"device": run.device} if run.device else {}))
            rows = run_efficiency(datasets[name], run.efficiency_sizes, seed=run.seed, params=params)
            write_efficiency_report(rows, Path(run.out), name)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    return run_command(PROG, lambda: run_paper(settings(args)))


def run_paper(run: PaperRun) -> int:
    """Table I's missing rows, Table II where missing, then the tables and the README block."""
    if run.threads and not run.dry_run:
        from common.threads import pin_threads

        pin_threads(run.threads)
    datasets, statuses = table1_datasets(run)
    table2_datasets(run, datasets)
    if run.dry_run:
        print("dry run: nothing run, nothing written")
        return 0
    for path in rebuild_tables(run.out, run.seed, *table_datasets(run, datasets, statuses), readme=run.readme):
        print(path)
    return 0


def rebuild_tables(out, seed: int, datasets: dict, probe_texts: dict, readme: str | None = None) -> list[Path]:
    """Table I and II, the status page and the README block, always from the whole store: every
    dataset in ``datasets``, every Table I method, the paper's code lengths (and any other stored),
    so a run of a subset never shrinks them. The README block is rewritten only where that README
    belongs to the results read (``out`` is the project's ``results/``) or ``readme`` names one."""
    methods = [m for m in method_order() if m in runner.method_classes(["paper"])]
    bits = sorted(set(PAPER_BITS) | {int(r["bits"]) for name, d in datasets.items() if d is not None
                                     for r in stored_rows(out, d, seed).values()})
    statuses = {name: store_status(out, seed, datasets[name], probe_texts[name], methods, bits) for name in datasets}
    written = write_tables(out, seed, datasets, statuses, methods, bits)
    if readme is None:
        readme = str(REPO_README) if Path(out).resolve() == REPO_README.parent.resolve() / "results" else "none"
    if readme != "none" and update_readme(Path(readme), readme_block(out, seed, datasets, statuses, bits)):
        written.append(Path(readme))
    return written


if __name__ == "__main__":
    sys.exit(main())
