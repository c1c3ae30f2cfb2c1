"""The one clock of Tidings: what "now" is, and a way for tests to move it forward.

Every time Tidings writes or compares (a transition's ``created_at``, a lease, a due time) is
read from :func:`utcnow`, so a test can make days pass in an instant: the test kit's
``advance(days=3)`` moves this clock and runs what became due. Production never moves it.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["advance", "aware", "offset", "reset", "utcnow"]

_offset = dt.timedelta(0)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC (plus whatever a test moved the clock by)."""
    return dt.datetime.now(dt.timezone.utc) + _offset


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` with its zone: a naive time is UTC, as Tidings writes every time (SQLite drops the zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def advance(delta: dt.timedelta) -> dt.datetime:
    """Move the clock forward by ``delta`` (tests only); the new now.

    Raises:
        ValueError: ``delta`` is negative: time in Tidings never runs backwards.
    """
    global _offset
    if delta < dt.timedelta(0):
        raise ValueError(f"The clock moves forward only; {delta} is negative.")
    _offset += delta
    return utcnow()


def offset() -> dt.timedelta:
    """How far the clock was moved forward (zero unless a test moved it)."""
    return _offset


def reset() -> None:
    """Put the clock back to the real time (the test kit does, when a test ends)."""
    global _offset
    _offset = dt.timedelta(0)
