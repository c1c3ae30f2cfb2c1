"""Digests and throttles: many events for one recipient within a window, told in one message.

Pure declarations and arithmetic, no database: :func:`notifiers.plan` gives each intent of a
digesting registration its :class:`Batch` (the group, the window, when it closes); ``jobs``
stores the events as members of one digest row and sends the digest once when it closes.

``Digest(window, mode="wait")`` holds every event until the window closes; ``mode="lead"``
sends the first event of a window at once and collects the rest. ``Throttle(n, per)`` sends up
to ``n`` events of a window at once and collects the rest into the digest that closes the window:
nothing over the limit is dropped. Its ``scope`` says what the ``n`` counts: the notifier's
events on one channel (the default), every notifier's on one channel, or every notifier's on
every channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import RegistrationError
from .timing import checked_span

__all__ = ["EVERY", "SCOPES", "Batch", "Digest", "Throttle", "chosen", "window_start"]

#: How often a recipient may choose to be told (:func:`notifiers.choose_every`): at once, or in a digest of that window.
EVERY: dict[str, dt.timedelta | None] = {"instant": None, "hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1)}

#: What a throttle's limit counts, for one recipient (:class:`Throttle`'s ``scope``).
SCOPES = ("notifier", "channel", "all")
Scope = Literal["notifier", "channel", "all"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: ``by=`` a function of the event (:class:`~notifiers.Event`): the group's name, e.g. the issue's project.
GroupBy = Callable[[Any], object]


def window_start(at: dt.datetime, window: dt.timedelta) -> dt.datetime:
    """The start of the window of length ``window`` that ``at`` falls in; windows are counted from 1970 in UTC."""
    return _EPOCH + ((at - _EPOCH) // window) * window


@dataclass(frozen=True)
class Digest:
    """``@on(..., digest=Digest(window=timedelta(hours=1)))``: the events of a window told in one message.

    Attributes:
        window: how long events are collected; windows start on multiples of it since 1970 (UTC).
        by: what one digest gathers, for one recipient: ``"recipient"`` (every event of the
            notifier), ``"subject"`` (the events of one row: "3 updates on issue #12"), or a
            function of the event giving the group's name.
        mode: ``"wait"`` holds every event until the window closes; ``"lead"`` sends the first
            event of a window at once and collects the rest.
    """

    window: dt.timedelta
    by: Literal["recipient", "subject"] | GroupBy = "recipient"
    mode: Literal["wait", "lead"] = "wait"

    def __post_init__(self) -> None:
        checked_span(self.window, "Digest(window)")
        if self.mode not in ("wait", "lead"):
            raise RegistrationError(f"Digest(mode={self.mode!r}): give 'wait' or 'lead'.")
        if not callable(self.by) and self.by not in ("recipient", "subject"):
            raise RegistrationError(f"Digest(by={self.by!r}): give 'recipient', 'subject' or a function of the event.")

    @property
    def leads(self) -> int:
        """How many events of a window are sent at once, alone."""
        return 1 if self.mode == "lead" else 0

    def group(self, model: str, key: str, event: Any = None) -> str:
        """The group an event of ``model`` row ``key`` belongs to (``""``: the recipient's one digest)."""
        if self.by == "recipient":
            return ""
        if self.by == "subject":
            return f"{model}:{key}"
        assert callable(self.by)
        return str(self.by(event))[:200]


@dataclass(frozen=True)
class Throttle:
    """``@on(..., throttle=Throttle(5, per=timedelta(hours=1)))``: at most ``n`` messages a window to a recipient.

    What is over the limit is not dropped: it goes into one digest sent when the window closes
    (the notifier's digest on its channel, whatever the scope).

    Attributes:
        n: how many events of a window are sent alone, at once.
        per: the window; windows start on multiples of it since 1970 (UTC).
        scope: what the ``n`` counts, for one recipient: ``"notifier"`` the events of this
            notifier on one channel; ``"channel"`` those of every notifier throttled with
            ``scope="channel"`` and the same ``per``, on one channel; ``"all"`` those of every
            notifier throttled with ``scope="all"`` and the same ``per``, on every channel.
    """

    n: int
    per: dt.timedelta
    scope: Scope = "notifier"

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise RegistrationError(f"Throttle(n={self.n!r}): give a whole number of messages, 1 or more.")
        checked_span(self.per, "Throttle(per)")
        if self.scope not in SCOPES:
            raise RegistrationError(f"Throttle(scope={self.scope!r}): give 'notifier', 'channel' or 'all'.")

    @property
    def digest(self) -> Digest:
        """The digest what is over the limit goes into."""
        return Digest(window=self.per)

    @property
    def leads(self) -> int:
        """How many events of a window are sent at once, alone."""
        return self.n


@dataclass(frozen=True)
class Batch:
    """Which digest one intent belongs to.

    Attributes:
        group: the group within the recipient's digests of the notifier (``""``: one for all).
        start: the start of its window (UTC).
        due_at: when the digest is sent: the window's end, moved out of the recipient's quiet hours.
        leads: how many events of the window are sent at once, alone (lead mode, a throttle).
        throttled: the registration throttles (the events held are over its limit), rather than digests.
        window: the window's length.
        scope: what a throttle's limit counts (:class:`Throttle`); ``"notifier"`` for a digest.
    """

    group: str
    start: dt.datetime
    due_at: dt.datetime
    leads: int = 0
    throttled: bool = False
    window: dt.timedelta = dt.timedelta(hours=1)
    scope: Scope = "notifier"


def batch_of(spec: Digest | Throttle, at: dt.datetime, model: str, key: str,
             event: Any = None) -> tuple[str, dt.datetime, dt.datetime]:
    """``(group, window start, window end)`` of an event at ``at`` for the rule ``spec``."""
    digest = spec.digest if isinstance(spec, Throttle) else spec
    start = window_start(at, digest.window)
    return digest.group(model, key, event), start, start + digest.window


def chosen(batching: Digest | Throttle | None, every: str | None) -> Digest | Throttle | None:
    """The registration's digest or throttle as a recipient's choice of ``every`` changes it (``None``: no choice).

    ``"instant"`` sends each event alone; ``"hourly"`` or ``"daily"`` digests with that window
    (keeping the notifier's grouping and mode, if it digests).
    """
    if every is None or every not in EVERY:
        return batching
    window = EVERY[every]
    if window is None:
        return None
    if isinstance(batching, Digest):
        return Digest(window=window, by=batching.by, mode=batching.mode)
    return Digest(window=window)
