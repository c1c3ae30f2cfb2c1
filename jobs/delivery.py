"""Send one claim: compose its message, hand it to the channel, decide what a failure means, record the outcome.

The row's life around it (claiming, leases, recording) is :mod:`jobs.claims`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from notifiers import (
    Channel,
    EndpointDisabled,
    Event,
    Notifier,
    NotifierError,
    PermanentChannelError,
    Recipient,
    RegistrationError,
    TransientChannelError,
    provider_of,
    registry,
)
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError, load_subject, read_record, utcnow

from . import claims, metrics, runtime, tracing
from .claims import Claim, SentLog
from .delivery_log import Delivery, Status
from .errors import ConfigurationError, DeliveryNotFound
from .retries import RetryPolicy

__all__ = ["RetryLater", "deliver", "load", "send"]

_log = logging.getLogger(__name__)
# Errors that the same input raises every time: ours, and encoding (UnicodeError is a ValueError),
# validation, types, data too long for its column. Retrying them only delays the `failed` they end in.
_DETERMINISTIC = (NotifierError, WorkflowError, ConfigurationError, ValueError, TypeError, DataError)

#: Set by the test kit: a message that cannot be built (a template, what a notifier returned) is
#: recorded ``failed`` and its error raised again, so that the test fails where production would.
raise_message_errors = False


class RetryLater(Exception):
    """A transient failure was recorded: the delivery is ``pending`` again, to be sent after ``delay_ms``.

    Attributes:
        delivery_id: the delivery.
        delay_ms: the policy's backoff (what the channel asked for, within the policy, if it did).
        error: the failure.
    """

    def __init__(self, delivery_id: int, delay_ms: int, error: Exception) -> None:
        super().__init__(f"Delivery {delivery_id}: {error}")
        self.delivery_id, self.delay_ms, self.error = delivery_id, delay_ms, error


def deliver(session: Session, delivery_id: int, *, channel_for: Callable[[str], Channel],
            lease_seconds: float, retry: RetryPolicy) -> str:
    """Send one delivery at most once per claim; return its status afterwards.

    A delivery is claimed (pending -> sending, or sending whose lease ran out) in its own commit,
    so two workers never send it at once and a sent one is never sent again. Errors end as
    recorded statuses: a broken template or message is ``failed``, a permanent channel error is
    ``failed`` with the server's reply, and so is a deterministic error (encoding, validation,
    type, data too long); a transient one (or any other exception, such as a service down) goes
    back to ``pending`` (or ``dead`` once ``retry`` gives up), logged as one warning, and
    ``dramatiq.Retry`` is raised with ``retry``'s backoff as its delay: the wait is the policy's,
    not the Retries middleware's own, and Dramatiq logs no traceback. The lease covers that wait,
    so the sweeper leaves the delivery alone meanwhile.

    Raises:
        DeliveryNotFound: no delivery has this id.
        dramatiq.Retry: a transient failure was recorded; the message is tried again after ``delay``.
    """
    held = claims.claim(session, delivery_id, lease_seconds)
    if held is None:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        if status is None:
            raise DeliveryNotFound(f"Delivery {delivery_id} does not exist.")
        _log.info("Delivery %s is %s; not sending it again.", delivery_id, status)
        return status
    try:
        return send(session, held, channel_for=channel_for, lease_seconds=lease_seconds, retry=retry)
    except RetryLater as later:
        raise dramatiq.Retry(str(later.error), delay=later.delay_ms) from later.error


def send(session: Session, held: Claim, *, channel_for: Callable[[str], Channel], lease_seconds: float,
         retry: RetryPolicy,
         loaded: tuple[TransitionRecord, Any] | None = None, sent: SentLog | None = None) -> str:
    """Render and send a claimed delivery, record the outcome; return the status recorded.

    ``loaded`` is its transition and that transition's row when the caller has them (the
    fan-out that just planned the delivery), so they are not read again. With ``sent``, a
    successful send is recorded by that log, with others, instead of at once.

    Raises:
        RetryLater: a transient failure (or an unforeseen error), recorded; send it again later.
    """
    channel: Channel | None = None
    try:
        channel = channel_for(held.channel)
        message, recipient, event, record = _compose(session, held, loaded, channel.address_kind)
        if message is None:
            return claims.finish(session, held, Status.SKIPPED, "The notifier returned None for this recipient.")
        if not isinstance(message, channel.accepts):  # a notifier whose return annotation did not say
            raise RegistrationError(f"{held.notifier} returned {type(message).__name__}; channel {held.channel!r} "
                                    f"accepts {' or '.join(k.__name__ for k in channel.accepts)}.")
        with tracing.span("deliver", runtime.current().settings.queue, [record.traceparent],
                          delivery_id=held.id, transition_id=held.transition_id, channel=held.channel):
            channel.send(message, recipient, key=held.key, event=event)
    except EndpointDisabled as error:  # a webhook endpoint that answered 410 Gone earlier
        return claims.finish(session, held, Status.SKIPPED, str(error))
    except PermanentChannelError as error:
        return claims.finish(session, held, Status.FAILED, str(error), provider=provider_of(channel))
    except TransientChannelError as error:
        return _retry_later(session, held, error, retry, lease_seconds, provider_of(channel))
    except _DETERMINISTIC as error:
        recorded = claims.finish(session, held, Status.FAILED, f"{type(error).__name__}: {error}")
        if raise_message_errors and isinstance(error, NotifierError):
            raise
        return recorded
    except Exception as error:  # anything unforeseen, e.g. a service down or a database blip
        return _retry_later(session, held, error, retry, lease_seconds)
    metrics.delivery_sent(held.channel, event.created_at)
    provider = provider_of(channel)
    if sent is not None and provider is None:  # the batched record writes no provider
        sent.add(held)
        return Status.SENT
    return claims.finish(session, held, Status.SENT, None, provider=provider)


def _retry_later(session: Session, held: Claim, error: Exception, retry: RetryPolicy, lease_seconds: float,
                 provider: str | None = None) -> str:
    """Record a failure worth retrying and raise RetryLater, or mark the delivery dead when attempts are used up."""
    reason = str(error) if isinstance(error, TransientChannelError) else f"{type(error).__name__}: {error}"
    if retry.gives_up(held.attempts):
        return claims.finish(session, held, Status.DEAD, f"Gave up after {held.attempts} attempts: {reason}",
                             provider=provider)
    asked = getattr(error, "retry_after", None)  # the other side said when: wait that long, within the policy
    backoff_ms = retry.backoff_ms(held.attempts, asked)
    recorded = claims.finish(session, held, Status.PENDING, reason, provider=provider,
                       lease_until=utcnow() + dt.timedelta(milliseconds=backoff_ms, seconds=lease_seconds))
    if recorded != Status.PENDING:  # the claim was lost meanwhile: whoever holds it now decides
        return recorded
    _log.warning("Delivery %s on channel %r: attempt %s of %s failed (%s); next try in %s s.", held.id, held.channel,
                 held.attempts, retry.max_attempts, reason, f"{backoff_ms / 1000:g}",
                 extra={"delivery_id": held.id, "transition_id": held.transition_id})
    raise RetryLater(held.id, backoff_ms, error)


def _compose(session: Session, held: Claim, loaded: tuple[TransitionRecord, Any] | None,
             address_kind: str) -> tuple[object | None, Recipient, Event, TransitionRecord]:
    record, subject = loaded if loaded is not None else load(session, held.transition_id)
    if subject is None:
        registry.named(held.notifier, record.model, record.trigger)  # a notifier missing says so first
        raise WorkflowError(f"{record.model} {record.key} no longer exists.")
    recipient = held.recipient(address_kind)
    event = Event.of(record, subject)
    return Notifier.compose_for(held.notifier, event, recipient, channel=held.channel), recipient, event, record


def load(session: Session, transition_id: int) -> tuple[TransitionRecord, Any]:
    """A transition and its row (``None`` if the row is gone), as rendering needs them.

    Raises:
        WorkflowError: the transition is gone (the foreign key forbids it) or its model is not imported.
    """
    record = read_record(session.connection(), transition_id)
    if record is None:  # pragma: no cover - the foreign key forbids it
        raise WorkflowError(f"Transition {transition_id} is gone.")
    return record, load_subject(session, record)
