"""The Dramatiq actors: shells that open a session per message and call fanout and delivery.

A transition with few deliveries (``INLINE`` at most) is delivered by its own fan-out
message: one message per transition, the rows written already claimed. A larger one is split
into messages of up to ``CHUNK`` deliveries each (``tidings.deliver_each``), spread so that a
worker's threads share them, instead of one message per delivery. A delivery that fails
transiently in either goes on alone, as a ``tidings.deliver`` message after its backoff.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import dramatiq
from notifiers import PermanentChannelError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError

from . import delivery, fanout, sweeper, worker
from .errors import DeliveryNotFound, TransitionNotFound

__all__ = ["CHUNK", "INLINE", "deliver", "deliver_each", "fan_out", "sweep"]

_log = logging.getLogger(__name__)
_settings = worker.runtime.settings

#: Deliveries a fan-out message sends itself (more are split into delivery messages).
INLINE = 4
#: The most deliveries one ``tidings.deliver_each`` message carries.
CHUNK = 50
#: A large fan-out is split into about this many messages (or more), so that many threads share it.
_SPREAD = 16


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.fan_out",
                max_retries=_settings.max_retries, min_backoff=_settings.min_backoff_ms,
                max_backoff=_settings.max_backoff_ms)
def fan_out(transition_id: int) -> None:
    """Plan the deliveries of a committed transition; send a few at once, enqueue the others in chunks."""
    runtime = worker.runtime
    later: list[delivery.RetryLater] = []
    try:
        with runtime.session() as session:
            lease = runtime.settings.lease_seconds
            planned = fanout.plan(session, transition_id, claim_up_to=INLINE, lease_seconds=lease)
            renew_after = time.monotonic() + lease / 2
            for held in planned.claimed:
                if time.monotonic() > renew_after:  # a slow channel: keep the later claims alive
                    if not delivery.renew(session, held, lease):
                        _log.warning("Delivery %s: its claim ran out while others were sent; the sweeper has it.",
                                     held.id)
                        continue
                    renew_after = time.monotonic() + lease / 2
                _send(session, held, later, planned.loaded)
    except TransitionNotFound as error:
        _log.error("fan_out(%s) skipped: %s", transition_id, error)
        return
    _enqueue(planned.pending)
    _retry(later)


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.deliver",
                max_retries=_settings.max_retries, min_backoff=_settings.min_backoff_ms,
                max_backoff=_settings.max_backoff_ms, throws=(PermanentChannelError,))
def deliver(delivery_id: int) -> None:
    """Send one delivery; transient channel errors raise, so Dramatiq retries with backoff."""
    runtime = worker.runtime
    try:
        with runtime.session() as session:
            delivery.deliver(session, delivery_id, channel_for=runtime.channel,
                             lease_seconds=runtime.settings.lease_seconds,
                             max_attempts=runtime.settings.max_retries + 1,
                             min_backoff_ms=runtime.settings.min_backoff_ms,
                             max_backoff_ms=runtime.settings.max_backoff_ms)
    except DeliveryNotFound as error:
        _log.error("deliver(%s) skipped: %s", delivery_id, error)


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.deliver_each",
                max_retries=_settings.max_retries, min_backoff=_settings.min_backoff_ms,
                max_backoff=_settings.max_backoff_ms)
def deliver_each(delivery_ids: list[int]) -> None:
    """Send several deliveries one after the other, each claimed on its own (a chunk of one fan-out)."""
    runtime = worker.runtime
    later: list[delivery.RetryLater] = []
    loaded: dict[int, tuple[TransitionRecord, Any] | None] = {}  # a chunk's deliveries share their transition
    with runtime.session() as session:
        for delivery_id in delivery_ids:
            held = delivery.claim(session, delivery_id, runtime.settings.lease_seconds)
            if held is None:  # sent already (a message delivered twice), or gone
                _log.info("Delivery %s was not pending; not sending it again.", delivery_id)
                continue
            if held.transition_id not in loaded:
                try:
                    loaded[held.transition_id] = delivery.load(session, held.transition_id)
                except WorkflowError:  # sending loads it again, and records the failure
                    loaded[held.transition_id] = None
            _send(session, held, later, loaded[held.transition_id])
    _retry(later)


def _send(session: Session, held: delivery.Claim, later: list[delivery.RetryLater],
          loaded: tuple[TransitionRecord, Any] | None = None) -> None:
    """Send one claimed delivery; a transient failure joins ``later``."""
    runtime = worker.runtime
    s = runtime.settings
    try:
        delivery.send(session, held, channel_for=runtime.channel, lease_seconds=s.lease_seconds,
                      max_attempts=s.max_retries + 1, min_backoff_ms=s.min_backoff_ms,
                      max_backoff_ms=s.max_backoff_ms, loaded=loaded)
    except delivery.RetryLater as retry:
        later.append(retry)


def _enqueue(pending: list[int]) -> None:
    """One message per chunk of pending deliveries: about ``_SPREAD`` messages or more, ``CHUNK`` at most each."""
    if len(pending) <= INLINE:
        for delivery_id in pending:
            deliver.send(delivery_id)
        return
    size = min(CHUNK, max(1, math.ceil(len(pending) / _SPREAD)))
    for start in range(0, len(pending), size):
        deliver_each.send(pending[start:start + size])


def _retry(later: list[delivery.RetryLater]) -> None:
    """Each delivery that failed transiently goes on alone, after its backoff."""
    for retry in later:
        deliver.send_with_options(args=(retry.delivery_id,), delay=retry.delay_ms)


def sweep() -> sweeper.Sweep:
    """Sweep once: re-enqueue overdue transitions and deliveries (the worker's sweeper thread calls this)."""
    runtime = worker.runtime
    with runtime.session() as session:
        found = sweeper.sweep(session, grace_seconds=runtime.settings.sweep_after_seconds)
    for transition_id in found.transitions:
        fan_out.send(transition_id)
    for delivery_id in found.deliveries:
        deliver.send(delivery_id)
    return found
