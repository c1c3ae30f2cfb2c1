"""``ConsoleChannel``: one summary line per message, for demos and development."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from ..recipients import Recipient
from .base import Channel

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["ConsoleChannel"]


class ConsoleChannel(Channel):
    """Prints ``to <recipient>: <subject>`` for each message instead of sending it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Print one line for ``message``."""
        line = f"to {to}: {getattr(message, 'subject', None) or getattr(message, 'body', message)}\n"
        with self._lock:
            (self.stream or sys.stdout).write(line)
