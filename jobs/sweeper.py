"""The sweeper: re-enqueue what a broker outage or a killed worker left behind.

A transition committed while the broker was down is never fanned out; a delivery whose message
was lost stays ``pending``; one whose worker was killed mid-send stays ``sending``. The sweeper
finds them by age and lease and enqueues them again. The actors are idempotent, so a message
that was merely slow costs a no-op. Each worker process sweeps periodically (the ``sweep``
task of :mod:`jobs.schedule`). Several sweepers may run at once: rows are taken with
``FOR UPDATE SKIP LOCKED`` where the database has it, and re-stamped, so each is taken once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from . import metrics
from .delivery_log import Delivery, Status

__all__ = ["Sweep", "sweep"]

_log = logging.getLogger(__name__)


class Sweep:
    """What one sweep found: transitions to fan out again and deliveries to send again."""

    def __init__(self, transitions: list[int], deliveries: list[int]) -> None:
        self.transitions, self.deliveries = transitions, deliveries

    def __repr__(self) -> str:
        return f"Sweep(transitions={self.transitions}, deliveries={self.deliveries})"


def sweep(session: Session, *, grace_seconds: float, limit: int = 1000) -> Sweep:
    """Take the transitions and deliveries that are overdue, and commit their new stamps.

    Overdue means: a transition not fanned out ``grace_seconds`` after it was committed; a
    ``pending`` delivery untouched for ``grace_seconds`` and not waiting for a retry; a
    ``sending`` delivery whose lease has run out. The caller enqueues what is returned. A
    delivery held for a time (``scheduled``) is not lost before it is due: the ``due`` task sends
    it then; the sweeper takes it only once it has been due for ``grace_seconds`` too.
    """
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: take its write lock first (an UPDATE of no row does), so that
        # concurrent sweeps run one after the other and the second sees the first one's stamps.
        session.execute(update(Delivery).where(false()).values(attempts=Delivery.attempts))
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=grace_seconds)
    transitions = list(session.scalars(
        _locked(select(TransitionRecord.id)
                .where(TransitionRecord.fanned_out_at.is_(None), TransitionRecord.created_at < cutoff,
                       or_(TransitionRecord.retried_at.is_(None), TransitionRecord.retried_at < cutoff))
                .order_by(TransitionRecord.fanned_out_at, TransitionRecord.id)  # as the index holds them: no sort
                .limit(limit))))
    overdue = or_(
        and_(Delivery.status == Status.PENDING, Delivery.updated_at < cutoff,
             or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)),
        and_(Delivery.status == Status.SCHEDULED, Delivery.due_at.is_not(None), Delivery.due_at < cutoff),
        and_(Delivery.status == Status.SENDING, Delivery.lease_until < now),
    )
    deliveries = list(session.scalars(
        _locked(select(Delivery.id).where(overdue).order_by(Delivery.id).limit(limit))))
    # Re-stamp what was taken, so that the next sweep waits a full grace period again.
    if transitions:
        session.execute(update(TransitionRecord).where(TransitionRecord.id.in_(transitions))
                        .values(retried_at=now).execution_options(synchronize_session=False))
    if deliveries:  # a claim whose lease ran out goes back to pending: free to claim again, at once
        session.execute(update(Delivery).where(Delivery.id.in_(deliveries))
                        .values(status=Status.PENDING, lease_until=None, updated_at=now)
                        .execution_options(synchronize_session=False))
    session.commit()
    if transitions or deliveries:
        _log.warning("Sweeper re-enqueues %d transitions and %d deliveries.", len(transitions), len(deliveries))
        metrics.swept(len(transitions), len(deliveries))
    return Sweep(transitions, deliveries)


def _locked(statement: Any) -> Any:
    return statement.with_for_update(skip_locked=True)
