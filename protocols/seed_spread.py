"""Seed spread: MAP over training seeds, and the paired difference to a reference method.

    python -m protocols.seed_spread results/seeds/fashion-mnist --reference hashnet

Writes ``summary.md`` beside the training-seed sweep records under the folder
(:func:`protocols.seeds.write_summary`, which says what it holds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protocols.seeds import PROG, write_summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="folder holding the sweep JSON files (searched recursively)")
    parser.add_argument("--reference", default="hashnet", help="variant the others are compared with (default: "
                                                               "hashnet)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    written = write_summary(folder, args.reference) if folder.is_dir() else []
    if not written:
        print(f"{PROG}: error: no random_state sweep records under {folder}; run "
              "`python -m protocols.sweep ... --seeds 0,1,2` first", file=sys.stderr)
        return 1
    print(written[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
