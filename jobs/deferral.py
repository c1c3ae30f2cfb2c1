"""Transitions committed by a session inside a connection's outer transaction wait for that transaction.

A session bound to a connection that is already in a transaction (``Session(bind=connection,
join_transaction_mode="create_savepoint")``, the pattern of apps that share one connection
and of test suites that roll back after each test) commits only its SAVEPOINT: the rows are
not visible to a worker until the connection itself commits, and are gone if it rolls back.
So their ids wait here, on the connection: its COMMIT hands them on, its ROLLBACK drops them,
and so does the rollback of a SAVEPOINT of its own that they were committed into.

The connection's ``commit`` event fires just before the COMMIT is sent, so the ids are handed to
the outbox thread, which waits for the COMMIT to return before it enqueues them. A COMMIT that
fails then has enqueued ids whose rows do not exist, which the fan-out logs and skips.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from sqlalchemy import Connection, Transaction, event

__all__ = ["defer"]

# Per connection: the ids waiting, each list under the connection's innermost SAVEPOINT when
# they were committed into it (None: its outer transaction itself).
_waiting: weakref.WeakKeyDictionary[Connection, dict[object, list[int]]] = weakref.WeakKeyDictionary()
_hand_on: Callable[[list[int], Transaction], None] = lambda ids, commit: None


def defer(connection: Connection, ids: list[int], hand_on: Callable[[list[int], Transaction], None]) -> None:
    """Keep ``ids`` until ``connection``'s transaction commits or rolls back.

    At its COMMIT, ``hand_on(ids, transaction)`` is called, just before the COMMIT is sent:
    ``transaction`` turns inactive once it returned.
    """
    global _hand_on
    _hand_on = hand_on
    waiting = _waiting.get(connection)
    if waiting is None:
        waiting = _waiting[connection] = {}
        if not event.contains(connection, "commit", _commit):
            event.listen(connection, "commit", _commit)
            event.listen(connection, "rollback", _rollback)
            event.listen(connection, "release_savepoint", _release_savepoint)
            event.listen(connection, "rollback_savepoint", _rollback_savepoint)
    waiting.setdefault(connection.get_nested_transaction(), []).extend(ids)


def _commit(connection: Connection) -> None:
    waiting = _waiting.pop(connection, None)
    ids = [id_ for batch in (waiting or {}).values() for id_ in batch]
    transaction = connection.get_transaction()
    if ids and transaction is not None:
        _hand_on(ids, transaction)


def _rollback(connection: Connection) -> None:
    _waiting.pop(connection, None)


def _release_savepoint(connection: Connection, name: str, context: object) -> None:
    """What waited under the released SAVEPOINT now waits under the one around it (or the transaction)."""
    waiting = _waiting.get(connection)
    released = connection.get_nested_transaction()
    if waiting and released in waiting:
        # SQLAlchemy keeps the SAVEPOINT around this one as _previous_nested; without it, the transaction.
        parent = getattr(released, "_previous_nested", None)
        waiting.setdefault(parent, []).extend(waiting.pop(released))


def _rollback_savepoint(connection: Connection, name: str, context: object) -> None:
    waiting = _waiting.get(connection)
    if waiting:
        waiting.pop(connection.get_nested_transaction(), None)
