"""One worker process of ``tidings worker``: a Dramatiq ``Worker`` in-process, until told to stop or recycled.

The supervisor (``jobs.worker.supervisor``) starts it as ``python -P -m jobs.worker.process SPEC`` (SPEC
is JSON) so that nothing from the current folder shadows ``jobs``. It imports ``jobs`` (which
sets the configured broker and declares the actors, the sweeper included), then the
application modules, then runs a ``dramatiq.Worker``. It stops on SIGTERM, when its
:class:`~jobs.worker.recycling.Recycler` says it is due, or when its supervisor is gone:

1. the worker threads finish the messages in hand (up to ``shutdown_timeout`` seconds);
2. messages prefetched but not started go back to the broker: Dramatiq requeues its work
   queue (on Redis, ``requeue`` moves them from this worker's ack set back to the queue; on
   RabbitMQ, closing the channel returns every unacked message), and what the Redis consumer
   had fetched but not yet handed to the work queue is requeued here as well;
3. it exits with a code the supervisor reads (:data:`EXIT_CODES`).

SIGINT is ignored: a terminal's Ctrl-C reaches the whole process group, and the supervisor
forwards it as SIGTERM.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from dramatiq import Message, Worker
from dramatiq.brokers.stub import StubBroker

from .. import notifier_modules, preflight
from ..errors import ConfigurationError
from . import logs
from .recycling import MEMORY, MESSAGES, Recycler

__all__ = ["EXIT_CODES", "EXIT_CRASH", "EXIT_MEMORY", "EXIT_MESSAGES", "EXIT_OK", "EXIT_USAGE", "main", "run"]

_log = logging.getLogger("jobs.worker.process")  # not "__main__" when run with -m

EXIT_OK = 0          # stopped when asked; every message in hand finished
EXIT_CRASH = 1       # a message was still running at the deadline (it will be redelivered), or a crash
EXIT_USAGE = 2       # a module does not import, no notifier registered, no tables, or the broker is not a shared one
EXIT_MEMORY = 3      # recycled: past its memory limit
EXIT_MESSAGES = 4    # recycled: processed its maximum number of messages

#: What each exit code of a worker process means.
EXIT_CODES = {EXIT_OK: "stopped", EXIT_CRASH: "crashed", EXIT_USAGE: "cannot start", EXIT_MEMORY: "memory",
              EXIT_MESSAGES: "messages"}

_PARENT_CHECK_SECONDS = 1.0


def run(spec: dict[str, Any]) -> int:
    """Run one worker process as ``spec`` says; return its exit code.

    ``spec`` keys: ``modules``, ``paths``, ``threads``, ``queues`` (empty: every declared queue),
    ``shutdown_timeout`` (seconds), ``max_memory_mb``, ``max_messages``, ``metrics`` (bool),
    ``parent`` (the supervisor's pid, or 0), ``check`` (only check that a worker could start:
    the modules, the notifiers, the database and the broker; exit 0, 1 or 2 with one line).
    """
    # A signal handler must not take a lock (Event.set does): a second SIGTERM arriving while the
    # first handler holds the Event's lock would deadlock the main thread. It sets a flag that the
    # main loop polls; other threads (recycler, parent watch) may set `wake` to be noticed at once.
    stopping: list[bool] = []
    wake = threading.Event()

    def on_sigterm(*_: object) -> None:
        stopping.append(True)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    # The supervisor starts us with SIGTERM blocked, so that one sent while Python was starting
    # waits for this handler instead of killing the process before it could drain anything.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    import jobs  # the configured broker, then the actors (and the sweeper middleware)
    from .. import metrics

    refused = _refusal(spec)
    if refused is not None:
        return refused
    broker = jobs.broker  # the one Tidings' actors are on now: a module may have passed its own to configure()

    recycler = Recycler(max_memory_bytes=int(spec.get("max_memory_mb", 0)) * 2**20,
                        max_messages=int(spec.get("max_messages", 0)), on_due=wake.set)
    broker.add_middleware(recycler)
    broker.add_middleware(logs.LogContext())
    if spec.get("metrics"):
        metrics.enable_in_worker(broker)
    broker.emit_after("process_boot")
    worker = Worker(broker, worker_threads=int(spec["threads"]), queues=set(spec.get("queues") or ()) or None)
    worker.start()
    _log.info("Worker process %d is consuming (%d threads, queues: %s).", os.getpid(), worker.worker_threads,
              ", ".join(sorted(spec.get("queues") or ())) or "all declared")

    parent = int(spec.get("parent") or 0)

    def orphaned() -> None:
        stopping.append(True)
        wake.set()

    threading.Thread(target=_watch_parent, args=(parent, orphaned, lambda: bool(stopping or recycler.due.is_set())),
                     daemon=True, name="tidings-parent-watch").start()
    while not (stopping or recycler.due.is_set()):
        wake.wait(0.2)

    return _stop(worker, recycler, spec, stopped_by_signal=bool(stopping))


def _refusal(spec: dict[str, Any]) -> int | None:
    """The exit code of a process that must not consume (said in one line), ``EXIT_OK`` after a check, else None."""
    import jobs

    if isinstance(jobs.broker, StubBroker):
        _log.error("tidings worker needs a shared broker: set TIDINGS_BROKER_URL to redis://... or amqp://..., or "
                   "TIDINGS_APP_BROKER to your own (the stub broker only reaches workers in the same process).")
        return EXIT_USAGE
    problem = _boot(spec)
    broker = jobs.broker  # the one Tidings' actors are on now: a module may have passed its own to configure()
    if problem is None and spec.get("check"):
        problem = preflight.database_problem(jobs.runtime.current().engine) or preflight.broker_problem(
            broker, jobs.runtime.current().settings.broker_url)
    if problem is not None:
        _log.error("%s", problem[1])
        return problem[0]
    if spec.get("check"):
        return EXIT_OK
    return None


def _stop(worker: Worker, recycler: Recycler, spec: dict[str, Any], *, stopped_by_signal: bool) -> int:
    """Finish the messages in hand within the shutdown timeout, close the broker; the exit code."""
    _log.info("Worker process %d is stopping: finishing the messages in hand (up to %s s).", os.getpid(),
              spec["shutdown_timeout"])
    worker.stop(timeout=int(float(spec["shutdown_timeout"]) * 1000))
    _requeue_fetched(worker)
    abandoned = recycler.in_hand  # still running in a worker thread that the deadline left behind
    worker.broker.close()
    if abandoned:
        _log.error("Worker process %d: %d message(s) still running at the deadline; the broker will redeliver "
                   "them and the sweeper will reclaim their deliveries after the lease.", os.getpid(), abandoned)
        return EXIT_CRASH
    if recycler.due.is_set() and not stopped_by_signal:
        return {MEMORY: EXIT_MEMORY, MESSAGES: EXIT_MESSAGES}[recycler.reason or MEMORY]
    _log.info("Worker process %d stopped.", os.getpid())
    return EXIT_OK


def _boot(spec: dict[str, Any]) -> preflight.Problem | None:
    """Import the application modules and the notifier modules; why the worker cannot start, or ``None``."""
    for path in reversed(spec.get("paths", [])):
        sys.path.insert(0, os.path.abspath(path))
    for module in spec["modules"]:
        try:
            importlib.import_module(module)
        except ImportError as error:
            return EXIT_USAGE, f"Cannot import {module!r} (from {', '.join(spec.get('paths', [])) or '.'}): {error}"
    try:
        imported = [*spec["modules"], *notifier_modules.load()]
    except ConfigurationError as error:
        return EXIT_USAGE, str(error)
    nobody = notifier_modules.nothing_registered(list(dict.fromkeys(imported)))
    return None if nobody is None else (EXIT_USAGE, nobody)


def _watch_parent(parent: int, stop: Callable[[], None], stopped: Callable[[], bool]) -> None:
    """Stop (gracefully) when the supervisor is gone, e.g. SIGKILLed: no orphan keeps consuming."""
    while parent and not stopped():
        if os.getppid() != parent:
            _log.warning("Worker process %d: its supervisor %d is gone; stopping.", os.getpid(), parent)
            stop()
            return
        time.sleep(_PARENT_CHECK_SECONDS)


def _requeue_fetched(worker: Worker) -> None:
    """Return what a Redis consumer fetched but had not yet handed to the work queue.

    Dramatiq's ``Worker.stop`` requeues its work queue and delay queue, but a Redis consumer
    stopped in the middle of a fetched batch keeps the rest in ``message_cache``: those
    messages sit in this worker's ack set until another worker notices its heartbeat stopped
    (a minute or more). RabbitMQ consumers have nothing to do here: closing returns them.
    """
    for thread in worker.consumers.values():
        consumer = thread.consumer
        cached = getattr(consumer, "message_cache", None)
        if consumer is None or not cached:
            continue
        messages = [Message.decode(data) for data in cached if data is not None]
        try:
            consumer.requeue(messages)  # type: ignore[arg-type]
            cached.clear()
            _log.info("Requeued %d fetched message(s) on %s.", len(messages), thread.queue_name)
        except Exception:  # the broker is gone: the heartbeat timeout will return them
            _log.warning("Could not requeue %d fetched message(s) on %s.", len(messages), thread.queue_name,
                         exc_info=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jobs.worker.process SPEC``."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack: what is it stuck on?
    logs.setup(spec.get("log_format", "text"), spec.get("log_level", "INFO"))
    try:
        return run(spec)
    except Exception:
        _log.exception("Worker process %d failed.", os.getpid())
        return EXIT_CRASH
    finally:
        # Done: a late SIGTERM must not kill the interpreter while it exits and turn our exit code
        # into -15. Python restores the default action of signals it handles at finalization, but
        # leaves ignored ones ignored (blocking would not do: only this thread would block it).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
