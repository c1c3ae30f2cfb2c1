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
process: :mod:`jobs.inprocess`). See :class:`~jobs.dispatcher.Dispatcher` for what that thread promises. Failed
enqueues are logged once per outage (:mod:`jobs.outage`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import workflow
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, Transaction, event
from sqlalchemy.orm import Session, SessionTransaction
from workflow import TransitionRecord

from . import deferral
from . import dispatcher as dispatching
from .dispatcher import Dispatcher, dispatcher
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
    dispatching.use(send, on_stub=_stub_filled)
    workflow.register_outbox()
    if not event.contains(Session, "detached_to_persistent", _persistent):
        event.listen(Session, "detached_to_persistent", _persistent)
        event.listen(Session, "pending_to_persistent", _persistent)
        event.listen(Session, "after_commit", _after_commit)
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
        if nested.parent is not None:  # always, for a SAVEPOINT
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


def _dispatch(send: Callable[[int | list[int]], Any], transition_id: int) -> None:
    """Enqueue one fan-out with the StubBroker; a failure is counted, never raised into the request."""
    try:
        send(transition_id)
    except Exception as error:  # the transaction is committed; never raise into the request
        outage.failed(error, 1)
    else:
        outage.ended()




def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    buffers = session.info.get(_KEY)
    if not buffers:
        return
    if transaction.parent is None and not transaction.nested:
        buffers.clear()
    elif transaction.nested:
        # A released SAVEPOINT handed its buffer up already; one that ends otherwise was rolled
        # back. Each SAVEPOINT a rollback closes ends here, inner ones included (SQLAlchemy 2
        # ends them before its after_soft_rollback), so no rollback hook is needed.
        buffers.pop(transaction, None)
