"""Every derived file rebuilt from the stored raw records, by one command (``make report``).

    python -m protocols.report [--out results]

Raw records are what runs write: ``map/runs/<dataset>/*.json`` (one per run and search),
``sweeps/*.json`` (one per sweep), ``seeds/<dataset>/*.json`` (training-seed sweeps) and
``efficiency/<dataset>.csv`` (one row per index setting, written by ``protocols.efficiency``).
Everything else is derived and rebuilt here (in ``out`` and in any results root inside it, such as
``dev-seed1/``): ``map/<dataset>.{csv,md,png}``, the sweeps' Markdown,
the seed summaries, Table II's Markdown and plots, ``paper/`` with the README's results block
(rewritten only when ``--out`` is the project's own ``results/``) and the browsable site ``site/``
(:mod:`protocols.site`). A run of a subset never shrinks
them: each is a function of the whole store. ``tests/test_report.py`` rebuilds the committed
results and checks they come out byte for byte.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "python -m protocols.report"


def rebuild_all(out="results", readme: str | None = None, progress=print) -> list[Path]:
    """Rebuild every derived file under ``out`` from its raw records; returns the files written."""
    from protocols import paper
    from protocols.efficiency_report import rebuild_csv, render, runs_folder
    from protocols.seed_spread import write_summary
    from protocols.site import build_site
    from protocols.tables import rebuild_tables, write_map_report

    out = Path(out)
    written = []
    # the results root and any results root inside it (e.g. a development split's, results/dev-seed1)
    roots = [out] + sorted(p for p in out.iterdir() if p.is_dir() and ((p / "map" / "runs").is_dir()
                                                                      or (p / "sweeps").is_dir()))
    for root in roots:
        runs = root / "map" / "runs"
        for dataset in sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
            written += write_map_report(root, dataset)
        written += rebuild_tables(root / "sweeps")
    for folder in sorted(p for p in (out / "seeds").iterdir() if p.is_dir()) if (out / "seeds").is_dir() else []:
        written += write_summary(folder)
    # every dataset with a CSV or with row records (a dataset whose first records just landed has no CSV yet)
    runs_root = runs_folder(out, "x").parent
    names = {csv.stem for csv in (out / "efficiency").glob("*.csv")}
    names |= {p.name for p in runs_root.iterdir() if p.is_dir()} if runs_root.is_dir() else set()
    for name in sorted(names):
        if runs_folder(out, name).is_dir():  # the CSV is derived from the row records
            written.append(rebuild_csv(out, name))
        written += render(out, name)
    if (out / "map" / "runs").is_dir():
        datasets, texts = {}, {}
        for name in dict.fromkeys([*paper.BUILTIN, *paper.PAPER]):
            datasets[name], texts[name] = paper.probe(name)
        written += paper.rebuild_tables(out, 0, datasets, texts, readme=readme)
    if (out / "map" / "runs").is_dir() or (out / "efficiency" / "runs").is_dir():
        written += build_site(out)  # results/site/, from the same records
    for path in written:
        progress(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder holding the raw records (default: results)")
    parser.add_argument("--readme", default=None, help="README whose results block is rewritten (default: the "
                        "project's README.md when --out is the project's results/; 'none' = no README)")
    args = parser.parse_args(argv)
    from protocols.cli import run_command

    if not Path(args.out).is_dir():
        print(f"{PROG}: error: no results folder {args.out}; run python -m protocols.map first", file=sys.stderr)
        return 1
    return run_command(PROG, lambda: rebuild_all(args.out, args.readme) and 0)


if __name__ == "__main__":
    sys.exit(main())
