"""Running a ``dramatiq`` worker for the throughput bench: an SMTP sink noting arrivals, a run's timing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .common import REDIS_URL

WINDOW = 100
_SUBJECT = re.compile(rb"Subject: Task (\d+) finished")
ROOT = Path(__file__).parents[1]
_CLOCK = os.sysconf("SC_CLK_TCK")


class Sink:
    """An SMTP server that notes when each message arrived, and when the first mail of each task did.

    The task is read from the subject (``Task <n> finished``, the bench's mails), for the latency
    from a commit to its mail (``bench/versus.py``).
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tasks: dict[int, float] = {}
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        found = _SUBJECT.search(envelope.content)
        with self.arrived:
            self.times.append(now)
            if found:
                self.tasks.setdefault(int(found[1]), now)
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.times) >= count, timeout=timeout):
                raise TimeoutError(f"only {len(self.times)} of {count} mails arrived in {timeout} s")


@dataclass
class Run:
    """One run: the mails' arrival times, when the worker had acknowledged every message, and its CPU seconds.

    The rate runs from the first mail to the end of the worker's work, the later of the last
    mail and the last message acknowledged: work a worker does after the last mail (Tidings'
    fan-out messages whose transitions another message planned) is counted.
    """

    times: list[float]
    drained: float
    cpu: float
    start: float | None = None  # the first commit or send, when timed from it; else the first mail

    @property
    def rate(self) -> float:
        start = self.times[0] if self.start is None else self.start
        return len(self.times) / (max(self.times[-1], self.drained) - start)

    def windows(self) -> list[float]:
        """Rates over successive windows of ``WINDOW`` mails."""
        t = self.times
        return [WINDOW / (t[i + WINDOW] - t[i]) for i in range(0, len(t) - WINDOW, WINDOW)]


@contextmanager
def sink() -> Iterator[tuple[Sink, int]]:
    """An aiosmtpd server on 127.0.0.1 noting arrival times; yields it and its port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def start_worker(modules: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``dramatiq <modules>`` with 2 processes x 8 threads, in a process group of its own."""
    command = [sys.executable, "-m", "dramatiq", *modules, "--processes", "2", "--threads", "8", "--path", str(ROOT)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's master, which shuts its processes down gracefully; then SIGKILL the group.

    The master forwards the signal: sending it to the whole group would make each process get
    it twice, which Dramatiq takes as "kill now".
    """
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group, orphans included
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) used so far by the processes of process group ``group``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK


def drained_at(queue: str, timeout: float = 120.0) -> float:
    """When no message of ``queue`` is left in Redis, queued or being processed (polled every 2 ms)."""
    client = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + timeout
    while client.hlen(f"dramatiq:{queue}.msgs"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"queue {queue} still had messages after {timeout} s")
        time.sleep(0.002)
    return time.perf_counter()


def run_worker(modules: list[str], env: dict[str, str], handler: Sink, count: int, queue: str,
               produce: Callable[[], None] | None = None) -> Run:
    """Start a worker and time the ``count`` mails it delivers and its last ack, then stop it.

    Without ``produce``, the worker delivers what is queued already, timed from its first mail.
    With it, the worker is warmed first by one mail (the queue's first message, queued by the
    caller), then ``produce`` commits or sends the ``count`` others, timed from its start.
    """
    process = start_worker(modules, env)
    start = None
    try:
        handler.wait_for(1, timeout=120)
        if produce is not None:
            drained_at(queue)
            with handler.arrived:
                handler.times.clear()
            start = time.perf_counter()
            cpu_first = group_cpu(process.pid)
            produce()
        else:
            cpu_first = group_cpu(process.pid)
        handler.wait_for(count, timeout=300)
        drained = drained_at(queue)
        cpu_last = group_cpu(process.pid)
        time.sleep(0.2)  # the last marks are written after the mails are accepted
    finally:
        stop_worker(process)
    with handler.arrived:
        times = sorted(handler.times)
        handler.times.clear()
    return Run(times[:count], drained, cpu_last - cpu_first, start)
