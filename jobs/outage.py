"""Enqueue failures told once per outage: a warning when they start, another when an enqueue works again.

A broker that is down fails the enqueue of every commit; a traceback each time would bury the
logs, and nothing is lost (each transition waits in the log for the sweeper).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["Outage", "outage"]

_log = logging.getLogger("jobs.outbox")


class Outage:
    """Counts the fan-outs that could not be enqueued since the broker started refusing them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.unsent = 0  # fan-outs left to the sweeper since the outage began; 0: no outage

    def failed(self, error: Exception, count: int) -> None:
        """``count`` fan-outs could not be enqueued because of ``error``; the first failure of an outage is logged."""
        with self._lock:
            first, self.unsent = self.unsent == 0, self.unsent + count
        if first:
            _log.warning("Could not enqueue the fan-out of %d transition(s) (%s: %s): the broker seems "
                         "unreachable. They stay in the transition log and the sweeper sends them; further "
                         "failures are counted, not logged, until an enqueue works again.",
                         count, type(error).__name__, error)

    def ended(self) -> None:
        """An enqueue worked: if an outage was on, say it is over and how many fan-outs it left to the sweeper."""
        if self.unsent == 0:  # the usual case, without the lock
            return
        with self._lock:
            unsent, self.unsent = self.unsent, 0
        if unsent:
            _log.warning("Enqueueing works again; %d fan-out(s) that failed meanwhile are left to the sweeper.",
                         unsent)


#: The process's outage, shared by the request threads (StubBroker) and the outbox thread.
outage = Outage()
