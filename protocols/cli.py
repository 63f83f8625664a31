"""What every command shares: bad input and failures end as one line on stderr, never a traceback."""
from __future__ import annotations

import sys


def run_command(prog: str, work) -> int:
    """Call ``work()`` and return its exit code (None = 0). Bad input (:class:`protocols.runner.UsageError`)
    prints one line and returns 2; missing data or a failed run (``DatasetError``, ``RuntimeError``,
    ``ValueError``, ``OSError``) one line and 1; Ctrl-C the interruption's message and 130."""
    from datasets import DatasetError
    from protocols.runner import UsageError

    try:
        return work() or 0
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, RuntimeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{prog}: error: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"{prog}: {exc or 'interrupted'}", file=sys.stderr)
        return 130
