"""Exit 0 where the Table I records under a results folder hold, for every (method, bits, training
seed) asked for, a default-row record made at the given commit; else list what is missing and exit 1.

    python scripts/records_at_commit.py results fashion-mnist d8d5067 lsh,itq 16,32 0,1,2

With ``--elsewhere`` first: the runs asked for that a grid would skip as stored (a record with the
parameters a run would use now: ``protocols.runner.stored_run``) though not all of their records
were made at the commit, one line per method and length, ``<method> <bits> <seeds>`` (seeds comma-
separated); always exit 0. A seventh argument, ``name=value`` (``--param``'s form), asks about the
runs with that parameter too, e.g. ``level_loss=orthohash`` for HDHash over OrthoHash's loss. Those
are to run again at the commit (``--force``): a table made at one commit keeps no run of another (a
deep model trained by the same code loads from the model cache).

Used by scripts/resume-grids.sh. Records are read by the project's reader
(``protocols.runner.stored``: a bad file is skipped with a warning)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, as every command runs


def _wanted(methods, bits, seeds):
    return sorted((m, int(b), int(s)) for m in methods.split(",") for b in bits.split(",") for s in seeds.split(","))


def _at(record, commit) -> bool:
    return str((record.get("git") or {}).get("commit") or "").startswith(commit)


def main(out, dataset, commit, methods, bits, seeds):
    from protocols import runner

    wanted = set(_wanted(methods, bits, seeds))
    for record in runner.stored(out, dataset):
        if not record.get("variant") and _at(record, commit):
            seed = record.get("train_seed", record.get("seed", 0))
            wanted.discard((record["method"], int(record["bits"]), int(seed)))
    for method, nbits, seed in sorted(wanted):
        print(f"missing at {commit}: {method} {nbits} bits, training seed {seed}")
    return 0 if not wanted else 1


def elsewhere(out, dataset, commit, methods, bits, seeds, param=None):
    from protocols import runner

    data, groups = runner.load(dataset), {}
    params = runner.parse_params([param]) if param else None
    for method, nbits, seed in _wanted(methods, bits, seeds):
        records = runner.stored_run(out, data, method, nbits, seed=0, train_seed=seed, params=params, threads="any")
        if records and not all(_at(r, commit) for r in records):
            groups.setdefault((method, nbits), []).append(str(seed))
    for (method, nbits), found in sorted(groups.items()):
        print(method, nbits, ",".join(found))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    command = main
    if args[:1] == ["--elsewhere"]:
        command, args = elsewhere, args[1:]
    if len(args) != 6 and not (command is elsewhere and len(args) == 7):
        sys.exit(__doc__)
    sys.exit(command(*args))
