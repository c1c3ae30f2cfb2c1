"""The transition log: one row per fired transition, both the audit trail and the outbox."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    bindparam,
    delete,
    event,
    insert,
    any_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, make_transient_to_detached, mapped_column

from .clock import utcnow

_log = logging.getLogger("workflow")

#: The MetaData that holds Tidings' own tables (the transition log, and the delivery log once
#: ``jobs`` is imported). Create them with ``metadata.create_all(engine)`` or add it to Alembic's
#: ``target_metadata`` list.
metadata = MetaData()

#: An auto-incrementing 64-bit key that SQLite also accepts as its rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


class TidingsBase(DeclarativeBase):
    """Declarative base of Tidings' own tables, bound to :data:`metadata`."""

    metadata = metadata


class TransitionRecord(TidingsBase):
    """A transition that happened: which row, which trigger, from where to where, who and why.

    Written in the caller's transaction by the trigger itself, so it commits or rolls back with
    the state change (on PostgreSQL, by the very statement that changes the state). ``fanned_out_at`` stays empty until the notifications have been planned;
    ``retried_at`` is when the planning was last asked for again (after a lost message);
    ``held_reason`` why the last planning held it back instead (no notifier for its model where it
    was planned), until one plans it.
    """

    __tablename__ = "tidings_transitions"
    __table_args__ = (
        Index("ix_tidings_transitions_subject", "model", "key"),
        Index("ix_tidings_transitions_unfanned", "fanned_out_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(128))
    dest: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str | None] = mapped_column(String(255))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    fanned_out_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    retried_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    held_reason: Mapped[str | None] = mapped_column(String(500))
    #: The W3C ``traceparent`` of the span current at the commit, if any (see :mod:`workflow.tracing`).
    traceparent: Mapped[str | None] = mapped_column(String(55))

    def __repr__(self) -> str:
        return f"<TransitionRecord {self.id} {self.model} {self.key} {self.trigger}: {self.source} -> {self.dest}>"


#: The columns a trigger writes; the others (id, fan-out marks) are the database's or the worker's.
LOG_COLUMNS = ("model", "key", "trigger", "source", "dest", "actor", "context", "created_at", "traceparent")


_READ = select(TransitionRecord.__table__).where(TransitionRecord.id == bindparam("read_id"))
# Many: an IN list of one placeholder each, or on PostgreSQL one array (one statement text however many).
_READ_MANY = select(TransitionRecord.__table__).where(TransitionRecord.id.in_(bindparam("read_ids", expanding=True)))
_READ_MANY_PG = select(TransitionRecord.__table__).where(
    TransitionRecord.id == any_(bindparam("read_ids", type_=postgresql.ARRAY(BigInteger))))


def read_records(connection: Connection, record_ids: Iterable[int]) -> dict[int, TransitionRecord]:
    """:func:`read_record` for many transitions in one statement; those that exist, by id."""
    wanted = list(dict.fromkeys(record_ids))
    if not wanted:
        return {}
    statement = _READ_MANY_PG if connection.dialect.name == "postgresql" else _READ_MANY
    rows = connection.execute(statement, {"read_ids": wanted}).mappings()
    return {row["id"]: TransitionRecord(**row) for row in rows}


def insert_record(connection: Connection, log: Mapping[str, Any]) -> int:
    """Insert one log row with a Core statement (no unit of work); its id."""
    result = connection.execute(insert(TransitionRecord), {name: log[name] for name in LOG_COLUMNS})
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def delete_records(connection: Connection, ids: list[int]) -> None:
    """Delete log rows whose transition was aborted after they were written (a failing callback)."""
    connection.execute(delete(TransitionRecord).where(TransitionRecord.id.in_(ids)))


def read_record(connection: Connection, record_id: int) -> TransitionRecord | None:
    """The transition ``record_id`` read with a Core statement, as a :class:`TransitionRecord` in no session.

    For readers that only look at it (the worker planning and rendering its notifications): an
    ORM load costs several times more, for an identity map nobody uses.
    """
    row = connection.execute(_READ, {"read_id": record_id}).mappings().one_or_none()
    return None if row is None else TransitionRecord(**row)


def attach_record(session: Session, record_id: int, log: Mapping[str, Any]) -> TransitionRecord:
    """The :class:`TransitionRecord` of a row already inserted, made persistent in ``session``.

    The row was written by a Core statement, so the session must not INSERT it again: the
    object is attached as already persistent. This fires SQLAlchemy's ``detached_to_persistent``
    session event, which is how listeners (the ``jobs`` outbox) learn of new transitions.
    """
    record = TransitionRecord(id=record_id, fanned_out_at=None, retried_at=None,
                              **{name: log[name] for name in LOG_COLUMNS})
    make_transient_to_detached(record)
    session.add(record)
    if _unheard:  # a flag check: nothing more once an outbox registered, or the warning was given
        _listen_for_the_commit(session)
    return record


# --- Who hears of committed transitions -------------------------------------------------------------

_unheard = True  # no outbox registered yet, and no warning given yet


def register_outbox() -> None:
    """Say that something hands this process's committed transitions on (the ``jobs`` outbox, when imported).

    Until something does, the first commit of a transition in the process logs one warning:
    its notifications would wait for a sweep, with no word anywhere.
    """
    global _unheard
    _unheard = False


def _listen_for_the_commit(session: Session) -> None:
    if not session.info.get("tidings_unheard"):
        session.info["tidings_unheard"] = True
        event.listen(session, "after_commit", _warn_unheard)


def _warn_unheard(session: Session) -> None:
    global _unheard
    if _unheard and session.get_nested_transaction() is None:  # the outermost commit, not a RELEASE
        _unheard = False
        _log.warning(
            "A transition was committed, but nothing in this process hands committed transitions to the "
            "workers: import jobs when the process starts (it reads the TIDINGS_* settings the workers use) "
            "or call jobs.configure(...). Until then each notification waits for a worker's sweep "
            "(sweep_after_seconds, 60 s by default), and this warning is not repeated.")
