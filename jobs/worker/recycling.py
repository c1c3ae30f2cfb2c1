"""Recycling: a worker process asks to be replaced once it uses too much memory or has done enough work.

Dramatiq has no memory limit and no max-tasks-per-child. :class:`Recycler` checks the process's
resident memory (RSS) and counts messages after each one it processed; past a limit it sets
``due`` and records why. The worker process then stops consuming, finishes the messages in
hand, returns the ones it had prefetched, and exits with a code that tells the supervisor to
start a fresh one (``jobs.worker.process``). The limit is checked between messages, so a
process may exceed it by what one message allocates, and may process a few more messages
(one per busy thread) while it stops.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

__all__ = ["MEMORY", "MESSAGES", "Recycler", "rss_bytes"]

_log = logging.getLogger(__name__)

#: Reasons for recycling, as recorded in :attr:`Recycler.reason`.
MEMORY, MESSAGES = "memory", "messages"

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident memory now (``/proc/self/statm``), or its peak where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


class Recycler(dramatiq.Middleware):
    """Sets :attr:`due` once the process passes ``max_memory_bytes`` of RSS or has processed ``max_messages``.

    Args:
        max_memory_bytes: resident memory past which the process should be replaced; 0 for no limit.
        max_messages: messages (processed or skipped) after which it should be replaced; 0 for no limit.
        on_due: called once, from the worker thread, when the process becomes due (to wake its main thread).
    """

    def __init__(self, *, max_memory_bytes: int = 0, max_messages: int = 0,
                 on_due: Callable[[], None] = lambda: None) -> None:
        self.max_memory_bytes, self.max_messages = max_memory_bytes, max_messages
        self._on_due = on_due
        self.due = threading.Event()
        self.reason: str | None = None
        self.processed = 0
        self.in_hand = 0  # messages being processed now
        self._lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Count the message as in hand."""
        with self._lock:
            self.in_hand += 1

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *,
                              result: Any = None, exception: BaseException | None = None) -> None:
        """Count the message as done and check the limits."""
        with self._lock:
            self.in_hand = max(self.in_hand - 1, 0)
            self.processed += 1
            if self.due.is_set():
                return
            if self.max_messages and self.processed >= self.max_messages:
                self._recycle(MESSAGES, f"it has processed {self.processed} messages (limit {self.max_messages})")
            elif self.max_memory_bytes and (rss := rss_bytes()) > self.max_memory_bytes:
                self._recycle(MEMORY, f"its memory is {rss // 2**20} MiB (limit {self.max_memory_bytes // 2**20} MiB)")

    after_skip_message = after_process_message

    def _recycle(self, reason: str, why: str) -> None:
        self.reason = reason
        _log.warning("Worker process %d will be replaced: %s.", os.getpid(), why)
        self.due.set()
        self._on_due()
