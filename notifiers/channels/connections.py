"""``ThreadConnections``: one kept-alive connection per worker thread, for channels that talk to a server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ThreadConnections"]

C = TypeVar("C")


class ThreadConnections(Generic[C]):
    """Each thread's own connection (connections are not thread-safe), and every one opened, to close.

    Args:
        close: how to close one connection (quietly: it may be broken already).
    """

    def __init__(self, close: Callable[[C], None]) -> None:
        self._close = close
        self._local = threading.local()
        self._open: list[C] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many connections are open, across threads."""
        with self._lock:
            return len(self._open)

    def current(self) -> C | None:
        """This thread's connection, or ``None`` before the first one or after :meth:`drop`."""
        connection: C | None = getattr(self._local, "connection", None)
        return connection

    def keep(self, connection: C) -> C:
        """Make ``connection`` this thread's, and remember it for :meth:`close`."""
        self._local.connection = connection
        with self._lock:
            self._open.append(connection)
        return connection

    def drop(self) -> None:
        """Close and forget this thread's connection (broken, or in an unknown state)."""
        connection = self.current()
        self._local.connection = None
        if connection is not None:
            with self._lock:
                if connection in self._open:
                    self._open.remove(connection)
            self._close(connection)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            self._close(connection)
        self._local = threading.local()
