"""Seed spread of training-seed sweeps: MAP over training seeds per variant, and the paired
difference to a reference method (``summary.md``; the command is :mod:`protocols.seed_spread`).

Reads the records of training-seed sweeps (``protocols.sweep ... --seeds 0,1,2``; older ones swept
``--param random_state``) from every ``*.json`` file under a folder (same split, one record per seed
and search), names each variant by its method and the parameters it sets away from the method's
defaults (e.g. ``hdhash [level_codes=own]``), and writes ``summary.md`` beside them: per variant, bits
and search, the number of seeds, the mean and sample standard deviation of MAP@K, and the mean
difference to the reference's exhaustive ranking over the seeds both have (paired, so the seed's
share of the noise cancels), with its standard error and verdict (:mod:`protocols.stats`).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols.markdown import number, signed, table
from protocols.stats import cells, paired_differences

PROG = "python -m protocols.seed_spread"


def variant_name(record: dict) -> str:
    """The method, with the parameters it set away from the method's defaults (the seed aside): the
    record's own ``variant`` (fixed when it ran), or, for records from before variants, the
    parameters that differ from today's defaults."""
    from protocols.runner import changed_params

    if "variant" in record:
        return record["method"] + (f" [{record['variant']}]" if record["variant"] else "")
    changed = [f"{k}={stored}" for k, (stored, _) in changed_params(record).items()]
    return record["method"] + (f" [{', '.join(changed)}]" if changed else "")


def load_runs(folder: Path) -> pd.DataFrame:
    """One row per (variant, bits, search, training seed) of the sweep files under ``folder`` (a later
    file's record of the same run wins): ``name``, ``bits``, ``search``, ``pair_seed``, ``label``
    (the variant, and its search where not the exhaustive ranking), ``map`` and the run's facts."""
    runs = {}
    for path in sorted(Path(folder).rglob("*.json")):
        for record in json.loads(path.read_text()).get("records", []):
            # older sweeps swept random_state; now a sweep's --seeds give each record its train_seed
            seed = record.get("swept", {}).get("random_state", record.get("train_seed"))
            if seed is None:
                continue
            name, search = variant_name(record), record["search"]
            runs[(name, int(record["bits"]), search, int(seed))] = {
                "name": name, "bits": int(record["bits"]), "search": search, "pair_seed": int(seed),
                "label": name if search == "hamming" else f"{name} ({search})", "map": record["map"],
                "split_sha256": record["split_sha256"], "topk": record["topk"],
                "device": str(record["fit_info"].get("device", "?"))}
    return pd.DataFrame(list(runs.values()))


def summary_lines(runs: pd.DataFrame, reference: str) -> list[str]:
    devices = ", ".join(sorted(set(runs["device"])))
    lines = [f"# Seed spread ({PROG})", "",
             f"Split sha256 {', '.join(sorted(set(runs['split_sha256'].str[:12])))}; "
             f"MAP@{', '.join(map(str, sorted(set(runs['topk']))))}; trained on {devices}. Difference: variant minus "
             f"`{reference}` (exhaustive ranking), paired over the seeds both have, mean ± standard error, and the "
             "verdict (a win or a loss only beyond two standard errors, with three seeds or more).", ""]
    found = cells(runs, "map", ("name", "bits", "search"))
    diffs = {(d["column"], d["bits"]): d for d in paired_differences(
        runs, reference, "map", label="label", seed="pair_seed").to_dict("records")}
    rows = []
    for c in sorted(found.to_dict("records"),
                    key=lambda c: (c["bits"], c["name"] != reference, c["name"], c["search"])):
        label = c["name"] if c["search"] == "hamming" else f"{c['name']} ({c['search']})"
        d = diffs.get((label, c["bits"])) if c["name"] != reference else None
        shown = d is not None and d["n"] > 1
        rows.append([c["name"], c["bits"], c["search"], c["runs"], number(c["mean"]), number(c["sd"]),
                     f"{signed(d['difference'])} ± {d['se']:.4f}" if shown else "", d["verdict"] if shown else ""])
    return lines + table(["variant", "bits", "search", "seeds", "MAP mean", "sd", "minus reference", "verdict"], rows)


def write_summary(folder: Path, reference: str = "hashnet") -> list[Path]:
    """``folder/summary.md`` from the seed-sweep records under ``folder`` ([] when there are none)."""
    runs = load_runs(Path(folder))
    if runs.empty:
        return []
    return [atomic_write_text(Path(folder) / "summary.md", "\n".join(summary_lines(runs, reference)) + "\n")]
