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
from dramatiq.brokers.stub import StubBroker
from notifiers import Channel
from sqlalchemy import Connection, Engine

# Order matters: settings, then the broker, then the actors. An actor declared before
# set_broker() binds to a default RabbitMQ broker on localhost.
from . import runtime
from .broker import app_broker as _app_broker
from .broker import make_broker
from .config import Settings
from .errors import ConfigurationError, DeliveryNotFound, JobsError, TransitionNotFound
from .retries import RetryPolicy

_settings = runtime.current().settings
broker = _app_broker(_settings.app_broker) if _settings.app_broker else make_broker(_settings)
dramatiq.set_broker(broker)
_built: set[dramatiq.Broker] = set() if _settings.app_broker else {broker}  # what jobs made, and closes when replaced

from . import actors, inprocess, notifier_modules, outbox  # noqa: E402
from .delivery_log import Delivery, Status  # noqa: E402
from . import retention, schedule  # noqa: E402
from .retention import Pruned, prune  # noqa: E402
from .schedule import Schedule  # noqa: E402
from .sweeper import Sweep  # noqa: E402
from . import timers  # noqa: E402
from . import digest_sending  # noqa: E402
from .digest_log import DigestRow, DigestStatus  # noqa: E402
from .timers import Timer, TimerStatus  # noqa: E402
from .console_log import ConsoleAction  # noqa: E402 - its table, created with the others


def _deliver_in_process(stub: StubBroker) -> None:
    """Development: the StubBroker built from ``broker_url=stub`` is consumed by a worker in the process.

    A StubBroker passed to :func:`configure` (tests, the test kit) is the caller's: its messages
    wait for ``drain()`` or ``Kit.run()``.
    """
    if stub in _built and runtime.current().settings.in_process_worker:
        inprocess.develop(stub)


outbox.install(actors.fan_out.send, on_stub=_deliver_in_process)


#: The periodic tasks that act on due time (timers, deliveries whose time came): every worker
#: process's schedule runs them after the sweep, and the test kit's ``advance()`` runs each once
#: after moving the clock.
due_work: list[schedule.Task] = []
due_work.append(schedule.Task("due", actors.send_due, lambda: runtime.current().settings.due_interval))
due_work.append(schedule.Task("timers", timers.run, lambda: runtime.current().settings.due_interval))
due_work.append(schedule.Task("digests", digest_sending.run, lambda: runtime.current().settings.due_interval))


def _add_middleware(target: dramatiq.Broker) -> None:
    """The worker-side middleware of Tidings on ``target``, once: the schedule (its first task the sweep), the refusal."""
    if not any(isinstance(m, Schedule) for m in target.middleware):
        sweep = schedule.Task("sweep", actors.sweep, lambda: runtime.current().settings.sweep_interval)
        turns = retention.Turns()
        target.add_middleware(Schedule([sweep, *due_work, schedule.Task("prune", turns.run, turns.interval)]))
    if not any(isinstance(m, notifier_modules.RefuseWithoutNotifiers) for m in target.middleware):
        target.add_middleware(notifier_modules.RefuseWithoutNotifiers())


_add_middleware(broker)

__all__ = [
    "ConfigurationError",
    "ConsoleAction",
    "Delivery",
    "DeliveryNotFound",
    "DigestRow",
    "DigestStatus",
    "JobsError",
    "Pruned",
    "RetryPolicy",
    "Schedule",
    "Settings",
    "Status",
    "Sweep",
    "Timer",
    "TimerStatus",
    "TransitionNotFound",
    "broker",
    "configure",
    "make_broker",
    "prune",
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
        broker: a broker to use (the application's own, say); otherwise the one ``app_broker`` names,
            if it changed, or one built if ``broker_url`` changed.
        changes: individual settings, e.g. ``broker_url="redis://..."``.

    Returns:
        The settings now in force.

    Raises:
        ConfigurationError: an unknown or invalid setting.
        RegistrationError: a notifier returns a kind of message its channel does not accept.
    """
    old = runtime.current()
    new_settings = (settings or old.settings).replace(**changes)
    old.close()
    new = runtime.Runtime(new_settings, engine=engine, channels=channels)
    new.check_channels()
    runtime.install(new)
    for actor in actors.ACTORS:
        actor.options.update(RetryPolicy.of(new_settings).actor_options())
        actor.queue_name = new_settings.queue
    if broker is None and new_settings.app_broker and new_settings.app_broker != old.settings.app_broker:
        broker = _app_broker(new_settings.app_broker)
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
    _add_middleware(new)
    for actor in actors.ACTORS:
        actor.broker = new
        new.declare_actor(actor)
