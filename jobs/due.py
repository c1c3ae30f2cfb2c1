"""Deliveries whose time came: found by the ``due`` task of every worker's schedule, and enqueued.

A delivery held for a time (a delay, a reminder, quiet hours; see docs/time.md) is written at
fan-out with its ``due_at`` and waits in the database, not in the broker: a broker may drop or
requeue a message held for hours (RabbitMQ's consumer timeout). It is written ``scheduled``: out
of sight of what looks for work to do now (the claim, the sweeper's pending rows). Each run takes
the scheduled ones due since, oldest first, through the partial index on (status, due_at), and
makes them ``pending``, so concurrent runs in several processes take each once; a message lost
after that is the sweeper's, as for any pending delivery; the claim still guards against a second send.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, false, select, update
from sqlalchemy.orm import Session
from workflow import utcnow

from .delivery_log import Delivery, Status

__all__ = ["due_query", "take_due"]

def due_query(now: dt.datetime, limit: int) -> Select[int]:
    """Up to ``limit`` ids of the ``scheduled`` deliveries due at ``now``, oldest due first."""
    return (select(Delivery.id)
            .where(Delivery.status == Status.SCHEDULED, Delivery.due_at.is_not(None), Delivery.due_at <= now)
            .order_by(Delivery.due_at).limit(limit).with_for_update(skip_locked=True))


def take_due(session: Session, *, limit: int = 1000) -> list[int]:
    """Make up to ``limit`` deliveries that became due ``pending`` and commit; their ids, for the caller to enqueue.

    On PostgreSQL the rows are locked ``FOR UPDATE SKIP LOCKED``: another process running at
    the same moment takes others. SQLite has no row locks: its write lock is taken first.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Delivery).where(false()).values(attempts=Delivery.attempts))
    now = utcnow()
    ids = list(session.scalars(due_query(now, limit)))
    if ids:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status=Status.PENDING, updated_at=now)
                        .execution_options(synchronize_session=False))
    session.commit()
    return ids
