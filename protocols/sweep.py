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
    parser.add_argument("--seed", type=int, default=0, help="split and method seed (default: 0)")
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
    if param not in cls._param_names():
        raise UsageError(f"{method} has no parameter {param!r}; it has {', '.join(cls._param_names())}")
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


def run_sweep(dataset, method, bits, param, values, fixed, seed, topk, path: Path) -> list[dict]:
    """Run each value not yet stored in ``path``; the file is rewritten after each value."""
    from protocols.tables import sweep_table

    previous = read_record(path) if path.is_file() else None
    records = [r for r in (previous or {}).get("records", [])
               if r.get("split_sha256") == dataset.split_sha256 and r.get("seed") == seed
               and json.dumps(r.get("swept", {}).get(param)) in {json.dumps(v) for v in values}]
    done = {json.dumps(r["swept"][param]) for r in records}
    for value in values:
        if json.dumps(value) in done:
            print(f"{param}={value}: stored, kept")
            continue
        run = runner.run(dataset, method, bits, seed=seed, params=dict(fixed, **{param: value}), topk=topk)
        for record in run:
            record["swept"] = {param: value}
        records += run
        write_record(path, {"records": records})
        atomic_write_text(path.with_suffix(".md"), sweep_table(records, path.name))
        print(f"{param}={value}: " + ", ".join(f"{r['search']} MAP={r['map']:.4f}" for r in run))
    return records


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from common.threads import pin_threads
    from protocols.cli import run_command

    path = Path(args.out) / "sweeps" / f"{args.dataset}-{args.method}-{args.bits}-{args.param}.json"

    def work():
        bits, values, fixed = validate(args.method, args.bits, args.param, args.values, args.set, args.topk,
                                       args.threads)
        runner.check_writable(path.parent, "--out")
        if args.threads:
            pin_threads(args.threads)
        dataset = runner.load(args.dataset, seed=args.seed)
        run_sweep(dataset, args.method, bits, args.param, values, fixed, args.seed, args.topk, path)
        print(path.with_suffix(".md"))

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
