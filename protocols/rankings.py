"""Which method is best, and what the training-budget rule changed: rankings read from the stored records.

Issue 28's verdicts, derived like every other table (``python -m protocols.report`` writes them into
``map/<dataset>.md``): per code length, each method's mean MAP@K over its training seeds under three
schedules,

- **the rule** (Table I and its "beyond the paper" block: rows at today's defaults, the training-budget
  rule's where ``protocols/settings/training_budget.json`` lists the dataset);
- **before the rule** (the tables as they stood before it: each deep method at its own class defaults,
  30 epochs with patience 5, DPSH 150 epochs without early stopping, at the default learning rate; the
  rule's reruns keep those records as variants, and a default row not yet rerun is one of them);
- **the authors' schedules** (``protocols.map --schedule authors``: variant rows of the modern methods);

ranked per code length (1 = best), with the best method's paired difference to the runner-up and the
methods whose rank moved. Shallow methods have no schedule: their rows take part in both rankings as
they are. A default row stored with parameters today's defaults do not have that none of these takes
(stale, e.g. before a method's default changed) is named as not ranked, never dropped silently. Only
the rule's ranking is the comparison; the others say what the rule changed.
"""
from __future__ import annotations

import functools
import json
import re
from typing import NamedTuple

import pandas as pd

from protocols.frame import default_search, train_seeds
from protocols.markdown import difference_text, number, table
from protocols.stats import cells, paired_differences

#: the parameters that make a deep run's training budget: what the rule sets, and what tells the
#: tables before it apart from the rule's
BUDGET_KEYS = ("epochs", "patience", "lr")
RULE, BEFORE, AUTHORS = "rule", "before", "authors"
#: default rows stored with parameters that differ from today's defaults and in no other set: not ranked
STALE = "stale"
#: a variant's ``name=value`` parts (a value may hold commas, e.g. a tuple; a name never follows one inside it)
_VARIANT_PART = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")
#: a rank moved this many places or more between the rule and the tables before it is named
MOVED = 2


def _params(row) -> dict:
    value = row.get("params")
    if isinstance(value, dict):
        return value
    return json.loads(value) if isinstance(value, str) and value else {}


def _variant_parts(variant) -> dict[str, str]:
    if not isinstance(variant, str) or not variant:
        return {}
    return dict(part.split("=", 1) for part in _VARIANT_PART.split(variant))


@functools.lru_cache(maxsize=None)
def _authors_schedule(method: str) -> dict | None:
    """:func:`protocols.runner.authors_schedule`, read once per method; None for a method without one."""
    from protocols.runner import UsageError, authors_schedule

    try:
        return authors_schedule(method)
    except UsageError:
        return None


def _is_authors(row) -> bool:
    """Whether ``row`` ran its method's authors' schedule (every parameter of it, as stored)."""
    from protocols.runner import same_param_value

    schedule = _authors_schedule(row["method"])
    params = _params(row)
    return bool(schedule) and all(k in params and same_param_value(params[k], v) for k, v in schedule.items())


def _before_rule(row) -> bool:
    """Whether a deep ``row`` trained with the budget its method had before the rule: its class defaults
    (HDHash over another loss: that loss's own schedule) on :data:`BUDGET_KEYS`."""
    from methods import UnknownMethodError
    from protocols.runner import same_param_value

    params = _params(row)
    level_loss = params.get("level_loss") if row["method"] == "hdhash" else None
    try:
        before = _budget_before_rule(row["method"], int(row["bits"]), level_loss)
    except (UnknownMethodError, ValueError, TypeError):  # a method or level loss this code does not have
        return False
    return all(k in params and same_param_value(params[k], before[k]) for k in before)


@functools.lru_cache(maxsize=None)
def _budget_before_rule(method: str, bits: int, level_loss: str | None) -> dict:
    from protocols.runner import beyond_schedule, create_for

    own = beyond_schedule(level_loss, bits) if level_loss not in (None, "hashnet") else {}
    params = create_for(None, method, bits, own).get_params()
    return {k: params.get(k) for k in BUDGET_KEYS}


def ranked_rows(view: pd.DataFrame, ruled: bool) -> pd.DataFrame:
    """The rows of ``view`` (one dataset, seed and K) that take part, each with its ``schedule_set``
    (:data:`RULE`, :data:`BEFORE`, :data:`AUTHORS`; a shallow row is in the first two) and its ``method_label``
    (the Table I column without the budget's parameters, so a method's rows under each schedule
    share it). Default search only; ``ruled``: the dataset has a training-budget rule (else nothing is
    "before" it)."""
    rows = []
    for row in view[default_search(view)].to_dict("records"):
        deep = isinstance(row.get("schedule"), str)
        default = row["block"] in ("table1", "beyond") and not row.get("stale")
        # the method, and of a variant only the level loss (HDHash over another loss, a method of its own
        # in the beyond block): the rest of a variant here is its training budget
        identity = {k: v for k, v in _variant_parts(row.get("variant")).items() if k == "level_loss"}
        label = row["method"] + (f" [{','.join(f'{k}={v}' for k, v in sorted(identity.items()))}]" if identity else "")
        sets = []
        if default:
            sets.append(RULE)
            if ruled and not deep:
                sets.append(BEFORE)
        elif deep and _is_authors(row):
            sets.append(AUTHORS)
            label = row["method"]
        elif ruled and deep and _before_rule(row):
            sets.append(BEFORE)
        elif row["block"] in ("table1", "beyond"):  # stale: stored before a default changed; named, not ranked
            sets.append(STALE)
        rows += [{**row, "schedule_set": s, "method_label": label} for s in sets]
    frame = pd.DataFrame(rows)
    if len(frame):
        # the ranking before the rule is over the methods the rule's tables hold, so that a rank that moved
        # moved among the same rivals: an old variant (HDHash over a loss) no rule run has is left out; a
        # method with no run under the rule yet stays, so that no length is ranked without it (_missing)
        ruled_labels = set(frame.loc[frame["schedule_set"] == RULE, "method_label"])
        old_variant = ~frame["method_label"].isin(ruled_labels) & frame["method_label"].str.contains("[", regex=False)
        frame = frame[(frame["schedule_set"] != BEFORE) | ~old_variant]
        frame = frame.assign(training_seed=train_seeds(frame))
    return frame


def rankings(rows: pd.DataFrame, value: str = "map") -> pd.DataFrame:
    """Per (schedule set, bits, method): mean of ``value`` over training seeds, n, and its rank within
    its schedule set and bits (1 = best; ties share the better rank)."""
    if rows.empty:
        return pd.DataFrame(columns=["schedule_set", "bits", "method_label", "mean", "sd", "n", "rank"])
    found = cells(rows, value, by=("schedule_set", "bits", "method_label"))
    # a group with no number has no rank; the groups in sorted order, as the downloads list them
    found = found[found["n"] > 0].sort_values(["schedule_set", "bits", "method_label"]).reset_index(drop=True)
    found["rank"] = found.groupby(["schedule_set", "bits"])["mean"].rank(ascending=False, method="min").astype(int)
    return found


def _paired(rows: pd.DataFrame, better: str, worse: str, bits, sets=(RULE, RULE), value: str = "map") -> dict:
    """``better``'s rows (of schedule set ``sets[0]``) minus ``worse``'s (``sets[1]``) at ``bits``, paired
    over training seeds by :func:`protocols.stats.paired_differences`; ``{}`` where no seed pairs."""
    here = rows[rows["bits"] == bits]
    sides = [here[(here["schedule_set"] == s) & (here["method_label"] == label)].assign(side=side)
             for s, label, side in ((sets[0], better, "a"), (sets[1], worse, "b"))]
    found = paired_differences(pd.concat(sides), reference="b", value=value, label="side")
    return found.iloc[0].to_dict() if len(found) else {}


def _missing(found: pd.DataFrame, bits) -> list[str]:
    """The methods with runs before the rule at ``bits`` and none under it: while any is, the rule's
    ranking at ``bits`` is not one (it would name a best that has not met them)."""
    here = found[found["bits"] == bits]
    return sorted(set(here.loc[here["schedule_set"] == BEFORE, "method_label"])
                  - set(here.loc[here["schedule_set"] == RULE, "method_label"]))


def _cell(found: pd.DataFrame, label: str, schedule_set: str, bits, ranked: bool = True) -> str:
    """``rank: mean (n)``; the mean alone where the length is not ranked yet, ``–`` where no run is."""
    hit = found[(found["schedule_set"] == schedule_set) & (found["bits"] == bits) & (found["method_label"] == label)]
    if hit.empty:
        return "–"
    r = hit.iloc[0]
    return (f"{int(r['rank'])}: " if ranked else "") + f"{number(r['mean'])} ({int(r['n'])})"


class RankingView(NamedTuple):
    """What the rankings say, for the Markdown (:func:`rankings_section`), the README and the site alike:
    whether the dataset has a training-budget rule (``ruled``), the ``title`` and ``intro``, the ranking
    ``headers`` and ``grid`` (text cells), one ``verdicts`` line per code length (and one naming the
    methods left out), the deep methods' ``schedules`` in the ranked rows (:func:`rule_schedules`),
    the authors' schedules' ``authors_headers`` and ``authors_grid`` (empty when none is stored), and
    ``data``: the rankings as tidy rows (schedule, bits, method, mean, sd, n, rank) for downloads."""

    ruled: bool
    title: str
    intro: str
    headers: list[str]
    grid: list[list[str]]
    verdicts: list[str]
    schedules: str
    authors_intro: str
    authors_headers: list[str]
    authors_grid: list[list[str]]
    data: list[dict]


def ranking_view(view: pd.DataFrame, dataset: str, k_text: str) -> RankingView | None:
    """The rankings of ``view`` (one dataset's records at one seed and K; see the module docstring), or
    None when no row is at today's defaults."""
    from protocols.runner import training_budget

    ruled = dataset in training_budget()
    rows = ranked_rows(view, ruled)
    if rows.empty or not (rows["schedule_set"] == RULE).any():
        return None
    stale = {}  # label -> the lengths where it has stale rows and none ranked
    for label, bits in sorted(_cells_of(rows, STALE) - _cells_of(rows, RULE)):
        stale.setdefault(label, []).append(str(int(bits)))
    rows = rows[rows["schedule_set"] != STALE]
    found = rankings(rows)
    rule = found[found["schedule_set"] == RULE]
    bits_list = sorted(rule["bits"].unique())
    # rows: by rank under the rule at the length it holds most methods at (the longest of those), then
    # the others by their best rank anywhere
    widest = max(bits_list, key=lambda b: ((rule["bits"] == b).sum(), b))
    first = rule[rule["bits"] == widest].sort_values("rank", kind="stable")["method_label"].tolist()
    rest = found[found["schedule_set"] != AUTHORS].groupby("method_label")["rank"].min().sort_values(kind="stable")
    labels = list(dict.fromkeys([*first, *rest.index]))
    sets = [RULE] + ([BEFORE] if ruled and (found["schedule_set"] == BEFORE).any() else [])
    names = {RULE: "rule", BEFORE: "before"}
    headers = ["method", *(f"{b} bits, {names[s]}" for b in bits_list for s in sets)]
    grid = [[label, *(_cell(found, label, s, b, s != RULE or not _missing(found, b)) for b in bits_list for s in sets)]
            for label in labels]
    if ruled:
        title = "Rankings: which method is best, and what the training-budget rule changed"
        intro = (f"Each method's mean MAP@{k_text} over its training seeds (n), ranked per code length (1 = best): "
                 "rule, under the training-budget rule (protocols/settings/training_budget.json; Table I and the "
                 "block beyond the paper); before, as the tables stood before it (each deep method at its own "
                 "defaults: 30 epochs with patience 5, DPSH 150 epochs without early stopping; those records are "
                 "kept as variants). Shallow methods have no schedule: their rows count in both. A method with no "
                 "run under a schedule has no rank there; a length where a method has runs before the rule and "
                 "none under it shows the rule's means without ranks; a ranking over methods with different n "
                 "is provisional.")
    else:
        title = "Rankings: which method is best"
        intro = (f"Each method's mean MAP@{k_text} over its training seeds (n), ranked per code length (1 = best), "
                 "at today's defaults. The training-budget rule does not list this dataset yet (its pilot chooses "
                 "it), so every deep method trains on its own defaults.")
    authors_headers, authors_grid = _authors_table(rows, found)
    authors_intro = (f"The authors' schedules (variant rows, protocols.map --schedule authors): MAP@{k_text} under "
                     "the rule and under the schedule of the method's own code, their paired difference (authors' "
                     "minus the rule's) and the rank the authors' row would take among the rule's rows.")
    data = [{"schedule": r["schedule_set"], "bits": int(r["bits"]), "method": r["method_label"],
             "mean": float(r["mean"]), "sd": None if pd.isna(r["sd"]) else float(r["sd"]), "n": int(r["n"]),
             # no rank where the length is not ranked yet, as the tables show it
             "rank": None if r["schedule_set"] == RULE and _missing(found, r["bits"]) else int(r["rank"])}
            for r in found.to_dict("records")]
    verdicts = _verdicts(rows, found, bits_list, ruled)
    if stale:
        named = ", ".join(f"{label} ({', '.join(bits)} bits)" for label, bits in stale.items())
        verdicts.append(f"Not ranked: {named}: the stored default rows ran with parameters that differ from today's "
                        "defaults (marked * in the tables; python -m protocols.paper runs them again).")
    schedules = rule_schedules(rows)
    return RankingView(ruled, title, intro, headers, grid, verdicts, schedules, authors_intro,
                       authors_headers, authors_grid, data)


def rankings_section(view: pd.DataFrame, dataset: str, k_text: str) -> list[str]:
    """The Markdown section of ``map/<dataset>.md`` that ranks the methods (:func:`ranking_view`)."""
    found = ranking_view(view, dataset, k_text)
    if found is None:
        return []
    text = [f"## {found.title}", "", found.intro, "", *table(found.headers, found.grid), "",
            "Best per code length (a best method is settled only where its paired difference to the runner-up "
            "says better, over three seeds or more):", "", *(f"- {line}" for line in found.verdicts), ""]
    if found.authors_grid:
        text += [found.authors_intro, "", *table(found.authors_headers, found.authors_grid), ""]
    return text


def _cells_of(rows: pd.DataFrame, schedule_set: str) -> set:
    part = rows[rows["schedule_set"] == schedule_set]
    return set(zip(part["method_label"], part["bits"]))


def rule_schedules(rows: pd.DataFrame) -> str:
    """The training schedules of the deep rows ranked at today's defaults, e.g. ``"150 epochs, no early
    stop: dpsh; 30 epochs, patience 5: the others"`` (the most common one last, as "the others"); one
    schedule alone as itself."""
    rule = rows[(rows["schedule_set"] == RULE) & rows["schedule"].apply(lambda v: isinstance(v, str))]
    by_schedule = rule.groupby("schedule")["method_label"].agg(lambda labels: sorted(set(labels)))
    if by_schedule.empty:
        return ""
    ordered = sorted(by_schedule.items(), key=lambda item: (len(item[1]), item[0]))
    if len(ordered) == 1:
        return ordered[0][0]
    return "; ".join([f"{schedule}: {', '.join(labels)}" for schedule, labels in ordered[:-1]]
                     + [f"{ordered[-1][0]}: the others"])


def _verdicts(rows: pd.DataFrame, found: pd.DataFrame, bits_list: list, ruled: bool) -> list[str]:
    lines = []
    for bits in bits_list:
        here = found[(found["schedule_set"] == RULE) & (found["bits"] == bits)].sort_values("rank", kind="stable")
        before = found[(found["schedule_set"] == BEFORE) & (found["bits"] == bits)]
        missing = _missing(found, bits)
        if missing:
            lines.append(f"{bits} bits: not ranked yet: {', '.join(missing)} "
                         f"{'has' if len(missing) == 1 else 'have'} no run under the rule.")
            continue
        best = here.iloc[0]
        line = (f"{bits} bits: best under {'the rule' if ruled else 'the defaults'}, {best['method_label']} "
                f"({number(best['mean'])}, {int(best['n'])} seed{'s' if best['n'] != 1 else ''})")
        if len(here) > 1:
            second = here.iloc[1]
            diff = _paired(rows, best["method_label"], second["method_label"], bits)
            line += f", ahead of {second['method_label']} ({number(second['mean'])}, {int(second['n'])})"
            if diff:
                line += (f" by {difference_text(diff['difference'], diff['se'])} over {diff['n']} paired "
                         f"seed{'s' if diff['n'] != 1 else ''}: {diff['verdict']}")
        if ruled and len(before):
            top = before.sort_values("rank", kind="stable").iloc[0]
            line += f". Before the rule: {top['method_label']} ({number(top['mean'])}, {int(top['n'])})"
            moved = here.merge(before, on="method_label", suffixes=("", "_before"))
            moved = moved[(moved["rank"] - moved["rank_before"]).abs() >= MOVED]
            if len(moved):
                line += "; moved " + ", ".join(f"{r['method_label']} {int(r['rank_before'])} → {int(r['rank'])}"
                                               for r in moved.to_dict("records"))
            else:
                line += f"; no rank moved by {MOVED} or more"
        lines.append(line + ".")
    return lines


def _authors_table(rows: pd.DataFrame, found: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    authors = found[found["schedule_set"] == AUTHORS]
    grid = []
    for r in authors.sort_values(["bits", "method_label"]).to_dict("records"):
        rule = found[(found["schedule_set"] == RULE) & (found["bits"] == r["bits"])]
        own = rule[rule["method_label"] == r["method_label"]]
        # the rank the authors' row would take among the rule's rows (its own rule row left out)
        others = rule[rule["method_label"] != r["method_label"]]
        would = int((others["mean"] > r["mean"]).sum()) + 1
        diff = _paired(rows, r["method_label"], r["method_label"], r["bits"], sets=(AUTHORS, RULE))
        grid.append([r["method_label"], str(r["bits"]),
                     f"{number(own.iloc[0]['mean'])} ({int(own.iloc[0]['n'])}), rank {int(own.iloc[0]['rank'])}"
                     if len(own) else "–",
                     f"{number(r['mean'])} ({int(r['n'])})",
                     f"{difference_text(diff['difference'], diff['se'])} ({diff['n']}): {diff['verdict']}"
                     if diff else "–", str(would)])
    return ["method", "bits", "rule (n), rank", "authors' schedule (n)", "difference (pairs)",
            "rank it would take"], grid
