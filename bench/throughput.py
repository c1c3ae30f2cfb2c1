"""Worker throughput: Tidings' delivery path against a bare Dramatiq actor sending the same mail.

Run: ``python -m bench.throughput`` (part of ``make bench``). Both run as ``dramatiq`` worker
processes (2 processes x 8 threads) on the same Redis, mailing the same aiosmtpd server on
loopback. The messages are queued first, then the worker is started; the rate is taken from
the first mail accepted to the last, so start-up is left out of both.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jobs
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .common import REDIS_URL, header, scratch_space, table
from .request import Base, Task, reachable

COUNT = 2000
ROOT = Path(__file__).parents[1]


class Sink:
    """An SMTP server that notes when each message arrived."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.times.append(time.perf_counter())
            self.arrived.notify_all()
        return "250 OK"

    def rate(self, count: int, timeout: float = 300) -> float:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.times) >= count, timeout=timeout)
            times = sorted(self.times)
        if len(times) < count:
            raise TimeoutError(f"only {len(times)} of {count} mails arrived")
        return (count - 1) / (times[-1] - times[0])


def worker(modules: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dramatiq", *modules, "--processes", "2", "--threads", "8", "--path", str(ROOT)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def serve() -> tuple[Any, Sink]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink


def bare(queue: str) -> float:
    controller, sink = serve()
    env = {"BENCH_REDIS_URL": REDIS_URL, "BENCH_QUEUE": queue, "BENCH_SMTP_HOST": "127.0.0.1",
           "BENCH_SMTP_PORT": str(controller.port)}
    os.environ.update(env)
    from .bare_actor import bare_send

    for number in range(COUNT):
        bare_send.send(number)
    process = worker(["bench.bare_actor"], env)
    try:
        return sink.rate(COUNT)
    finally:
        stop(process)
        controller.stop()


def tidings(queue: str, database_url: str) -> float:
    controller, sink = serve()
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, database_url=database_url, sweep_interval=0)
    with Session(engine) as session:
        tasks = [Task(id=n, watchers=[f"w{n}@example.com"]) for n in range(COUNT)]
        session.add_all(tasks)
        session.commit()
        for task in tasks:
            task.finish()
        session.commit()  # one commit, COUNT fan-out messages
    env = {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
           "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(controller.port)}
    process = worker(["jobs", "bench.request"], env)  # bench.request declares the Task model and its notifier
    try:
        return sink.rate(COUNT)
    finally:
        stop(process)
        controller.stop()
        engine.dispose()


def main() -> None:
    header("Worker throughput", f"{COUNT} mails, commit to accepted by aiosmtpd, dramatiq 2 processes x 8 threads, "
                                "PostgreSQL + Redis.")
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return
    with scratch_space() as (database_url, queue):
        bare_rate = bare(f"{queue}_bare")
        tidings_rate = tidings(f"{queue}_tidings", database_url)
    ratio = tidings_rate / bare_rate
    table([("deliveries per second", f"{bare_rate:.0f}", f"{tidings_rate:.0f}", f"{ratio:.2f}", ">= 0.7",
            "yes" if ratio >= 0.7 else "NO")], ["measure", "bare Dramatiq", "Tidings", "ratio", "target", "met"])


if __name__ == "__main__":
    main()
