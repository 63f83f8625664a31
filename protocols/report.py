"""Every derived file rebuilt from the stored raw records, by one command (``make report``).

    python -m protocols.report [--out results]

Raw records are what runs write: ``map/runs/<dataset>/*.json`` (one per run and search),
``sweeps/*.json`` (one per sweep), ``seeds/<dataset>/*.json`` (training-seed sweeps) and
``efficiency/<dataset>.csv`` (one row per index setting, written by ``protocols.efficiency``).
Everything else is derived and rebuilt here (in ``out`` and in any results root inside it, such as
``dev-seed1/``): ``map/<dataset>.{csv,md,png}``, the sweeps' Markdown,
the seed summaries, the training-budget pilot's ``pilot/<dataset>.{csv,md,png}`` (:mod:`protocols.pilot`),
the unseen-class protocol's Table U ``map/<dataset>-unseen.{csv,md}`` from ``unseen/map/runs/<dataset>/``
(:mod:`protocols.unseen_tables`),
Table II's Markdown and plots, ``paper/`` with the README's results block
(rewritten only when ``--out`` is the project's own ``results/``) and the browsable site ``site/``
(:mod:`protocols.site_build`). A run of a subset never shrinks
them: each is a function of the whole store. ``tests/test_report.py`` rebuilds the committed
results and checks they come out byte for byte.

The derived files agree with each other even when a report is interrupted: the rebuild runs on a
copy of ``out`` in ``out/.report-staging/`` (the README's too), and only then are the files it wrote
moved into place (and the files it removed, such as a stale site page, removed), after a journal of
those moves is written. Killed before the journal (almost all of a report's time), it leaves the
previous set untouched; killed during the moves (renames, milliseconds), the next report, or
:func:`finish_interrupted`, completes them first. Ctrl-C waits for the moves to end.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from common.files import atomic_write_json
from protocols.records import shown_as

PROG = "python -m protocols.report"
#: the folder inside ``out`` where a report builds (removed when it ends)
STAGING = ".report-staging"
#: the moves that replace the derived set, written once the staged build is complete
JOURNAL = "commit.json"


def rebuild_all(out="results", readme: str | None = None, progress=print) -> list[Path]:
    """Rebuild every derived file under ``out`` from its raw records, and the results block of
    ``readme`` (default: the project's README when ``out`` is the project's ``results/``; "none":
    no README), all or nothing (the module's docstring); returns the files written."""
    out = Path(out)
    with _lock(out):
        finish_interrupted(out)
        readme = _readme_for(out, readme)
        staging = out / STAGING
        stage_out, stage_readme = staging / (out.resolve().name or "results"), staging / "README.md"
        committing = False
        try:
            shutil.copytree(out, stage_out, symlinks=True, ignore=lambda folder, names:
                            [STAGING] if Path(folder) == out else [])
            readme_text = readme.read_bytes() if readme is not None and readme.is_file() else None
            if readme_text is not None:
                stage_readme.write_bytes(readme_text)
            live = {stage_out: out, stage_readme: readme}
            before = _snapshot(stage_out, stage_readme)
            try:
                with shown_as(stage_out, out):  # warnings name the records in out, not their copies
                    built = build(stage_out, str(stage_readme) if readme is not None else "none")
            except Exception as exc:
                _name_live_paths(exc, stage_out, out)
                raise
            moves, removals = _changes(before, _snapshot(stage_out, stage_readme), live)
            if stage_readme in moves and not _keep_readme_edits(readme, readme_text, stage_readme):
                del moves[stage_readme]
            plan = {"moves": [[str(src.absolute()), str(dst.absolute())] for src, dst in moves.items()],
                    "removals": [str(p.absolute()) for p in removals]}
            with _signals_deferred():
                atomic_write_json(staging / JOURNAL, plan)  # the commit point
                committing = True
                _apply(plan)
                committing = False
        finally:
            if not committing:  # a commit that failed half-way keeps its journal for the next report
                shutil.rmtree(staging, ignore_errors=True)
    written = [_live_path(Path(p), live) for p in built]
    for path in written:
        progress(path)
    return written


def build(out, readme: str = "none") -> list[Path]:
    """Rebuild every derived file under ``out`` in place (no staging: :func:`rebuild_all` calls
    this on its copy); returns the files written."""
    from protocols import paper_tables
    from protocols.efficiency_frame import runs_folder
    from protocols.efficiency_records import rebuild_csv
    from protocols.efficiency_views import render
    from protocols.frame import stored_datasets
    from protocols.paper_plan import BUILTIN, PAPER, probe
    from protocols.pilot_report import PILOT, write_pilot_report
    from protocols.runner import runs_root
    from protocols.seeds import write_summary
    from protocols.site_build import build_site
    from protocols.tables import rebuild_tables, write_map_report
    from protocols.unseen_tables import UNSEEN, write_unseen_report

    out = Path(out)
    written = []
    # the results root and any results root inside it (e.g. a development split's, results/dev-seed1)
    # (the training-budget pilot and the unseen-class protocol keep their runs in that shape too, but
    # their views are their own, below)
    roots = [out] + sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")
                           and p.name not in (PILOT, UNSEEN)
                           and (runs_root(p).is_dir() or (p / "sweeps").is_dir()))
    for root in roots:
        for dataset in stored_datasets(root):
            written += write_map_report(root, dataset)
        written += rebuild_tables(root / "sweeps")
    for dataset in stored_datasets(out / PILOT):
        written += write_pilot_report(out, dataset)
    for dataset in stored_datasets(out / UNSEEN):  # Table U, map/<dataset>-unseen.{csv,md}: nothing when none stored
        written += write_unseen_report(out, dataset)
    for folder in sorted(p for p in (out / "seeds").iterdir() if p.is_dir()) if (out / "seeds").is_dir() else []:
        written += write_summary(folder)
    # every dataset with a CSV or with row records (a dataset whose first records just landed has no CSV yet)
    efficiency_runs = runs_folder(out, "x").parent  # Table II's: efficiency/runs/<table>/
    names = {csv.stem for csv in (out / "efficiency").glob("*.csv")}
    names |= {p.name for p in efficiency_runs.iterdir() if p.is_dir()} if efficiency_runs.is_dir() else set()
    for name in sorted(names):
        if runs_folder(out, name).is_dir():  # the CSV is derived from the row records
            written.append(rebuild_csv(out, name))
        written += render(out, name)
    if runs_root(out).is_dir():
        datasets, texts = {}, {}
        for name in dict.fromkeys([*BUILTIN, *PAPER]):
            datasets[name], texts[name] = probe(name)
        written += paper_tables.rebuild_tables(out, 0, datasets, texts, readme=readme)
    if runs_root(out).is_dir() or efficiency_runs.is_dir() or runs_root(out / UNSEEN).is_dir():
        written += build_site(out)  # results/site/, from the same records
    return written


def finish_interrupted(out) -> bool:
    """Complete or discard what an interrupted report left in ``out`` (a staging folder): with its
    journal, the build was complete and its moves are finished; without, it never reached the
    commit and the derived files are still the previous set. Returns whether there was anything."""
    staging = Path(out) / STAGING
    if not staging.exists():
        return False
    journal = staging / JOURNAL
    if journal.is_file():
        _apply(json.loads(journal.read_text()))
        print(f"note: completed the derived files of a report interrupted while replacing them in {out}",
              file=sys.stderr)
    else:
        print(f"note: discarded the unfinished build of an interrupted report in {out} (the derived files "
              "there are the previous set)", file=sys.stderr)
    shutil.rmtree(staging, ignore_errors=True)
    return True


def _name_live_paths(exc: BaseException, staged: Path, out: Path) -> None:
    """An error of the staged build names the folder the user gave, not its copy."""
    def live(text):
        return text.replace(str(staged), str(out)) if isinstance(text, str) else text

    exc.args = tuple(live(a) for a in exc.args)
    if isinstance(exc, OSError):
        exc.filename, exc.filename2 = live(exc.filename), live(exc.filename2)


def _readme_for(out: Path, readme: str | None) -> Path | None:
    from protocols.paper_tables import readme_for

    if readme is None:  # the paper tables' rule: the project's README goes with the project's results
        return readme_for(out)
    return None if readme == "none" else Path(readme)


def _snapshot(*roots: Path) -> dict[Path, tuple]:
    """Every file under ``roots`` (or the file itself) with its inode, time and size: a file written
    since (atomically, so a new inode) or removed shows in the next snapshot."""
    found = {}
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
        for path in paths:
            stat = path.lstat()
            found[path] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def _live_path(path: Path, live: dict) -> Path:
    for staged, target in live.items():
        if target is not None and (path == staged or staged in path.parents):
            return target / path.relative_to(staged) if path != staged else target
    return path


def _changes(before: dict, after: dict, live: dict) -> tuple[dict, list]:
    """``({staged file: live file} to move, [live files to remove])``: the files the build wrote
    that differ from the live ones, and those it removed (nothing else: a raw record stored while
    the report ran is never touched)."""
    moves, removals = {}, []
    for path, stamp in sorted(after.items()):
        if before.get(path) != stamp:
            target = _live_path(path, live)
            if not (target.is_file() and _same_bytes(path, target)):
                moves[path] = target
    removals = [_live_path(path, live) for path in sorted(set(before) - set(after))]
    return moves, removals


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _keep_readme_edits(readme: Path, copied: bytes | None, staged: Path) -> bool:
    """If the README was edited while the report ran, put the new results block into the edited
    text, so the move keeps the edit; False (do not move it) if the edit removed the README or its
    block's markers."""
    from protocols.paper_tables import README_BEGIN, README_END, update_readme

    now = readme.read_bytes() if readme.is_file() else None
    if now == copied:
        return True
    if now is None:
        return False
    block = staged.read_text().split(README_BEGIN, 1)[1].split(README_END, 1)[0].removeprefix("\n")
    staged.write_bytes(now)
    return update_readme(staged, block)


def _apply(plan: dict) -> None:
    """Do the journal's moves and removals; what is done already is skipped, so it can be redone."""
    for src, dst in plan["moves"]:
        if os.path.lexists(src):
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for path in plan["removals"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def _signals_deferred():
    """Ctrl-C and SIGTERM held back while the derived set is replaced (delivered right after)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _lock(out: Path):
    """One report at a time on ``out`` (a lock on the folder itself, released by the system if the
    process dies)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks here
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another report is rebuilding {out}; wait for it to end") from None
        yield
    finally:
        os.close(fd)


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
