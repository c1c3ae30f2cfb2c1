"""``MemoryChannel``: keeps what it is given, for tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..recipients import Recipient
from .base import Channel

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["MemoryChannel", "Sent"]


@dataclass(frozen=True)
class Sent:
    """One message handed to a :class:`MemoryChannel`."""

    to: Recipient
    message: Any
    key: str
    event: Event | None = None


class MemoryChannel(Channel):
    """Appends every message to :attr:`outbox` (thread-safe); sends nothing anywhere."""

    def __init__(self, *, address_kind: str = "email") -> None:
        self.outbox: list[Sent] = []
        self._lock = threading.Lock()
        self.address_kind = address_kind

    def sharing(self, *, address_kind: str) -> MemoryChannel:
        """A channel for recipients' ``address_kind`` addresses that records into this one's :attr:`outbox`."""
        other = MemoryChannel(address_kind=address_kind)
        other.outbox, other._lock = self.outbox, self._lock
        return other

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Record ``message`` for ``to``."""
        with self._lock:
            self.outbox.append(Sent(to, message, key, event))

    def clear(self) -> None:
        """Forget what was sent."""
        with self._lock:
            self.outbox.clear()
