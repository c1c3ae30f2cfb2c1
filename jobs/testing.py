"""Test helpers: run the queued jobs of a StubBroker to completion, in-process."""

from __future__ import annotations

import atexit
import time
import weakref

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker

from .errors import ConfigurationError

__all__ = ["drain", "stop_workers"]

_workers: weakref.WeakKeyDictionary[StubBroker, Worker] = weakref.WeakKeyDictionary()


def drain(broker: StubBroker | None = None, *, timeout: float = 10.0, worker_threads: int = 2) -> None:
    """Run every queued fan-out and delivery (and what they enqueue) until the queues are empty.

    Starts an in-process worker for the broker on first use (stopped at exit or by
    :func:`stop_workers`) and joins every queue, delayed ones included. The first actor failure is re-raised here, with its traceback.

    Raises:
        ConfigurationError: the broker is not a StubBroker.
        TimeoutError: the queues were not empty after ``timeout`` seconds.
    """
    found = broker or dramatiq.get_broker()
    if not isinstance(found, StubBroker):
        raise ConfigurationError(f"drain() needs the StubBroker (TIDINGS_BROKER_URL=stub), not {type(found).__name__}.")
    broker = found
    deadline = time.monotonic() + timeout
    worker = _workers.get(broker)
    if worker is None:
        worker = _workers[broker] = Worker(broker, worker_timeout=20, worker_threads=worker_threads)
        worker.start()
    while True:
        for queue in list(broker.queues):
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                broker.join(queue, timeout=int(remaining * 1000), fail_fast=True)
            except dramatiq.QueueJoinTimeout:
                raise TimeoutError(f"Queue {queue!r} still had messages after {timeout} s.") from None
        worker.join()
        if all(broker.queues[q].unfinished_tasks == 0 for q in broker.queues):
            return


@atexit.register
def stop_workers() -> None:
    """Stop the in-process workers that :func:`drain` started."""
    for broker, worker in list(_workers.items()):
        worker.stop()
        _workers.pop(broker, None)
