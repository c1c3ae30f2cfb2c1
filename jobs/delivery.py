"""Delivery: claim a delivery row, render its message, hand it to the channel, record the outcome."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable

import dramatiq

from notifiers import (
    Channel,
    Event,
    NotifierError,
    PermanentChannelError,
    Recipient,
    TransientChannelError,
    registry,
)
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError, load_subject, utcnow

from . import metrics
from .delivery_log import Delivery, Status
from .errors import ConfigurationError, DeliveryNotFound

__all__ = ["deliver", "reset_for_resend"]

_log = logging.getLogger(__name__)


def deliver(session: Session, delivery_id: int, *, channel_for: Callable[[str], Channel],
            lease_seconds: float, max_attempts: int, min_backoff_ms: int = 1_000,
            max_backoff_ms: int = 600_000) -> str:
    """Send one delivery at most once per claim; return its status afterwards.

    A delivery is claimed (pending -> sending, or sending whose lease ran out) in its own commit,
    so two workers never send it at once and a sent one is never sent again. Errors end as
    recorded statuses: a broken template or message is ``failed``, a permanent channel error is
    ``failed`` with the server's reply, a transient one (or any other exception, such as a bug
    in a notifier) goes back to ``pending`` (or ``dead`` once ``max_attempts`` are used) and is
    re-raised so that Dramatiq retries with backoff; its
    lease then covers the longest backoff Dramatiq may choose, so the sweeper leaves it alone.

    Raises:
        DeliveryNotFound: no delivery has this id.
        TransientChannelError: the channel may succeed later; retry.
    """
    delivery = _claim(session, delivery_id, lease_seconds)
    if delivery is None:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        if status is None:
            raise DeliveryNotFound(f"Delivery {delivery_id} does not exist.")
        _log.info("Delivery %s is %s; not sending it again.", delivery_id, status)
        return status
    try:
        message, recipient, event = _compose(session, delivery)
        if message is None:
            return _finish(session, delivery, Status.SKIPPED, "The notifier returned None for this recipient.")
        channel_for(delivery.channel).send(message, recipient, key=delivery.key, event=event)
    except PermanentChannelError as error:
        return _finish(session, delivery, Status.FAILED, str(error))
    except TransientChannelError as error:
        return _retry_later(session, delivery, error, max_attempts, min_backoff_ms, max_backoff_ms, lease_seconds)
    except (NotifierError, WorkflowError, ConfigurationError) as error:
        return _finish(session, delivery, Status.FAILED, f"{type(error).__name__}: {error}")
    except Exception as error:  # anything unforeseen, e.g. a bug in a notifier or a database blip
        return _retry_later(session, delivery, error, max_attempts, min_backoff_ms, max_backoff_ms, lease_seconds)
    metrics.delivery_sent(delivery.channel, event.created_at)
    return _finish(session, delivery, Status.SENT, None)


def _retry_later(session: Session, delivery: Delivery, error: Exception, max_attempts: int, min_backoff_ms: int,
                 max_backoff_ms: int, lease_seconds: float) -> str:
    """Record a failure worth retrying and re-raise it, or mark the delivery dead when attempts are used up."""
    reason = str(error) if isinstance(error, TransientChannelError) else f"{type(error).__name__}: {error}"
    if delivery.attempts >= max_attempts:
        return _finish(session, delivery, Status.DEAD, f"Gave up after {delivery.attempts} attempts: {reason}")
    backoff_ms = min(min_backoff_ms * 2 ** (delivery.attempts + 1), max_backoff_ms)
    asked = getattr(error, "retry_after", None)
    if asked is not None:  # the other side said when: wait that long (within max_backoff_ms), not our backoff
        backoff_ms = min(max(int(asked * 1000), 0), max_backoff_ms)
    _finish(session, delivery, Status.PENDING, reason,
            lease_until=utcnow() + dt.timedelta(milliseconds=backoff_ms, seconds=lease_seconds))
    if asked is not None:
        raise dramatiq.Retry(str(error), delay=backoff_ms) from error
    raise error


def _claim(session: Session, delivery_id: int, lease_seconds: float) -> Delivery | None:
    """pending -> sending (or sending past its lease -> sending), committed; the claimed row, or None."""
    now = utcnow()
    claimable = or_(Delivery.status == Status.PENDING,
                    and_(Delivery.status == Status.SENDING, Delivery.lease_until < now))
    claimed = session.scalars(
        update(Delivery)
        .where(Delivery.id == delivery_id, claimable)
        .values(status=Status.SENDING, attempts=Delivery.attempts + 1, updated_at=now,
                lease_until=now + dt.timedelta(seconds=lease_seconds))
        .returning(Delivery)
        .execution_options(populate_existing=True)
    ).one_or_none()
    session.commit()
    return claimed


def _compose(session: Session, delivery: Delivery) -> tuple[object | None, Recipient, Event]:
    record = session.get(TransitionRecord, delivery.transition_id)
    if record is None:  # pragma: no cover - the foreign key forbids it
        raise WorkflowError(f"Transition {delivery.transition_id} of delivery {delivery.id} is gone.")
    registration = registry.named(delivery.notifier, record.model, record.trigger)
    subject = load_subject(session, record)
    if subject is None:
        raise WorkflowError(f"{record.model} {record.key} no longer exists.")
    recipient = Recipient(delivery.address, delivery.name, delivery.party, ref=delivery.recipient_ref,
                          locale=delivery.locale)
    event = Event.of(record, subject)
    return registration.notifier().compose(registration.method, event, recipient), recipient, event


def _finish(session: Session, delivery: Delivery, status: str, error: str | None,
            lease_until: dt.datetime | None = None) -> str:
    now = utcnow()
    ident, channel, address = delivery.id, delivery.channel, delivery.address
    transition_id = delivery.transition_id
    # Forget what rendering loaded (a notifier must not change rows by accident); a transaction
    # that failed in the database must be rolled back before the outcome can be written.
    if isinstance(sys.exc_info()[1], SQLAlchemyError):
        session.rollback()
    session.expunge_all()
    session.execute(
        update(Delivery)
        .where(Delivery.id == ident)
        .values(status=status, last_error=error, updated_at=now, lease_until=lease_until,
                sent_at=now if status == Status.SENT else None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    log = _log.info if status in (Status.SENT, Status.SKIPPED) else _log.warning
    log("Delivery %s (%s to %s): %s%s", ident, channel, address, status,
        f" - {error}" if error else "",
        extra={"delivery_id": ident, "transition_id": transition_id, "channel": channel, "status": status})
    metrics.delivery_finished(channel, status)
    return status


def reset_for_resend(session: Session, *, ids: list[int] | None = None, statuses: tuple[str, ...] = ()) -> list[int]:
    """Put failed or dead deliveries back to ``pending`` with their attempts reset; return their ids.

    Only ``failed`` and ``dead`` deliveries are reset (a sent one is never sent again this way).

    Raises:
        DeliveryNotFound: an id names no failed or dead delivery.
    """
    allowed = tuple(s for s in (statuses or (Status.FAILED, Status.DEAD)) if s in (Status.FAILED, Status.DEAD))
    query = select(Delivery.id).where(Delivery.status.in_(allowed)).order_by(Delivery.id)
    if ids is not None:
        query = query.where(Delivery.id.in_(ids))
    found = list(session.scalars(query.with_for_update(skip_locked=True)))
    missing = sorted(set(ids or ()) - set(found))
    if missing:
        session.rollback()
        raise DeliveryNotFound(f"No failed or dead delivery has id {', '.join(map(str, missing))}.")
    if found:
        session.execute(update(Delivery).where(Delivery.id.in_(found))
                        .values(status=Status.PENDING, attempts=0, lease_until=None, updated_at=utcnow())
                        .execution_options(synchronize_session=False))
    session.commit()
    return found
