"""MAP protocol (Table I): fit each method at each bit length on the shared training split, encode
queries and database, rank, score, and store one record per run.

    python -m protocols.map --dataset fashion-mnist --methods hdhash,hashnet --bits 16,32,48,64

Writes ``<out>/map/runs/<dataset>/*.json`` (one raw record per run and search), then rebuilds
``<out>/map/<dataset>.csv``, ``.md`` (rows: bit lengths, columns: methods) and ``.png``. The work is
:func:`protocols.runner.run`; this module parses flags and prints.

``--protocol unseen`` (:mod:`datasets.class_split`): trained on 7 of 10 classes (a class split of
``--class-seed``), queries from the other 3, scored against the unseen-class items and against the
whole database from one trained model; records under ``<out>/unseen/map/runs/<dataset>/``, apart from
Table I's, and Table U in ``<out>/map/<dataset>-unseen.{csv,md}`` (:mod:`protocols.unseen_tables`).

On the photo datasets (images decoded on demand, :mod:`datasets.listfile`) deep methods train on the
images; shallow methods run on the features named by ``--features`` (:mod:`deep.features`), checked
once before any run. Your own dataset: ``--dataset listfile:NAME --data-root DIR``, stored as
``listfile-NAME``.
"""
from __future__ import annotations

import argparse
import sys

from protocols import runner
from protocols.cli import add_grid_flags, grid_settings, run_command
from protocols.runner import UsageError

PROG = "python -m protocols.map"


def build_parser() -> argparse.ArgumentParser:
    from datasets import list_datasets
    from methods import list_methods

    parser = argparse.ArgumentParser(
        prog=PROG, description="MAP protocol (Table I): train, encode, rank and score methods on a dataset's "
                               "shared split.",
        epilog=f"methods: {', '.join(list_methods())} ('paper' = Table I's); datasets: {', '.join(list_datasets())}, "
               "listfile:NAME",
    )
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset name, or listfile:NAME for your own in "
                        "HashNet's list files under --data-root, stored as listfile-NAME (default: fashion-mnist)")
    parser.add_argument("--methods", default="lsh,itq", help="comma-separated method names, or 'paper' for "
                                                             "Table I's (default: lsh,itq)")
    parser.add_argument("--bits", default="16,32,48,64", help="comma-separated code lengths, positive multiples "
                                                              "of 8 (default: 16,32,48,64)")
    parser.add_argument("--topk", type=int, default=None, help="K of MAP@K (default: the dataset's, "
                                                               "PROTOCOL.md; all for digits)")
    add_grid_flags(parser, "each (method, bits)")
    parser.add_argument("--force", action="store_true", help="run again what is stored (default: stored runs with "
                        "today's parameters are skipped, so a rerun resumes)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--save-codes", metavar="DIR", default=None,
                        help="also save each run's packed codes and labels as DIR/<dataset>-<method>-<bits>.npz")
    parser.add_argument("--data-root", default=None, help="folder with the dataset's files (e.g. "
                                                          "Fashion-MNIST's IDX files)")
    parser.add_argument("--device", default=None, help="device for deep methods: cpu, cuda or auto (default: "
                                                       "the method's, auto)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="method parameter, passed to every method that accepts NAME (repeatable), e.g. "
                             "levels=(8,16,40) for HDHash")
    parser.add_argument("--protocol", default="standard", choices=list(runner.PROTOCOLS),
                        help="standard: the dataset's split (Table I); unseen: trained on 70%% of the classes, "
                             "queries from the others, against the unseen-class items and against every item "
                             "(records in <out>/unseen/, Table U in <out>/map/<dataset>-unseen.md; single-label "
                             "datasets only) (default: standard)")
    parser.add_argument("--class-seed", type=int, default=None, help="seed of --protocol unseen's class split, "
                        "apart from the split and training seeds (default: 0)")
    parser.add_argument("--schedule", default="default", choices=["default", "authors"],
                        help="default: each method's defaults (and the training-budget rule where the dataset has "
                             "one); authors: the modern methods as their authors' code trains them "
                             "(protocols/settings/authors_schedules.json), stored as variant rows")
    parser.add_argument("--threads", type=int, default=None, help="pin torch/BLAS/faiss threads to this number "
                                                                  "(default: libraries' defaults)")
    parser.add_argument("--features", default="alexnet-fc7", choices=["alexnet-fc7", "pixels", "none"],
                        help="what shallow methods take on the photo datasets (imagenet-100, nus-wide-21, "
                             "ms-coco, listfile): "
                             "alexnet-fc7 = ImageNet AlexNet's fc7 (DeCAF7, the paper's; needs the weights), "
                             "pixels = 32x32 RGB, "
                             "none = refuse (default: alexnet-fc7); see deep/features.py")
    return parser


def validate(args) -> tuple[dict, list[int], dict]:
    from datasets import dataset_name

    args.dataset = dataset_name(args.dataset)  # listfile:NAME is stored as listfile-NAME
    if args.topk is not None and args.topk <= 0:
        raise UsageError(f"--topk must be positive, got {args.topk}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if args.class_seed is not None and args.protocol != "unseen":
        raise UsageError("--class-seed is the unseen-class split's seed: give it with --protocol unseen")
    args.class_seed = 0 if args.class_seed is None else args.class_seed
    if args.class_seed < 0:
        raise UsageError(f"--class-seed must be a non-negative integer, got {args.class_seed}")
    grid_settings(args)
    classes = runner.method_classes(runner.parse_names(args.methods, "--methods"))
    bits, params = runner.parse_bits(args.bits), runner.parse_params(args.param)
    # under --schedule authors each method is checked with its own schedule (a --param still wins)
    runner.check_jobs(classes, bits, params, device=args.device,
                      own_params=(lambda name: method_run_params(name, {}, args.schedule)))
    runner.check_writable(args.out, "--out")
    if args.save_codes:
        runner.check_writable(args.save_codes, "--save-codes")
    return classes, bits, params


def method_run_params(method: str, params: dict, schedule: str = "default") -> dict:
    """What a run of ``method`` sets: its authors' schedule under ``schedule="authors"``, then ``params``."""
    return {**(runner.authors_schedule(method) if schedule == "authors" else {}), **params}


def run_all(dataset, classes, bits, train_seeds, seed, topk, params, out, features, device, save_codes,
            force, workers, scheduler, schedule: str = "default", protocol: str = "standard",
            class_seed: int = 0) -> tuple[list[dict], int, list]:
    """The grid of (method, bits, training seed) runs, stored as each finishes (resuming: stored
    runs are skipped unless ``force``), then the tables rebuilt (Table I's, or the unseen-class
    ``protocol``'s Table U); returns (records, failures, the table files written: none when nothing
    is stored)."""
    from protocols import grid
    from protocols.tables import write_map_report
    from protocols.unseen_tables import write_unseen_report

    if save_codes and (workers or scheduler):
        raise UsageError("--save-codes writes on the machine that runs; use it without --workers/--scheduler")
    options = dict(seed=seed, topk=topk, data_root=dataset.info.get("root") if dataset.info.get("photos") else None,
                   features=features, device=device, save_codes=save_codes, protocol=protocol, class_seed=class_seed)
    jobs = [job for name in classes for job in grid.expand(dataset.name, [name], bits, train_seeds,
                                                           params=method_run_params(name, params, schedule),
                                                           **options)]
    jobs.sort(key=lambda job: job.train_seed)  # seed by seed, so a grid cut short holds whole seeds
    todo, done = (jobs, 0) if force else grid.pending(jobs, out, dataset, workers=workers, scheduler=scheduler)
    if features == "none" or not scheduler:  # an existing cluster's workers may hold weights this machine lacks
        runner.check_features(dataset, {job.method: classes[job.method] for job in todo}, features)
    if done:
        print(f"{done} of {len(jobs)} runs stored already (skipped; --force runs them again)", file=sys.stderr)
    try:
        result = grid.run_grid(todo, out, workers=workers, scheduler=scheduler, dataset=dataset)
    finally:  # interrupted or not, the tables show every stored run
        report = write_map_report if protocol == "standard" else write_unseen_report
        written = report(out, dataset.name)
    return result.records, len(result.failures), written


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from common.threads import pin_threads

    def work():
        classes, bits, params = validate(args)
        train_seeds, workers, scheduler = grid_settings(args)
        if args.threads:
            pin_threads(args.threads)
        dataset = runner.load(args.dataset, args.data_root, args.seed)
        runner.check_protocol(dataset, args.protocol, args.class_seed)
        records, failures, written = run_all(dataset, classes, bits, train_seeds, args.seed, args.topk, params,
                                             args.out, args.features, args.device, args.save_codes, args.force,
                                             workers, scheduler, args.schedule, args.protocol, args.class_seed)
        for record in records:
            against = f" unseen@{record['database']:<6}" if "database" in record else ""
            print(f"{record['method']:>8} {record['bits']:>3} bits {record['search']:<10}{against} "
                  f"MAP@{record['topk']}={record['map']:.4f} MAP@all={record['map_all']:.4f} "
                  f"train {record['train_s']:.1f}s")
        print(f"wrote {', '.join(str(path) for path in written)}" if written else
              f"no table written: no run of {dataset.name} is stored in {args.out}")
        if failures:
            print(f"{PROG}: error: {failures} runs failed (each said why above); the others are stored",
                  file=sys.stderr)
            return 1

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
