"""Exit 0 where a folder of Table I records holds, for every (method, bits, training seed) asked for,
a default-row record made at the given commit; else list what is missing and exit 1.

    python scripts/records_at_commit.py results/map/runs/fashion-mnist d8d5067 lsh,itq 16,32 0,1,2

Used by scripts/resume-grids.sh to rerun the shallow columns once per grid commit."""
import json
import sys
from pathlib import Path


def main(folder, commit, methods, bits, seeds):
    wanted = {(m, int(b), int(s)) for m in methods.split(",") for b in bits.split(",") for s in seeds.split(",")}
    for path in Path(folder).glob("*.json"):
        try:
            record = json.loads(path.read_text())
            key = (record["method"], int(record["bits"]), int(record.get("train_seed", 0)))
            made_here = str((record.get("git") or {}).get("commit") or "").startswith(commit)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if made_here and not record.get("variant"):
            wanted.discard(key)
    for method, nbits, seed in sorted(wanted):
        print(f"missing at {commit}: {method} {nbits} bits, training seed {seed}")
    return 0 if not wanted else 1


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
