"""Backlog and health: deliveries by status, the oldest undelivered one, recent rate, failures by reason and provider.

Undelivered means a delivery pending or sending, or a transition not fanned out yet (held
transitions among them, with why), so ``--max-age`` fails on either. A delivery held for a
time (``due_at``) is not undelivered before it is due: it is counted ``scheduled``, and its
age counts from its due time.
Timers: the timeouts due later, due now and not fired yet, and overdue. Digests: those open, due and
overdue, and the events they hold (deliveries ``digest``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow
from workflow.clock import aware

from .delivery_log import Delivery, Status
from .digest_log import DigestRow, DigestStatus
from .runtime import current
from .timers import Timer, TimerStatus

__all__ = ["sent_per_minute", "status"]


_ALL = (Status.SCHEDULED, Status.PENDING, Status.SENDING, Status.SENT, Status.FAILED, Status.DEAD, Status.SKIPPED)
_FINAL = (Status.SENT, Status.SKIPPED)  # the bulk of a delivery log that has run for months


def status(session: Session, *, grace_seconds: float = 60.0, estimate_final: bool = False) -> dict[str, Any]:
    """The figures ``tidings status`` prints (and checks against thresholds); ``grace_seconds``: the sweep's.

    With ``estimate_final`` (the console's overview) on PostgreSQL, the ``sent`` and ``skipped``
    counts are the planner's estimates (``pg_class``, ``pg_stats``), listed under ``estimated``:
    counting a million rows exactly takes most of a second; the other statuses are counted exactly.
    """
    now = utcnow()
    by_status, estimated = _by_status(session, estimate_final)
    undelivered = Delivery.status.in_([Status.PENDING, Status.SENDING])
    oldest = session.scalar(select(func.min(Delivery.created_at)).where(undelivered, Delivery.due_at.is_(None)))
    oldest_due = session.scalar(select(func.min(Delivery.due_at)).where(
        or_(undelivered, Delivery.status == Status.SCHEDULED), Delivery.due_at.is_not(None), Delivery.due_at <= now))
    oldest = min((t for t in (oldest, oldest_due) if t is not None), key=aware, default=None)
    unfanned, unfanned_since = session.execute(select(func.count(), func.min(TransitionRecord.created_at))
                                               .where(TransitionRecord.fanned_out_at.is_(None))).one()
    oldest = min((t for t in (oldest, unfanned_since) if t is not None), key=aware, default=None)
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
        "deliveries": {s: int(by_status.get(s, 0)) for s in _ALL},
        **({"estimated": estimated} if estimated else {}),
        "transitions_not_fanned_out": int(unfanned),
        "transitions_held": int(held_count),
        "held_by_reason": [{"reason": reason, "count": int(count)} for reason, count in held],
        "oldest_undelivered_seconds": round(_age(now, oldest), 1) if oldest else 0.0,
        "sent_per_minute_last_5": round(sent_5m / 5, 1),
        "failures_by_reason": [{"reason": reason or "", "count": int(count)} for reason, count in failures],
        "by_provider": _by_provider(session),
        "timed": _timed(session, now, grace_seconds),
        "timers": _timers(session, now),
        "digests": _digests(session, now, grace_seconds),
    }


def _by_status(session: Session, estimate_final: bool) -> tuple[dict[str, int], list[str]]:
    """Deliveries by status, and which of the counts are estimates."""
    if not estimate_final or session.get_bind().dialect.name != "postgresql":
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()), []
    exact = dict(session.execute(select(Delivery.status, func.count()).where(
        Delivery.status.in_([s for s in _ALL if s not in _FINAL])).group_by(Delivery.status)).all())
    rows = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('tidings_deliveries')")).scalar()
    stats = session.execute(text(
        "SELECT most_common_vals::text, most_common_freqs FROM pg_stats WHERE schemaname = current_schema() "
        "AND tablename = 'tidings_deliveries' AND attname = 'status'")).first()
    if not rows or rows < 0 or stats is None:  # never analysed: count them
        return {**exact, **dict(session.execute(select(Delivery.status, func.count()).where(
            Delivery.status.in_(_FINAL)).group_by(Delivery.status)).all())}, []
    frequencies = dict(zip(str(stats[0]).strip("{}").split(","), stats[1]))
    return {**exact, **{s: int(rows * frequencies.get(s, 0.0)) for s in _FINAL}}, list(_FINAL)


def sent_per_minute(session: Session, *, minutes: int = 180, now: dt.datetime | None = None) -> list[tuple[dt.datetime, int]]:
    """Deliveries sent in each of the last ``minutes`` minutes, oldest first, zeros included (one GROUP BY on ``sent_at``).

    The minute is cut by the database (``date_trunc`` on PostgreSQL, ``strftime`` elsewhere) and
    the rows found by the index on ``sent_at``.
    """
    end = (now or utcnow()).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    if session.get_bind().dialect.name == "postgresql":
        minute: Any = func.date_trunc("minute", Delivery.sent_at)
    else:
        minute = func.strftime("%Y-%m-%d %H:%M", Delivery.sent_at)
    counts: dict[str, int] = {}
    for at, count in session.execute(select(minute, func.count()).where(Delivery.sent_at >= start,
                                                                         Delivery.sent_at < end).group_by(minute)):
        stamp = at if isinstance(at, str) else aware(at).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        counts[stamp] = int(count)
    series = [start + dt.timedelta(minutes=i) for i in range(minutes)]
    return [(at, counts.get(at.strftime("%Y-%m-%d %H:%M"), 0)) for at in series]


def _digests(session: Session, now: dt.datetime, grace_seconds: float) -> dict[str, int]:
    """Digests not sent yet: open (closing later), due now, due longer than the grace; and the events they hold."""
    counts = _due_counts(session, DigestRow.due_at, (DigestRow.status.in_([DigestStatus.OPEN, DigestStatus.SENDING]),),
                         now, now - dt.timedelta(seconds=grace_seconds))
    held = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == Status.DIGEST)) or 0
    return {"open": counts["scheduled"], "due": counts["due"], "overdue": counts["overdue"], "events": int(held)}


def _by_provider(session: Session) -> list[dict[str, Any]]:
    """For each failover provider, its deliveries by the status they ended in there (retrying: pending again)."""
    found: dict[str, dict[str, Any]] = {}
    for provider, status_, count in session.execute(
            select(Delivery.provider, Delivery.status, func.count()).where(Delivery.provider.is_not(None))
            .group_by(Delivery.provider, Delivery.status).order_by(Delivery.provider)):
        row = found.setdefault(str(provider), {"provider": provider, Status.SENT: 0, Status.FAILED: 0, Status.DEAD: 0,
                                          "retrying": 0})
        key = "retrying" if status_ in (Status.PENDING, Status.SENDING) else status_
        row[key] = row.get(key, 0) + int(count)
    return list(found.values())


def _timed(session: Session, now: dt.datetime, grace_seconds: float) -> dict[str, int]:
    """Deliveries held for a time: due later, due now and not taken yet, due longer than the grace."""
    return _due_counts(session, Delivery.due_at, (Delivery.status == Status.SCHEDULED, Delivery.due_at.is_not(None)),
                       now, now - dt.timedelta(seconds=grace_seconds))


def _timers(session: Session, now: dt.datetime) -> dict[str, int]:
    """Timeouts pending: due later, due now and not fired yet, due for over max(60 s, 3 x due_interval)."""
    late = now - dt.timedelta(seconds=max(60.0, 3 * current().settings.due_interval))
    return _due_counts(session, Timer.due_at, (Timer.status == TimerStatus.PENDING,), now, late)


def _due_counts(session: Session, due_at: Any, waiting: tuple[Any, ...], now: dt.datetime,
                late: dt.datetime) -> dict[str, int]:
    """Of the rows ``waiting``: how many are due later, due now, and due since before ``late``."""
    scheduled, due, overdue = session.execute(select(
        func.count().filter(due_at > now), func.count().filter(due_at <= now),
        func.count().filter(due_at < late)).select_from(due_at.table).where(*waiting)).one()
    return {"scheduled": int(scheduled), "due": int(due), "overdue": int(overdue)}


def _age(now: dt.datetime, then: dt.datetime) -> float:
    return (now - aware(then)).total_seconds()
