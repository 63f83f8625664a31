"""Exit 0 where the Table I records under a results folder hold, for every (method, bits, training
seed) asked for, a default-row record made at the given commit; else list what is missing and exit 1.

    python scripts/records_at_commit.py results fashion-mnist d8d5067 lsh,itq 16,32 0,1,2

Used by scripts/resume-grids.sh to rerun the shallow columns once per grid commit. Records are read
by the project's reader (``protocols.runner.stored``: a bad file is skipped with a warning)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, as every command runs


def main(out, dataset, commit, methods, bits, seeds):
    from protocols import runner

    wanted = {(m, int(b), int(s)) for m in methods.split(",") for b in bits.split(",") for s in seeds.split(",")}
    for record in runner.stored(out, dataset):
        if not record.get("variant") and str((record.get("git") or {}).get("commit") or "").startswith(commit):
            seed = record.get("train_seed", record.get("seed", 0))
            wanted.discard((record["method"], int(record["bits"]), int(seed)))
    for method, nbits, seed in sorted(wanted):
        print(f"missing at {commit}: {method} {nbits} bits, training seed {seed}")
    return 0 if not wanted else 1


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
