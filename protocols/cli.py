"""What every command shares: bad input and failures end as one line on stderr, never a traceback."""
from __future__ import annotations

import sys


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
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{prog}: error: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"{prog}: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
