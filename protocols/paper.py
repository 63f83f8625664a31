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
tables. Whatever subset ran, these files are rebuilt from the whole store
(:func:`protocols.paper_tables.rebuild_tables`). This module parses flags, runs and prints; what is
stored and what is missing is :mod:`protocols.paper_plan`'s, the tables :mod:`protocols.paper_tables`'.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from protocols import grid, runner
from protocols.cli import add_grid_flags, grid_settings, run_command
from protocols.paper_plan import BUILTIN, PAPER, plan, probe
from protocols.paper_tables import rebuild_tables
from protocols.published import method_order
from protocols.runner import UsageError

PROG = "python -m protocols.paper"


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


def run_missing(dataset, jobs, out, workers: int = 0, scheduler=None) -> int:
    """Run the missing jobs (:func:`protocols.grid.run_grid`: in process or on a cluster), store
    each as it finishes, rebuild the dataset's MAP tables; returns how many failed."""
    from protocols.tables import write_map_report

    try:
        result = grid.run_grid(jobs, out, workers=workers, scheduler=scheduler, dataset=dataset)
    finally:
        write_map_report(out, dataset.name)
    return len(result.failures)


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
    from datasets import dataset_name

    order = method_order()
    methods = list(runner.method_classes(runner.parse_names(args.methods, "--methods")) if args.methods
                   else runner.method_classes(["paper"]))
    methods = sorted(methods, key=order.index)
    bits, shared = runner.parse_bits(args.bits), runner.parse_params(args.param)
    # listfile:NAME is stored as listfile-NAME, as every command names it; an unknown name: one line
    names = [dataset_name(name) for name in runner.parse_names(args.datasets, "--datasets")]

    def stored_name(text: str) -> str:  # a name another flag gives: your own dataset as it is stored
        return dataset_name(text) if text.startswith("listfile:") else text

    roots = {}
    for item in args.data_root:
        if "=" not in item:
            raise UsageError(f"--data-root takes DATASET=DIR, got {item!r}")
        key, value = item.split("=", 1)
        key = stored_name(key.strip())
        if key not in names:
            raise UsageError(f"--data-root names {key!r}, which is not among --datasets ({', '.join(names)})")
        roots[key] = value
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
                    efficiency=[stored_name(d.strip()) for d in args.efficiency.split(",") if d.strip()],
                    efficiency_sizes=sizes,
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


def table2_datasets(run: PaperRun, datasets: dict) -> None:
    """Run :func:`protocols.efficiency_run.run_efficiency` where a ``--efficiency`` dataset has no Table II."""
    from protocols.efficiency_run import run_efficiency
    from protocols.efficiency_views import write_efficiency_report

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


if __name__ == "__main__":
    sys.exit(main())
