"""The training-budget pilot's plan: which runs it makes (``protocols/settings/pilot.json``, as data).

Every entry of the plan (a deep method, or ``hdhash-over-loss``: HDHash over the dataset's chosen level
loss) trains at one code length and training seed for ``epochs`` without early stopping, at its
default learning rate times each of ``lr_factors``. A grid of rates has edges: where a method's best
validation MAP lies at the highest (lowest) rate tried, the best rate may lie beyond, so the rule of
:func:`rate_factors` tries the next rate past that edge (``edge_step`` times the edge, or the edge
divided by it), up to ``edge_extensions`` times per side, until the best is inside. The same rule
holds for every method: the tuning budget is one rule, not a hand-picked grid per method.
"""
from __future__ import annotations

import json
from pathlib import Path

from protocols import runner
from protocols.runner import UsageError

PLAN = Path(__file__).parent / "settings" / "pilot.json"
#: the plan's name for HDHash trained per level with the dataset's chosen level loss
OVER_LOSS = "hdhash-over-loss"


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


def same_factor(a: float, b: float) -> bool:
    """Two learning-rate factors are one rate (a record's factor is its rate over the default, rounded)."""
    return abs(a - b) <= 1e-3 * max(abs(a), abs(b))


def rate_factors(plan: dict, best_by_factor: dict[float, float]) -> list[float]:
    """The factors an entry trains at: the plan's, extended past an edge while the best validation MAP
    stored (``best_by_factor``: factor -> best validation MAP) is at that edge. A factor not stored
    yet stops the extension: nothing is known beyond it until it runs."""
    factors = sorted(plan["lr_factors"])
    step, most = plan.get("edge_step", 3.0), plan.get("edge_extensions", 0)
    added = {"top": 0, "bottom": 0}
    while True:
        known = [next((v for f, v in best_by_factor.items() if same_factor(f, factor)), None) for factor in factors]
        if any(v is None for v in known):
            return factors
        best = max(range(len(factors)), key=lambda i: known[i])
        if best == len(factors) - 1 and added["top"] < most:
            factors.append(factors[-1] * step)
            added["top"] += 1
        elif best == 0 and added["bottom"] < most:
            factors.insert(0, factors[0] / step)
            added["bottom"] += 1
        else:
            return factors


def planned_rates(dataset: str, plan: dict, entries=None, stored: dict | None = None) -> list[tuple]:
    """Per entry of the plan, ``(method, its added parameters, its label in the rule, the factors it
    trains at)``: the plan's factors and what the edge rule adds from ``stored`` (label -> {factor: best
    validation MAP}, :func:`protocols.pilot_report.best_by_factor`; :func:`rate_factors`)."""
    rates = []
    for entry in entries or plan["methods"]:
        method, extra = method_and_params(entry, dataset, plan)
        label = runner.budget_label(method, extra)
        rates.append((method, extra, label, rate_factors(plan, (stored or {}).get(label, {}))))
    return rates


def pilot_jobs(dataset: str, plan: dict, entries=None, stored: dict | None = None) -> list:
    """One :class:`protocols.grid.Job` per (entry, learning-rate factor) of :func:`planned_rates`,
    entry by entry."""
    from protocols import grid

    jobs = []
    for method, extra, _, factors in planned_rates(dataset, plan, entries, stored):
        for factor in factors:
            lr = runner.scaled_lr(method, plan["bits"], factor)
            # validated from the first epoch (the whole history), also on a dataset whose training-budget
            # rule validates later: the rule's defaults apply to a run unless it sets them
            params = dict(extra, epochs=plan["epochs"], patience=None, lr=lr, validate_after=0.0)
            jobs.append(grid.Job(dataset, method, plan["bits"], 0, plan["train_seed"], tuple(sorted(params.items()))))
    return jobs
