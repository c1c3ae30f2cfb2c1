"""Deliveries whose time came: found by the ``due`` task of every worker's schedule, and enqueued.

A delivery held for a time (a delay, a reminder, quiet hours; see docs/time.md) is written at
fan-out with its ``due_at`` and waits in the database, not in the broker: a broker may drop or
requeue a message held for hours (RabbitMQ's consumer timeout). Each run takes the pending ones
due since, oldest first, through the partial index on (status, due_at), and re-stamps them, so
concurrent runs in several processes take each once; the claim still guards against a second send.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, false, select, update
from sqlalchemy.orm import Session
from workflow import utcnow

from .delivery_log import Delivery, Status

__all__ = ["due_query", "take_due"]

def due_query(now: dt.datetime, limit: int) -> Select[int]:
    """Up to ``limit`` ids of deliveries due at ``now`` and not enqueued since (a re-stamp sets ``updated_at``), oldest first."""
    return (select(Delivery.id)
            .where(Delivery.status == Status.PENDING, Delivery.due_at.is_not(None), Delivery.due_at <= now,
                   Delivery.updated_at < Delivery.due_at)
            .order_by(Delivery.due_at).limit(limit).with_for_update(skip_locked=True))


def take_due(session: Session, *, limit: int = 1000) -> list[int]:
    """Take up to ``limit`` deliveries that became due, re-stamp them and commit; their ids, for the caller to enqueue.

    On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``: another process running at
    the same moment takes others. SQLite has no row locks: its write lock is taken first.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Delivery).where(false()).values(attempts=Delivery.attempts))
    now = utcnow()
    ids = list(session.scalars(due_query(now, limit)))
    if ids:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(updated_at=now)
                        .execution_options(synchronize_session=False))
    session.commit()
    return ids
