"""The after-commit hook: each committed transition's id enqueued for fan-out after the outermost commit.

Listens to SQLAlchemy session events, so ``workflow`` needs no callback into ``jobs``. A
trigger writes its log row with a Core statement and attaches the record to the session as
already persistent (``detached_to_persistent``); a record added the ORM way becomes persistent
at flush (``pending_to_persistent``). Either way its id goes into a buffer per
(sub)transaction, the innermost one open at that moment: a released SAVEPOINT
hands its buffer to its parent, a rolled-back one drops it, the outermost commit sends it, and
the end of the outermost transaction (commit, rollback or close) clears it. ``after_commit``
alone would also fire on SAVEPOINT release, before the real commit.

A session inside a connection's outer transaction commits only a SAVEPOINT: its ids wait for
the connection's COMMIT (:mod:`jobs.deferral`), except in the test kit (:func:`session_commits_suffice`).

With a network broker (Redis, RabbitMQ) the messages are enqueued by a thread of the process,
so the commit returns without waiting on the broker (or on a broker outage), several ids to a
message when several wait; with the StubBroker each is enqueued, alone, before ``commit()``
returns, so tests see them at once (the one built from ``broker_url=stub`` is consumed in the
process: :mod:`jobs.inprocess`). See :class:`Dispatcher` for what that thread promises. Failed
enqueues are logged once per outage (:mod:`jobs.outage`).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import workflow
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, Transaction, event
from sqlalchemy.orm import Session, SessionTransaction
from workflow import TransitionRecord

from . import batches, deferral
from .outage import outage

__all__ = ["Dispatcher", "dispatcher", "install", "session_commits_suffice"]

_log = logging.getLogger(__name__)
_KEY = "tidings_outbox"
_send: Callable[[int | list[int]], Any] | None = None
_on_stub: Callable[[StubBroker], None] | None = None
_session_commits_suffice = 0  # > 0 inside session_commits_suffice()


def install(send: Callable[[int | list[int]], Any], *, on_stub: Callable[[StubBroker], None] | None = None) -> None:
    """Listen on every SQLAlchemy session; call ``send(transition_id)`` after each outermost commit.

    With a network broker the ids are sent by the :class:`Dispatcher`'s thread, which passes
    a list of ids instead when several are waiting at once. With the StubBroker, ``on_stub``
    is called with it after each commit's enqueues (``jobs`` starts its in-process worker there).
    """
    global _send, _on_stub
    _send, _on_stub = send, on_stub
    workflow.register_outbox()
    if not event.contains(Session, "detached_to_persistent", _persistent):
        event.listen(Session, "detached_to_persistent", _persistent)
        event.listen(Session, "pending_to_persistent", _persistent)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)


def _buffers(session: Session) -> dict[SessionTransaction, list[int]]:
    buffers: dict[SessionTransaction, list[int]] = session.info.setdefault(_KEY, {})
    return buffers


def _persistent(session: Session, instance: object) -> None:
    if isinstance(instance, TransitionRecord) and instance.fanned_out_at is None:
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is not None:
            _buffers(session).setdefault(transaction, []).append(instance.id)


def _after_commit(session: Session) -> None:
    buffers = session.info.get(_KEY)
    if not buffers:
        return
    nested = session.get_nested_transaction()
    if nested is not None:  # RELEASE SAVEPOINT: the outer transaction may still roll back
        moved = buffers.pop(nested, [])
        if moved and nested.parent is not None:
            buffers.setdefault(nested.parent, []).extend(moved)
        return
    ids = [id_ for batch in buffers.values() for id_ in batch]
    buffers.clear()
    if not ids:
        return
    outer = session.bind
    if isinstance(outer, Connection) and outer.in_transaction() and not _session_commits_suffice:
        deferral.defer(outer, ids, _after_outer_commit)  # only a SAVEPOINT was released: wait for the COMMIT
    elif _send is not None:
        broker = dramatiq.get_broker()
        if isinstance(broker, StubBroker):
            for transition_id in ids:
                _dispatch(_send, transition_id)
            _stub_filled(broker)
        else:
            dispatcher.submit(broker, ids)


def _after_outer_commit(ids: list[int], commit: Transaction) -> None:
    """The connection is about to COMMIT ``ids``: the dispatcher's thread enqueues them once it has (any broker)."""
    dispatcher.submit(dramatiq.get_broker(), ids, after=commit)


def _stub_filled(broker: StubBroker) -> None:
    if _on_stub is not None:
        _on_stub(broker)


@contextmanager
def session_commits_suffice() -> Iterator[None]:
    """Within it, a session's outermost commit enqueues at once, even inside a connection's outer transaction.

    For the test kit: its jobs run on the test's own connection, inside that transaction, so
    they see what the session committed to its SAVEPOINT; a worker elsewhere would not.
    """
    global _session_commits_suffice
    _session_commits_suffice += 1
    try:
        yield
    finally:
        _session_commits_suffice -= 1


def _dispatch(send: Callable[[int | list[int]], Any], transition_ids: int | list[int]) -> bool:
    try:
        send(transition_ids)
    except Exception as error:  # the transaction is committed; never raise into the request
        outage.failed(error, len(transition_ids) if isinstance(transition_ids, list) else 1)
        return False
    outage.ended()
    return True


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
        if isinstance(broker, StubBroker) and current:
            _stub_filled(broker)
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
    after it: its transaction object turns inactive once the COMMIT returned (or failed).
    """
    deadline, pause = time.monotonic() + timeout, 0.0001
    while commit.is_active and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


#: The process's dispatcher.
dispatcher = Dispatcher()


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    buffers = session.info.get(_KEY)
    if buffers:
        buffers.pop(previous_transaction, None)
        if previous_transaction.parent is None:
            buffers.clear()


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    buffers = session.info.get(_KEY)
    if not buffers:
        return
    if transaction.parent is None and not transaction.nested:
        buffers.clear()
    elif transaction.nested:
        # A released SAVEPOINT handed its buffer up already; one that ends otherwise was rolled
        # back, possibly with an outer SAVEPOINT that alone gets an after_soft_rollback.
        buffers.pop(transaction, None)
