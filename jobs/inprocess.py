"""An in-process Dramatiq worker for the StubBroker: :func:`drain` runs what is queued, until nothing is.

For scripts, demos and tests that want Dramatiq's own worker (threads, retries with backoff) on
the embedded default; re-exported by :mod:`jobs.testing`.
"""

from __future__ import annotations

import atexit
import time
import weakref

import dramatiq
import workflow
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, inspect

from . import worker
from .config import mask_url
from .errors import ConfigurationError

__all__ = ["drain", "stop_workers"]

_workers: weakref.WeakKeyDictionary[StubBroker, Worker] = weakref.WeakKeyDictionary()
_checked: weakref.WeakSet[worker.Runtime] = weakref.WeakSet()  # runtimes whose database has Tidings' tables


def drain(broker: StubBroker | None = None, *, timeout: float = 10.0, worker_threads: int = 2) -> None:
    """Run every queued fan-out and delivery (and what they enqueue) until the queues are empty.

    Starts an in-process worker for the broker on first use (stopped at exit or by
    :func:`stop_workers`) and joins every queue, delayed ones included. The first actor failure
    is re-raised here, with its traceback.

    Raises:
        ConfigurationError: the broker is not a StubBroker, or the database lacks Tidings' tables.
        TimeoutError: the queues were not empty after ``timeout`` seconds.
    """
    found = broker or dramatiq.get_broker()
    if not isinstance(found, StubBroker):
        raise ConfigurationError(f"drain() needs the StubBroker (TIDINGS_BROKER_URL=stub), not {type(found).__name__}.")
    broker = found
    _check_tables(worker.runtime)
    deadline = time.monotonic() + timeout
    running = _workers.get(broker)
    if running is None:
        running = _workers[broker] = Worker(broker, worker_timeout=20, worker_threads=worker_threads)
        running.start()
    while True:
        for queue in list(broker.queues):
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                broker.join(queue, timeout=int(remaining * 1000), fail_fast=True)
            except dramatiq.QueueJoinTimeout:
                raise TimeoutError(f"Queue {queue!r} still had messages after {timeout} s.") from None
        running.join()
        if all(broker.queues[q].unfinished_tasks == 0 for q in broker.queues):
            return


def _check_tables(runtime: worker.Runtime) -> None:
    """Refuse, in one line, a database that lacks Tidings' tables (else each message fails and is retried).

    Checked once per runtime (``jobs.configure`` makes a new one).
    """
    if runtime in _checked:
        return
    bind = runtime.engine
    missing = sorted(set(workflow.metadata.tables) - set(inspect(bind).get_table_names()))
    if missing:
        url = (bind.engine if isinstance(bind, Connection) else bind).url.render_as_string(hide_password=False)
        raise ConfigurationError(
            f"The database {mask_url(url)} has no table {', '.join(missing)}: create Tidings' tables with "
            f"workflow.metadata.create_all(engine) after importing jobs (or add workflow.metadata to your migrations).")
    _checked.add(runtime)


@atexit.register
def stop_workers() -> None:
    """Stop the in-process workers that :func:`drain` started."""
    for broker, running in list(_workers.items()):
        running.stop()
        _workers.pop(broker, None)
