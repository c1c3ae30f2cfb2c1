"""The Dramatiq actors: shells that open a session per message and call fanout and delivery.

A fan-out message carries one transition, or up to ``BATCH`` that the outbox or the sweeper
found waiting at once; they are planned together. Up to ``INLINE`` deliveries per transition
(``CHUNK`` in all) are written already claimed and sent by the fan-out message itself; more are
split into messages of up to ``CHUNK`` deliveries each (``tidings.deliver_each``), spread so that
a worker's threads share them. Either records its ``sent`` outcomes together. A delivery that
fails transiently goes on alone, as a ``tidings.deliver`` message after its backoff.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from notifiers import PermanentChannelError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError, load_subjects, read_records

from . import batches, claims, delivery, due, fanout, sweeper
from .errors import DeliveryNotFound
from .retries import RetryPolicy
from .runtime import current

__all__ = ["ACTORS", "BATCH", "CHUNK", "INLINE", "deliver", "deliver_each", "fan_out", "send_due", "sweep"]

_log = logging.getLogger(__name__)
_settings = current().settings

#: Deliveries a fan-out message sends itself (more are split into delivery messages).
INLINE = 4
#: The most deliveries one ``tidings.deliver_each`` message carries.
CHUNK = 50
#: The most transitions one ``tidings.fan_out`` message carries (the outbox and the sweeper group them).
BATCH = 50


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.fan_out",
                **RetryPolicy.of(_settings).actor_options())
def fan_out(transition_ids: int | list[int], swept: bool = False) -> None:
    """Plan the deliveries of committed transitions; send a few at once, enqueue the others in chunks.

    One transition, or several that the outbox or the sweeper found waiting together; on
    PostgreSQL, with others already waiting (up to ``BATCH`` in all, see
    :func:`fanout.plan_many`). They are planned in one transaction; the message sends itself the
    deliveries of each transition that has at most ``INLINE`` (``CHUNK`` in all), their ``sent``
    outcomes written together. ``swept``: sent by the sweeper, for transitions overdue; they are
    read whatever this process remembers planning.
    """
    runtime = current()
    ids = [transition_ids] if isinstance(transition_ids, int) else list(transition_ids)
    later: list[delivery.RetryLater] = []
    with runtime.session() as session:
        lease = runtime.settings.lease_seconds
        planned = fanout.plan_many(session, ids, claim_up_to=INLINE, claim_total=CHUNK, lease_seconds=lease,
                                   waiting=max(0, BATCH - len(ids)), recall=not swept)
        for missing in planned.missing:
            _log.error("fan_out(%s) skipped: Transition %s does not exist (rolled back or deleted?).",
                       missing, missing, extra={"transition_id": missing})
        _enqueue(planned.pending)  # first: whatever happens to the sends below, these are on their way
        _send_all(session, planned.claimed, planned.loaded, later)
    _retry(later)


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.deliver",
                throws=(PermanentChannelError,), **RetryPolicy.of(_settings).actor_options())
def deliver(delivery_id: int) -> None:
    """Send one delivery; a transient failure raises ``dramatiq.Retry`` with the retry policy's backoff."""
    runtime = current()
    try:
        with runtime.session() as session:
            delivery.deliver(session, delivery_id, channel_for=runtime.channel,
                             lease_seconds=runtime.settings.lease_seconds, retry=runtime.retry)
    except DeliveryNotFound as error:
        _log.error("deliver(%s) skipped: %s", delivery_id, error)


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.deliver_each",
                **RetryPolicy.of(_settings).actor_options())
def deliver_each(delivery_ids: list[int]) -> None:
    """Send several deliveries one after the other, claimed together, their ``sent`` outcomes written together."""
    runtime = current()
    later: list[delivery.RetryLater] = []
    with runtime.session() as session:
        claimed = claims.claim_many(session, delivery_ids, runtime.settings.lease_seconds)
        if len(claimed) < len(delivery_ids):  # sent already (a message delivered twice), or gone
            _log.info("Deliveries %s were not pending; not sending them again.",
                      sorted(set(delivery_ids) - {held.id for held in claimed}))
        loaded = _load(session, {held.transition_id for held in claimed})
        _send_all(session, claimed, loaded, later)
    _retry(later)


def _load(session: Session, transition_ids: set[int]) -> dict[int, tuple[TransitionRecord, Any]]:
    """The transitions (and their rows) of a chunk's deliveries, read together; those that could be.

    Whatever goes wrong here, sending loads each again on its own and records the failure.
    """
    try:
        records = read_records(session.connection(), transition_ids)
        subjects = load_subjects(session, records.values(), parties=False)  # the claims name the recipients
        session.commit()  # no read transaction held open while sending
    except Exception:
        _log.warning("Could not read transitions %s together; each is read again as it is sent.",
                     sorted(transition_ids), exc_info=True)
        session.rollback()
        return {}
    return {i: (record, subjects[i]) for i, record in records.items()}


def _send_all(session: Session, claimed: list[claims.Claim], loaded: dict[int, tuple[TransitionRecord, Any]],
              later: list[delivery.RetryLater]) -> None:
    """Send claimed deliveries one after the other, their ``sent`` outcomes written together.

    Every third of a lease, the claims not sent yet are renewed in one statement; one lost
    meanwhile (swept, claimed again) is skipped: it is someone else's now.
    """
    lease = current().settings.lease_seconds
    sent = claims.SentLog(session)
    waiting = list(claimed)
    renew_at = time.monotonic() + lease / 3
    try:
        while waiting:
            if time.monotonic() > renew_at:  # a slow channel: keep the later claims alive
                sent.flush()
                kept = claims.renew(session, waiting, lease)
                for lost in set(waiting) - set(kept):
                    _log.warning("Delivery %s: its claim ran out while others were sent; the sweeper has it.",
                                 lost.id, extra={"delivery_id": lost.id, "transition_id": lost.transition_id})
                waiting, renew_at = kept, time.monotonic() + lease / 3
                continue
            held = waiting.pop(0)
            sent.flush_if_due()
            _send(session, held, later, loaded.get(held.transition_id), sent)
    finally:
        sent.flush()


def _send(session: Session, held: claims.Claim, later: list[delivery.RetryLater],
          loaded: tuple[TransitionRecord, Any] | None = None, sent: claims.SentLog | None = None) -> None:
    """Send one claimed delivery; a transient failure joins ``later``."""
    runtime = current()
    s = runtime.settings
    try:
        delivery.send(session, held, channel_for=runtime.channel, lease_seconds=s.lease_seconds,
                      retry=runtime.retry, loaded=loaded, sent=sent)
    except delivery.RetryLater as retry:
        later.append(retry)


def _enqueue(pending: list[int]) -> None:
    """A ``deliver`` message for each of a few pending deliveries, else chunks of them (see :func:`batches.split`)."""
    if len(pending) <= INLINE:
        for delivery_id in pending:
            deliver.send(delivery_id)
        return
    for chunk in batches.split(pending, CHUNK):
        deliver_each.send(chunk)


def _retry(later: list[delivery.RetryLater]) -> None:
    """Each delivery that failed transiently goes on alone, after its backoff."""
    for retry in later:
        deliver.send_with_options(args=(retry.delivery_id,), delay=retry.delay_ms)


def sweep() -> sweeper.Sweep:
    """Sweep once: re-enqueue overdue transitions and deliveries (the worker's sweeper thread calls this).

    Both go a few to a message: under a backlog a sweep may take up to 1,000 deliveries merely
    waiting in the queue, and one message each would slow the backlog it guards.
    """
    runtime = current()
    with runtime.session() as session:
        found = sweeper.sweep(session, grace_seconds=runtime.settings.sweep_after_seconds)
    for chunk in batches.split(found.transitions, BATCH, least=4):
        fan_out.send(chunk[0] if len(chunk) == 1 else chunk, swept=True)
    _enqueue(found.deliveries)
    return found


def send_due(limit: int = 1000) -> int:
    """Enqueue the deliveries that became due, in chunks, until none is left (the ``due`` task calls this); how many."""
    total = 0
    while True:
        with current().session() as session:
            found = due.take_due(session, limit=limit)
        _enqueue(found)
        total += len(found)
        if len(found) < limit:
            return total


#: The actors, listed once: :func:`jobs.configure` sets their queue and retry options and binds them to the broker.
ACTORS: tuple[dramatiq.Actor[..., None], ...] = (fan_out, deliver, deliver_each)
