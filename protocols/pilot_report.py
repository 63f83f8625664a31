"""The training-budget pilot's views, from its stored records alone (``<out>/pilot/map/runs/<dataset>/``).

:func:`write_pilot_report` writes ``<out>/pilot/<dataset>.{csv,md,png}``: per method and learning rate
the best validation MAP, its epoch and the first epoch within 0.5 % of it; the chosen learning rate
(best validation MAP, never the queries); validation MAP against epoch, one line per method at its
chosen rate (:func:`protocols.plots.plot_pilot`); and, once the training-budget rule names the
dataset, the rule's adequacy beside it (``<dataset>-adequacy.csv``). ``python -m protocols.pilot``
runs the plan (:mod:`protocols.pilot_plan`) and rebuilds these after every run; ``python -m
protocols.report`` rebuilds them with everything else.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from common.files import atomic_write_text
from protocols import runner
from protocols.pilot_plan import OVER_LOSS, default_lr, planned_rates, rate_factors, read_plan, same_factor
from protocols.plots import plot_pilot

PROG = "python -m protocols.pilot"
#: the pilot's folder inside the results folder (its runs: ``<out>/pilot/map/runs/<dataset>/``)
PILOT = "pilot"
#: a budget is enough for a method when it reaches this share of its best pilot validation MAP
ENOUGH = 0.995


def pilot_label(record: dict) -> str:
    """A record's row: the method, ``hdhash[<loss>]`` for HDHash over another method's loss (the rule's key)."""
    return runner.budget_label(record["method"], record.get("params"))


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
            "machine": machine_label(record), "history": history,
        })
    frame = pd.DataFrame(rows)
    return frame.sort_values(["method", "lr"], kind="stable").reset_index(drop=True) if len(frame) else frame


def chosen_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method, the run at the learning rate with the best validation MAP."""
    if frame.empty:
        return frame
    return frame.loc[frame.groupby("method")["best_val_map"].idxmax()].reset_index(drop=True)


def under_rule(record: dict, rule: dict) -> bool:
    """Whether a run record trained under the dataset's training-budget ``rule``: its epochs, patience
    and learning rate the rule's (a record stored before the rule, with the old defaults, says
    ``variant`` "" too)."""
    params = record.get("params") or {}
    factor = (rule.get("lr_factor") or {}).get(pilot_label(record))
    return (factor is not None and params.get("epochs") == rule.get("epochs")
            and params.get("patience") == rule.get("patience")
            and params.get("lr") == runner.scaled_lr(record["method"], int(record["bits"]), factor))


def level_loss_choice(out, dataset: str, budget: dict | None = None) -> tuple[str | None, dict, list[str]]:
    """HDHash's level loss on ``dataset`` (the pilot's ``hdhash-over-loss``, Table I's "HDHash over the
    best loss"): of the flat methods whose loss HDHash can take per level (``methods.hdhash.LEVEL_LOSSES``
    after HashNet's), the one with the best validation MAP (the trainer's: held-out training images,
    never the queries), mean over Table I's four code lengths, on its training-seed-0 runs under the
    training-budget rule (``<out>/map/runs/<dataset>/``, split seed 0): the same budget and tuning for
    each, and every length the row is shown at. Returns ``(choice, {loss: {bits: best validation MAP,
    "mean": ...}}, [the runs not stored yet])``; the choice is None until every run is stored. The plan's
    ``hdhash_level_loss`` must equal it (tests/test_pilot.py)."""
    from methods.hdhash import LEVEL_LOSSES
    from protocols.published import PAPER_BITS

    budget = runner.training_budget() if budget is None else budget
    rule = budget.get(dataset)
    candidates = [loss for loss in LEVEL_LOSSES if loss != "hashnet"]
    found = {}
    for record in runner.stored(out, dataset) if rule else []:
        history = [v for v in record.get("val_map_history") or [] if v is not None]
        if (record["method"] in candidates and record.get("default_search", True) and record.get("seed") == 0
                and record.get("train_seed", record.get("seed")) == 0 and history and under_rule(record, rule)):
            found[(record["method"], int(record["bits"]))] = max(history)
    missing = [f"{loss} {bits} bits" for loss in candidates for bits in PAPER_BITS if (loss, bits) not in found]
    values = {loss: {bits: found[(loss, bits)] for bits in PAPER_BITS if (loss, bits) in found} for loss in candidates}
    for loss, by_bits in values.items():
        if len(by_bits) == len(PAPER_BITS):
            by_bits["mean"] = sum(by_bits.values()) / len(PAPER_BITS)
    choice = None if missing or not rule else max(candidates, key=lambda loss: values[loss]["mean"])
    return choice, values, missing


def level_loss_lines(out, dataset: str, plan: dict) -> list[str]:
    from protocols.published import PAPER_BITS

    if dataset not in runner.training_budget():
        return []
    choice, values, missing = level_loss_choice(out, dataset)
    used = plan.get("hdhash_level_loss", {}).get(dataset)
    lines = ["", "## HDHash's level loss", "",
             "HDHash over another method's loss (the plan's `hdhash-over-loss`, Table I's \"HDHash over the best "
             "loss\") takes the loss of the flat method with the best validation MAP, mean over the four lengths, "
             "on its training-seed-0 Table I runs under the rule (`pilot_report.level_loss_choice`).", "",
             "| loss | " + " | ".join(f"{b} bits" for b in PAPER_BITS) + " | mean |",
             "|---|" + "---|" * (len(PAPER_BITS) + 1)]
    ranked = sorted(values, key=lambda loss: -values[loss].get("mean", -1.0))
    for loss in ranked:
        cells = [f"{values[loss][b]:.4f}" if b in values[loss] else "" for b in PAPER_BITS + ["mean"]]
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    if choice is None:
        lines += ["", f"Not chosen yet: {len(missing)} of those runs not stored ({', '.join(missing)}); until then "
                      f"the plan names {used}."]
    elif choice == used:
        lines += ["", f"Chosen: {choice}, as the plan (`protocols/settings/pilot.json`) names it."]
    else:
        lines += ["", f"Chosen: {choice}; the plan (`protocols/settings/pilot.json`) still names {used}: change it, "
                      f"run the pilot's `hdhash-over-loss` and commit the rule it proposes before HDHash's row trains."]
    return lines


def proposed_rule(out, dataset: str, plan: dict) -> tuple[dict | None, int]:
    """The training-budget rule's entry for ``dataset`` that its pilot supports (issue 28, step 2):
    ``{"epochs": the pilot's, "patience": None, "validate_after": ..., "lr_factor": {label: the factor
    with the best validation MAP}}``, the factor as the plan's edge rule wrote it (1/3, not 0.3333); and
    the number of the plan's runs (with what its edge rule adds) not stored yet: the entry is None until
    that is 0. The committed rule must equal it (tests/test_pilot.py): a rate is the pilot's, never typed.

    ``validate_after`` (:func:`validate_after`): the share of the epochs left unvalidated, so that each
    chosen run's validation starts no later than its first epoch within 0.5 % of its best."""
    frame = pilot_frame(out, dataset)
    stored = best_by_factor(frame)
    factors = {label: wanted for _, _, label, wanted in planned_rates(dataset, plan, stored=stored)}
    missing = sum(not any(same_factor(f, g) for g in stored.get(label, {}))
                  for label, wanted in factors.items() for f in wanted)
    if missing:
        return None, missing
    chosen_runs = chosen_rates(frame)
    chosen_runs = chosen_runs[chosen_runs["method"].isin(factors)]  # a former level loss's runs stay, unplanned
    chosen = chosen_runs.set_index("method")["lr_factor"]
    lr_factor = {label: next(f for f in wanted if same_factor(f, chosen[label])) for label, wanted in factors.items()}
    return {"epochs": plan["epochs"], "patience": None,
            "validate_after": validate_after(chosen_runs["epoch_within_0.5pct"], plan["epochs"]),
            "lr_factor": dict(sorted(lr_factor.items()))}, 0


def validate_after(first_epochs_within, epochs: int) -> float:
    """The share of a run's ``epochs`` the rule leaves unvalidated: the largest tenth whose first
    validated epoch (:func:`deep.trainer.first_validated_epoch`) is no later than the earliest of
    ``first_epochs_within`` (each chosen pilot run's first epoch within 0.5 % of its best). Then every
    chosen run's best epoch, and every epoch within 0.5 % of it, is validated, and the rule keeps the
    epoch the pilot kept (its best is later). Validation is 35-40 % of an epoch on fashion-mosaic."""
    earliest = min(int(e) for e in first_epochs_within)
    return (10 * (earliest - 1) // int(epochs)) / 10


def best_by_factor(frame: pd.DataFrame) -> dict[str, dict[float, float]]:
    """Per method label, its learning-rate factors run and the best validation MAP at each: what the
    plan's edge rule reads (:func:`protocols.pilot_plan.rate_factors`)."""
    if frame.empty:
        return {}
    return {label: dict(zip(part["lr_factor"], part["best_val_map"])) for label, part in frame.groupby("method")}


def factors_shown(frame: pd.DataFrame, plan: dict) -> list[float]:
    """The table's rate columns: the plan's factors and every factor a stored run has (past an edge)."""
    factors = list(plan["lr_factors"])
    for factor in frame["lr_factor"] if not frame.empty else []:
        if not any(same_factor(factor, f) for f in factors):
            factors.append(float(factor))
    return sorted(factors)


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
        label = best["method"]
        factor = (rule.get("lr_factor") or {}).get(label)
        under = [r for r in runs.get(label, []) if under_rule(r, rule)]
        history = [v for v in under[0]["val_map_history"] if v is not None] if under else []
        reached = max(history) if history else None
        rows.append({"method": label, "rule_lr_factor": factor, "pilot_lr_factor": best["lr_factor"],
                     "pilot_best_val_map": best["best_val_map"], "rule_val_map": reached,
                     "rule_epochs_run": len(under[0]["val_map_history"]) if under else None,
                     "rule_best_epoch": (under[0].get("fit_info") or {}).get("epoch") if under else None,
                     "share": None if reached is None else reached / best["best_val_map"]})
    return pd.DataFrame(rows)


def adequacy_markdown(adequacy: pd.DataFrame, dataset: str, rule: dict) -> list[str]:
    from deep.trainer import first_validated_epoch

    patience = "no early stopping" if rule.get("patience") is None else f"patience {rule['patience']}"
    first = first_validated_epoch(rule.get("epochs", 1), rule.get("validate_after", 0.0))
    validated = f", validated from epoch {first}" if first > 1 else ""
    lines = ["", f"## The rule's adequacy: {rule.get('epochs')} epochs, {patience}{validated}", "",
             "The rule (`protocols/settings/training_budget.json`) must bring every method to at least "
             f"{ENOUGH:.1%} of its best pilot validation MAP; measured on its Table I run under the rule "
             f"(`map/runs/{dataset}/`, same bits and seeds as the pilot). An empty cell: that run is not stored yet.",
             "", "| method | rule's rate | pilot's best rate | pilot best val MAP | val MAP under the rule "
             "| best epoch | share | enough |", "|---|---|---|---|---|---|---|---|"]
    for _, row in adequacy.iterrows():
        rate = "not in the rule" if row["rule_lr_factor"] is None or pd.isna(row["rule_lr_factor"]) else \
            f"x{factor_text(row['rule_lr_factor'])}"
        reached = row["rule_val_map"] is not None and not pd.isna(row["rule_val_map"])
        share = row["share"] if reached else None
        lines.append("| " + " | ".join([
            row["method"], rate, f"x{factor_text(row['pilot_lr_factor'])}", f"{row['pilot_best_val_map']:.4f}",
            f"{row['rule_val_map']:.4f}" if reached else "", str(int(row["rule_best_epoch"])) if reached else "",
            f"{share:.2%}" if reached else "", ("yes" if share >= ENOUGH else "**no**") if reached else ""]) + " |")
    return lines


def pilot_markdown(frame: pd.DataFrame, dataset: str, plan: dict, adequacy: pd.DataFrame | None = None,
                   rule: dict | None = None, level_loss: list[str] | None = None) -> str:
    factors, bests = factors_shown(frame, plan), best_by_factor(frame)
    extended = [f for f in factors if not any(same_factor(f, g) for g in plan["lr_factors"])]
    past_edge = (f" (and x{', x'.join(factor_text(f) for f in extended)} where a method's best lay at an edge of "
                 f"the rates: the plan's edge rule, `protocols/pilot_plan.py`)") if extended else ""
    lines = [f"# Training-budget pilot: {dataset}, {plan['bits']} bits, training seed {plan['train_seed']}", "",
             f"Each deep method trained {plan['epochs']} epochs without early stopping (cosine schedule over the "
             f"whole run) at its default learning rate times {', '.join(factor_text(f) for f in plan['lr_factors'])}"
             f"{past_edge}; validation MAP is the trainer's (held-out "
             "training images ranked against the rest; never the queries). The chosen rate has the best validation "
             f"MAP. 'within 0.5 %': the first epoch whose validation MAP is at least {ENOUGH:.1%} of the run's best "
             "(under this schedule, not a shorter one). MAP@K on the queries is shown for information only. Built by "
             f"`{PROG} --report-only` from the records in `pilot/map/runs/{dataset}/`.", ""]
    head = ["method"] + [f"val MAP x{factor_text(f)}" for f in factors] + [
        "chosen", "best epoch", "within 0.5 %", "val MAP at epoch 30", "MAP@K (chosen)", "train s (chosen)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chosen = chosen_rates(frame).set_index("method")
    for method in chosen.index:
        runs = frame[frame["method"] == method]
        cells = [method]
        for factor in factors:
            match = runs[[same_factor(f, factor) for f in runs["lr_factor"]]]
            cells.append(f"{match['best_val_map'].iloc[0]:.4f}" if len(match) else "")
        row, wanted = chosen.loc[method], rate_factors(plan, bests.get(method, {}))
        so_far = f", {len(runs)} of {len(wanted)} rates run" if len(runs) < len(wanted) else ""
        cells += [f"x{factor_text(row['lr_factor'])} (lr {row['lr']:g}{so_far})", str(row["best_epoch"]),
                  str(row["epoch_within_0.5pct"]),
                  "" if pd.isna(row["val_map_at_30"]) else f"{row['val_map_at_30']:.4f}",
                  "" if row["map"] is None else f"{row['map']:.4f}", f"{row['train_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    missing = sorted(set(plan["methods"]) - {m.split("[")[0] if "[" not in m else OVER_LOSS for m in chosen.index})
    if missing:
        lines += ["", f"Not yet run: {', '.join(missing)}."]
    lines += provenance_lines(frame)
    if adequacy is not None and not adequacy.empty:
        lines += adequacy_markdown(adequacy, dataset, rule)
    lines += level_loss or []
    return "\n".join(lines) + "\n"


#: what :func:`machine_label` adds to a CPU model where training flushed subnormals
FLUSHED = "subnormals flushed"


def machine_label(record: dict) -> str | None:
    """The record's CPU model, and where training flushed subnormal floats (its ``fit_info`` says so:
    :func:`common.threads.subnormals_flushed`), that too: either makes the same seed another run."""
    cpu = (record.get("machine") or {}).get("cpu")
    flushed = (record.get("fit_info") or {}).get("subnormals") == "flushed"
    return f"{cpu or 'machine not recorded'}, {FLUSHED}" if flushed else cpu


def provenance_lines(frame: pd.DataFrame) -> list[str]:
    """Where the runs trained, per CPU model (a deep model's weights differ between CPU models, so a
    method whose rates ran on two machines compares them across that difference too) and commit."""
    machines = frame["machine"].fillna("machine not recorded") if "machine" in frame else pd.Series(dtype=object)
    parts = []
    for machine, runs in frame.groupby(machines, sort=True):
        named = ", ".join(f"{m} x{factor_text(f)}" for m, f in zip(runs["method"], runs["lr_factor"]))
        parts.append(f"{machine}: {len(runs)} ({named})" if machines.nunique() > 1 else f"all {len(runs)} on {machine}")
    commits = sorted({str(c)[:7] for c in frame.get("git_commit", pd.Series(dtype=object)).dropna()})
    lines = ["", f"Runs by CPU model: {'; '.join(parts)}. Commits: {', '.join(commits) or 'not recorded'}."]
    across = []
    for method, runs in frame.groupby("method", sort=True):
        on_machine = machines[runs.index]
        if on_machine.nunique() > 1:
            on = [f"{machine}: " + ", ".join(f"x{factor_text(f)}" for f in sorted(group["lr_factor"]))
                  for machine, group in runs.groupby(on_machine, sort=True)]
            across.append(f"{method} ({'; '.join(on)})")
    if across:
        modes = " or subnormal modes" if machines.str.endswith(FLUSHED).any() else ""
        lines += ["", f"Rates compared across CPU models{modes} (a model's weights differ between them, so the choice "
                      f"carries that difference too): {', '.join(across)}."]
    return lines


def factor_text(factor: float) -> str:
    return "1/3" if abs(factor - 1 / 3) < 1e-3 else "1/9" if abs(factor - 1 / 9) < 1e-3 else f"{factor:g}"


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
    markdown = pilot_markdown(frame, dataset, plan, adequacy, budget.get(dataset), level_loss_lines(out, dataset, plan))
    paths = [atomic_write_text(folder / f"{dataset}.csv", csv),
             atomic_write_text(folder / f"{dataset}.md", markdown)]
    if not adequacy.empty:
        paths.append(atomic_write_text(folder / f"{dataset}-adequacy.csv",
                                       adequacy.to_csv(index=False, float_format="%.6g")))
    chosen = chosen_rates(frame)
    chosen["legend"] = [f"{m} (lr x{factor_text(f)})" for m, f in zip(chosen["method"], chosen["lr_factor"])]
    paths.append(plot_pilot(chosen, folder / f"{dataset}.png",
                            f"{dataset}: validation MAP per epoch at each method's chosen learning rate "
                            f"({plan['bits']} bits, seed {plan['train_seed']})"))
    return paths
