"""Where the notifiers live: the modules ``TIDINGS_NOTIFIERS`` names, imported once per process when first needed.

Web processes, workers and commands read the same setting, so a worker cannot plan with a
registry other than the application's. The modules are imported lazily (by a worker process at
start, by a command before it runs, by a fan-out before it plans), never by ``import jobs``
itself: an application module may then import ``jobs`` at its top, and ``jobs`` its notifier
modules, without an import cycle.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import MiddlewareError
from notifiers import registry
from workflow import stateful_models

from .errors import ConfigurationError
from .runtime import current

__all__ = ["RefuseWithoutNotifiers", "load", "nothing_registered"]

_loaded: set[str] = set()
_lock = threading.Lock()


def load(modules: Sequence[str] | None = None) -> list[str]:
    """Import the notifier modules of the settings (or ``modules``), each once; the ones given.

    Raises:
        ConfigurationError: one of them does not import; the message names it and the setting.
    """
    names = current().settings.notifier_modules() if modules is None else list(modules)
    if all(name in _loaded for name in names):
        return names
    with _lock:
        for name in names:
            if name in _loaded:
                continue
            try:
                importlib.import_module(name)
            except ImportError as error:
                raise ConfigurationError(f"Setting notifiers (environment variable TIDINGS_NOTIFIERS): cannot "
                                         f"import {name!r}: {error}.") from None
            _loaded.add(name)
    return names


def nothing_registered(imported: Sequence[str]) -> str | None:
    """The one line a worker says when the modules it imported register no notifier at all, else ``None``.

    Args:
        imported: the modules the worker imported (its module list and ``TIDINGS_NOTIFIERS``).
    """
    if registry.names():
        return None
    hint = "tidings worker myapp.notifications, or TIDINGS_NOTIFIERS=myapp.notifications"
    if not imported:
        return (f"No notifier is registered: no module was given and TIDINGS_NOTIFIERS is empty. Name the modules "
                f"that declare your notifiers ({hint}).")
    models = sorted(name for name, cls in stateful_models().items() if cls.__module__ in imported)
    declares = f" (they declare the models {', '.join(models)}, not their notifiers)" if models else ""
    return (f"No notifier is registered after importing {', '.join(imported)}{declares}. Name the modules that "
            f"declare your notifiers ({hint}).")


class _CannotStart(ConfigurationError, ImportError, MiddlewareError):
    """A worker cannot start; Dramatiq's own command stops on it (it catches ImportError, exits 2)."""


class RefuseWithoutNotifiers(dramatiq.Middleware):
    """Stops a worker booting on a shared broker when its modules register no notifier (``dramatiq jobs myapp.models``).

    ``tidings worker`` checks this before starting its processes; this serves Dramatiq's own
    command. In-process workers on the StubBroker (tests, demos) are left alone.
    """

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Load ``TIDINGS_NOTIFIERS``; refuse to boot when no notifier is registered."""
        if isinstance(broker, StubBroker):
            return
        models = {cls.__module__ for cls in stateful_models().values()}  # what Dramatiq was given, as far as we see
        nobody = nothing_registered(sorted({*load(), *models}))
        if nobody is not None:
            raise _CannotStart(nobody)
