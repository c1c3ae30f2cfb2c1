"""The Dramatiq broker, built from a URL (``stub``, ``redis://`` or ``amqp://``), or the application's own."""

from __future__ import annotations

import importlib
from typing import Any

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker

from .config import Settings
from .errors import ConfigurationError

__all__ = ["app_broker", "make_broker"]


def make_broker(settings: Settings) -> Broker:
    """A new broker for ``settings.broker_url`` with Dramatiq's default middleware.

    Raises:
        ConfigurationError: the URL names an unknown scheme.
    """
    url = settings.broker_url
    timeout = settings.broker_timeout
    if url == "stub" or url.startswith("stub:"):
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, socket_connect_timeout=timeout,  # type: ignore[no-untyped-call]
                           socket_timeout=max(timeout, 10.0))
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        rabbitmq = RabbitmqBroker(url=url)
        parameters: Any = rabbitmq.parameters  # one URLParameters for a single URL
        parameters.socket_timeout = timeout
        parameters.blocked_connection_timeout = max(timeout, 10.0)
        parameters.connection_attempts = 1
        return rabbitmq
    raise ConfigurationError(f"Setting broker_url (TIDINGS_BROKER_URL): unknown scheme in {url!r}.")


def app_broker(reference: str) -> Broker:
    """The application's broker that ``reference`` (``module:attribute``, setting ``app_broker``) names.

    Raises:
        ConfigurationError: the module does not import, or the attribute is missing or not a broker.
    """
    module_name, _, attribute = reference.partition(":")
    where = f"Setting app_broker (TIDINGS_APP_BROKER={reference!r})"
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"{where}: cannot import {module_name}: {error}. Install the application "
                                 "or add its folder to PYTHONPATH.") from error
    found = getattr(module, attribute, None)
    if not isinstance(found, Broker):
        what = "not defined" if found is None else f"of type {type(found).__name__}, not a dramatiq.Broker"
        raise ConfigurationError(f"{where}: {module_name}.{attribute} is {what}. Define the broker there before "
                                 f"anything in {module_name} imports jobs.")
    return found
