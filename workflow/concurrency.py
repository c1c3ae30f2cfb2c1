"""Concurrency: a transition is written as a compare-and-set on the state column.

The state is updated with ``UPDATE ... SET state = :dest WHERE <key> AND state = :source``
when the trigger fires, in the caller's transaction. If another transaction changed the state
first, no row matches and the trigger fails with ``ConcurrentTransition``; if another
transaction is changing it now, the database makes this one wait for it (the row lock of
its UPDATE), then the condition no longer holds. Either way exactly one of two racing
transitions wins, and the loser never overwrites the winner.

The log row is written by the same call. On PostgreSQL both go in one statement, a
data-modifying CTE (``WITH cas AS (UPDATE ... RETURNING ...) INSERT ... SELECT ... FROM cas``)
that inserts the log row only if the compare-and-set matched: a transition then costs the
database what a plain state update costs (one statement, which replaces the ORM's own UPDATE of
the state). Elsewhere it is the UPDATE, then the INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import set_committed_value

from .errors import TransitionLogMissing
from .transition_log import LOG_COLUMNS, TransitionRecord, insert_record

__all__ = ["undo_state", "write_transition"]

# Built once per (model class, combined or not); executed with parameters on every transition.
_statements: dict[tuple[Mapper[Any], bool], Any] = {}


def write_transition(session: Session, row: Any, log: Mapping[str, Any]) -> int | None:
    """Move the row's state from ``log["source"]`` to ``log["dest"]`` and insert its log row.

    Both happen only if the database still holds the source state. Returns the new log row's
    id, or ``None`` if another transaction changed the state first (nothing is written then).
    The in-memory state is recorded as already written, so the next flush does not update it
    again.
    """
    mapper = inspect(type(row))
    identity = inspect(row).identity or ()
    params = {**log, **{f"cas_key{n}": value for n, value in enumerate(identity)}}
    with session.no_autoflush:
        connection = session.connection()
        try:
            if connection.dialect.name == "postgresql":
                record_id = connection.execute(_statement(mapper, combined=True), params).scalar()
            elif getattr(connection.execute(_statement(mapper, combined=False), params), "rowcount", 0) == 1:
                record_id = insert_record(connection, log)
            else:
                record_id = None
        except DBAPIError as error:
            _refuse_without_log(connection, error)
            raise
    if record_id is None:
        return None
    set_committed_value(row, "state", log["dest"])
    _clean_if_unchanged(session, row)
    return int(record_id)


def _clean_if_unchanged(session: Session, row: Any) -> None:
    """Mark the row clean when its state, written already, was its only change.

    Setting the state attribute marked it modified, and the commit's flush would then walk it
    and its relationships to find nothing to write: a sixth of a request's Python. A row changed
    otherwise too (before the trigger, or by its callbacks after) keeps those changes, and is
    flushed as before. Left as it is: inside a SAVEPOINT (whose rollback resets only the rows
    marked modified), and when flush or update listeners are registered (an audit hook that
    stamps the rows a flush sees must still see it).
    """
    state = inspect(row)
    if (not state.modified or state.committed_state or "_pending_mutations" in state.__dict__
            or session.in_nested_transaction() or _flush_heard(session, state.mapper)):
        return
    state._commit_all(state.dict, session.identity_map)


def _flush_heard(session: Session, mapper: Mapper[Any]) -> bool:
    """Whether a listener would hear of the row at the flush (the session's flush events, the mapper's updates)."""
    return bool(session.dispatch.before_flush or session.dispatch.after_flush
                or session.dispatch.after_flush_postexec or mapper.dispatch.before_update
                or mapper.dispatch.after_update)


def _refuse_without_log(connection: Connection, error: DBAPIError) -> None:
    """Raise :class:`TransitionLogMissing` if ``error`` came of a database without the transition log.

    Asked on a connection of its own: on PostgreSQL the failed statement aborted the caller's
    transaction. Costs nothing until a statement fails.
    """
    table = cast(Table, TransitionRecord.__table__)
    try:
        missing = not inspect(connection.engine).has_table(table.name, schema=table.schema)
    except DBAPIError:
        return  # the database cannot say: the original error tells what it can
    if missing:
        url = connection.engine.url.render_as_string(hide_password=True)
        raise TransitionLogMissing(
            f"The database {url} has no table {table.name}, so no transition can be recorded: create Tidings' "
            f"tables with workflow.metadata.create_all(engine) (after importing jobs, for all of them), or run "
            f"your migrations.") from error


def undo_state(session: Session, row: Any, written: str, previous: str) -> None:
    """Put the row's state back from ``written`` to ``previous`` in the database at once.

    For a trigger whose callback failed after the state was written: the database must not
    keep the new state until some later flush (a refresh would resurrect it).
    """
    mapper = inspect(type(row))
    identity = inspect(row).identity or ()
    params = {"source": written, "dest": previous, **{f"cas_key{n}": value for n, value in enumerate(identity)}}
    with session.no_autoflush:
        session.connection().execute(_statement(mapper, combined=False), params)
    set_committed_value(row, "state", previous)


def _statement(mapper: Mapper[Any], *, combined: bool) -> Any:
    statement = _statements.get((mapper, combined))
    if statement is None:
        state = mapper.columns["state"]
        where = [column == bindparam(f"cas_key{n}") for n, column in enumerate(mapper.primary_key)]
        cas = update(state.table).where(*where, state == bindparam("source")).values({state.name: bindparam("dest")})
        if combined:
            table = TransitionRecord.__table__
            cte = cas.returning(mapper.primary_key[0]).cte("cas")
            values = select(*[bindparam(name, type_=table.c[name].type) for name in LOG_COLUMNS]).select_from(cte)
            statement = insert(TransitionRecord).from_select(LOG_COLUMNS, values).returning(TransitionRecord.id)
        else:
            statement = cas
        _statements[(mapper, combined)] = statement
    return statement

