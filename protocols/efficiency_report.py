"""Table II's Markdown and plots, rebuilt from the stored CSV.

``python -m protocols.efficiency_report [--out results] [--dataset fashion-mnist]`` regenerates the
Markdown and the plots from the stored CSV without rerunning anything. The records and the CSV are
:mod:`protocols.efficiency_records`', what the tables compute :mod:`protocols.efficiency_frame`'s, the
Markdown :mod:`protocols.efficiency_tables`', the views :mod:`protocols.efficiency_views`'.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from protocols.efficiency_views import render


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m protocols.efficiency_report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default: fashion-mnist)")
    args = parser.parse_args(argv)
    path = Path(args.out) / "efficiency" / f"{args.dataset}.csv"
    if not path.is_file():
        raise SystemExit(f"protocols.efficiency_report: error: {path} not found; run python -m "
                         "protocols.efficiency first")
    for written in render(args.out, args.dataset):
        print(written)


if __name__ == "__main__":
    main()
