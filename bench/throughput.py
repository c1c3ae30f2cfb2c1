"""Worker throughput: Tidings' delivery path against a bare Dramatiq actor sending the same mail.

Run: ``python -m bench.throughput`` (part of ``make bench``). Both run as ``dramatiq`` worker
processes (2 processes x 8 threads, Dramatiq's default prefetch) on the same Redis, mailing the
same aiosmtpd server on loopback. Each run queues its messages first (Tidings: 2,000
transitions, each to one recipient), then starts the worker; the rate is taken from the first
mail accepted to the end of the worker's work (the last mail, or the last message acknowledged
if later), so start-up is left out of both. Runs alternate bare, Tidings on
empty tables (the 2,000 transitions in one commit, then in 2,000 commits of one each) and, for
figure 5, Tidings on tables holding 1,000,000 rows; one more Tidings run with stage timers
(``bench/stages.py``) shows where the worker's time goes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jobs
import redis
from jobs import outbox
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, Task, watchers
from .common import REDIS_URL, Figure, header, quiet_logs, reachable, report, scratch_space, table

COUNT = 2000
ROUNDS = 3
WINDOW = 100
ROOT = Path(__file__).parents[1]
_CLOCK = os.sysconf("SC_CLK_TCK")


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

    @property
    def rate(self) -> float:
        return len(self.times) / (max(self.times[-1], self.drained) - self.times[0])

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


def run_worker(modules: list[str], env: dict[str, str], handler: Sink, count: int, queue: str) -> Run:
    """Start a worker on what is queued, time the ``count`` mails it delivers and its last ack, stop it."""
    process = start_worker(modules, env)
    try:
        handler.wait_for(1, timeout=120)
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
    return Run(times[:count], drained, cpu_last - cpu_first)


def bare(queue: str, *, stages: Path | None = None) -> Run:
    """A bare Dramatiq run: ``COUNT`` messages, each sending one mail."""
    with sink() as (handler, port):
        env = {"BENCH_REDIS_URL": REDIS_URL, "BENCH_QUEUE": queue, "BENCH_SMTP_HOST": "127.0.0.1",
               "BENCH_SMTP_PORT": str(port)}
        os.environ.update(env)  # the actor's queue and broker are read when it is imported
        from .bare_actor import bare_send

        for number in range(COUNT):
            bare_send.send(number)
        modules = ["bench.bare_actor:broker"]
        if stages is not None:
            env["BENCH_STAGES"] = str(stages)
            modules.append("bench.stages")
        return run_worker(modules, env, handler, COUNT, queue)


def tidings(queue: str, database_url: str, *, stages: Path | None = None, one_commit: bool = True) -> Run:
    """A Tidings run: ``COUNT`` transitions, each telling one watcher, committed at once or one per commit.

    Committed at once, the outbox's thread finds them all waiting and sends them in messages of
    up to 50 transitions. One per commit, as requests commit them, it sends each as soon as it
    is committed: the worker gets one message per transition.
    """
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, database_url=database_url, sweep_interval=0)
    with Session(engine) as session:
        first = (session.scalar(select(func.max(Task.id))) or 0) + 1
        tasks = [Task(id=n, watchers=watchers(1, first=n)) for n in range(first, first + COUNT)]
        session.add_all(tasks)
        session.commit()
        for task in tasks:
            task.finish()
            if not one_commit:
                session.commit()
        session.commit()
    outbox.dispatcher.flush(60)
    engine.dispose()
    with sink() as (handler, port):
        env = {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
               "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(port),
               "TIDINGS_SWEEP_INTERVAL": "0"}
        modules = ["jobs", "bench.app"]
        if stages is not None:
            env["BENCH_STAGES"] = str(stages)
            modules.append("bench.stages")
        return run_worker(modules, env, handler, COUNT, queue)


def profile(queue: str, database_url: str) -> None:
    """One more run of each worker with stage timers (bench/stages.py); print where the time goes."""
    rows = []
    for label, go in (("bare Dramatiq", lambda folder: bare(f"{queue}_bare", stages=folder)),
                      ("Tidings", lambda folder: tidings(f"{queue}_tidings", database_url, stages=folder))):
        with tempfile.TemporaryDirectory() as folder:
            run = go(Path(folder))
            totals: dict[str, float] = {}
            for file in Path(folder).glob("*.json"):
                for stage, seconds in json.loads(file.read_text())["totals"].items():
                    totals[stage] = totals.get(stage, 0.0) + seconds
        for stage in sorted(name for name in totals if "CPU" not in name):
            cpu = totals.get(f"{stage}, CPU")
            rows.append((label, stage, f"{totals[stage] / COUNT * 1000:.2f}",
                         f"{cpu / COUNT * 1000:.2f}" if cpu is not None else ""))
        rows.append((label, "all the worker's processes and threads (CPU only)", "",
                     f"{run.cpu / COUNT * 1000:.2f}"))
        rows.append((label, "rate of this profiled run", f"{run.rate:.0f} mails/s", ""))
    print("Where a worker's time goes: a profiled run of each, per delivery. Wall time is a thread's, "
          "so with 16 threads on 2 CPUs (shared with PostgreSQL, Redis and the SMTP server) it includes "
          "waiting for the CPU and the GIL; CPU is that thread's own.\n")
    table(rows, ["worker", "stage", "wall ms", "CPU ms"])


def main(full_url: str | None = None) -> list[Figure]:
    """Figure 4, and figure 5's throughput when ``full_url`` names a database holding 1,000,000 rows."""
    header("Figure 4: worker throughput",
           f"{COUNT} mails per run, commit to accepted by aiosmtpd, dramatiq 2 processes x 8 threads, "
           f"PostgreSQL + Redis; {ROUNDS} rounds alternating the workers. Median of the runs' rates; p90 "
           f"column: the rate that 90 % of {WINDOW}-mail windows reached (mails/s).")
    quiet_logs()
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    runs: dict[str, list[Run]] = {"bare": [], "empty": [], "each": [], "full": []}
    with scratch_space() as (database_url, queue):
        for _ in range(ROUNDS):
            runs["bare"].append(bare(f"{queue}_bare"))
            runs["empty"].append(tidings(f"{queue}_tidings", database_url))
            runs["each"].append(tidings(f"{queue}_each", database_url, one_commit=False))
            if full_url is not None:
                runs["full"].append(tidings(f"{queue}_full", full_url))
        figures = [rate_figure("deliveries per second, Tidings vs bare Dramatiq (one commit of all)", runs["empty"],
                               runs["bare"], "bare actor, smtplib", 0.7),
                   rate_figure("the same, one commit per transition", runs["each"], runs["bare"],
                               "bare actor, smtplib", 0.7)]
        if runs["full"]:
            figures.append(rate_figure("deliveries per second, 1,000,000 rows in the logs vs empty", runs["full"],
                                       runs["empty"], "empty tables", 0.9))
        cpu = {name: statistics.median(r.cpu for r in rs) / COUNT * 1000 for name, rs in runs.items() if rs}
        note = "Worker CPU per mail (ms, median of runs): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + "."
        reported = report(figures, note)
        profile(queue, database_url)
    jobs.configure(jobs.Settings(), broker_url="stub", sweep_interval=0)
    return reported


def rate_figure(name: str, tidings_runs: list[Run], baseline_runs: list[Run], baseline_name: str,
                limit: float) -> Figure:
    """A rate figure: medians over runs, the p90 column from the windows of every run."""
    return Figure(name, unit="mails/s", tidings=[r.rate for r in tidings_runs],
                  baseline=[r.rate for r in baseline_runs], baseline_name=baseline_name, limit=limit,
                  at_most=False, lower_is_better=False, digits=0,
                  tidings_tail=[w for r in tidings_runs for w in r.windows()],
                  baseline_tail=[w for r in baseline_runs for w in r.windows()])


if __name__ == "__main__":
    from .scale import filled

    with filled() as full_url:
        main(full_url)
