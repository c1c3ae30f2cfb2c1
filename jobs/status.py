"""Backlog and health: deliveries by status, the oldest undelivered one, recent rate, failures by reason.

Undelivered means a delivery pending or sending, or a transition not fanned out yet (held
transitions among them, with why), so ``--max-age`` fails on either. Timers: the timeouts
scheduled, due and overdue.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from .delivery_log import Delivery, Status
from .runtime import current
from .timers import Timer, TimerStatus

__all__ = ["status"]


def status(session: Session) -> dict[str, Any]:
    """The figures ``tidings status`` prints (and checks against thresholds)."""
    now = utcnow()
    by_status = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    oldest = session.scalar(select(func.min(Delivery.created_at))
                            .where(Delivery.status.in_([Status.PENDING, Status.SENDING])))
    unfanned, unfanned_since = session.execute(select(func.count(), func.min(TransitionRecord.created_at))
                                               .where(TransitionRecord.fanned_out_at.is_(None))).one()
    oldest = min((t for t in (oldest, unfanned_since) if t is not None), key=_aware, default=None)
    is_held = (TransitionRecord.fanned_out_at.is_(None), TransitionRecord.held_reason.is_not(None))
    held_count = session.scalar(select(func.count()).select_from(TransitionRecord).where(*is_held)) or 0
    held = session.execute(select(TransitionRecord.held_reason, func.count()).where(*is_held)
                           .group_by(TransitionRecord.held_reason).order_by(func.count().desc()).limit(5)).all()
    sent_5m = session.scalar(select(func.count()).select_from(Delivery)
                             .where(Delivery.status == Status.SENT,
                                    Delivery.sent_at >= now - dt.timedelta(minutes=5))) or 0
    failures = session.execute(select(Delivery.last_error, func.count())
                               .where(Delivery.status.in_([Status.FAILED, Status.DEAD]))
                               .group_by(Delivery.last_error).order_by(func.count().desc()).limit(5)).all()
    return {
        "deliveries": {s: int(by_status.get(s, 0)) for s in (Status.PENDING, Status.SENDING, Status.SENT,
                                                             Status.FAILED, Status.DEAD, Status.SKIPPED)},
        "transitions_not_fanned_out": int(unfanned),
        "transitions_held": int(held_count),
        "held_by_reason": [{"reason": reason, "count": int(count)} for reason, count in held],
        "oldest_undelivered_seconds": round(_age(now, oldest), 1) if oldest else 0.0,
        "sent_per_minute_last_5": round(sent_5m / 5, 1),
        "failures_by_reason": [{"reason": reason or "", "count": int(count)} for reason, count in failures],
        "timers": _timers(session, now),
    }


def _timers(session: Session, now: dt.datetime) -> dict[str, int]:
    """Timeouts pending: all of them, those due, and those overdue (due for over max(60 s, 3 x due_interval))."""
    late = now - dt.timedelta(seconds=max(60.0, 3 * current().settings.due_interval))
    pending = (Timer.status == TimerStatus.PENDING,)
    scheduled, due, overdue = session.execute(select(
        func.count(), func.count().filter(Timer.due_at <= now), func.count().filter(Timer.due_at <= late))
        .select_from(Timer).where(*pending)).one()
    return {"scheduled": int(scheduled), "due": int(due), "overdue": int(overdue)}


def _aware(then: dt.datetime) -> dt.datetime:
    return then.replace(tzinfo=dt.timezone.utc) if then.tzinfo is None else then  # SQLite returns naive UTC


def _age(now: dt.datetime, then: dt.datetime) -> float:
    return (now - _aware(then)).total_seconds()
