"""A static results site, rebuilt from the stored records alone: ``results/site/``.

    python -m protocols.site [--out results] [--site FOLDER] [--screenshots FOLDER]

What the pages hold and how they stay safe and deterministic: :mod:`protocols.site_build`;
``--screenshots docs`` (``make screenshots``) then retakes the README's pictures of the site in
headless Chromium (:mod:`protocols.site_shots`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocols.cli import run_command
from protocols.site_build import build_site

PROG = "python -m protocols.site"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results", help="results folder holding the raw records (default: results)")
    parser.add_argument("--site", default=None, help="folder the site is written to (default: <out>/site)")
    parser.add_argument("--screenshots", default=None, metavar="FOLDER",
                        help="after building, retake the site's screenshots (site-*.png) into FOLDER in headless "
                             "Chromium (the README's: docs)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.out).is_dir():
        print(f"{PROG}: error: no results folder {args.out}; run python -m protocols.map first", file=sys.stderr)
        return 1

    def build():
        written = build_site(args.out, args.site)
        site = Path(written[-1]).parent
        print(f"{PROG}: {len(written)} files in {site}; open index.html in a browser")
        if args.screenshots is not None:
            from protocols.site_shots import take_screenshots

            for path in take_screenshots(site, args.screenshots):
                print(f"{PROG}: {path}")
        return 0

    return run_command(PROG, build)


if __name__ == "__main__":
    sys.exit(main())
