"""The periodic work of a worker process: one thread running named tasks, each on its own interval.

Every worker process runs the same schedule, so a task runs in each of them: it must be safe
when several run it at once (the sweep takes its rows with ``FOR UPDATE SKIP LOCKED`` and
re-stamps them, so each is taken once). Each wait is jittered so that processes started
together do not run a task in the same instant. The sweep is the first task; reminders,
digests and pruning join it here (:meth:`Schedule.add`), not as threads of their own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dramatiq

__all__ = ["Schedule", "Task"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A named piece of periodic work.

    Attributes:
        name: what the logs call it; a task added under a name already scheduled replaces it.
        run: does the work once; an exception is logged and the task runs again at its next turn.
        interval: seconds between runs, read before each wait (so a change of settings applies); 0 or
            less: not run.
        jitter: each wait is the interval times a factor drawn in ``[1 - jitter, 1 + jitter]``.
    """

    name: str
    run: Callable[[], object]
    interval: Callable[[], float]
    jitter: float = 0.1

    def next_wait(self) -> float | None:
        """Seconds until the next run: the interval, jittered; ``None`` when the task is off."""
        interval = self.interval()
        if interval <= 0:
            return None
        return interval * random.uniform(1 - self.jitter, 1 + self.jitter)


class Schedule(dramatiq.Middleware):
    """Runs its tasks in one thread of each worker process, from the worker's boot to its shutdown.

    Args:
        tasks: the tasks to run.
    """

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self._tasks: dict[str, Task] = {task.name: task for task in tasks}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tasks(self) -> list[str]:
        """The names of the tasks, in the order they were added."""
        return list(self._tasks)

    def add(self, task: Task) -> None:
        """Schedule ``task`` (replacing one of the same name); it runs from the next worker boot."""
        self._tasks[task.name] = task

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start the thread, if any task is to run."""
        if not any(task.interval() > 0 for task in self._tasks.values()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tidings-schedule", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop the thread, waiting for a task in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        due = {name: self._next(task, time.monotonic()) for name, task in self._tasks.items()}
        while True:
            waiting = {name: at for name, at in due.items() if at is not None}
            if not waiting:
                return
            name = min(waiting, key=waiting.__getitem__)
            if self._stop.wait(max(0.0, waiting[name] - time.monotonic())):
                return
            task = self._tasks[name]
            try:
                task.run()
            except Exception:  # a database or broker blip: try again at the next turn
                _log.exception("Scheduled task %s failed; it runs again in about %s s.", name, task.interval())
            due[name] = self._next(task, time.monotonic())

    @staticmethod
    def _next(task: Task, now: float) -> float | None:
        """When ``task`` runs next (``None``: it is off)."""
        wait = task.next_wait()
        return None if wait is None else now + wait
