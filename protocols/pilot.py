"""The training-budget pilot ("A fair fight", step 1): how long must each deep method train, and at
which learning rate?

    python -m protocols.pilot --datasets fashion-mnist,fashion-mosaic --workers 2

The plan is data (``protocols/settings/pilot.json``): every deep method of Table I and of its
"beyond the paper" block (and HDHash over the dataset's chosen level loss) at one code length and
training seed, trained ``epochs`` (150) without early stopping at the method's default learning
rate times each of ``lr_factors`` (1/3, 1, 3, 9: the same factors for every method). Each run is one
:func:`protocols.runner.run`, its record Table I's with the whole validation-MAP history
(``val_map_history``), stored under ``<out>/pilot/map/runs/<dataset>/``; a stored run is skipped,
so a grid cut short resumes (and a deep run continues from its checkpoint).

The report (:func:`write_pilot_report`, rebuilt after every run and by ``--report-only``) is
``<out>/pilot/<dataset>.{csv,md,png}``: per method and learning rate the best validation MAP, its
epoch and the first epoch within 0.5 % of it; the chosen learning rate (best validation MAP, never
the queries); and validation MAP against epoch, one line per method at its chosen rate.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from common.files import atomic_savefig, atomic_write_text
from protocols import runner
from protocols.cli import run_command
from protocols.runner import UsageError

PROG = "python -m protocols.pilot"
PLAN = Path(__file__).parent / "settings" / "pilot.json"
#: the pilot's folder inside the results folder (its runs: ``<out>/pilot/map/runs/<dataset>/``)
PILOT = "pilot"
#: the plan's name for HDHash trained per level with the dataset's chosen level loss
OVER_LOSS = "hdhash-over-loss"
#: a budget is enough for a method when it reaches this share of its best pilot validation MAP
ENOUGH = 0.995


def read_plan(path=PLAN) -> dict:
    plan = json.loads(Path(path).read_text())
    return {k: v for k, v in plan.items() if not k.startswith("_")}


def method_and_params(entry: str, dataset: str, plan: dict) -> tuple[str, dict]:
    """The registered method of a plan entry and the parameters it adds (HDHash's level loss)."""
    if entry != OVER_LOSS:
        return entry, {}
    losses = plan["hdhash_level_loss"]
    if dataset not in losses:
        raise UsageError(f"the pilot plan names no level loss for {dataset}; valid datasets: {', '.join(losses)}")
    return "hdhash", {"level_loss": losses[dataset]}


def default_lr(method: str, bits: int) -> float:
    from methods import create_method

    return float(create_method(method, nbits=bits).lr)


def pilot_jobs(dataset: str, plan: dict, entries=None) -> list:
    """One :class:`protocols.grid.Job` per (entry, learning-rate factor), entry by entry."""
    from protocols import grid

    jobs = []
    for entry in entries or plan["methods"]:
        method, extra = method_and_params(entry, dataset, plan)
        for factor in plan["lr_factors"]:
            lr = runner.scaled_lr(method, plan["bits"], factor)
            params = dict(extra, epochs=plan["epochs"], patience=None, lr=lr)
            jobs.append(grid.Job(dataset, method, plan["bits"], 0, plan["train_seed"], tuple(sorted(params.items()))))
    return jobs


def pilot_label(record: dict) -> str:
    """``hdhash[<loss>]`` for HDHash over another method's loss, else the method's name."""
    loss = (record.get("params") or {}).get("level_loss")
    return f"{record['method']}[{loss}]" if record["method"] == "hdhash" and loss not in (None, "hashnet") else \
        record["method"]


def first_within(history: list, share: float = ENOUGH) -> int | None:
    """The first epoch (1-based) whose validation MAP is at least ``share`` of the history's best."""
    values = [v for v in history if v is not None]
    if not values:
        return None
    best = max(values)
    return next(i + 1 for i, v in enumerate(history) if v is not None and v >= share * best)


def pilot_frame(out, dataset: str) -> pd.DataFrame:
    """One row per stored pilot run (its default search): label, learning rate and factor, the
    validation MAP's best, best epoch and first epoch within 0.5 % of it, and the history."""
    rows = []
    for record in runner.stored(Path(out) / PILOT, dataset):
        history = record.get("val_map_history")
        if not record.get("default_search", True) or not isinstance(history, list) or not history:
            continue
        lr = (record.get("params") or {}).get("lr")
        values = [v for v in history if v is not None]
        rows.append({
            "method": pilot_label(record), "lr": lr,
            "lr_factor": round(lr / default_lr(record["method"], int(record["bits"])), 4),
            "best_val_map": max(values) if values else None,
            "best_epoch": (record.get("fit_info") or {}).get("epoch"), "epochs_run": len(history),
            "epoch_within_0.5pct": first_within(history), "val_map_at_30": history[29] if len(history) >= 30 else None,
            "map": record.get("map"), "topk": record.get("topk"), "bits": record["bits"],
            "train_s": record.get("train_s"), "git_commit": (record.get("git") or {}).get("commit"),
            "history": history,
        })
    frame = pd.DataFrame(rows)
    return frame.sort_values(["method", "lr"], kind="stable").reset_index(drop=True) if len(frame) else frame


def chosen_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method, the run at the learning rate with the best validation MAP."""
    if frame.empty:
        return frame
    return frame.loc[frame.groupby("method")["best_val_map"].idxmax()].reset_index(drop=True)


def rule_adequacy(out, dataset: str, frame: pd.DataFrame, plan: dict, budget: dict | None = None) -> pd.DataFrame:
    """The training-budget rule's adequacy (issue 28, step 3): per method the pilot chose a rate for,
    the best validation MAP of its Table I run under the rule (``<out>/map/runs/<dataset>/``, the
    plan's bits and training seed, split seed 0) as a share of its best pilot validation MAP. Empty
    when the rule (``protocols/settings/training_budget.json``) does not name ``dataset``.

    A Table I record counts only when its epochs, patience and learning rate are the rule's (a record
    stored before the rule, with the old defaults, says ``variant`` "" too)."""
    budget = runner.training_budget() if budget is None else budget
    rule = budget.get(dataset)
    if not rule or frame.empty:
        return pd.DataFrame()
    runs = {}
    for record in runner.stored(out, dataset):
        if (record.get("default_search", True) and int(record["bits"]) == plan["bits"] and record.get("seed") == 0
                and record.get("train_seed", record.get("seed")) == plan["train_seed"]
                and isinstance(record.get("val_map_history"), list)):
            runs.setdefault(pilot_label(record), []).append(record)
    rows = []
    for _, best in chosen_rates(frame).iterrows():
        label, method = best["method"], best["method"].split("[")[0]
        factor = (rule.get("lr_factor") or {}).get(label)
        lr = None if factor is None else runner.scaled_lr(method, plan["bits"], factor)
        under = [r for r in runs.get(label, []) if lr is not None and (r.get("params") or {}).get("lr") == lr
                 and (r.get("params") or {}).get("epochs") == rule.get("epochs")
                 and (r.get("params") or {}).get("patience") == rule.get("patience")]
        history = [v for v in under[0]["val_map_history"] if v is not None] if under else []
        reached = max(history) if history else None
        rows.append({"method": label, "rule_lr_factor": factor, "pilot_lr_factor": best["lr_factor"],
                     "pilot_best_val_map": best["best_val_map"], "rule_val_map": reached,
                     "rule_epochs_run": len(under[0]["val_map_history"]) if under else None,
                     "rule_best_epoch": (under[0].get("fit_info") or {}).get("epoch") if under else None,
                     "share": None if reached is None else reached / best["best_val_map"]})
    return pd.DataFrame(rows)


def adequacy_markdown(adequacy: pd.DataFrame, dataset: str, rule: dict) -> list[str]:
    patience = "no early stopping" if rule.get("patience") is None else f"patience {rule['patience']}"
    lines = ["", f"## The rule's adequacy: {rule.get('epochs')} epochs, {patience}", "",
             "The rule (`protocols/settings/training_budget.json`) must bring every method to at least "
             f"{ENOUGH:.1%} of its best pilot validation MAP; measured on its Table I run under the rule "
             f"(`map/runs/{dataset}/`, same bits and seeds as the pilot). An empty cell: that run is not stored yet.",
             "", "| method | rule's rate | pilot's best rate | pilot best val MAP | val MAP under the rule "
             "| best epoch | share | enough |", "|---|---|---|---|---|---|---|---|"]
    for _, row in adequacy.iterrows():
        rate = "not in the rule" if row["rule_lr_factor"] is None or pd.isna(row["rule_lr_factor"]) else \
            f"x{_factor_text(row['rule_lr_factor'])}"
        reached = row["rule_val_map"] is not None and not pd.isna(row["rule_val_map"])
        share = row["share"] if reached else None
        lines.append("| " + " | ".join([
            row["method"], rate, f"x{_factor_text(row['pilot_lr_factor'])}", f"{row['pilot_best_val_map']:.4f}",
            f"{row['rule_val_map']:.4f}" if reached else "", str(int(row["rule_best_epoch"])) if reached else "",
            f"{share:.2%}" if reached else "", ("yes" if share >= ENOUGH else "**no**") if reached else ""]) + " |")
    return lines


def pilot_markdown(frame: pd.DataFrame, dataset: str, plan: dict, adequacy: pd.DataFrame | None = None,
                   rule: dict | None = None) -> str:
    factors = plan["lr_factors"]
    lines = [f"# Training-budget pilot: {dataset}, {plan['bits']} bits, training seed {plan['train_seed']}", "",
             f"Each deep method trained {plan['epochs']} epochs without early stopping (cosine schedule over the "
             f"whole run) at its default learning rate times {', '.join(_factor_text(f) for f in factors)}; "
             "validation MAP is the trainer's (held-out "
             "training images ranked against the rest; never the queries). The chosen rate has the best validation "
             f"MAP. 'within 0.5 %': the first epoch whose validation MAP is at least {ENOUGH:.1%} of the run's best "
             "(under this schedule, not a shorter one). MAP@K on the queries is shown for information only. Built by "
             f"`{PROG} --report-only` from the records in `pilot/map/runs/{dataset}/`.", ""]
    head = ["method"] + [f"val MAP x{_factor_text(f)}" for f in factors] + [
        "chosen", "best epoch", "within 0.5 %", "val MAP at epoch 30", "MAP@K (chosen)", "train s (chosen)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chosen = chosen_rates(frame).set_index("method")
    for method in chosen.index:
        runs = frame[frame["method"] == method]
        cells = [method]
        for factor in factors:
            match = runs[(runs["lr_factor"] - round(factor, 4)).abs() < 1e-3]
            cells.append(f"{match['best_val_map'].iloc[0]:.4f}" if len(match) else "")
        row = chosen.loc[method]
        so_far = f", {len(runs)} of {len(factors)} rates run" if len(runs) < len(factors) else ""
        cells += [f"x{_factor_text(row['lr_factor'])} (lr {row['lr']:g}{so_far})", str(row["best_epoch"]),
                  str(row["epoch_within_0.5pct"]),
                  "" if pd.isna(row["val_map_at_30"]) else f"{row['val_map_at_30']:.4f}",
                  "" if row["map"] is None else f"{row['map']:.4f}", f"{row['train_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    missing = sorted(set(plan["methods"]) - {m.split("[")[0] if "[" not in m else OVER_LOSS for m in chosen.index})
    if missing:
        lines += ["", f"Not yet run: {', '.join(missing)}."]
    if adequacy is not None and not adequacy.empty:
        lines += adequacy_markdown(adequacy, dataset, rule)
    return "\n".join(lines) + "\n"


def _factor_text(factor: float) -> str:
    return "1/3" if abs(factor - 1 / 3) < 1e-3 else f"{factor:g}"


def plot_pilot(frame: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from protocols.style import method_style

    fig, ax = plt.subplots(figsize=(8, 5))
    for _, row in chosen_rates(frame).iterrows():
        style = method_style(row["method"].split("[")[0])
        epochs = range(1, len(row["history"]) + 1)
        ax.plot(epochs, row["history"], color=style.colour, linestyle="--" if "[" in row["method"] else "-",
                linewidth=1.2, label=f"{row['method']} (lr x{_factor_text(row['lr_factor'])})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MAP")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    path = atomic_savefig(fig, path)
    plt.close(fig)
    return path


def write_pilot_report(out, dataset: str, plan: dict | None = None) -> list[Path]:
    """``<out>/pilot/<dataset>.{csv,md,png}`` from the stored pilot records; nothing when none."""
    plan = plan or read_plan()
    frame = pilot_frame(out, dataset)
    if frame.empty:
        return []
    folder = Path(out) / PILOT
    budget = runner.training_budget()
    adequacy = rule_adequacy(out, dataset, frame, plan, budget)
    csv = frame.drop(columns=["history"]).to_csv(index=False, float_format="%.6g")
    markdown = pilot_markdown(frame, dataset, plan, adequacy, budget.get(dataset))
    paths = [atomic_write_text(folder / f"{dataset}.csv", csv),
             atomic_write_text(folder / f"{dataset}.md", markdown)]
    if not adequacy.empty:
        paths.append(atomic_write_text(folder / f"{dataset}-adequacy.csv",
                                       adequacy.to_csv(index=False, float_format="%.6g")))
    paths.append(plot_pilot(frame, folder / f"{dataset}.png",
                            f"{dataset}: validation MAP per epoch at each method's chosen learning rate "
                            f"({plan['bits']} bits, seed {plan['train_seed']})"))
    return paths


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    def work():
        from datasets import dataset_name
        from protocols import grid

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
        jobs = [job for name in datasets for job in pilot_jobs(name, plan, entries)]
        for job in jobs:
            runner.check_jobs(runner.method_classes([job.method]), [job.bits], dict(job.params))
        runner.check_writable(Path(args.out) / PILOT, "--out")
        if not args.report_only:
            todo = []
            for name in datasets:
                part, done = grid.pending([j for j in jobs if j.dataset == name], Path(args.out) / PILOT,
                                          runner.load(name), workers=args.workers, scheduler=args.scheduler)
                todo += part
                print(f"{name}: {done} pilot runs stored, {len(part)} to run", file=sys.stderr)

            def stored(job, records):
                write_pilot_report(args.out, job.dataset, plan)

            result = grid.run_grid(todo, Path(args.out) / PILOT, workers=args.workers, scheduler=args.scheduler,
                                   on_records=stored)
            if result.failures:
                print(f"{PROG}: {len(result.failures)} runs failed (each said why above); the others are stored",
                      file=sys.stderr)
        for name in datasets:
            for path in write_pilot_report(args.out, name, plan):
                print(path)

    return run_command(PROG, work)


if __name__ == "__main__":
    sys.exit(main())
