"""What the test kit captured: notifications sent, deliveries skipped or failed; its assertion messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workflow.clock import aware

__all__ = ["Failed", "Notification", "Scheduled", "Skipped", "aware", "check_count", "fields_of", "listing"]


@dataclass(frozen=True)
class _Delivery:
    """To whom, for which transition, through which channel, by which notifier."""

    to: str
    name: str | None
    party: str
    channel: str
    model: str
    key: str
    trigger: str
    notifier: str

    def _heading(self) -> str:
        return f"{self.model} {self.key} {self.trigger!r} -> {self.party} <{self.to}> by {self.channel}"

    def _matches(self, to: str | None, exact: dict[str, str | None]) -> bool:
        return (to is None or self.to == to) and all(v is None or getattr(self, k) == v for k, v in exact.items())


@dataclass(frozen=True)
class Notification(_Delivery):
    """One notification the kit delivered: to whom, for which transition, through which channel, what."""

    subject: str
    text: str
    html: str

    def __str__(self) -> str:
        return f"{self._heading()}: {self.subject!r}"


@dataclass(frozen=True)
class _Recorded(_Delivery):
    """A delivery recorded as not sent, with the reason from the delivery log."""

    reason: str

    def __str__(self) -> str:
        return f"{self._heading()}: {self.reason}"

    def _matches_reason(self, to: str | None, exact: dict[str, str | None], reason: str | None) -> bool:
        return self._matches(to, exact) and (reason is None or reason in self.reason)


@dataclass(frozen=True)
class Skipped(_Recorded):
    """One delivery the kit did not send, and why: an opt-out, or the notifier returned ``None``."""


@dataclass(frozen=True)
class Failed(_Recorded):
    """One delivery recorded ``failed``, and why: a party that gave no usable address, a channel that refused it."""


@dataclass(frozen=True)
class Scheduled(_Delivery):
    """One delivery held until its due time (a delay, a reminder, quiet hours), not sent yet."""

    due_at: dt.datetime

    def __str__(self) -> str:
        return f"{self._heading()}: due {self.due_at:%Y-%m-%d %H:%M} UTC"


def fields_of(delivery: Any, record: Any) -> dict[str, Any]:
    """The fields every captured delivery has, from its delivery row and its transition."""
    return {"to": delivery.address, "name": delivery.name, "party": delivery.party, "channel": delivery.channel,
            "model": record.model, "key": record.key, "trigger": record.trigger, "notifier": delivery.notifier}



def check_count(what: str, found: list[Any], count: int | None, to: str | None, match: dict[str, str],
                 listing: str) -> None:
    """Raise the kit's AssertionError unless ``found`` has ``count`` items (or, without ``count``, any)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not the kit's
    if (count is None and found) or (count is not None and len(found) == count):
        return
    wanted = ", ".join(f"{k}={v!r}" for k, v in {"to": to, **match}.items() if v is not None) or "anything"
    expected = f"exactly {count}" if count is not None else "at least one"
    raise AssertionError(f"Expected {expected} {what} matching {wanted}; found {len(found)}.\n{listing}")


def listing(title: str, found: Sequence[_Recorded]) -> str:
    """``title:`` and one line per delivery with its reason (``nothing`` when there is none)."""
    return f"{title}:\n" + ("\n".join(f"  {one}" for one in found) if found else "  nothing")
