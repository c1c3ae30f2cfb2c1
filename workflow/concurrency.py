"""Concurrency: a transition is written as a compare-and-set on the state column.

The state is updated with ``UPDATE ... SET state = :dest WHERE <key> AND state = :source``
when the trigger fires, in the caller's transaction. If another transaction changed the state
first, no row matches and the trigger fails with ``ConcurrentTransition``; if another
transaction is changing it now, the database makes this one wait for it (the row lock of
its UPDATE), then the condition no longer holds. Either way exactly one of two racing
transitions wins, and the loser never overwrites the winner. It costs no extra statement: the
ORM's own UPDATE of the state column is replaced, not added to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

__all__ = ["compare_and_set_state"]


def compare_and_set_state(session: Session, row: Any, source: str, dest: str) -> bool:
    """Write ``dest`` to the row's state column if the database still holds ``source``.

    Returns whether it did. The in-memory state is recorded as already written, so the next
    flush does not update it again.
    """
    mapper = inspect(type(row))
    identity = inspect(row).identity
    state = mapper.columns["state"]
    where = [column == value for column, value in zip(mapper.primary_key, identity or ())]
    statement = update(state.table).where(*where, state == source).values({state.name: dest})
    with session.no_autoflush:
        result = session.connection().execute(statement)
    if getattr(result, "rowcount", 0) != 1:
        return False
    set_committed_value(row, "state", dest)
    return True
