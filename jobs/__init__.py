"""Dramatiq jobs that turn committed transitions into deliveries; the module ``dramatiq jobs`` loads.

This package knows ``workflow`` and ``notifiers``. Run workers with ``TIDINGS_NOTIFIERS=myapp.notifications
tidings worker`` (or ``tidings worker myapp.notifications``; without its supervision, ``dramatiq jobs
myapp.notifications``). ``import jobs`` never imports the notifier modules: workers, commands and
fan-outs do, when first needed (``jobs.notifier_modules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq
from notifiers import Channel
from sqlalchemy import Connection, Engine

# Order matters: settings, then the broker, then the actors. An actor declared before
# set_broker() binds to a default RabbitMQ broker on localhost.
from . import worker
from .broker import make_broker
from .config import Settings
from .errors import ConfigurationError, DeliveryNotFound, JobsError, TransitionNotFound

broker = make_broker(worker.runtime.settings)
dramatiq.set_broker(broker)
_built: set[dramatiq.Broker] = {broker}  # the brokers jobs made, and so closes when replaced

from . import actors, notifier_modules, outbox  # noqa: E402
from .delivery_log import Delivery, Status  # noqa: E402
from .sweeper import Sweep, SweeperMiddleware  # noqa: E402

outbox.install(actors.fan_out.send)


def _add_sweeper(target: dramatiq.Broker) -> None:
    if not any(isinstance(m, SweeperMiddleware) for m in target.middleware):
        target.add_middleware(SweeperMiddleware(actors.sweep, lambda: worker.runtime.settings.sweep_interval))
    if not any(isinstance(m, notifier_modules.RefuseWithoutNotifiers) for m in target.middleware):
        target.add_middleware(notifier_modules.RefuseWithoutNotifiers())


_add_sweeper(broker)

__all__ = [
    "ConfigurationError",
    "Delivery",
    "DeliveryNotFound",
    "JobsError",
    "Settings",
    "Status",
    "Sweep",
    "SweeperMiddleware",
    "TransitionNotFound",
    "broker",
    "configure",
    "make_broker",
]


def configure(settings: Settings | None = None, *, engine: Engine | Connection | None = None,
              channels: Mapping[str, Channel] | None = None, broker: dramatiq.Broker | None = None,
              **changes: Any) -> Settings:
    """Replace the runtime configuration, in code (tests, demos, applications that configure themselves).

    Args:
        settings: the base settings; defaults to the current ones.
        engine: the database engine the workers use, instead of ``database_url`` (or, in tests,
            a connection whose transaction the workers' sessions join).
        channels: channels by kind, e.g. ``{"email": MemoryChannel()}``, instead of the configured ones.
        broker: a broker to use; otherwise one is built if ``broker_url`` changed.
        changes: individual settings, e.g. ``broker_url="redis://..."``.

    Returns:
        The settings now in force.

    Raises:
        ConfigurationError: an unknown or invalid setting.
    """
    old = worker.runtime
    new_settings = (settings or old.settings).replace(**changes)
    old.close()
    worker.runtime = worker.Runtime(new_settings, engine=engine, channels=channels)
    for actor in (actors.fan_out, actors.deliver, actors.deliver_each):
        actor.options.update(max_retries=new_settings.max_retries, min_backoff=new_settings.min_backoff_ms,
                             max_backoff=new_settings.max_backoff_ms)
        actor.queue_name = new_settings.queue
    if broker is None and new_settings.broker_url != old.settings.broker_url:
        broker = make_broker(new_settings)
        _built.add(broker)
    if broker is None and new_settings.queue != old.settings.queue:
        broker = dramatiq.get_broker()
    if broker is not None:
        _rebind(broker)
    return new_settings


def _rebind(new: dramatiq.Broker) -> None:
    old = globals()["broker"]
    if old is not new and old in _built:
        _built.discard(old)
        old.close()  # a broker configure() built; one passed in belongs to its caller
    globals()["broker"] = new
    dramatiq.set_broker(new)
    _add_sweeper(new)
    for actor in (actors.fan_out, actors.deliver, actors.deliver_each):
        actor.broker = new
        new.declare_actor(actor)
