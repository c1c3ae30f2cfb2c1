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

__all__ = ["HandOn", "defer"]

#: What takes the ids at the COMMIT: ``hand_on(ids, transaction)``.
HandOn = Callable[[list[int], Transaction], None]

# Per connection: who takes the ids at its COMMIT, and the ids waiting, each list under the
# connection's innermost SAVEPOINT when they were committed into it (None: its transaction itself).
_waiting: weakref.WeakKeyDictionary[Connection, tuple[HandOn, dict[object, list[int]]]] = weakref.WeakKeyDictionary()


def defer(connection: Connection, ids: list[int], hand_on: HandOn) -> None:
    """Keep ``ids`` until ``connection``'s transaction commits or rolls back.

    At its COMMIT, ``hand_on(ids, transaction)`` is called, just before the COMMIT is sent:
    ``transaction`` turns inactive once it returned.
    """
    found = _waiting.get(connection)
    if found is None:
        found = _waiting[connection] = (hand_on, {})
        if not event.contains(connection, "commit", _commit):
            event.listen(connection, "commit", _commit)
            event.listen(connection, "rollback", _rollback)
            event.listen(connection, "release_savepoint", _release_savepoint)
            event.listen(connection, "rollback_savepoint", _rollback_savepoint)
    found[1].setdefault(connection.get_nested_transaction(), []).extend(ids)


def _commit(connection: Connection) -> None:
    found = _waiting.pop(connection, None)
    transaction = connection.get_transaction()
    if found is not None and transaction is not None:
        hand_on, waiting = found
        ids = [id_ for batch in waiting.values() for id_ in batch]
        if ids:
            hand_on(ids, transaction)


def _rollback(connection: Connection) -> None:
    _waiting.pop(connection, None)


def _release_savepoint(connection: Connection, name: str, context: object) -> None:
    """What waited under the released SAVEPOINT now waits under the one around it (or the transaction)."""
    waiting = _waiting.get(connection, (None, None))[1]
    released = connection.get_nested_transaction()
    if waiting and released in waiting:
        # SQLAlchemy keeps the SAVEPOINT around this one as _previous_nested; without it, the transaction.
        parent = getattr(released, "_previous_nested", None)
        waiting.setdefault(parent, []).extend(waiting.pop(released))


def _rollback_savepoint(connection: Connection, name: str, context: object) -> None:
    waiting = _waiting.get(connection, (None, None))[1]
    if waiting:
        waiting.pop(connection.get_nested_transaction(), None)
