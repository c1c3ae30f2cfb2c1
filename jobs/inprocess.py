"""A Dramatiq worker inside the process, for a StubBroker: ``drain()``'s, and development's.

In development (``broker_url=stub``, the default) the StubBroker Tidings builds is consumed by
such a worker from the first commit that enqueues to it, so a script or a dev server delivers
as it commits, with retries and the sweeper as in production (setting ``in_process_worker``).
At exit, what it still has to do gets a few seconds, so a script that commits and ends still
delivers. ``jobs.testing.drain()`` uses the same worker when there is one.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

__all__ = ["start", "stop"]

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_workers: weakref.WeakKeyDictionary[StubBroker, Worker] = weakref.WeakKeyDictionary()
_finish_at_exit: weakref.WeakSet[StubBroker] = weakref.WeakSet()


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
