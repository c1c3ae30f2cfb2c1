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

    def __init__(self) -> None:
        self.outbox: list[Sent] = []
        self._lock = threading.Lock()

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Record ``message`` for ``to``."""
        with self._lock:
            self.outbox.append(Sent(to, message, key, event))

    def clear(self) -> None:
        """Forget what was sent."""
        with self._lock:
            self.outbox.clear()
