"""Efficiency protocol (Table II): search time, memory and scaling on real codes.

    python -m protocols.efficiency --dataset fashion-mnist --db-sizes 10000,100000,1000000
    python -m protocols.efficiency --dataset fashion-mnist --db-sizes 100000000 --generate-past 1000000 --dry-run

The database grows beyond the dataset by encoding seeded transformed copies of its database images
(shifts, flips, noise) through the trained models, so the codes keep their real distribution; past
``--generate-past`` codes it grows at the code level instead
(:func:`protocols.efficiency_codes.generated_codes`: each source code with its bits flipped at the
rates its encoded copies showed, calibrated on the encoded codes; written down in
``protocols/README.md``). On the same codes, single-threaded (faiss, torch, BLAS and
numba threads = 1), with a warm-up then ``--repeats`` timed runs (median, and the spread min/max),
it times: a plain numpy linear scan and faiss's ``IndexBinaryFlat`` at every setting a user would try
(``use_heap`` on and off, ``query_batch_size``; the fastest per query, batched or one query at a
time, is "faiss flat (best)", the baseline every ratio is quoted against) on HashNet's 64-bit codes;
faiss's sublinear binary indexes over their build and search parameters (hash widths and flips,
multi-hash tables, IVF lists x probes, HNSW links x efSearch); HDHash's tree over a keep-ratio
sweep and code budgets on HDHash's 8+16+40-bit codes; and the project's own exhaustive Hamming
ranking (the MAP@all path) beside a popcount floor.

Each row: ms per query batched at one thread (median, min, max over the repeats), at every core
(queries in parallel), and one query at a time (``--single-queries`` queries, batch of 1), recall of
the exact top-K (a retrieved item counts when its distance is at most the exact K-th distance, so
items tied at the K-th distance count whichever of them an index returns, as in ann-benchmarks;
capped at K), the share of the K slots filled, MAP@K (id order inside ties) and the tie-aware MAP@K
(:func:`common.ranking.tie_aware_average_precision`: the expected AP@K over every order inside each
group of equal distances), exact index bytes, the process's peak RSS so far, build time, the load
average before and after and the CPU other processes used meanwhile; for the tree the candidates of
its keep rule and the codes it computed a distance for. A setting this machine cannot run (its index
would not fit in memory, IVF's k-means would train for over ``--max-train-minutes``, its row would
take over ``--max-row-minutes``, HNSW past 10^7 codes) is a row of its own with the reason
(``left_out``), never silently missing.

The grid of indexes and settings is data (:func:`protocols.efficiency_grid.default_grid`);
:func:`protocols.efficiency_run.run_efficiency` is the library call; ``main`` parses flags, stores
each row as it is measured and writes the tables (:mod:`protocols.efficiency_records`,
:mod:`protocols.efficiency_views`). Bad input is refused in one line before any training: every flag
(:func:`validate`), then, with the dataset loaded, a database smaller than K and a plan whose
estimated time, memory or cache exceed what this machine has
(:func:`protocols.efficiency_plan.check_plan`; ``--force`` runs it anyway; ``--dry-run`` prints the
plan, what it leaves out and why, and its estimates, without fitting anything).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from protocols.efficiency_frame import LOADED_PER_CORE, runs_folder
from protocols.efficiency_measure import load_average
from protocols.efficiency_plan import MAX_ROW_MINUTES, MAX_TRAIN_MINUTES

#: with --require-quiet, the longest wait after fitting and encoding for the one-minute load average to
#: fall below the loaded mark (it lags the CPU by about a minute: efficiency_measure.settle_load)
SETTLE_SECONDS = 180.0

PROG = "python -m protocols.efficiency"
DEFAULT_KEEP_RATIOS = "0.05,0.1,0.2,0.3,0.5,1.0"


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset whose models and images are used "
                                                                   "(default: fashion-mnist)")
    parser.add_argument("--db-sizes", default="10000,100000,1000000",
                        help="database sizes in codes, comma-separated (default: 10000,100000,1000000)")
    parser.add_argument("--bits", default="64", help="code length of both methods (default: 64; HDHash splits "
                                                     "it 8+16+40)")
    parser.add_argument("--topk", type=int, default=None, help="K of the top-K searched and of MAP@K (default: "
                                                               "the dataset's, 1000 for fashion-mnist)")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the models and the augmentation "
                                                            "(default: 0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats after a warm-up; the median is "
                                                               "kept (default: 5, the protocol's minimum)")
    parser.add_argument("--timing-queries", type=int, default=200, help="queries in each batched timing run "
                                                                        "(default: 200; accuracy uses all queries)")
    parser.add_argument("--single-queries", type=int, default=200, help="queries timed one at a time, a batch of "
                                                                        "1 (default: 200)")
    parser.add_argument("--keep-ratios", default=DEFAULT_KEEP_RATIOS, help="tree keep ratios (default: "
                                                                           f"{DEFAULT_KEEP_RATIOS})")
    parser.add_argument("--baseline", default="hashnet", help="method whose single-level codes the baselines "
                                                              "scan (default: hashnet)")
    parser.add_argument("--tree-method", default="hdhash", help="method whose multi-level codes the tree "
                                                                "indexes (default: hdhash)")
    parser.add_argument("--skip", default="", help="row names to leave out, comma-separated (e.g. faiss-hnsw)")
    parser.add_argument("--generate-past", type=int, default=None, metavar="N",
                        help="encode the first N codes and grow the database past them at the code level, each "
                             "code a source code with bits flipped at the rates its encoded copies showed "
                             "(protocols/README.md); at least 2x the dataset's database (default: encode every code)")
    parser.add_argument("--max-row-minutes", type=float, default=MAX_ROW_MINUTES,
                        help="leave out (with the reason, as a row) an index whose build, or a setting whose "
                             f"searches, would take longer; faiss flat is always run (default: {MAX_ROW_MINUTES:g})")
    parser.add_argument("--max-train-minutes", type=float, default=MAX_TRAIN_MINUTES,
                        help="leave out IVF lists whose k-means would train longer here (default: "
                             f"{MAX_TRAIN_MINUTES:g}, issue 30)")
    parser.add_argument("--require-quiet", action="store_true",
                        help="refuse to start on a loaded machine (load average above "
                             f"{LOADED_PER_CORE} per core): timings there are not valid; after fitting and "
                             f"encoding, wait up to {SETTLE_SECONDS:.0f} s for the load average to settle")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows an earlier (stopped) run of this table stored under the same commit, a "
                             "clean tree, machine, libraries, settings and codes; measure only the index builds it "
                             "had not finished (one with any setting missing is measured again whole); with "
                             "HASHBENCH_START_UNTIL=<UTC time> set, no index is built after that time, so a run of "
                             "many hours spans sessions")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (every setting per size, what is "
                                                              "left out and why, time and memory estimates) and "
                                                              "stop before fitting anything")
    parser.add_argument("--force", action="store_true", help="run even where the estimated time, memory or cache "
                                                            "exceed what this machine has (see the refusal)")
    parser.add_argument("--device", default=None, help="device for training and encoding the models (cpu, cuda, auto)")
    parser.add_argument("--data-root", default=None, help="folder with the dataset's files")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="parameter for both models where they accept it (repeatable), as in protocols.map, "
                             "e.g. levels=(8,16,40); a run with parameters away from the defaults, or other "
                             "--bits, --baseline or --tree-method, writes its own table "
                             "(efficiency/<dataset>--<what changed>.*), never the default one")
    return parser


def validate(args) -> dict:
    """The keyword arguments of :func:`protocols.efficiency_run.run_efficiency` (but the dataset), every
    flag checked, in the order the flags are read; what needs the dataset (K against the sizes, the
    estimates) is :func:`protocols.efficiency_plan.check_plan`'s."""
    from datasets import dataset_name
    from protocols import runner
    from protocols.runner import UsageError

    args.dataset = dataset_name(args.dataset)  # listfile:NAME is stored as listfile-NAME; unknown: one line
    sizes, keep_ratios = _sizes_and_keep_ratios(args)
    _check_numbers(args)
    bits = runner.parse_bits(args.bits)
    if len(bits) != 1:
        raise UsageError(f"--bits takes one code length, got {args.bits!r}")
    params = dict(runner.parse_params(args.param), **({"device": args.device} if args.device else {}))
    tree = _tree_method(args, bits[0], params)
    skip = _skip(args, keep_ratios)
    baseline = runner.create_for(args.dataset, args.baseline, bits[0], params)
    variants = {name: runner.variant_of(name, bits[0], model.get_params(), args.dataset)
                for name, model in ((args.baseline, baseline), (args.tree_method, tree))}
    return dict(sizes=sizes, bits=bits[0], topk=args.topk, seed=args.seed, baseline=args.baseline,
                tree_method=args.tree_method, keep_ratios=keep_ratios, params=params, repeats=args.repeats,
                timing_queries=args.timing_queries, single_queries=args.single_queries, skip=tuple(skip),
                variants=variants, force=args.force, generate_past=args.generate_past,
                max_row_minutes=args.max_row_minutes, max_train_minutes=args.max_train_minutes)


def _sizes_and_keep_ratios(args) -> tuple[list[int], list[float]]:
    """``--db-sizes`` (distinct positive integers) and ``--keep-ratios`` (each one the tree accepts)."""
    from protocols import runner
    from protocols.runner import UsageError
    from search.tree import TreeIndex

    size_items = runner.parse_names(args.db_sizes, "--db-sizes")
    ratio_items = runner.parse_names(args.keep_ratios, "--keep-ratios")
    try:
        sizes = [int(s) for s in size_items]
    except ValueError:
        raise UsageError(f"--db-sizes must be positive integers, got {args.db_sizes!r}") from None
    if min(sizes) <= 0 or len(set(sizes)) != len(sizes):
        raise UsageError(f"--db-sizes must be distinct positive integers, got {args.db_sizes!r}")
    try:
        keep_ratios = [float(r) for r in ratio_items]
    except ValueError:
        raise UsageError(f"--keep-ratios must be numbers, got {args.keep_ratios!r}") from None
    for ratio in keep_ratios:
        try:
            TreeIndex.check_search_params(keep_ratio=ratio)
        except ValueError as exc:
            raise UsageError(f"--keep-ratios: {exc}") from None
    return sizes, keep_ratios


def _check_numbers(args) -> None:
    """The numeric flags: K, the query counts and repeats, ``--generate-past``, the time limits, the seed."""
    from protocols.runner import UsageError

    if args.topk is not None and args.topk < 1:  # 0 is not "the default": leave the flag out for that
        raise UsageError(f"--topk must be a positive integer, got {args.topk}")
    for flag, value in (("--repeats", args.repeats), ("--timing-queries", args.timing_queries),
                        ("--single-queries", args.single_queries)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive integer, got {value}")
    if args.generate_past is not None and args.generate_past < 1:
        raise UsageError(f"--generate-past must be a positive integer, got {args.generate_past}")
    for flag, value in (("--max-row-minutes", args.max_row_minutes), ("--max-train-minutes", args.max_train_minutes)):
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{flag} must be a positive number of minutes, got {value:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")


def _tree_method(args, nbits: int, params: dict):
    """Both methods and their parameters checked (:func:`protocols.runner.check_jobs`), then the tree
    method made: refused unless it has a tree search."""
    from methods import create_method
    from protocols import runner
    from protocols.runner import UsageError

    classes = runner.method_classes([args.baseline, args.tree_method])
    runner.check_jobs(classes, [nbits], params)
    tree = runner.create_for(args.dataset, args.tree_method, nbits, params)
    if not any(mode.index == "tree" for mode in tree.searches):
        raise UsageError(f"--tree-method {args.tree_method} has no tree search; methods with one: "
                         + ", ".join(m for m in runner.method_classes(["paper"])
                                     if any(s.index == "tree" for s in create_method(m).searches)))
    return tree


def _skip(args, keep_ratios) -> list[str]:
    """``--skip``: names of the grid's rows, and not all of them."""
    from protocols import runner
    from protocols.efficiency_grid import default_grid
    from protocols.runner import UsageError

    rows = [g.row for g in default_grid(args.topk or 1, keep_ratios, args.tree_method, args.seed)]
    skip = runner.parse_names(args.skip, "--skip") if args.skip.strip() else []
    unknown = [name for name in skip if name not in rows]
    if unknown:
        raise UsageError(f"--skip {unknown[0]!r} is not a row; rows: {', '.join(rows)}")
    if set(rows) <= set(skip):
        raise UsageError("--skip leaves no row to run")
    return skip


def check_quiet() -> None:
    """A one-line refusal on a loaded machine (``--require-quiet``): load average over
    :data:`LOADED_PER_CORE` per core before any work."""
    from protocols.runner import UsageError

    load, cores = load_average(), os.cpu_count() or 1
    if load is not None and load / cores > LOADED_PER_CORE:
        raise UsageError(f"--require-quiet: this machine is loaded (load average {load:.2f} on {cores} cores, over "
                         f"{LOADED_PER_CORE} per core): timings would not be valid; stop the other work first")


def check_clean() -> None:
    """``--resume`` keeps rows by their commit: a one-line refusal where the tracked files differ
    from it (the rows measured now would not be that commit's code)."""
    from common.provenance import git_state
    from protocols.runner import UsageError

    git = git_state()
    if git["commit"] is None or git["dirty"]:
        raise UsageError("--resume: the working tree differs from its commit (or is not a git checkout); a resumed "
                         "run keeps rows by commit, so run it from a clean checkout (e.g. a git worktree)")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from protocols import runner
    from protocols.cli import run_command
    from protocols.efficiency_plan import describe_plan, make_plan
    from protocols.efficiency_records import read_records_by_name, rebuild_csv, record_name, store_rows, table_name
    from protocols.efficiency_run import run_efficiency
    from protocols.efficiency_views import render

    def work():
        settings = validate(args)
        runner.check_writable(Path(args.out) / "efficiency", "--out")
        if args.resume:
            check_clean()
        if args.require_quiet:
            check_quiet()
        dataset = runner.load(args.dataset, args.data_root, args.seed)
        variants = settings.pop("variants")
        if args.dry_run:
            plan = make_plan(dataset, settings["sizes"], bits=settings["bits"], topk=settings["topk"],
                             repeats=settings["repeats"], timing_queries=settings["timing_queries"],
                             single_queries=settings["single_queries"], generate_past=settings["generate_past"],
                             keep_ratios=settings["keep_ratios"], tree_method=settings["tree_method"],
                             seed=settings["seed"], skip=settings["skip"], max_row_minutes=settings["max_row_minutes"],
                             max_train_minutes=settings["max_train_minutes"])
            print("\n".join(describe_plan(plan)))
            return
        name = table_name(dataset.name, settings["bits"], settings["baseline"], settings["tree_method"], variants)

        owned = set()  # the rows this run measured or kept: a row it stores never moves them aside

        def keep(row):  # stored as measured; what the run changed in each record (the default run's: nothing)
            if any(variants.values()):
                row["variant"] = {k: v for k, v in variants.items() if v}
            owned.add(record_name(row))
            store_rows([row], Path(args.out), name, keep=owned)

        stored = read_records_by_name(runs_folder(Path(args.out), name)) if args.resume else None
        run_efficiency(dataset, settings.pop("sizes"), **settings, on_row=keep, resume=stored,
                       on_kept=lambda records: owned.update(map(record_name, records)),
                       settle_s=SETTLE_SECONDS if args.require_quiet else 0.0)
        if not any(runs_folder(Path(args.out), name).glob("*.json")):
            return  # nothing measured (the start deadline had passed) and nothing stored before: no table
        for path in [rebuild_csv(Path(args.out), name), *render(Path(args.out), name)]:
            print(path)

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
