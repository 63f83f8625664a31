"""The paper's tables and the README's results block: views of each dataset's tidy frame.

Writes ``<out>/paper/``: ``table1.md`` / ``table1.csv`` (our MAP as mean ± sd (n) over training seeds
beside the paper's and the difference, in the paper's layout: a block per dataset, methods as rows,
code lengths as columns, each method's training schedule), ``table1-beyond.csv`` (the methods after
the paper), ``table1-<dataset>.png``, ``table2.{md,csv}`` (:mod:`protocols.paper_table2`) and
``status.md`` (per paper dataset: rows stored, or which files it needs and where); and the README's
block between ``<!-- results:begin -->`` and ``<!-- results:end -->``. :func:`rebuild_tables` writes
them all from the whole store, whatever subset ran.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols import runner
from protocols.frame import default_search, records_frame
from protocols.markdown import cell_text, legend, marks_of, number, signed, table
from protocols.paper_plan import BUILTIN, PAPER
from protocols.paper_table2 import write_table2
from protocols.plots import plot_against_paper
from protocols.published import PAPER_BITS, method_order, paper_table1
from protocols.run_times import demo_settings, timing_lines
from protocols.stats import cells
from protocols.unseen_tables import UNSEEN

PROG = "python -m protocols.paper"
REPO_README = Path(__file__).resolve().parent.parent / "README.md"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
#: the dataset ``make demo`` runs on (its Makefile target), whose block says what the demo reruns
DEMO_DATASET = "fashion-mnist"
#: ``table1.csv``'s columns: per (dataset, method, bits) our MAP and training time over the training
#: seeds stored (mean, sd, n), whether a record is stale, the paper's MAP and the difference
#: the columns :func:`paper_rows` reads of a dataset with no record stored
EMPTY_COLUMNS = ["dataset", "method", "bits", "search", "variant", "block", "map", "train_s", "encode_s", "search_s",
                 "seed", "topk", "split_sha256", "params", "record_id", "training_seed", "machine", "stale"]
CSV_COLUMNS = ["dataset", "method", "bits", "topk", "map", "map_sd", "n_seeds", "stale", "paper_map", "difference",
               "train_s", "train_s_sd", "split_sha256", "features"]


def paper_rows(frame: pd.DataFrame | None, dataset, seed: int) -> pd.DataFrame:
    """The records of ``frame`` the paper's tables read for the loaded ``dataset``: split seed ``seed``
    and that split's hash (a photo dataset's list files' hash too), the dataset's MAP@K, each
    method's default search."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=EMPTY_COLUMNS)
    keep = ((frame["dataset"] == dataset.name) & (frame["seed"] == seed)
            & (frame["topk"] == runner.resolve_topk(dataset)) & (frame["split_sha256"] == dataset.split_sha256)
            & default_search(frame))
    data_sha = dataset.info.get("data_sha256")
    if data_sha is not None:
        keep &= frame["data_sha256"] == data_sha if "data_sha256" in frame else False
    return frame[keep]


def row_labels(part: pd.DataFrame, block: str) -> list[str]:
    """A table row per method; in the "beyond the paper" block HDHash's per level loss
    (``hdhash [level_loss=dpsh]``, :func:`beyond_rows`)."""
    if block != "beyond":
        return list(part["method"])
    return [m if m != "hdhash" else f"hdhash [level_loss={json.loads(p).get('level_loss')}]"
            for m, p in zip(part["method"], part["params"])]


def table1_frame(frames: dict, datasets: dict, methods, bits, seed: int, block: str = "table1") -> pd.DataFrame:
    """One row per (dataset, row of ``methods``, bits) of ``block``'s records (:func:`paper_rows`): our
    MAP and training time as :func:`protocols.stats.cells` (mean, sd, n and what the cell rests on)
    beside the paper's MAP and the difference."""
    paper = paper_table1()
    rows = []
    for name, dataset in datasets.items():
        part = paper_rows(frames.get(name), dataset, seed) if dataset is not None else paper_rows(None, None, seed)
        part = part[part["block"] == block]
        part = part.assign(row=row_labels(part, block))
        ours = {(c["row"], c["bits"]): c for c in cells(part, "map", ("row", "bits")).to_dict("records")}
        times = {(c["row"], c["bits"]): c for c in cells(part, "train_s", ("row", "bits")).to_dict("records")}
        published = paper[paper["dataset"] == name]
        for method in methods:
            for b in bits:
                match = published[(published["method"] == method) & (published["bits"] == b)]
                first = part[(part["row"] == method) & (part["bits"] == b)].sort_values("training_seed", kind="stable")
                rows.append(_table1_row(name, dataset, method, b, ours.get((method, b)), times.get((method, b)),
                                        first.iloc[0] if len(first) else None,
                                        float(match["map"].iloc[0]) if len(match) else float("nan")))
    return pd.DataFrame(rows)


def _table1_row(name, dataset, method, b, ours, time, first, theirs) -> dict:
    empty = {"mean": float("nan"), "sd": float("nan"), "n": 0, "runs": 0, "mixes": (), "stale": False, "schedule": ""}
    ours, time = ours or empty, time or empty
    return {"dataset": name, "method": method, "bits": b,
            "topk": (int(first["topk"]) if first is not None else runner.resolve_topk(dataset) if dataset else None),
            "map": ours["mean"], "map_sd": ours["sd"], "n_seeds": ours["n"], "stale": ours["stale"],
            "paper_map": theirs, "difference": ours["mean"] - theirs, "train_s": time["mean"], "train_s_sd": time["sd"],
            "split_sha256": first["split_sha256"] if first is not None else None,
            "features": first.get("features") if first is not None and pd.notna(first.get("features")) else None,
            "runs": ours["runs"], "mixes": ours["mixes"], "schedule": ours["schedule"]}


def dataset_block(view: pd.DataFrame, name: str, with_paper: bool, stored_only: bool = False) -> list[str]:
    """Dataset ``name``'s table: a row per method (its schedule, then per code length our
    ``mean ± sd (n)`` with its marks, and with ``with_paper`` the paper's figure and the difference),
    the legend of the marks below."""
    part = view[view["dataset"] == name]
    if stored_only:  # methods with at least one stored row
        part = part[part.groupby("method")["map"].transform(lambda v: v.notna().any())]
    bits = sorted(part["bits"].unique())
    header = ["method", "schedule"] + [f"{b} bits: ours / paper / diff" if with_paper else f"{b} bits" for b in bits]
    rows, used = [], set()
    for method in pd.unique(part["method"]):
        of_method = part[part["method"] == method]
        texts = []
        for b in bits:
            row = of_method[of_method["bits"] == b].iloc[0]
            cell = {"mean": row["map"], "sd": row["map_sd"], "n": row["n_seeds"], "runs": row["runs"],
                    "mixes": row["mixes"], "stale": row["stale"]}
            used.update(marks_of(cell) if pd.notna(row["map"]) else [])
            ours = cell_text(cell)
            texts.append(f"{ours} / {number(row['paper_map'])} / {signed(row['difference'])}" if with_paper else ours)
        schedules = sorted({s for text in of_method["schedule"] if text for s in text.split(" / ")})
        rows.append([method, " / ".join(schedules) or "–", *texts])
    return table(header, rows) + legend(used)


def beyond_rows() -> list[tuple[str, str]]:
    """``(row label, method)`` of Table I's "beyond the paper" block: every method after the paper
    (``beyond_paper``), then HDHash trained with each of their losses per level (which runs are those
    rows: :func:`protocols.frame.is_beyond`)."""
    from methods import list_methods
    from methods.hdhash import LEVEL_LOSSES

    rows = [(method, method) for method in list_methods(beyond=True)]
    return rows + [(f"hdhash [level_loss={loss}]", "hdhash") for loss in LEVEL_LOSSES if loss != "hashnet"]


def beyond_frame(frames: dict, datasets: dict, bits, seed: int) -> pd.DataFrame:
    """:func:`table1_frame`'s rows of the "beyond the paper" block, labelled by :func:`beyond_rows`
    (no paper figures: the paper has none); only rows with a stored run."""
    frame = table1_frame(frames, datasets, [label for label, _ in beyond_rows()], bits, seed, block="beyond")
    if frame.empty:
        return frame
    return frame[frame.groupby(["dataset", "method"])["map"].transform(lambda v: v.notna().any())]


def beyond_block(frame: pd.DataFrame, name: str) -> list[str]:
    """The "beyond the paper" lines of dataset ``name`` (none when nothing of it is stored)."""
    if frame.empty or not (frame["dataset"] == name).any():
        return []
    return ([f"### {name}: beyond the paper", "",
             "Methods after the HDHash paper (not in its Table I; the same protocol, split and MAP@K), and HDHash "
             f"with their losses per level (`--param level_loss=<name>`; {_beyond_schedule_text(name)}); mean ± sd "
             "(n training seeds).", ""]
            + dataset_block(frame, name, with_paper=False, stored_only=True) + [""])


def _beyond_schedule_text(name: str) -> str:
    if name in runner.training_budget():
        return f"trained under the training-budget rule as every deep method of {name}"
    return "on that method's schedule: DPSH's adds `--param epochs=150 --param patience=None`"


def unseen_pointer(out, name: str) -> list[str]:
    """Where dataset ``name`` has unseen-class records (the critics' protocol), the line naming its Table U."""
    folder = runner.runs_folder(runner.protocol_root(out, UNSEEN), name)
    if not (folder.is_dir() and any(folder.glob("*.json"))):
        return []
    return [f"Table U, the same methods on classes held out of training (`--protocol unseen`): "
            f"[map/{name}-unseen.md](../map/{name}-unseen.md).", ""]


def k_text(frame, name) -> str:
    topk = frame.loc[frame["dataset"] == name, "topk"].dropna()
    return f"MAP@{int(topk.iloc[0])}" if len(topk) else "MAP@K"


def store_status(rows: pd.DataFrame, seed: int, dataset, probe_text: str, methods, bits) -> str:
    """A dataset's line in the tables, from the store alone: how many of Table I's rows it holds."""
    if dataset is None:
        return probe_text if probe_text.startswith("not run") else f"not run: {probe_text}"
    rows = rows[(rows["block"] == "table1") & (rows["training_seed"] == seed)]
    stored = set(zip(rows["method"], rows["bits"]))
    count = sum((m, b) in stored for m in methods for b in bits)
    return f"{count} of {len(methods) * len(bits)} rows stored; data: {dataset.info.get('root', 'built in')}"


def write_tables(out, seed: int, datasets: dict, statuses: dict, methods, bits, frames: dict) -> list[Path]:
    folder = Path(out) / "paper"
    view = table1_frame(frames, datasets, methods, bits, seed)
    written = [atomic_write_text(folder / "table1.csv", view[CSV_COLUMNS].to_csv(index=False, float_format="%.6g"))]
    lines = ["# Table I: MAP, ours beside the paper's", "",
             f"Generated by `{PROG}` from the run records in `map/runs/`; paper figures from "
             "`protocols/paper/table1_map.csv` (HDHash paper, ICPR 2020). difference = ours - paper. "
             "Ours: mean ± sd (n training seeds); the marks below a table say what a cell rests on. "
             "Shallow methods on the photo datasets run on the features named in `table1.csv`'s `features` column.", ""]
    beyond = beyond_frame(frames, {n: d for n, d in datasets.items() if d is not None}, bits, seed)
    for name, dataset in datasets.items():
        with_paper = name in PAPER
        lines += [f"## {name} ({k_text(view, name)})", "", statuses[name], ""]
        if dataset is None and not with_paper:
            continue
        lines += dataset_block(view, name, with_paper) + [""]  # the paper's figures even where we have none
        lines += beyond_block(beyond, name) + unseen_pointer(out, name)
        part = view[view["dataset"] == name]
        if dataset is not None and part["map"].notna().any():
            written.append(plot_against_paper(part, folder / f"table1-{name}.png", k_text(view, name),
                                              name))  # the plot says what it draws (protocols.plots)
    if not beyond.empty:
        columns = [c for c in CSV_COLUMNS if c not in ("paper_map", "difference")]
        written.append(atomic_write_text(folder / "table1-beyond.csv",
                                         beyond[columns].to_csv(index=False, float_format="%.6g")))
    written.append(atomic_write_text(folder / "table1.md", "\n".join(lines)))
    written += write_table2(out, [n for n, d in datasets.items() if d is not None])
    status = ["# Datasets of the paper's tables", ""] + [f"- **{n}**: {statuses[n]}" for n in datasets]
    written.append(atomic_write_text(folder / "status.md", "\n".join(status) + "\n"))
    return written


def readme_block(frames: dict, seed: int, datasets, statuses, bits) -> str:
    """The README's block: every stored row of the built-in datasets (whatever ``--methods`` was), and
    what they cost (:func:`protocols.run_times.timing_lines`: the README's only timing figures)."""
    methods = table1_methods()
    view = table1_frame(frames, datasets, methods, bits, seed)
    lines = [f"Generated by `{PROG}` (do not edit between the markers); full tables in "
             "[results/paper/](results/paper/table1.md). Cells read mean ± sd (n training seeds); the marks below "
             "a table say what a cell rests on.", ""]
    for name in BUILTIN:
        if datasets.get(name) is None:
            continue
        done = view[(view["dataset"] == name) & view["map"].notna()]
        if done.empty:
            lines += [f"**{name}**: no rows stored yet.", ""]
            continue
        lines += [f"**{name}**, {k_text(view, name)} ({len(done)} of {len(view[view['dataset'] == name])} "
                  f"rows of the {len(methods)} methods stored):", ""]
        lines += dataset_block(view, name, with_paper=False, stored_only=True) + [""]
        lines += ranking_lines(frames.get(name), name)
        rows = paper_rows(frames.get(name), datasets[name], seed)
        rows = rows[rows["block"] == "table1"]
        lines += timing_lines(rows, seed, methods, sorted(bits), demo_settings() if name == DEMO_DATASET else None)
    for name in PAPER:
        if name in statuses:
            lines.append(f"- {name}: {statuses[name]}")
    return "\n".join(lines).rstrip() + "\n"


def ranking_lines(frame, dataset: str) -> list[str]:
    """The README's verdicts for ``dataset``: one line per code length saying which method is best
    (:func:`protocols.rankings.ranking_view`, the ranking itself in ``results/map/<dataset>.md``)."""
    from protocols.frame import table_view
    from protocols.rankings import ranking_view

    if frame is None or frame.empty:
        return []
    seed, topk = table_view(frame)
    view = frame[(frame["seed"] == seed) & (frame["topk"] == topk)]
    found = ranking_view(view, dataset, str(topk))
    if found is None:
        return []
    where = f"the last section of [results/map/{dataset}.md](results/map/{dataset}.md)"
    head = (f"Which method is best at each length (MAP@{topk}; the rankings, under the training-budget rule and before "
            f"it, are {where}):" if found.ruled else
            f"Which method is best at each length (MAP@{topk}; the ranking is {where}). Not yet a fair fight: the "
            "training-budget rule does not list this dataset yet, so each deep method trains on its own defaults "
            f"({found.schedules}):")
    return [head, "", *(f"- {line}" for line in found.verdicts), ""]


def update_readme(path: Path, block: str) -> bool:
    """Put ``block`` between the README's markers; False where it has none."""
    text = path.read_text() if path.is_file() else ""
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(path, f"{head}{README_BEGIN}\n{block}{README_END}{tail}")
    return True


def table1_methods() -> list[str]:
    """The methods of the paper's Table I (``paper_table1``), in the one method order."""
    return method_order(runner.method_classes(["paper"]))


def readme_for(out) -> Path | None:
    """The README whose block goes with the results under ``out``: the project's own for its ``results/``."""
    return REPO_README if Path(out).resolve() == REPO_README.parent.resolve() / "results" else None


def rebuild_tables(out, seed: int, datasets: dict, probe_texts: dict, readme: str | None = None) -> list[Path]:
    """Table I and II, the status page and the README block, always from the whole store: every
    dataset in ``datasets``, every Table I method, the paper's code lengths (and any other stored),
    so a run of a subset never shrinks them. The README block is rewritten only where that README
    belongs to the results read (``out`` is the project's ``results/``) or ``readme`` names one."""
    methods = table1_methods()
    frames = {name: records_frame(out, name) for name, d in datasets.items() if d is not None}
    rows = {name: paper_rows(frames[name], d, seed) for name, d in datasets.items() if d is not None}
    bits = sorted(set(PAPER_BITS) | {int(b) for part in rows.values()
                                     for b in part.loc[(part["variant"] == "")
                                                       & (part["training_seed"] == seed), "bits"]})
    statuses = {name: store_status(rows.get(name), seed, datasets[name], probe_texts[name], methods, bits)
                for name in datasets}
    written = write_tables(out, seed, datasets, statuses, methods, bits, frames)
    if readme is None:
        readme = str(readme_for(out) or "none")
    if readme != "none" and update_readme(Path(readme), readme_block(frames, seed, datasets, statuses, bits)):
        written.append(Path(readme))
    return written
