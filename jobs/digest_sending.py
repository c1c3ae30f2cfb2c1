"""Closing digests: the ``digests`` task of every worker's schedule sends each digest whose window closed, once.

A digest is claimed ``open`` -> ``sending`` under a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL: concurrent workers take different ones; one whose worker died is taken again once
its lease ran out). Its members that a later transition made void leave it first (recorded
``skipped``, :mod:`jobs.supersession`); the others are rendered into one message, sent with the
digest's own key (the Message-ID, the ``Idempotency-Key``), and recorded ``sent`` with the
digest, in one transaction that holds only while the claim does. A crash between the send and
that commit sends it again with the same key, as for a single delivery; no event is lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from notifiers import (Channel, ChannelError, EndpointDisabled, Event, NotifierError, PermanentChannelError, Recipient,
                       TransientChannelError, registry)
from notifiers.digest_messages import compose_digest
from sqlalchemy import Table, and_, bindparam, false, func, or_, select, tuple_, update
from sqlalchemy.orm import Session
from workflow import load_subjects, read_records, utcnow

from . import delivery as single
from . import notifier_modules, supersession
from .addressed import recipient_of
from .delivery import _DETERMINISTIC
from .delivery_log import Delivery, Status
from .digest_log import DigestRow, DigestStatus
from .retries import RetryPolicy
from .runtime import current

__all__ = ["Closed", "HeldDigest", "close_due", "run"]

_log = logging.getLogger(__name__)
_digests = cast(Table, DigestRow.__table__)
_deliveries = cast(Table, Delivery.__table__)
_FIELDS = ("id", "key", "notifier", "party", "channel", "address", "name", "recipient_ref", "locale", "attempts")
_OUTCOME = (update(_digests)
            .where(_digests.c.id == bindparam("d_id"), _digests.c.attempts == bindparam("d_attempts"),
                   _digests.c.status == DigestStatus.SENDING)
            .values(status=bindparam("d_status"), last_error=bindparam("d_error"), events=bindparam("d_events"),
                    sent_at=bindparam("d_sent_at"), due_at=bindparam("d_due"), lease_until=None,
                    updated_at=bindparam("d_now")))
_MEMBERS = (update(_deliveries)
            .where(_deliveries.c.id.in_(bindparam("m_ids", expanding=True)), _deliveries.c.status == Status.DIGEST)
            .values(status=bindparam("m_status"), sent_at=bindparam("m_sent_at"), updated_at=bindparam("m_now"),
                    last_error=bindparam("m_error")))
_VOID = (update(_deliveries).where(_deliveries.c.id == bindparam("v_id"), _deliveries.c.status == Status.DIGEST)
         .values(status=Status.SKIPPED, last_error=bindparam("v_reason"), updated_at=bindparam("v_now")))


@dataclass(frozen=True)
class HeldDigest:
    """A digest this worker holds (``sending``, under a lease): its id, key and attempt, and its row as claimed."""

    id: int
    key: str
    attempts: int
    row: Any = field(repr=False)

    @property
    def notifier(self) -> str:
        return str(self.row.notifier)

    @property
    def channel(self) -> str:
        return str(self.row.channel)

    @property
    def address(self) -> str:
        return str(self.row.address)

    def recipient(self, address_kind: str = "email") -> Recipient:
        """Who it is sent to."""
        return recipient_of(self.row, address_kind)


@dataclass
class Closed:
    """What one run did: digests sent (and the events in them), empty, failed or dead, put back for a retry."""

    sent: int = 0
    events: int = 0
    empty: int = 0
    failed: int = 0
    retried: int = 0
    loaded: dict[int, tuple[Any, Any]] = field(default_factory=dict, repr=False)
    #: In the test kit: the first message that could not be built, raised at the end of the run.
    unbuilt: NotifierError | None = field(default=None, repr=False)


def run() -> Closed:
    """Send every digest whose window closed, in a session of its own: the ``digests`` task of each worker's schedule."""
    notifier_modules.load()
    runtime = current()
    with runtime.session() as session:
        return close_due(session, channel_for=runtime.channel, lease_seconds=runtime.settings.lease_seconds,
                         retry=runtime.retry)


def close_due(session: Session, *, channel_for: Callable[[str], Channel], lease_seconds: float,
              retry: RetryPolicy, batch: int = 20) -> Closed:
    """Claim the digests due now ``batch`` at a time and send each; what was done.

    The transitions and rows of the events are read once for the whole run: 300 watchers'
    digests of the same 50 comments read the 50 once.
    """
    done = Closed()
    now = utcnow()  # fixed for the run, so that it ends
    while held := _claim(session, now, batch, lease_seconds):
        claimed, sent = time.monotonic(), list[HeldDigest]()
        members = _standing(session, held)
        for n, one in enumerate(held):
            if time.monotonic() - claimed > lease_seconds / 3:  # a slow channel: record, keep the rest's leases
                _record_sent(session, sent, done)
                sent, claimed = [], time.monotonic()
                held[n:] = _renew(session, held[n:], lease_seconds)
                if not held[n:]:
                    break
                one = held[n]
            if _close(session, one, members.get(one.id, []), done, channel_for, retry, lease_seconds):
                sent.append(one)
        _record_sent(session, sent, done)
    if done.unbuilt is not None:  # as a delivery's in the kit: the test fails where production records `failed`
        raise done.unbuilt
    return done


def _record_sent(session: Session, sent: list[HeldDigest], done: Closed) -> None:
    """Record the digests sent, and their members, in one transaction (those whose claim is still held).

    A worker killed before it sends them again after the lease, with the same keys, as
    :class:`~jobs.claims.SentLog` does for single deliveries.
    """
    if not sent:
        return
    if session.in_transaction():  # what rendering or a channel changed, flushed or not (the run commits what it writes)
        session.rollback()
    now, d = utcnow(), _digests.c
    members = select(func.count()).where(_deliveries.c.digest_id == d.id,
                                         _deliveries.c.status.in_([Status.DIGEST, Status.SENT])).scalar_subquery()
    written = set(session.scalars(
        update(_digests).where(tuple_(d.id, d.attempts).in_([(one.id, one.attempts) for one in sent]),
                               d.status == DigestStatus.SENDING)
        .values(status=DigestStatus.SENT, sent_at=now, updated_at=now, lease_until=None, last_error=None,
                events=members).returning(d.id)))
    if written:
        session.execute(update(_deliveries).where(_deliveries.c.digest_id.in_(written),
                                                  _deliveries.c.status == Status.DIGEST)
                        .values(status=Status.SENT, sent_at=now, updated_at=now))
    session.commit()
    for one in sent:
        if one.id not in written:
            _log.warning("Digest %s: its claim ran out and was taken again; sent not recorded.", one.id,
                         extra={"digest_id": one.id})
        else:
            done.sent += 1
            _log.info("Digest %s (%s to %s): sent.", one.id, one.channel, one.address,
                      extra={"digest_id": one.id, "channel": one.channel})


def _renew(session: Session, held: list[HeldDigest], lease_seconds: float) -> list[HeldDigest]:
    """Extend the leases of digests still held, in one statement; those still this worker's."""
    d = _digests.c
    kept = set(session.scalars(
        update(_digests).where(d.id.in_([one.id for one in held]), d.status == DigestStatus.SENDING,
                               d.attempts.in_({one.attempts for one in held}))
        .values(lease_until=utcnow() + dt.timedelta(seconds=lease_seconds)).returning(d.id)))
    session.commit()
    return [one for one in held if one.id in kept]


def _claim(session: Session, now: dt.datetime, batch: int, lease_seconds: float) -> list[HeldDigest]:
    """Up to ``batch`` due digests (or ones whose lease ran out), claimed and committed."""
    if session.get_bind().dialect.name == "sqlite":  # no row locks: take the write lock first (see jobs.due)
        session.execute(update(_digests).where(false()).values(attempts=_digests.c.attempts))
    d = _digests.c
    ids = list(session.scalars(
        select(d.id).where(or_(and_(d.status == DigestStatus.OPEN, d.due_at <= now),
                               and_(d.status == DigestStatus.SENDING, d.lease_until < now)))
        .order_by(d.due_at).limit(batch).with_for_update(skip_locked=True)))
    if not ids:
        session.commit()
        return []
    at = utcnow()
    rows = session.execute(update(_digests).where(d.id.in_(ids))
                           .values(status=DigestStatus.SENDING, attempts=d.attempts + 1, updated_at=at,
                                   lease_until=at + dt.timedelta(seconds=lease_seconds))
                           .returning(*(d[name] for name in _FIELDS))).all()
    session.commit()
    return sorted((HeldDigest(row.id, row.key, row.attempts, row) for row in rows), key=lambda one: ids.index(one.id))


def _close(session: Session, held: HeldDigest, members: list[tuple[int, int]], done: Closed,
           channel_for: Callable[[str], Channel], retry: RetryPolicy, lease_seconds: float) -> bool:
    """Send one claimed digest: whether it was sent (to be recorded); what else became of it is recorded now."""
    events = _events(session, members, done.loaded)
    if not events:
        _finish(session, held, DigestStatus.EMPTY, None, [])
        done.empty += 1
        return False
    ids = [delivery_id for delivery_id, _ in members]
    try:
        channel = channel_for(held.channel)
        recipient = held.recipient(channel.address_kind)
        registration = registry.named(held.notifier, events[0].model, events[0].trigger)
        message = compose_digest(registration, events, recipient, channel=held.channel)
        if message is None:
            _finish(session, held, DigestStatus.EMPTY, "The notifier returned None for this recipient.", ids,
                    Status.SKIPPED)
            done.empty += 1
            return False
        channel.send(message, recipient, key=held.key, event=events[-1])
    except TransientChannelError as error:  # a ChannelError, hence a NotifierError: before the deterministic ones
        _retry(session, held, error, ids, retry, lease_seconds, done)
        return False
    except (EndpointDisabled, PermanentChannelError, *_DETERMINISTIC) as error:
        _finish(session, held, DigestStatus.FAILED, f"{type(error).__name__}: {error}", ids, Status.FAILED)
        done.failed += 1
        if single.raise_message_errors and isinstance(error, NotifierError) and not isinstance(error, ChannelError):
            done.unbuilt = done.unbuilt or error  # the test kit: raised once the run recorded everything
        return False
    except Exception as error:  # transient: the whole digest again after the policy's backoff
        _retry(session, held, error, ids, retry, lease_seconds, done)
        return False
    done.events += len(ids)
    return True


def _standing(session: Session, held: list[HeldDigest]) -> dict[int, list[tuple[int, int]]]:
    """``(delivery id, transition id)`` of each digest's members, by digest; those a later transition voided
    are recorded ``skipped`` and left out."""
    found = session.execute(
        select(Delivery.id, Delivery.transition_id, Delivery.void_unless_in.is_not(None) | Delivery.void_on.is_not(None),
               Delivery.digest_id)
        .where(Delivery.digest_id.in_([one.id for one in held]), Delivery.status == Status.DIGEST)
        .order_by(Delivery.transition_id, Delivery.id)).all()
    void = supersession.superseding(session, [i for i, _, ruled, _ in found if ruled])
    if void:
        now = utcnow()
        digest_of = {i: digest_id for i, _, _, digest_id in found}
        session.execute(_VOID, [{"v_id": i, "v_now": now, "v_reason": f"{supersession.reason(*why)}, before digest "
                                 f"#{digest_of[i]} went out"} for i, why in void.items()])
        session.commit()
    members: dict[int, list[tuple[int, int]]] = {}
    for i, t, _, digest_id in found:
        if i not in void and digest_id is not None:
            members.setdefault(digest_id, []).append((i, t))
    return members


def _events(session: Session, members: Sequence[tuple[int, int]], loaded: dict[int, tuple[Any, Any]]) -> list[Event]:
    """The events of the members, in order, reading only the transitions not read yet in this run."""
    missing = sorted({t for _, t in members if t not in loaded})
    if missing:
        records = read_records(session.connection(), missing)
        subjects = load_subjects(session, list(records.values()))
        loaded.update((i, (record, subjects.get(i))) for i, record in records.items())
    return [Event.of(*loaded[t]) for _, t in members if t in loaded and loaded[t][1] is not None]


def _retry(session: Session, held: HeldDigest, error: Exception, ids: list[int], retry: RetryPolicy,
           lease_seconds: float, done: Closed) -> None:
    """Open the digest again, due after the backoff; or ``dead`` (and its members) once attempts are used up."""
    reason = f"{type(error).__name__}: {error}"
    if retry.gives_up(held.attempts):
        _finish(session, held, DigestStatus.DEAD, f"Gave up after {held.attempts} attempts: {reason}", ids, Status.DEAD)
        done.failed += 1
        return
    due = utcnow() + dt.timedelta(milliseconds=retry.backoff_ms(held.attempts, getattr(error, "retry_after", None)))
    _finish(session, held, DigestStatus.OPEN, reason, [], due_at=due)
    done.retried += 1
    _log.warning("Digest %s on channel %r: attempt %s of %s failed (%s); next try at %s.", held.id, held.channel,
                 held.attempts, retry.max_attempts, reason, f"{due:%H:%M:%S}", extra={"digest_id": held.id})


def _finish(session: Session, held: HeldDigest, status: str, error: str | None, ids: list[int],
            member_status: str = Status.FAILED, *, due_at: dt.datetime | None = None) -> None:
    """Record the digest's outcome and its members', together, while the claim is still held."""
    now = utcnow()
    if session.in_transaction():  # as in _record_sent: never commit what rendering or the channel changed
        session.rollback()
    sent_at = now if status == DigestStatus.SENT else None
    written = session.connection().execute(_OUTCOME, {
        "d_id": held.id, "d_attempts": held.attempts, "d_status": status, "d_error": error, "d_events": len(ids),
        "d_sent_at": sent_at, "d_now": now, "d_due": due_at or now})
    if getattr(written, "rowcount", 1) and ids:
        session.connection().execute(_MEMBERS, {"m_ids": ids, "m_status": member_status, "m_sent_at": sent_at,
                                                 "m_now": now, "m_error": f"Digest #{held.id} {status}: {error}"})
    elif not getattr(written, "rowcount", 1):
        _log.warning("Digest %s: its claim ran out and was taken again; %s not recorded.", held.id, status,
                     extra={"digest_id": held.id})
    session.commit()
