"""The statistics every view shows, each computed here once.

- :func:`spread`: mean ± sample standard deviation over training seeds, with n (the seeds that hold
  a number) and the runs (records) behind it;
- :func:`cells`: :func:`spread` per cell of a table (by default one Table I column at one code
  length), with what the cell rests on: its records, the provenance they mix, whether one is stale,
  the schedules they trained with;
- :func:`paired_differences`: each column's difference to a reference, paired over the training
  seeds both have, ± its standard error, with :func:`verdict`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from protocols.frame import REFERENCE, mixed_provenance, train_seeds
from protocols.records import SCHEMAS

#: metrics every record holds (MAP@K): a record with no number there is a gap its cell shows
#: (``n of runs``); other metrics are absent from records made before they were measured, no gap to flag
REQUIRED_METRICS = tuple(f for f, (kinds, required) in SCHEMAS["map"].items() if required and "null" in kinds)
#: what :func:`cells` gives per cell, after the columns it groups by
CELL_COLUMNS = ("mean", "sd", "n", "runs", "records", "mixes", "stale", "schedule")
DIFFERENCE_COLUMNS = ("column", "bits", "difference", "se", "n", "verdict")


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (NaN under two numbers) of ``n`` numbers out of ``runs`` values."""

    mean: float
    sd: float
    n: int
    runs: int


def spread(values) -> Spread:
    """:class:`Spread` of ``values``; None and NaN are no number (left out of the mean and of n)."""
    series = pd.Series([math.nan if v is None else v for v in values], dtype=float)
    return Spread(float(series.mean()), float(series.std()), int(series.count()), len(series))


def cells(frame: pd.DataFrame, value: str, by=("column", "bits")) -> pd.DataFrame:
    """One row per cell (the groups of ``by``): :func:`spread` of ``value`` over its records, then what
    it rests on: ``records`` (their ids, by training seed), ``mixes`` (the provenance they do not share,
    :func:`protocols.frame.mixed_provenance`), ``stale`` (one was stored with parameters its variant
    would not use today) and ``schedule`` (the deep schedules they trained with)."""
    rows = []
    for key, group in frame.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = group[value] if value in group else [math.nan] * len(group)
        s = spread(values)
        ordered = group.sort_values(["training_seed", "record_id"], kind="stable") if "record_id" in group else group
        schedules = sorted({text for text in group.get("schedule", ()) if isinstance(text, str)})
        rows.append({**dict(zip(by, key)), "mean": s.mean, "sd": s.sd, "n": s.n,
                     "runs": s.runs if value in REQUIRED_METRICS else s.n,
                     "records": tuple(ordered.get("record_id", ())), "mixes": mixed_provenance(group),
                     "stale": bool(group["stale"].eq(True).any()) if "stale" in group else False,
                     "schedule": " / ".join(schedules)})
    return pd.DataFrame(rows, columns=[*by, *CELL_COLUMNS])


def verdict(difference: float, se: float, n: int) -> str:
    """A difference is a win or a loss only beyond two standard errors, and only from three seeds on:
    two seeds give the standard error one degree of freedom, where two of them cover far less than
    the 95% they suggest (the t quantile is 12.7), so a difference over two seeds is shown but not
    settled."""
    if n == 1:
        return "one seed: not settled"
    if n == 2:
        return "two seeds: not settled"
    return "better" if difference > 2 * se else "worse" if difference < -2 * se else "within 2 SE"


def paired(differences) -> dict:
    """Mean, standard error, n and :func:`verdict` of per-seed ``differences``."""
    s = spread(differences)
    se = s.sd / math.sqrt(s.n) if s.n > 1 else math.nan
    return {"difference": s.mean, "se": se, "n": s.n, "verdict": verdict(s.mean, se, s.n)}


def paired_differences(frame: pd.DataFrame, reference: str = REFERENCE, value: str = "map",
                       label: str = "column", seed: str = "training_seed") -> pd.DataFrame:
    """Each ``label``'s difference to the rows labelled ``reference``, per bit length, paired over
    the training seeds (``seed``) both have: :func:`paired`'s mean, standard error, n and verdict."""
    pairs = frame.assign(pair_seed=frame[seed] if seed in frame else train_seeds(frame))
    ref = pairs[pairs[label] == reference].set_index(["bits", "pair_seed"])[value]
    rows = []
    for (column, bits), group in pairs[pairs[label] != reference].groupby([label, "bits"], sort=False):
        # a seed with a NaN on either side is no pair: n counts the pairs with numbers
        diffs = [v - ref[(bits, t)] for t, v in zip(group["pair_seed"], group[value])
                 if (bits, t) in ref.index and not pd.isna(v) and not pd.isna(ref[(bits, t)])]
        if diffs:
            rows.append({"column": column, "bits": bits, **paired(diffs)})
    return pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS))
