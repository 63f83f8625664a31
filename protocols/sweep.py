"""Parameter sweep of one method: the MAP protocol once per value of one parameter.

    python -m protocols.sweep --dataset fashion-mnist --method hdhash --bits 64 \\
        --param level_weights --values "(1,1,1);(1,0.5,0.5);(1,0.5,0.25);(2,1,1)"

Each value is one :func:`protocols.runner.run` (same split, seed and scoring); the raw records go
to ``<out>/sweeps/<dataset>-<method>-<bits>-<param>.json``, rewritten as each value finishes, and a
Markdown table beside them (:func:`protocols.tables.sweep_table`). Every value is checked before
the first run; a rerun keeps the stored values' records and runs only the others.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.files import atomic_write_text
from protocols import runner
from protocols.cli import add_grid_flags, grid_settings, run_command
from protocols.records import read_record, write_record
from protocols.runner import UsageError

PROG = "python -m protocols.sweep"


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default: fashion-mnist)")
    parser.add_argument("--method", required=True, help="registered method name")
    parser.add_argument("--bits", default="64", help="code length (default: 64)")
    parser.add_argument("--param", required=True, help="the parameter swept")
    parser.add_argument("--values", required=True, help="values separated by ';' (Python literals; other text "
                                                        "is taken as a string)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="other fixed parameters (repeatable)")
    add_grid_flags(parser, "each value")
    parser.add_argument("--topk", type=int, default=None, help="K of MAP@K (default: the dataset's)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--threads", type=int, default=None, help="pin torch/BLAS/faiss threads")
    return parser


def validate(method: str, bits_text: str, param: str, values_text: str, fixed_items, topk, threads):
    """``(bits, values, fixed)`` after checking every value with the method, before any run."""
    cls = runner.method_classes([method])[method]
    bits = runner.parse_bits(bits_text)
    if len(bits) != 1:
        raise UsageError(f"--bits takes one code length, got {bits_text!r}")
    bits = bits[0]
    if param == "random_state":
        raise UsageError("the training seed is swept with --seeds (e.g. --seeds 0,1,2), not --param random_state")
    if param not in cls.get_param_names():
        raise UsageError(f"{method} has no parameter {param!r}; it has {', '.join(cls.get_param_names())}")
    values = [runner.literal_or_text(v.strip()) for v in values_text.split(";") if v.strip()]
    if not values:
        raise UsageError(f"--values names no value, got {values_text!r}; give e.g. --values \"1;2;3\"")
    if topk is not None and topk <= 0:
        raise UsageError(f"--topk must be positive, got {topk}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {threads}")
    fixed = runner.parse_params(fixed_items)
    for value in values:
        runner.check_jobs({method: cls}, [bits], dict(fixed, **{param: value}))
    return bits, values, fixed


def run_sweep(dataset, method, bits, param, values, fixed, seed, topk, path: Path, train_seeds=None,
              workers: int = 0, scheduler=None) -> list[dict]:
    """Run each (value, training seed) not yet stored in ``path`` (one grid task each, in process or
    on a cluster); the file and its table are rewritten as each finishes."""
    from protocols import grid
    from protocols.tables import sweep_table

    train_seeds = train_seeds or [seed]
    previous = read_record(path) if path.is_file() else None
    wanted = {(json.dumps(v), t) for v in values for t in train_seeds}

    def key(record):
        return json.dumps(record.get("swept", {}).get(param)), record.get("train_seed", record.get("seed"))

    records = [r for r in (previous or {}).get("records", [])
               if r.get("split_sha256") == dataset.split_sha256 and r.get("seed") == seed and key(r) in wanted]
    done = {key(r) for r in records}
    jobs = [grid.Job(dataset.name, method, bits, seed, t, tuple(sorted(dict(fixed, **{param: v}).items())), topk)
            for v in values for t in train_seeds if (json.dumps(v), t) not in done]
    if done:
        print(f"{len(done)} of {len(wanted)} values and seeds stored, kept")

    def store(job, run):
        value = dict(job.params)[param]
        for record in run:
            record["swept"] = {param: value}
        records.extend(run)
        write_record(path, {"records": records})
        atomic_write_text(path.with_suffix(".md"), sweep_table(records, path.name))
        print(f"{param}={value}, seed {job.train_seed}: " + ", ".join(f"{r['search']} MAP={r['map']:.4f}" for r in run))

    result = grid.run_grid(jobs, path.parent, workers=workers, scheduler=scheduler, dataset=dataset, store=store,
                           progress=False)
    if result.failures:
        raise RuntimeError(f"{len(result.failures)} sweep runs failed (each said why above); the others are stored")
    return records


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from common.threads import pin_threads

    path = Path(args.out) / "sweeps" / f"{args.dataset}-{args.method}-{args.bits}-{args.param}.json"

    def work():
        bits, values, fixed = validate(args.method, args.bits, args.param, args.values, args.set, args.topk,
                                       args.threads)
        seeds, workers, scheduler = grid_settings(args)
        runner.check_writable(path.parent, "--out")
        if args.threads:
            pin_threads(args.threads)
        dataset = runner.load(args.dataset, seed=args.seed)
        run_sweep(dataset, args.method, bits, args.param, values, fixed, args.seed, args.topk, path, seeds,
                  workers, scheduler)
        print(path.with_suffix(".md"))

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
