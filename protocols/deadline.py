"""``HASHBENCH_START_UNTIL``: the time after which a long command starts no more work.

A machine lent for hours loses what it is computing when it goes away. With this set one unit's
length before then (a UTC time, ``2026-12-07T04:30Z``), a grid (:mod:`protocols.grid`) starts no run
and Table II (:mod:`protocols.efficiency`) builds no index after it: what is under way finishes and
is stored, the rest is left for the next call, which resumes.
"""
from __future__ import annotations

import os
import time

START_UNTIL_ENV = "HASHBENCH_START_UNTIL"


def start_until() -> float | None:
    """The time (seconds since the epoch) after which no work starts, from ``HASHBENCH_START_UNTIL``
    (ISO 8601; a time without a zone is UTC); None where unset. A value that is no time is refused
    in one line (:class:`protocols.runner.UsageError`), so call it before any work."""
    from datetime import datetime, timezone

    from protocols.runner import UsageError

    text = os.environ.get(START_UNTIL_ENV, "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{START_UNTIL_ENV}={text!r} is not a time; give one as 2026-12-07T04:30Z") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def may_start(until: float | None) -> bool:
    """Whether work may start now under ``until`` (:func:`start_until`; None: no deadline)."""
    return until is None or time.time() <= until


def not_started(what: str, then: str) -> str:
    """The line a command ends with when the deadline left ``what`` (``"4 runs"``) unstarted."""
    return f"{what} not started: {START_UNTIL_ENV} ({os.environ.get(START_UNTIL_ENV, '').strip()}) had passed; {then}"
