"""The transition log: one row per fired transition, both the audit trail and the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: The MetaData that holds Tidings' own tables (the transition log, and the delivery log once
#: ``jobs`` is imported). Create them with ``metadata.create_all(engine)`` or add it to Alembic's
#: ``target_metadata`` list.
metadata = MetaData()

#: An auto-incrementing 64-bit key that SQLite also accepts as its rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class TidingsBase(DeclarativeBase):
    """Declarative base of Tidings' own tables, bound to :data:`metadata`."""

    metadata = metadata


class TransitionRecord(TidingsBase):
    """A transition that happened: which row, which trigger, from where to where, who and why.

    Written in the caller's session by the trigger itself, so it commits or rolls back with the
    state change. ``fanned_out_at`` stays empty until the notifications have been planned;
    ``retried_at`` is when the planning was last asked for again (after a lost message).
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

    def __repr__(self) -> str:
        return f"<TransitionRecord {self.id} {self.model} {self.key} {self.trigger}: {self.source} -> {self.dest}>"
