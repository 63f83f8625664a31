"""Seed spread: MAP over training seeds, and the paired difference to a reference method.

    python -m protocols.seed_spread results/seeds/fashion-mnist --reference hashnet

Reads the records of training-seed sweeps (``protocols.sweep ... --seeds 0,1,2``; older ones swept
``--param random_state``) from every ``*.json`` file under
a folder (same split, one record per seed and search), names each variant by its method and the
parameters it sets away from the method's defaults (e.g. ``hdhash [level_codes=own]``), and writes
``summary.md`` beside them: per variant, bits and search, the number of seeds, the mean and sample
standard deviation of MAP@K, and the mean difference to the reference's exhaustive ranking over the
seeds both have (paired, so the seed's share of the noise cancels), with its standard error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from common.files import atomic_write_text

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


def load_runs(folder: Path) -> dict:
    """{(variant, bits, search): {seed: record}} over the sweep files under ``folder``."""
    runs: dict = {}
    for path in sorted(folder.rglob("*.json")):
        for record in json.loads(path.read_text()).get("records", []):
            # older sweeps swept random_state; now a sweep's --seeds give each record its train_seed
            seed = record.get("swept", {}).get("random_state", record.get("train_seed"))
            if seed is None:
                continue
            key = (variant_name(record), int(record["bits"]), record["search"])
            runs.setdefault(key, {})[int(seed)] = record
    return runs


def _mean_sd(values):
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
    return mean, sd


def summary_lines(runs: dict, reference: str) -> list[str]:
    splits = {r["split_sha256"][:12] for seeds in runs.values() for r in seeds.values()}
    topk = {r["topk"] for seeds in runs.values() for r in seeds.values()}
    devices = sorted({str(r["fit_info"].get("device", "?")) for seeds in runs.values() for r in seeds.values()})
    lines = [f"# Seed spread ({PROG})", "",
             f"Split sha256 {', '.join(sorted(splits))}; MAP@{', '.join(map(str, sorted(topk)))}; trained on "
             f"{', '.join(devices)}. Difference: variant minus `{reference}` (exhaustive ranking), paired over "
             "the seeds both have, mean ± standard error.", "",
             "| variant | bits | search | seeds | MAP mean | sd | minus reference |", "|---|---|---|---|---|---|---|"]
    for (name, bits, search), seeds in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0] != reference, kv[0])):
        mean, sd = _mean_sd([r["map"] for r in seeds.values()])
        ref = runs.get((reference, bits, "hamming"), {})
        common = sorted(set(seeds) & set(ref))
        diff = ""
        if name != reference and len(common) > 1:
            d_mean, d_sd = _mean_sd([seeds[s]["map"] - ref[s]["map"] for s in common])
            diff = f"{d_mean:+.4f} ± {d_sd / math.sqrt(len(common)):.4f}"
        lines.append(f"| {name} | {bits} | {search} | {len(seeds)} | {mean:.4f} | {sd:.4f} | {diff} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="folder holding the sweep JSON files (searched recursively)")
    parser.add_argument("--reference", default="hashnet", help="variant the others are compared with (default: "
                                                               "hashnet)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    written = write_summary(folder, args.reference) if folder.is_dir() else []
    if not written:
        print(f"{PROG}: error: no random_state sweep records under {folder}; run "
              "`python -m protocols.sweep ... --seeds 0,1,2` first", file=sys.stderr)
        return 1
    print(written[0])
    return 0


def write_summary(folder: Path, reference: str = "hashnet") -> list[Path]:
    """``folder/summary.md`` from the seed-sweep records under ``folder`` ([] when there are none)."""
    runs = load_runs(Path(folder))
    if not runs:
        return []
    return [atomic_write_text(Path(folder) / "summary.md", "\n".join(summary_lines(runs, reference)) + "\n")]


if __name__ == "__main__":
    sys.exit(main())
