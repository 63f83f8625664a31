"""What every command shares: bad input and failures end as one line on stderr, never a traceback."""
from __future__ import annotations

import sys

from common.files import one_line


def run_command(prog: str, work) -> int:
    """Call ``work()`` and return its exit code (None = 0). Bad input (:class:`protocols.runner.UsageError`,
    an unknown name) prints one line and returns 2; missing data or a failed run (``DatasetError``,
    ``RuntimeError``, ``ValueError``, ``ArithmeticError`` such as a diverged loss, ``OSError``) one line
    and 1; Ctrl-C the interruption's message and 130."""
    from common.registry import UnknownNameError
    from datasets import DatasetError
    from protocols.runner import UsageError

    try:
        return work() or 0
    except (UsageError, UnknownNameError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, RuntimeError, ValueError, ArithmeticError, OSError) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"{prog}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130


def add_grid_flags(parser, runs: str = "each (method, bits)") -> None:
    """The flags every command that runs a grid shares: the split seed, training seeds, and where
    the runs go (this process, a local Dask cluster, an existing one)."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0, PROTOCOL.md's)")
    parser.add_argument("--seeds", default=None, help=f"training seeds, comma-separated: {runs} runs once per seed "
                        "on the same split, e.g. 0,1,2,3,4 (default: the --seed value)")
    parser.add_argument("--workers", type=int, default=0, help="run on a local Dask cluster of this many worker "
                        "processes (default: 0 = one run at a time in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on an existing Dask cluster, e.g. "
                        "tcp://host:8786: every worker is checked against this client first (commit, versions, "
                        "data); waits HASHBENCH_CONNECT_TIMEOUT s (10) for the scheduler and "
                        "HASHBENCH_WORKER_TIMEOUT s (30) for a worker (README: running on a cluster)")


def grid_settings(args) -> tuple[list[int], int, str | None]:
    """``(training seeds, workers, scheduler)`` of :func:`add_grid_flags`' flags, checked."""
    from protocols import runner
    from protocols.runner import UsageError

    if args.workers < 0:
        raise UsageError(f"--workers must be 0 (in this process) or a positive number, got {args.workers}")
    if args.workers and args.scheduler:
        raise UsageError("--workers starts a local cluster and --scheduler names an existing one: give one of them")
    seeds = runner.parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    return seeds, args.workers, args.scheduler
