"""The training-budget pilot ("A fair fight", step 1): how long must each deep method train, and at
which learning rate?

    python -m protocols.pilot --datasets fashion-mnist,fashion-mosaic --workers 2

The plan is data (``protocols/settings/pilot.json``, read by :mod:`protocols.pilot_plan`): every deep
method of Table I and of its "beyond the paper" block (and HDHash over the dataset's chosen level loss)
at one code length and training seed, trained ``epochs`` (150) without early stopping at the method's
default learning rate times each of ``lr_factors`` (1/3, 1, 3, 9: the same factors for every method),
and past an edge of those rates where a method's best lies there (the plan's edge rule: the command
runs again what that rule adds once the runs it rests on are stored). Each run is one
:func:`protocols.runner.run`, its record Table I's with the whole validation-MAP history
(``val_map_history``), stored under ``<out>/pilot/map/runs/<dataset>/``; a stored run is skipped,
so a grid cut short resumes (and a deep run continues from its checkpoint).

The report (:func:`protocols.pilot_report.write_pilot_report`, rebuilt after every run and by
``--report-only``) is
``<out>/pilot/<dataset>.{csv,md,png}``: per method and learning rate the best validation MAP, its
epoch and the first epoch within 0.5 % of it; the chosen learning rate (best validation MAP, never
the queries); and validation MAP against epoch, one line per method at its chosen rate.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocols import runner
from protocols.cli import run_command
from protocols.pilot_plan import OVER_LOSS, PLAN, pilot_jobs, read_plan
from protocols.pilot_report import (
    PILOT,
    PROG,
    best_by_factor,
    level_loss_choice,
    pilot_frame,
    proposed_rule,
    write_pilot_report,
)
from protocols.runner import UsageError


def planned_jobs(out, plan: dict, datasets: list[str], entries: list[str]) -> list:
    """Every run of the plan for ``datasets``, with the rates its edge rule adds from what is stored."""
    return [job for name in datasets
            for job in pilot_jobs(name, plan, entries, best_by_factor(pilot_frame(out, name)))]


def pending_runs(jobs: list, out, dataset) -> tuple[list, int]:
    """``(jobs to run, number stored)`` of ``dataset``'s pilot ``jobs``: a run is stored where a record
    of the pilot (its default search) has the job's method, code length, seeds and split, and
    parameters that differ in nothing from the job's (the method's defaults with the learning rate,
    epochs, patience and level loss the plan sets). Matched by parameters, not by file name: a record's
    name holds its variant, which is named against the dataset's training-budget rule
    (:func:`protocols.runner.variant_of`), so the rule committed from a pilot would rename every run of
    that pilot and the command would train all of them again."""
    records = [r for r in runner.stored(Path(out) / PILOT, dataset.name)
               if r.get("default_search", True) and isinstance(r.get("params"), dict)]

    def stored(job) -> bool:
        return any(r["method"] == job.method and int(r["bits"]) == job.bits and r.get("seed") == job.seed
                   and r.get("train_seed", r.get("seed")) == job.train_seed
                   and r.get("split_sha256") == dataset.split_sha256
                   and not runner.changed_params(dict(r, dataset=None), dict(job.params))  # no rule: the plan's
                   for r in records)

    todo = [job for job in jobs if not stored(job)]
    return todo, len(jobs) - len(todo)


def run_until_inside(args, plan: dict, datasets: list[str], entries: list[str], jobs: list) -> None:
    """Run what of ``jobs`` is not stored; then again what the edge rule adds from the new runs, until it
    adds nothing (or a run fails: the command says so and stops, a rerun resumes)."""
    from protocols import grid

    while True:
        todo = []
        for name in datasets:
            part, done = pending_runs([j for j in jobs if j.dataset == name], args.out, runner.load(name))
            todo += part
            print(f"{name}: {done} pilot runs stored, {len(part)} to run", file=sys.stderr)
        if not todo:
            return

        def stored(job, records):
            write_pilot_report(args.out, job.dataset, plan)

        result = grid.run_grid(todo, Path(args.out) / PILOT, workers=args.workers, scheduler=args.scheduler,
                               on_records=stored)
        if result.failures:
            print(f"{PROG}: {len(result.failures)} runs failed (each said why above); the others are stored",
                  file=sys.stderr)
            return
        if result.not_started:  # past the grid's start deadline (run_grid said so): a rerun goes on
            return
        jobs = planned_jobs(args.out, plan, datasets, entries)


def propose(out, plan: dict, datasets: list[str]) -> None:
    """``--propose-rule``: the rule's entries the complete pilots support, as the settings file's JSON;
    a line on stderr per dataset whose pilot is not complete."""
    import json

    entries = {}
    for name in datasets:
        entry, missing = proposed_rule(out, name, plan)
        if entry is None:
            print(f"{name}: the pilot is not complete ({missing} planned runs not stored): no rule to propose",
                  file=sys.stderr)
        else:
            entries[name] = entry
    if entries:
        print(json.dumps(entries, indent=2))


def check_level_loss(out, plan: dict, datasets: list[str]) -> int:
    """``--check-level-loss``: per dataset a line saying whether HDHash's row over the chosen level loss
    may train: 0 where the Table I runs under the rule choose the loss the plan names and the rule has
    its rate; else 1, the line saying what is owed (runs, a changed plan, the pilot's runs of the loss)."""
    status = 0
    for name in datasets:
        used = plan["hdhash_level_loss"].get(name)
        rule = runner.training_budget().get(name) or {}
        if not rule:
            print(f"{name}: no training-budget rule: HDHash over {used} trains on that loss's own schedule")
            continue
        choice, values, missing = level_loss_choice(out, name)
        if choice is None:
            print(f"{name}: the level loss is not chosen yet: {len(missing)} of its training-seed-0 runs under the "
                  f"rule are not stored ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
        elif choice != used:
            print(f"{name}: the Table I runs under the rule choose {choice} (mean validation MAP "
                  f"{values[choice]['mean']:.4f}), the plan names {used}: change hdhash_level_loss in {PLAN.name}, "
                  f"run '{PROG} --methods {OVER_LOSS}' and commit the rule '--propose-rule' prints")
        elif runner.budget_label("hdhash", {"level_loss": choice}) not in (rule.get("lr_factor") or {}):
            print(f"{name}: {choice} is chosen but the rule has no rate for HDHash over it: run '{PROG} --methods "
                  f"{OVER_LOSS}' and commit the rule '--propose-rule' prints")
        else:
            print(f"{name}: {choice} (mean validation MAP {values[choice]['mean']:.4f}), as the plan names it")
            continue
        status = 1
    return status


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="fashion-mnist,fashion-mosaic",
                        help="comma-separated datasets (default: fashion-mnist,fashion-mosaic)")
    parser.add_argument("--methods", default=None, help="comma-separated entries of the plan to run (default: all "
                                                        f"of {PLAN.name}'s; '{OVER_LOSS}' is HDHash over the "
                                                        "dataset's chosen level loss)")
    parser.add_argument("--workers", type=int, default=0, help="local Dask workers (default: 0 = in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="an existing Dask cluster")
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the pilot's tables and figures from "
                                                                     "the stored records; run nothing")
    parser.add_argument("--propose-rule", action="store_true",
                        help="print, per dataset whose pilot is complete, the training-budget rule's entry it "
                             "supports (protocols/settings/training_budget.json: the pilot's epochs, no early "
                             "stopping, each method's rate factor with the best validation MAP); run nothing")
    parser.add_argument("--check-level-loss", action="store_true",
                        help="say, per dataset, whether HDHash over the chosen level loss may train: its training-"
                             "seed-0 Table I runs under the rule choose the loss the plan names and the rule has its "
                             "rate (exit 0), or what is owed (exit 1); run nothing")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def work():
        from datasets import dataset_name

        plan = read_plan()
        # listfile:NAME is stored as listfile-NAME; an unknown name: one line naming the valid ones
        datasets = [dataset_name(name) for name in runner.parse_names(args.datasets, "--datasets")]
        entries = runner.parse_names(args.methods, "--methods") if args.methods else plan["methods"]
        unknown = sorted(set(entries) - set(plan["methods"]))
        if unknown:
            raise UsageError(f"--methods {unknown[0]} is not in the pilot plan; valid: {', '.join(plan['methods'])}")
        if args.workers < 0:
            raise UsageError(f"--workers must be 0 or a positive number, got {args.workers}")
        if args.workers and args.scheduler:
            raise UsageError("--workers starts a local cluster and --scheduler names an existing one: give one")
        jobs = planned_jobs(args.out, plan, datasets, entries)
        for job in jobs:
            runner.check_jobs(runner.method_classes([job.method]), [job.bits], dict(job.params))
        runner.check_writable(Path(args.out) / PILOT, "--out")
        if args.propose_rule:
            return propose(args.out, plan, datasets)
        if args.check_level_loss:
            return check_level_loss(args.out, plan, datasets)
        if not args.report_only:
            run_until_inside(args, plan, datasets, entries, jobs)
        for name in datasets:
            for path in write_pilot_report(args.out, name, plan):
                print(path)

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
