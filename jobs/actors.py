"""The Dramatiq actors: shells that open a session per message and call fanout and delivery."""

from __future__ import annotations

import logging

import dramatiq
from notifiers import PermanentChannelError

from . import delivery, fanout, sweeper, worker
from .errors import DeliveryNotFound, TransitionNotFound

__all__ = ["deliver", "fan_out", "sweep"]

_log = logging.getLogger(__name__)
_settings = worker.runtime.settings


@dramatiq.actor(queue_name=_settings.queue, actor_name="tidings.fan_out",
                max_retries=_settings.max_retries, min_backoff=_settings.min_backoff_ms,
                max_backoff=_settings.max_backoff_ms)
def fan_out(transition_id: int) -> None:
    """Plan the deliveries of a committed transition, then enqueue one message per new delivery."""
    runtime = worker.runtime
    try:
        with runtime.session() as session:
            new = fanout.fan_out(session, transition_id)
    except TransitionNotFound as error:
        _log.error("fan_out(%s) skipped: %s", transition_id, error)
        return
    for delivery_id in new:
        deliver.send(delivery_id)


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
