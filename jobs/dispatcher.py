"""The outbox's thread: fan-out messages enqueued after the commit, so a request never waits on the broker."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Transaction

from . import batches
from .outage import outage

__all__ = ["Dispatcher", "dispatcher", "use"]

_log = logging.getLogger("jobs.outbox")  # its lines are the outbox's, as operators know them
_send: Callable[[int | list[int]], Any] | None = None
_on_stub: Callable[[StubBroker], None] | None = None


def use(send: Callable[[int | list[int]], Any], *, on_stub: Callable[[StubBroker], None] | None = None) -> None:
    """What every dispatcher enqueues a fan-out with (one id or several), and calls after a StubBroker got some.

    Set by :func:`jobs.outbox.install`; until then a dispatcher sends nothing.
    """
    global _send, _on_stub
    _send, _on_stub = send, on_stub


class Dispatcher:
    """Enqueues fan-out messages from a thread of its own, after the commit, so requests never wait.

    The transition log is the durable outbox: a transition whose message was never enqueued
    stays unfanned, and the sweeper enqueues it ``sweep_after_seconds`` later. So this thread
    may give up without losing anything, and does whenever waiting would cost more than it
    saves:

    - an enqueue that fails drops what is queued behind it: the broker is probably down, and
      each further try would wait for its connect timeout (one warning per outage, counting);
    - more than ``limit`` waiting messages: new ones are dropped;
    - at interpreter exit, what is still queued gets ``exit_timeout`` seconds;
    - messages committed for a broker that has since been replaced are dropped.

    Ids handed over at a connection's COMMIT (see :mod:`jobs.deferral`) wait for that COMMIT to
    return before they are sent, whatever the broker.

    Under load, fan-outs queue up while the thread is sending: it then takes all that wait and
    sends them in messages of 4 to ``batch`` ids, spread over several messages so a worker's
    threads share them (see :func:`batches.split`); a worker plans each message's transitions
    together, paying the database once for all of them. A fan-out never waits for others: one
    committed while the thread is idle goes at once, alone. (Waiting a few milliseconds for
    others to join it was tried: it made the requests' own figure worse, see docs/PERFORMANCE.md.)

    The thread starts on first use in each process, so a process forked before (a pre-fork web
    server) starts its own; a forked child never sends what its parent had queued.
    """

    def __init__(self, *, limit: int = 10_000, exit_timeout: float = 5.0, batch: int = 50) -> None:
        self.limit, self.exit_timeout, self.batch = limit, exit_timeout, batch
        self._exit_registered = False
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[tuple[dramatiq.Broker, int, Transaction | None]] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._unfinished = 0
        self._full = False  # past the limit, and said so
        self._thread: threading.Thread | None = None

    def submit(self, broker: dramatiq.Broker, ids: list[int], *, after: Transaction | None = None) -> None:
        """Queue the fan-out of ``ids`` for ``broker``, sent once ``after`` (a COMMIT under way) ended; returns now."""
        with self._idle:
            if self._unfinished + len(ids) > self.limit:
                if not self._full:
                    self._full = True
                    _log.warning("%d fan-outs wait for the broker already; more are left to the sweeper until "
                                 "they are sent.", self._unfinished)
                return
            self._unfinished += len(ids)
            if self._thread is None or self._pid != os.getpid():
                self._start()
        for transition_id in ids:
            self._queue.put((broker, transition_id, after))

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted was enqueued or dropped; whether it was, within ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout=timeout)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="tidings-outbox", daemon=True)
        self._thread.start()
        if not self._exit_registered:
            self._exit_registered = True
            atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        if not self.flush(self.exit_timeout):
            _log.warning("%d fan-outs not enqueued at exit; the sweeper will.", self._unfinished)

    def _run(self) -> None:
        while True:
            taken = [self._queue.get()]
            while True:  # and whatever else waits: under load, several fan-outs go in one message
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = len(taken) + self._send_all(taken)
            with self._idle:
                self._unfinished -= done
                if self._unfinished == 0:
                    self._full = False
                    self._idle.notify_all()

    def _send_all(self, taken: list[tuple[dramatiq.Broker, int, Transaction | None]]) -> int:
        """Enqueue ``taken`` in batches (see :func:`batches.split`); how many more were dropped from the queue."""
        for commit in {after for _, _, after in taken if after is not None}:
            _wait_until_ended(commit)
        broker = dramatiq.get_broker()
        current = [transition_id for committed_for, transition_id, _ in taken if committed_for is broker]
        if len(current) < len(taken):
            _log.info("%d transitions were committed for a broker since replaced; the sweeper will send them.",
                      len(taken) - len(current))
        if _send is None:
            return 0
        chunks = batches.split(current, self.batch, least=4)
        for number, batch in enumerate(chunks):
            try:
                _send(batch[0] if len(batch) == 1 else batch)
            except Exception as error:  # the broker is probably down: drop what waits behind, for the sweeper
                dropped = self._drop()
                outage.failed(error, sum(len(rest) for rest in chunks[number:]) + dropped)
                return dropped
            outage.ended()
        if isinstance(broker, StubBroker) and current and _on_stub is not None:
            _on_stub(broker)
        return 0

    def _drop(self) -> int:
        """Empty the queue after a failed enqueue; how many were dropped from it."""
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return dropped
            dropped += 1


def _wait_until_ended(commit: Transaction, timeout: float = 30.0) -> None:
    """Wait for the COMMIT of a connection's transaction, under way in another thread, to return.

    A connection's ``commit`` event fires just before its COMMIT, and SQLAlchemy has no event
    after it: its transaction object turns inactive once the COMMIT returned (or failed). It is
    looked at after 0.1 ms, then twice as late each time up to every 10 ms (a quick COMMIT is
    noticed at once, a slow one costs little), for ``timeout`` seconds at most.
    """
    deadline, pause = time.monotonic() + timeout, 0.0001
    while commit.is_active and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


#: The process's dispatcher.
dispatcher = Dispatcher()
