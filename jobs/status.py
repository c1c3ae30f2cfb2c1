"""Backlog and health: deliveries by status, the oldest undelivered one, recent rate, failures by reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from .delivery_log import Delivery, Status

__all__ = ["status"]


def status(session: Session) -> dict[str, Any]:
    """The figures ``tidings status`` prints (and checks against thresholds)."""
    now = utcnow()
    by_status = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    oldest = session.scalar(select(func.min(Delivery.created_at))
                            .where(Delivery.status.in_([Status.PENDING, Status.SENDING])))
    unfanned = session.scalar(select(func.count()).select_from(TransitionRecord)
                              .where(TransitionRecord.fanned_out_at.is_(None))) or 0
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
        "oldest_undelivered_seconds": round(_age(now, oldest), 1) if oldest else 0.0,
        "sent_per_minute_last_5": round(sent_5m / 5, 1),
        "failures_by_reason": [{"reason": reason or "", "count": int(count)} for reason, count in failures],
    }


def _age(now: dt.datetime, then: dt.datetime) -> float:
    if then.tzinfo is None:  # SQLite returns naive UTC
        then = then.replace(tzinfo=dt.timezone.utc)
    return (now - then).total_seconds()


def render(figures: dict[str, Any]) -> str:
    """The figures as a few lines of text."""
    counts = ", ".join(f"{name} {count}" for name, count in figures["deliveries"].items())
    lines = [f"deliveries: {counts}",
             f"transitions not fanned out: {figures['transitions_not_fanned_out']}",
             f"oldest undelivered: {figures['oldest_undelivered_seconds']} s",
             f"sent per minute (last 5 min): {figures['sent_per_minute_last_5']}"]
    for failure in figures["failures_by_reason"]:
        lines.append(f"  {failure['count']} x {failure['reason']}")
    return "\n".join(lines)
