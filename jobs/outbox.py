"""The after-commit hook: one fan-out message per transition, enqueued after the outermost commit.

Listens to SQLAlchemy session events, so ``workflow`` needs no callback into ``jobs``. A
trigger writes its log row with a Core statement and attaches the record to the session as
already persistent (``detached_to_persistent``); a record added the ORM way becomes persistent
at flush (``pending_to_persistent``). Either way its id goes into a buffer per
(sub)transaction, the innermost one open at that moment: a released SAVEPOINT
hands its buffer to its parent, a rolled-back one drops it, the outermost commit sends it, and
the end of the outermost transaction (commit, rollback or close) clears it. ``after_commit``
alone would also fire on SAVEPOINT release, before the real commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction
from workflow import TransitionRecord

__all__ = ["install"]

_log = logging.getLogger(__name__)
_KEY = "tidings_outbox"
_send: Callable[[int], Any] | None = None


def install(send: Callable[[int], Any]) -> None:
    """Listen on every SQLAlchemy session; call ``send(transition_id)`` after each outermost commit."""
    global _send
    _send = send
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
    for transition_id in ids:
        _dispatch(transition_id)


def _dispatch(transition_id: int) -> None:
    try:
        if _send is not None:
            _send(transition_id)
    except Exception:  # the transaction is committed; never raise into the request
        _log.exception("Could not enqueue the fan-out of transition %s; the sweeper will.", transition_id)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    buffers = session.info.get(_KEY)
    if buffers:
        buffers.pop(previous_transaction, None)
        if previous_transaction.parent is None:
            buffers.clear()


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        buffers = session.info.get(_KEY)
        if buffers:
            buffers.clear()
