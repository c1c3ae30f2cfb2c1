"""When a delivery is due: delays, reminders, quiet hours, and what makes a pending one void.

Pure arithmetic on aware datetimes, no database: :func:`notifiers.plan` gives each intent its
due time from the transition's time and the registration's :class:`Timing`; ``jobs`` stores it
on the delivery row and sends nothing before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import RecipientError, RegistrationError

__all__ = ["LEFT", "MAX_REMINDERS", "Left", "Timing", "Window", "after_window", "zone"]

#: The most repetitions one reminder may declare: each is a delivery row per recipient.
MAX_REMINDERS = 50
_UTC = dt.timezone.utc


class Left:
    """The supersession rule "the row left the transition's destination state" (``superseded_by=LEFT``)."""

    def __repr__(self) -> str:
        return "LEFT"


#: ``superseded_by=LEFT``: void once the row has left the state the transition went to (a self-loop does not count).
LEFT = Left()


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``"Europe/Berlin"``).

    Raises:
        RecipientError: no such zone, naming it.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise RecipientError(f"Time zone {name!r} is not an IANA time zone name such as 'Europe/Berlin' "
                             f"or 'America/New_York'.", recipient=name) from None


@dataclass(frozen=True)
class Window:
    """A daily span of wall-clock time, ``start`` included, ``end`` not; it may run across midnight.

    ``Window.of(("22:00", "08:00"))`` is the night from 22:00 to 08:00 the next morning.
    """

    start: dt.time
    end: dt.time

    @classmethod
    def of(cls, value: Window | tuple[str, str] | tuple[dt.time, dt.time]) -> Window:
        """A window from ``("22:00", "08:00")``, two times, or a window.

        Raises:
            RegistrationError: not two "HH:MM" times, or both the same (an empty or full day).
        """
        if isinstance(value, Window):
            return value
        try:
            start, end = (t if isinstance(t, dt.time) else dt.time.fromisoformat(t) for t in value)
        except (TypeError, ValueError):
            raise RegistrationError(f"quiet_hours={value!r}: give two times, e.g. ('22:00', '08:00').") from None
        if start == end or start.tzinfo is not None or end.tzinfo is not None:
            raise RegistrationError(f"quiet_hours={value!r}: give two different times of day without a zone; "
                                    f"the recipient's time zone applies.")
        return cls(start, end)

    def contains(self, local: dt.time) -> bool:
        """Whether the wall-clock time ``local`` falls inside the window."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @property
    def length(self) -> dt.timedelta:
        """How long the window lasts on the wall clock."""
        day = dt.date(2000, 1, 1)
        span = dt.datetime.combine(day, self.end) - dt.datetime.combine(day, self.start)
        return span if span > dt.timedelta(0) else span + dt.timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def after_window(when: dt.datetime, window: Window, tz: dt.tzinfo) -> dt.datetime:
    """``when`` (aware), or the end of ``window`` in the zone ``tz`` when ``when`` falls inside it; in UTC.

    The end is the first instant after ``when`` whose wall-clock time is the window's end: on a
    day the clocks skip it (spring forward), the first instant after the gap; on a day they
    pass it twice (fall back), the first of the two that is later than ``when``.
    """
    local = when.astimezone(tz)
    if not window.contains(local.time().replace(tzinfo=None)):
        return when.astimezone(_UTC)
    day = local.date()
    if window.start > window.end and local.time().replace(tzinfo=None) >= window.start:
        day += dt.timedelta(days=1)
    for candidate in _wall(day, window.end, tz):
        if candidate > when:
            return candidate
    return _wall(day + dt.timedelta(days=1), window.end, tz)[0]  # pragma: no cover - a zone skipping a whole day


def _wall(day: dt.date, time: dt.time, tz: dt.tzinfo) -> list[dt.datetime]:
    """The instants (UTC) whose wall-clock time in ``tz`` is ``day`` at ``time``, earliest first; a gap gives its end."""
    found = set()
    for fold in (0, 1):
        instant = dt.datetime.combine(day, time, tzinfo=tz).replace(fold=fold).astimezone(_UTC)
        back = instant.astimezone(tz).replace(tzinfo=None)
        found.add(instant if back == dt.datetime.combine(day, time) else _after_gap(instant, tz))
    return sorted(found)


def _after_gap(instant: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The first instant after the clocks skipped a wall-clock time (``instant`` is near it, either side)."""
    before = instant - dt.timedelta(hours=3)
    offset = before.astimezone(tz).utcoffset()
    for minutes in range(6 * 60):  # find the change of offset, to the minute
        step = before + dt.timedelta(minutes=minutes)
        if step.astimezone(tz).utcoffset() != offset:
            return step
    return instant  # pragma: no cover - no change of offset near a skipped time: cannot happen


@dataclass(frozen=True)
class Timing:
    """When a registration's deliveries are due, and what makes them void.

    Attributes:
        delay: after the transition, for ``@on(delay=...)``.
        reminder: ``(after, every, times)`` for ``@remind``: due ``after``, then every ``every``,
            ``times`` deliveries in all.
        quiet_hours: a window in the recipient's zone (UTC if they have none) nothing is sent in;
            a delivery due inside waits for its end (``required`` ones do not).
        left: void once the row left the state the transition went to (``LEFT``; reminders always).
        superseded_by: void once the row fired one of these triggers after the transition.
    """

    delay: dt.timedelta = dt.timedelta(0)
    reminder: tuple[dt.timedelta, dt.timedelta, int] | None = None
    quiet_hours: Window | None = None
    left: bool = False
    superseded_by: tuple[str, ...] = ()

    def due_times(self, at: dt.datetime) -> list[tuple[int | None, dt.datetime | None]]:
        """``(repetition, due time)`` of each delivery for a transition at ``at``; ``None`` for at once and no repetition."""
        if self.reminder is not None:
            after, every, times = self.reminder
            return [(k + 1, at + after + k * every) for k in range(times)]
        return [(None, at + self.delay if self.delay else None)]

    def due(self, due_at: dt.datetime | None, at: dt.datetime, tz: dt.tzinfo | None, required: bool) -> dt.datetime | None:
        """``due_at`` (``None``: at once, i.e. ``at``) moved out of the quiet hours in ``tz`` (UTC when ``None``)."""
        if self.quiet_hours is None or required:
            return due_at
        moved = after_window(due_at or at, self.quiet_hours, tz or _UTC)
        return due_at if moved == (due_at or at) else moved


def checked_span(value: object, what: str, *, zero: bool = False) -> dt.timedelta:
    """``value`` as a positive timedelta (or zero, with ``zero``).

    Raises:
        RegistrationError: not a timedelta, or negative (or zero).
    """
    if not isinstance(value, dt.timedelta) or value < dt.timedelta(0) or (value == dt.timedelta(0) and not zero):
        raise RegistrationError(f"{what}={value!r}: give a positive datetime.timedelta, e.g. timedelta(days=2).")
    return value
