"""Tables and plots of the MAP protocol and of sweeps, derived from stored run records alone.

:func:`write_map_report` writes ``map/<dataset>.{csv,md,png}`` from ``<out>/map/runs/<dataset>/``;
:func:`sweep_table` / :func:`rebuild_tables` a sweep's Markdown from its JSON records.
``python -m protocols.report`` rebuilds these and every other derived file.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

from common.files import atomic_savefig, atomic_write_text
from protocols.runner import stored, training_seconds, variant_of

#: leading CSV columns (PROTOCOL.md / the map issue); everything else in a record follows
MAP_COLUMNS = [
    "dataset", "method", "bits", "search", "variant", "topk", "map", "map_tie_aware", "map_all", "p_r2",
    "p_r2_empty_frac",
    "n_query_no_relevant_topk", "train_s", "encode_s", "search_s", "seed", "split_sha256",
    "n_query", "n_db", "n_train",
]
#: the method the paired differences of Table I are taken against
REFERENCE = "hashnet"
#: record fields too bulky for the CSV (kept in the JSON records)
BULKY = ("p_at_n", "pr_curve")


def column_label(row) -> str:
    label = row["method"] if row.get("default_search", True) else f"{row['method']} ({row['search']})"
    variant = row.get("variant")
    return f"{label} [{variant}]" if isinstance(variant, str) and variant else label


def records_frame(out, dataset: str) -> pd.DataFrame:
    rows = []
    for record in stored(out, dataset):
        row = {k: v for k, v in record.items() if k not in BULKY}
        if isinstance(record.get("fit_info"), dict) and "train_s" in row:
            # records of resumed runs from before training_seconds counted only the part after the resume
            row["train_s"] = training_seconds(record["fit_info"], row["train_s"])
        for key in ("params", "fit_info", "versions", "machine", "git"):
            if isinstance(row.get(key), dict):
                value = row.pop(key)
                if key in ("versions", "machine"):
                    row.update(value)
                elif key == "git":
                    row.update({f"git_{k}": v for k, v in value.items()})
                else:
                    row[key] = json.dumps(value, sort_keys=True)
        row.setdefault("variant", "")  # records from before variants were all default runs
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    ordered = [c for c in MAP_COLUMNS if c in frame] + [c for c in frame if c not in MAP_COLUMNS]
    return frame[ordered].sort_values(["seed", "topk", "method", "search", "bits"], kind="stable")


def train_seeds(frame: pd.DataFrame) -> pd.Series:
    """Each row's training seed (records from before training seeds had the split seed as theirs)."""
    return frame["train_seed"].fillna(frame["seed"]) if "train_seed" in frame else frame["seed"]


def map_table(frame: pd.DataFrame, value: str = "map", stat: str = "mean") -> pd.DataFrame:
    """Rows: bit lengths; columns: methods (and their non-default searches), as in Table I; each cell
    the ``stat`` (mean, std, count) of ``value`` over the training seeds stored."""
    labelled = frame.assign(column=[column_label(r) for r in frame.to_dict("records")])
    table = labelled.pivot_table(index="bits", columns="column", values=value, aggfunc=stat)
    order = list(dict.fromkeys(labelled.sort_values(["method", "search"])["column"]))
    return table[[c for c in order if c in table.columns]]


def _markdown(table: pd.DataFrame, digits: int = 4, bold_max: bool = True, sd: pd.DataFrame | None = None,
              n: pd.DataFrame | None = None, runs: pd.DataFrame | None = None) -> str:
    """A Markdown table of ``table``; with ``sd`` and ``n``, cells over several seeds read
    ``mean ± sd (n)``; with ``runs`` (the records per cell), a cell where some records hold no number
    (a NaN metric) reads ``(n of runs)``. The best mean of a row in bold."""
    header = "| bits | " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * (len(table.columns) + 1)]
    for bits, row in table.iterrows():
        best = row.max() if bold_max else None
        cells = []
        for column, value in row.items():
            if pd.isna(value):
                cells.append("–")
                continue
            text = f"{value:.{digits}f}"
            count = int(n.loc[bits, column]) if n is not None and not pd.isna(n.loc[bits, column]) else 1
            total = int(runs.loc[bits, column]) if runs is not None and column in runs else count
            if count > 1:
                text += f" ± {sd.loc[bits, column]:.{digits}f}"
            if total > count:
                text += f" ({count} of {total})"
            elif count > 1:
                text += f" ({count})"
            cells.append(f"**{text}**" if bold_max and value == best else text)
        lines.append(f"| {bits} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seed_markdown(frame: pd.DataFrame, value: str = "map", digits: int = 4, bold_max: bool = True) -> str:
    """mean ± sd (n) per cell; n counts the seeds with a number. For MAP, which every record has, a
    cell where a record holds NaN or null (its read warned about it) says ``(n of m)``; other metrics
    are absent from records made before they were measured, which is no gap to flag."""
    runs = map_table(frame.assign(_runs=1), "_runs", "count").reindex_like(map_table(frame, value)) \
        if value == "map" else None
    return _markdown(map_table(frame, value), digits, bold_max, map_table(frame, value, "std"),
                     map_table(frame, value, "count"), runs)


def paired_differences(frame: pd.DataFrame, reference: str = "hashnet", value: str = "map") -> pd.DataFrame:
    """Each column's difference to ``reference`` (its default search) per bit length, paired over the
    training seeds both have: mean, standard error, n, and a verdict that calls a difference a win or
    a loss only beyond two standard errors, and only from three seeds on: two seeds give the standard
    error one degree of freedom, where two of them cover far less than the 95% they suggest (the
    t quantile is 12.7), so a difference over two seeds is shown but not settled."""
    labelled = frame.assign(column=[column_label(r) for r in frame.to_dict("records")], tseed=train_seeds(frame))
    ref = labelled[(labelled["method"] == reference) & labelled["default_search"].fillna(True).astype(bool)]
    ref = ref.set_index(["bits", "tseed"])[value]
    rows = []
    for (column, bits), group in labelled[labelled["column"] != reference].groupby(["column", "bits"], sort=False):
        # a seed with a NaN on either side is no pair: n counts the pairs with numbers
        diffs = [v - ref[(bits, t)] for t, v in zip(group["tseed"], group[value])
                 if (bits, t) in ref.index and not pd.isna(v) and not pd.isna(ref[(bits, t)])]
        if not diffs:
            continue
        n = len(diffs)
        mean = sum(diffs) / n
        se = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5 / n ** 0.5 if n > 1 else float("nan")
        verdict = ("one seed: not settled" if n == 1 else "two seeds: not settled" if n == 2
                   else "better" if mean > 2 * se else "worse" if mean < -2 * se else "within 2 SE")
        rows.append({"column": column, "bits": bits, "difference": mean, "se": se, "n": n, "verdict": verdict})
    return pd.DataFrame(rows)


def _differences_markdown(diffs: pd.DataFrame, reference: str) -> list[str]:
    if diffs.empty:
        return []
    lines = [f"## Difference to {reference} (paired over training seeds)", "",
             f"MAP@K minus {reference}'s, mean ± standard error over the seeds both have (n); a difference is a "
             "win or a loss only beyond two standard errors, with three seeds or more.", "",
             "| method | bits | difference | n | verdict |", "|---|---|---|---|---|"]
    for r in diffs.sort_values(["column", "bits"], kind="stable").to_dict("records"):
        se = "" if pd.isna(r["se"]) else f" ± {r['se']:.4f}"
        lines.append(f"| {r['column']} | {r['bits']} | {r['difference']:+.4f}{se} | {r['n']} | {r['verdict']} |")
    return lines + [""]


def is_beyond(row) -> bool:
    """A row of Table I's "beyond the paper" block: a method after the paper (``beyond_paper``), or
    HDHash over one of their losses per level on that loss's schedule
    (:func:`methods.hdhash.on_loss_schedule`) and every other parameter at its default."""
    from methods import UnknownMethodError, get_method_class

    try:
        if get_method_class(row["method"]).beyond_paper:
            return not row.get("variant")
    except UnknownMethodError:
        return False
    return row["method"] == "hdhash" and row.get("variant") in _hdhash_beyond_variants(int(row["bits"]))


@functools.lru_cache(maxsize=None)
def _hdhash_beyond_variants(bits: int) -> frozenset[str]:
    from methods import create_method
    from methods.hdhash import LEVEL_LOSSES, on_loss_schedule

    defaults = create_method("hdhash", nbits=bits).get_params()
    return frozenset(variant_of("hdhash", bits, defaults | on_loss_schedule(loss, bits))
                     for loss in LEVEL_LOSSES if loss != "hashnet")


def _beyond_markdown(beyond: pd.DataFrame, chosen: pd.DataFrame, k_text: str) -> list[str]:
    """The "beyond the paper" section: its methods beside HashNet and HDHash (default search) for
    reference, mean ± sd over training seeds, and the paired difference to HashNet."""
    reference = chosen[chosen["method"].isin([REFERENCE, "hdhash"]) & chosen["default_search"].fillna(True)
                       .astype(bool)]
    both = pd.concat([reference, beyond])
    text = ["## Beyond the paper (not Table I)", "",
            "Methods after the HDHash paper and HDHash with their losses per level (`level_loss`), on the same split "
            f"and MAP@{k_text}; HashNet and HDHash (paper's loss) repeated for reference.", "",
            _seed_markdown(both, "map"), ""]
    if "map_tie_aware" in beyond and beyond["map_tie_aware"].notna().any():
        text += [f"Tie-aware MAP@{k_text}:", "", _seed_markdown(both, "map_tie_aware"), ""]
    text += ["Training time (s):", "", _markdown(map_table(beyond, "train_s"), digits=1, bold_max=False), ""]
    if train_seeds(both).nunique() > 1 and (both["method"] == REFERENCE).any():
        diffs = paired_differences(both, REFERENCE)
        text += _differences_markdown(diffs[~diffs["column"].isin(["hdhash", "hdhash (tree:0.3)"])], REFERENCE)
    return text


def table_view(frame: pd.DataFrame) -> tuple[int, int]:
    """The (seed, MAP@K) the Markdown table shows: seed 0 if stored (PROTOCOL.md's), else the
    smallest; the K most records have. Chosen from the store alone, never by which run came last,
    so a rebuild after any subset of runs gives the same tables."""
    seeds = sorted(frame["seed"].unique())
    seed = 0 if 0 in seeds else seeds[0]
    counts = frame[frame["seed"] == seed]["topk"].value_counts()
    return int(seed), int(sorted(counts[counts == counts.max()].index)[0])


def write_map_report(out, dataset: str) -> list[Path]:
    """Write ``map/<dataset>.csv`` (every record) and the Markdown table and plot of the default
    variant at :func:`table_view`'s seed and K; runs with non-default parameters (variants) get a
    table of their own below, never a place in Table I."""
    frame = records_frame(out, dataset)
    if frame.empty:
        return []
    folder = Path(out) / "map"
    written = [atomic_write_text(folder / f"{dataset}.csv", frame.to_csv(index=False, float_format="%.6g"))]
    seed, topk = table_view(frame)
    view = frame[(frame["seed"] == seed) & (frame["topk"] == topk)]
    beyond_mask = pd.Series([is_beyond(r) for r in view.to_dict("records")], index=view.index, dtype=bool)
    beyond = view[beyond_mask]  # methods after the paper: a block of their own, the paper's table unchanged
    view = view[~beyond_mask]
    chosen = view[view["variant"].fillna("") == ""]
    variants = view[view["variant"].fillna("") != ""]
    shown = chosen if len(chosen) else variants if len(variants) else beyond
    k_text = "all" if int(topk) >= int(shown["n_db"].max()) else str(int(topk))
    split = ", ".join(sorted(set(shown["split_sha256"].str[:12])))
    # each row's own CPU and core count: rows may come from several machines (e.g. a GPU host)
    machine = "; ".join(sorted(set(shown["cpu"].astype(str) + " (" + shown["cores"].astype(str) + " cores)")))
    others = len(frame) - len(view) - len(beyond)
    text = [
        f"# {dataset}: MAP@{k_text} (Table I layout)",
        "",
        f"Generated by `python -m protocols.report` from {len(shown)} run records in `map/runs/{dataset}/`"
        + (f" ({len(beyond)} more beyond the paper)" if len(beyond) else "") + "; "
        f"seed {seed}, split sha256 {split}, {int(shown['n_query'].iloc[0])} queries against "
        f"{int(shown['n_db'].iloc[0])} database items; machine: {machine}. Best per row in bold."
        + (" Cells over several training seeds read mean ± sd (n seeds); the CSV has one row per seed."
           if train_seeds(shown).nunique() > 1 else "")
        + (f" {others} records of other seeds or K are in `{dataset}.csv`." if others else ""),
        "",
    ]
    if len(chosen):
        text += [_seed_markdown(chosen, "map"), ""]
        if "map_tie_aware" in chosen and chosen["map_tie_aware"].notna().any():
            text += [f"## Tie-aware MAP@{k_text} (the expected AP over every order of tied items; records from "
                     "before it was measured show –)", "", _seed_markdown(chosen, "map_tie_aware"), ""]
        text += ["## MAP@all", "", _seed_markdown(chosen, "map_all"), "",
                 "## Precision within Hamming radius 2", "", _seed_markdown(chosen, "p_r2"), "",
                 "## Training time (s)", "", _markdown(map_table(chosen, "train_s"), digits=1, bold_max=False), ""]
        if train_seeds(chosen).nunique() > 1 and (chosen["method"] == REFERENCE).any():
            text += _differences_markdown(paired_differences(chosen, REFERENCE), REFERENCE)
    else:
        text += ["No run with every parameter at its default is stored yet.", ""]
    if len(variants):
        # mean ± sd (n) as in Table I: a variant over several seeds is not one run; no bold, since
        # the columns are different methods' settings, not rivals
        text += ["## Variants: runs with non-default parameters (not Table I)", "",
                 _seed_markdown(variants, "map", bold_max=False), ""]
    if len(beyond):
        text += _beyond_markdown(beyond, chosen, k_text)
    written.append(atomic_write_text(folder / f"{dataset}.md", "\n".join(text)))
    written.append(plot_map(shown, folder / f"{dataset}.png", f"{dataset}: MAP@{k_text} against code length"))
    return written


def plot_map(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """MAP against code length, one line per column with the sd over training seeds as error bars, in
    the style of :mod:`protocols.style` (a colour and marker per method, a line style per family)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from protocols.style import column_style

    table, sd = map_table(frame, "map"), map_table(frame, "map", "std")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for column in table.columns:
        series = table[column].dropna()
        err = sd[column].reindex(series.index) if column in sd else None
        ax.errorbar(series.index, series.values, yerr=None if err is None or err.isna().all() else err.fillna(0),
                    capsize=3, label=column, **column_style(column).mpl())
    ax.set_xlabel("code length (bits)")
    ax.set_ylabel("MAP")
    ax.set_xticks(sorted(table.index))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path


# -- sweeps -----------------------------------------------------------------------------------------
def sweep_table(records: list[dict], source: str) -> str:
    """The Markdown table of one sweep, from its records alone (one row per swept value)."""
    first = records[0]
    param = next(iter(first["swept"]))
    values = list(dict.fromkeys(json.dumps(r["swept"][param]) for r in records))
    searches = list(dict.fromkeys(r["search"] for r in records))
    lines = [f"# {first['method']} on {first['dataset']}, {first['bits']} bits: sweep of `{param}`", "",
             f"Generated by `python -m protocols.sweep` from `{source}` (seed {first['seed']}, split sha256 "
             f"{first['split_sha256'][:12]}). "
             "Validation MAP: the trainer's held-out training images (what chooses the epoch).", "",
             f"| {param} | " + " | ".join(f"MAP@{first['topk']} ({s})" for s in searches) +
             " | MAP@all (hamming) | validation MAP | chosen epoch | train (s) |",
             "|---|" + "---|" * (len(searches) + 4)]
    for value in values:
        rows = {r["search"]: r for r in records if json.dumps(r["swept"][param]) == value}
        row = next(iter(rows.values()))
        fit = row.get("fit_info") or {}
        val_map = fit.get("val_map")
        cells = " | ".join(f"{rows[s]['map']:.4f}" if s in rows else "–" for s in searches)
        lines.append(f"| {_show(row['swept'][param])} | " + cells +
                     f" | {row['map_all']:.4f} | {'' if val_map is None else f'{val_map:.4f}'} | "
                     f"{fit.get('epoch', '')} | {row['train_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _show(value) -> str:
    return f"({', '.join(map(str, value))})" if isinstance(value, list | tuple) else str(value)


def rebuild_tables(folder) -> list[Path]:
    """Rewrite every sweep's Markdown table under ``folder`` from its JSON records."""
    written = []
    for path in sorted(Path(folder).glob("*.json")):
        records = json.loads(path.read_text()).get("records") or []
        if records and "swept" in records[0]:
            written.append(atomic_write_text(path.with_suffix(".md"), sweep_table(records, path.name)))
    return written
