"""Table II's Markdown and plots, rebuilt from the stored CSV.

``python -m protocols.efficiency_report [--out results] [--dataset fashion-mnist]`` regenerates the
Markdown and the plots from the stored CSV without rerunning anything. The records and the CSV are
:mod:`protocols.efficiency_records`', what the tables compute :mod:`protocols.efficiency_frame`'s, the
Markdown :mod:`protocols.efficiency_tables`', the views :mod:`protocols.efficiency_views`'.

``--compare-with OTHER`` writes nothing: it prints whether the headline ratios of a second run of the
same command, stored under the results folder ``OTHER``, reproduce those under ``--out`` (issue 30:
within 20%; :func:`protocols.efficiency_checks.repeat_lines`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from protocols.efficiency_checks import repeat_lines
from protocols.efficiency_frame import prepared
from protocols.efficiency_views import render


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m protocols.efficiency_report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default: fashion-mnist)")
    parser.add_argument("--compare-with", metavar="OTHER", default=None,
                        help="results folder of a second run of the same command: print whether its headline "
                             "ratios reproduce those under --out (within 20%%), write nothing")
    args = parser.parse_args(argv)
    paths = [Path(folder) / "efficiency" / f"{args.dataset}.csv" for folder in (args.out, args.compare_with) if folder]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"protocols.efficiency_report: error: {path} not found; run python -m "
                             "protocols.efficiency first")
    if args.compare_with:
        print("\n".join(repeat_lines(*(prepared(pd.read_csv(path)) for path in paths))))
        return
    for written in render(args.out, args.dataset):
        print(written)


if __name__ == "__main__":
    main()
