"""A Dramatiq worker inside the process, for a StubBroker: ``drain()``'s, and development's.

In development (``broker_url=stub``, the default) the StubBroker Tidings builds is consumed by
such a worker from the first commit that enqueues to it, so a script or a dev server delivers
as it commits, with retries and the sweeper as in production (setting ``in_process_worker``).
At exit, what it still has to do gets a few seconds, so a script that commits and ends still
delivers. :func:`drain` (re-exported by :mod:`jobs.testing`) runs what is queued on the same
worker, until nothing is: for scripts, demos and tests.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref

import dramatiq
import workflow
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Connection, inspect

from . import outbox
from .config import mask_url
from .errors import ConfigurationError
from .runtime import Runtime, current

__all__ = ["develop", "drain", "start", "stop", "stop_workers"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_workers: weakref.WeakKeyDictionary[StubBroker, Worker] = weakref.WeakKeyDictionary()
_finish_at_exit: weakref.WeakSet[StubBroker] = weakref.WeakSet()
_checked: weakref.WeakSet[Runtime] = weakref.WeakSet()  # runtimes whose database has the tables
_refused: weakref.WeakSet[Runtime] = weakref.WeakSet()  # and those said to lack them


def start(broker: StubBroker, *, threads: int = 2, finish_at_exit: bool = False) -> Worker:
    """The in-process worker of ``broker``, started on first use; stopped at exit or by :func:`stop`.

    Args:
        broker: the StubBroker to consume.
        threads: worker threads, if it has to be started.
        finish_at_exit: at interpreter exit, give its queues up to 5 s to empty before stopping.
    """
    with _lock:
        worker = _workers.get(broker)
        if worker is None:
            worker = _workers[broker] = Worker(broker, worker_timeout=20, worker_threads=threads)
            worker.start()
            if finish_at_exit:
                _log.info("Delivering in this process (broker_url=stub, for development); set "
                          "TIDINGS_BROKER_URL to a shared broker to deliver from workers instead.")
        if finish_at_exit:
            _finish_at_exit.add(broker)
    return worker


def develop(broker: StubBroker) -> None:
    """Development's worker for ``broker``: started at the first commit, unless the database lacks the tables.

    A database without Tidings' tables is said once, in one line (the messages wait, as
    :func:`drain` would refuse them), instead of each fan-out failing and being retried.
    """
    runtime = current()
    if runtime in _refused:
        return
    try:
        _check_tables(runtime)
    except ConfigurationError as error:
        _refused.add(runtime)
        _log.error("%s Notifications wait in this process until then.", error)
        return
    start(broker, finish_at_exit=True)


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
    _check_tables(current())
    deadline = time.monotonic() + timeout
    outbox.dispatcher.flush(timeout)  # what a connection's COMMIT handed to the outbox thread
    running = start(broker, threads=worker_threads)
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


def stop_workers() -> None:
    """Stop the in-process workers that :func:`drain` (or development's delivery on commit) started."""
    stop()


def _check_tables(runtime: Runtime) -> None:
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
            f"workflow.metadata.create_all(engine) after importing jobs (or add workflow.metadata to your migrations), "
            f"or point Tidings at your application's database (TIDINGS_DATABASE_URL, or jobs.configure(engine=...)).")
    _checked.add(runtime)


def stop() -> None:
    """Stop every in-process worker (what they still have queued stays queued)."""
    with _lock:
        workers = list(_workers.items())
        _workers.clear()
        _finish_at_exit.clear()
    for _, worker in workers:
        worker.stop()


@atexit.register
def _at_exit(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for broker in list(_finish_at_exit):
        for queue in list(broker.queues):
            remaining = int((deadline - time.monotonic()) * 1000)
            try:
                broker.join(queue, timeout=max(remaining, 1))
            except dramatiq.QueueJoinTimeout:
                _log.warning("Notifications still queued at exit were not delivered; the sweeper will send them "
                             "when this process runs again.")
                break
    stop()


def _forget_after_fork() -> None:  # a worker's threads do not survive a fork
    _workers.clear()
    _finish_at_exit.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
