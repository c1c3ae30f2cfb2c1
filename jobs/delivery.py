"""Delivery: claim a delivery row, render its message, hand it to the channel, record the outcome."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import dramatiq

from notifiers import (
    Channel,
    Event,
    Notifier,
    NotifierError,
    PermanentChannelError,
    Recipient,
    RegistrationError,
    TransientChannelError,
    registry,
)
from sqlalchemy import Engine, Table, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError, load_subject, read_record, utcnow

from . import metrics
from .delivery_log import Delivery, Status
from .errors import ConfigurationError, DeliveryNotFound

__all__ = ["Claim", "RetryLater", "SentLog", "claim", "claim_many", "deliver", "load", "renew", "reset_for_resend", "send",
           "single_statement"]

_log = logging.getLogger(__name__)
# Errors that the same input raises every time: ours, and encoding (UnicodeError is a ValueError),
# validation, types, data too long for its column. Retrying them only delays the `failed` they end in.
_DETERMINISTIC = (NotifierError, WorkflowError, ConfigurationError, ValueError, TypeError, DataError)
_table = cast(Table, Delivery.__table__)
_COLUMNS = ("id", "key", "transition_id", "notifier", "party", "channel", "address", "name", "recipient_ref",
            "locale", "attempts")

# Core statements, built once: claiming and recording run once per delivery, and an ORM
# statement costs several times their Python work (see docs/PERFORMANCE.md).
_CLAIMING = (
    update(_table)
    .where(or_(_table.c.status == Status.PENDING,
               and_(_table.c.status == Status.SENDING, _table.c.lease_until < bindparam("claim_now"))))
    .values(status=Status.SENDING, attempts=_table.c.attempts + 1, updated_at=bindparam("claim_now"),
            lease_until=bindparam("claim_lease"))
    .returning(*(_table.c[name] for name in _COLUMNS))
)
# An outcome is written only while the claim is still this worker's: the same attempt, and not
# finished since. Once its lease ran out, another worker may have claimed the delivery again
# (attempts + 1); a late outcome must not overwrite what that one recorded.
_HELD = and_(_table.c.id == bindparam("record_id"), _table.c.attempts == bindparam("record_attempts"),
             _table.c.status.in_([Status.SENDING, Status.PENDING]))
_RENEW = (
    update(_table)
    .where(tuple_(_table.c.id, _table.c.attempts).in_(bindparam("renew_ids", expanding=True)),
           _table.c.status == Status.SENDING)
    .values(lease_until=bindparam("renew_lease"))
    .returning(_table.c.id)
)
_RECORD = (
    update(_table)
    .where(_HELD)
    .values(status=bindparam("record_status"), last_error=bindparam("record_error"),
            updated_at=bindparam("record_now"), lease_until=bindparam("record_lease"),
            sent_at=bindparam("record_sent_at"))
)

_RECORD_SENT = (
    update(_table)
    .where(tuple_(_table.c.id, _table.c.attempts).in_(bindparam("sent_ids", expanding=True)),
           _table.c.status.in_([Status.SENDING, Status.PENDING]))
    .values(status=Status.SENT, last_error=None, updated_at=bindparam("sent_now"), lease_until=None,
            sent_at=bindparam("sent_now"))
    .returning(_table.c.id)
)
_CLAIM = _CLAIMING.where(_table.c.id == bindparam("claim_id"))
_CLAIM_MANY = _CLAIMING.where(_table.c.id.in_(bindparam("claim_ids", expanding=True)))


#: Set by the test kit: a message that cannot be built (a template, what a notifier returned) is
#: recorded ``failed`` and its error raised again, so that the test fails where production would.
raise_message_errors = False


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds (``sending``, under a lease): what sending it needs."""

    id: int
    key: str
    transition_id: int
    notifier: str
    party: str
    channel: str
    address: str
    name: str | None
    recipient_ref: str
    locale: str | None
    attempts: int

    def recipient(self, address_kind: str = "email") -> Recipient:
        """Who it is sent to: the row's address is the one of its channel's kind."""
        return Recipient(name=self.name, party=self.party, ref=self.recipient_ref, locale=self.locale,
                         addresses={address_kind: self.address})


class RetryLater(Exception):
    """A transient failure was recorded: the delivery is ``pending`` again, to be sent after ``delay_ms``.

    Attributes:
        delivery_id: the delivery.
        delay_ms: the backoff (or what the channel asked for, when ``asked``).
        error: the failure.
    """

    def __init__(self, delivery_id: int, delay_ms: int, error: Exception, *, asked: bool) -> None:
        super().__init__(f"Delivery {delivery_id}: {error}")
        self.delivery_id, self.delay_ms, self.error, self.asked = delivery_id, delay_ms, error, asked


def deliver(session: Session, delivery_id: int, *, channel_for: Callable[[str], Channel],
            lease_seconds: float, max_attempts: int, min_backoff_ms: int = 1_000,
            max_backoff_ms: int = 600_000) -> str:
    """Send one delivery at most once per claim; return its status afterwards.

    A delivery is claimed (pending -> sending, or sending whose lease ran out) in its own commit,
    so two workers never send it at once and a sent one is never sent again. Errors end as
    recorded statuses: a broken template or message is ``failed``, a permanent channel error is
    ``failed`` with the server's reply, and so is a deterministic error (encoding, validation,
    type, data too long); a transient one (or any other exception, such as
    a service down) goes back to ``pending`` (or ``dead`` once ``max_attempts`` are used) and is
    re-raised so that Dramatiq retries with backoff; its
    lease then covers the longest backoff Dramatiq may choose, so the sweeper leaves it alone.

    Raises:
        DeliveryNotFound: no delivery has this id.
        TransientChannelError: the channel may succeed later; retry.
    """
    held = claim(session, delivery_id, lease_seconds)
    if held is None:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
        if status is None:
            raise DeliveryNotFound(f"Delivery {delivery_id} does not exist.")
        _log.info("Delivery %s is %s; not sending it again.", delivery_id, status)
        return status
    try:
        return send(session, held, channel_for=channel_for, lease_seconds=lease_seconds, max_attempts=max_attempts,
                    min_backoff_ms=min_backoff_ms, max_backoff_ms=max_backoff_ms)
    except RetryLater as later:
        if later.asked:
            raise dramatiq.Retry(str(later.error), delay=later.delay_ms) from later.error
        raise later.error from None


def single_statement(session: Session) -> None:
    """Let the session's next statement be a transaction of its own (autocommit), on PostgreSQL.

    A claim and an outcome are one UPDATE each, as atomic alone; psycopg would wrap each in a
    BEGIN and a COMMIT round trip of their own (3 round trips instead of 1, each costing context
    switches on a worker's few CPUs). Only through an engine: a test's connection inside an
    outer transaction must stay in it.
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def claim(session: Session, delivery_id: int, lease_seconds: float) -> Claim | None:
    """pending -> sending (or sending past its lease -> sending), committed; the claim, or None."""
    now = utcnow()
    single_statement(session)
    row = session.connection().execute(
        _CLAIM, {"claim_id": delivery_id, "claim_now": now, "claim_lease": now + dt.timedelta(seconds=lease_seconds)}
    ).one_or_none()
    session.commit()
    return None if row is None else Claim(*row)


def claim_many(session: Session, delivery_ids: list[int], lease_seconds: float) -> list[Claim]:
    """:func:`claim` for several deliveries in one statement; the claims taken, in the order asked."""
    now = utcnow()
    single_statement(session)
    rows = session.connection().execute(_CLAIM_MANY, {
        "claim_ids": delivery_ids, "claim_now": now, "claim_lease": now + dt.timedelta(seconds=lease_seconds)}).all()
    session.commit()
    found = {held.id: held for held in (Claim(*row) for row in rows)}
    return [found[i] for i in delivery_ids if i in found]


def renew(session: Session, held: list[Claim], lease_seconds: float) -> list[Claim]:
    """Extend the leases of claims held for a while, in one statement; those still held.

    A message sends its deliveries one after the other under leases taken together: a slow
    channel could let the later ones' leases run out while the first are being sent. A claim
    swept or claimed again meanwhile is not returned: it is someone else's now.
    """
    if not held:
        return []
    single_statement(session)
    kept = set(session.connection().execute(_RENEW, {
        "renew_ids": [(one.id, one.attempts) for one in held],
        "renew_lease": utcnow() + dt.timedelta(seconds=lease_seconds)}).scalars().all())
    session.commit()
    return [one for one in held if one.id in kept]


def send(session: Session, held: Claim, *, channel_for: Callable[[str], Channel], lease_seconds: float,
         max_attempts: int, min_backoff_ms: int = 1_000, max_backoff_ms: int = 600_000,
         loaded: tuple[TransitionRecord, Any] | None = None, sent: SentLog | None = None) -> str:
    """Render and send a claimed delivery, record the outcome; return the status recorded.

    ``loaded`` is its transition and that transition's row when the caller has them (the
    fan-out that just planned the delivery), so they are not read again. With ``sent``, a
    successful send is recorded by that log, with others, instead of at once.

    Raises:
        RetryLater: a transient failure (or an unforeseen error), recorded; send it again later.
    """
    try:
        channel = channel_for(held.channel)
        message, recipient, event = _compose(session, held, loaded, channel.address_kind)
        if message is None:
            return _finish(session, held, Status.SKIPPED, "The notifier returned None for this recipient.")
        if not isinstance(message, channel.accepts):  # a notifier whose return annotation did not say
            raise RegistrationError(f"{held.notifier} returned {type(message).__name__}; channel {held.channel!r} "
                                    f"accepts {' or '.join(k.__name__ for k in channel.accepts)}.")
        channel.send(message, recipient, key=held.key, event=event)
    except PermanentChannelError as error:
        return _finish(session, held, Status.FAILED, str(error))
    except TransientChannelError as error:
        return _retry_later(session, held, error, max_attempts, min_backoff_ms, max_backoff_ms, lease_seconds)
    except _DETERMINISTIC as error:
        recorded = _finish(session, held, Status.FAILED, f"{type(error).__name__}: {error}")
        if raise_message_errors and isinstance(error, NotifierError):
            raise
        return recorded
    except Exception as error:  # anything unforeseen, e.g. a service down or a database blip
        return _retry_later(session, held, error, max_attempts, min_backoff_ms, max_backoff_ms, lease_seconds)
    metrics.delivery_sent(held.channel, event.created_at)
    if sent is not None:
        sent.add(held)
        return Status.SENT
    return _finish(session, held, Status.SENT, None)


def _retry_later(session: Session, held: Claim, error: Exception, max_attempts: int, min_backoff_ms: int,
                 max_backoff_ms: int, lease_seconds: float) -> str:
    """Record a failure worth retrying and raise RetryLater, or mark the delivery dead when attempts are used up."""
    reason = str(error) if isinstance(error, TransientChannelError) else f"{type(error).__name__}: {error}"
    if held.attempts >= max_attempts:
        return _finish(session, held, Status.DEAD, f"Gave up after {held.attempts} attempts: {reason}")
    backoff_ms = min(min_backoff_ms * 2 ** (held.attempts + 1), max_backoff_ms)
    asked = getattr(error, "retry_after", None)
    if asked is not None:  # the other side said when: wait that long (within max_backoff_ms), not our backoff
        backoff_ms = min(max(int(asked * 1000), 0), max_backoff_ms)
    recorded = _finish(session, held, Status.PENDING, reason,
                       lease_until=utcnow() + dt.timedelta(milliseconds=backoff_ms, seconds=lease_seconds))
    if recorded != Status.PENDING:  # the claim was lost meanwhile: whoever holds it now decides
        return recorded
    raise RetryLater(held.id, backoff_ms, error, asked=asked is not None)


def _compose(session: Session, held: Claim, loaded: tuple[TransitionRecord, Any] | None,
             address_kind: str) -> tuple[object | None, Recipient, Event]:
    record, subject = loaded if loaded is not None else load(session, held.transition_id)
    if subject is None:
        registry.named(held.notifier, record.model, record.trigger)  # a notifier missing says so first
        raise WorkflowError(f"{record.model} {record.key} no longer exists.")
    recipient = held.recipient(address_kind)
    event = Event.of(record, subject)
    return Notifier.compose_for(held.notifier, event, recipient), recipient, event


def load(session: Session, transition_id: int) -> tuple[TransitionRecord, Any]:
    """A transition and its row (``None`` if the row is gone), as rendering needs them.

    Raises:
        WorkflowError: the transition is gone (the foreign key forbids it) or its model is not imported.
    """
    record = read_record(session.connection(), transition_id)
    if record is None:  # pragma: no cover - the foreign key forbids it
        raise WorkflowError(f"Transition {transition_id} is gone.")
    return record, load_subject(session, record)


def _finish(session: Session, held: Claim, status: str, error: str | None,
            lease_until: dt.datetime | None = None) -> str:
    now = utcnow()
    # A transaction that failed in the database must be rolled back before the outcome can be
    # written; and what rendering changed must not be committed with it (a notifier must not
    # change rows by accident). What it only loaded stays, for the next delivery of the message.
    if isinstance(sys.exc_info()[1], SQLAlchemyError):
        session.rollback()
    if session.dirty or session.new or session.deleted:
        session.expunge_all()
    single_statement(session)
    result = session.connection().execute(_RECORD, {
        "record_id": held.id, "record_attempts": held.attempts, "record_status": status, "record_error": error,
        "record_now": now, "record_lease": lease_until, "record_sent_at": now if status == Status.SENT else None})
    session.commit()
    if not getattr(result, "rowcount", 1):
        return _lost(session, held, status)
    _recorded(held, status, error)
    return status


def _lost(session: Session, held: Claim, status: str) -> str:
    """Report an outcome not written because the claim was taken again meanwhile; what it is now."""
    current = session.scalar(select(Delivery.status).where(Delivery.id == held.id))
    _log.warning("Delivery %s (%s to %s): its claim ran out and was taken again; %s not recorded (now %s).",
                 held.id, held.channel, held.address, status, current,
                 extra={"delivery_id": held.id, "transition_id": held.transition_id, "channel": held.channel})
    return f"lost ({current})"


def _recorded(held: Claim, status: str, error: str | None) -> None:
    """Log and count an outcome written."""
    log = _log.info if status in (Status.SENT, Status.SKIPPED) else _log.warning
    log("Delivery %s (%s to %s): %s%s", held.id, held.channel, held.address, status,
        f" - {error}" if error else "",
        extra={"delivery_id": held.id, "transition_id": held.transition_id, "channel": held.channel,
               "status": status})
    metrics.delivery_finished(held.channel, status)


class SentLog:
    """Deliveries their channel accepted, recorded ``sent`` together: one UPDATE for up to ``size``.

    A message that sends many deliveries one after the other (a batched fan-out, a chunk) would
    otherwise pay a round trip per delivery. What is waiting is written once ``size`` are
    waiting or the oldest has waited ``seconds``, and by :meth:`flush` at the end of the
    message. The price: a worker killed between a send and the next write leaves those
    deliveries ``sending``; once their lease runs out they are sent again (each with the same
    Message-ID, so receivers can drop the copy), as a single unrecorded send is today.
    """

    def __init__(self, session: Session, *, size: int = 8, seconds: float = 0.05) -> None:
        self.session, self.size, self.seconds = session, size, seconds
        self._held: list[Claim] = []
        self._since = 0.0

    def add(self, held: Claim) -> None:
        """Note that ``held`` was sent; write what waits if it is time.

        A transaction rendering began (a lazy load) ends here, as a recorded outcome would end
        it: held open across sends, its read lock would block other threads' writes on SQLite.
        """
        if self.session.in_transaction():
            self._discard_changes()
            self.session.commit()
        if not self._held:
            self._since = time.monotonic()
        self._held.append(held)
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Write what waits if ``size`` are waiting or the oldest has waited ``seconds`` (call it before a send too)."""
        if len(self._held) >= self.size or (self._held and time.monotonic() - self._since >= self.seconds):
            self.flush()

    def _discard_changes(self) -> None:
        """As in :func:`_finish`: what rendering changed is never committed."""
        if self.session.dirty or self.session.new or self.session.deleted:
            self.session.expunge_all()

    def flush(self) -> None:
        """Write every waiting ``sent`` outcome (those whose claim was taken again are reported lost)."""
        held, self._held = self._held, []
        if not held:
            return
        session = self.session
        self._discard_changes()
        now = utcnow()
        single_statement(session)
        written = set(session.connection().execute(
            _RECORD_SENT, {"sent_ids": [(one.id, one.attempts) for one in held], "sent_now": now}).scalars())
        session.commit()
        for one in held:
            if one.id in written:
                _recorded(one, Status.SENT, None)
            else:
                _lost(session, one, Status.SENT)


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
