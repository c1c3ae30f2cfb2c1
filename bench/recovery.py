"""Recovery under a backlog: the drain rate after a worker is SIGKILLed, against the rate before it.

Run: ``python -m bench.recovery`` (part of ``make bench``). A backlog of ``TRANSITIONS``
transitions to ``WATCHERS`` watchers each (their deliveries travel in ``tidings.deliver_each``
chunks) is committed, then ``dramatiq jobs bench.app`` (2 processes x 8 threads, PostgreSQL +
Redis, aiosmtpd) drains it with its sweeper on: every second, taking what was left for
``sweep_after_seconds`` = 5 s (the lowest the target names), leases of 10 s. Once ``KILL_AT`` of
the mails arrived, the worker's process group is SIGKILLed and a new worker started at once.
The rate before: the mails between 5 % and the kill; after: from the new worker's first mail to
95 % of all (the last ones are the killed worker's claims, back once their lease ran out). Under
a backlog every pending delivery is older than 5 s, so each sweep takes up to 1,000 that were
merely waiting in the queue: sent again one message each, they slowed the rest to 0.4-0.7x.
"""

from __future__ import annotations

import os
import signal
import statistics
import time

import jobs
from jobs import outbox
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, Task, watchers
from .common import REDIS_URL, Figure, header, quiet_logs, reachable, report, scratch_space
from .runs import Sink, sink, start_worker, stop_worker

TRANSITIONS = 800
WATCHERS = 10
KILL_AT = 0.4
RUNS = 3
SWEEP_AFTER = 5


def rate(times: list[float], start: int, end: int) -> float:
    """Mails per second between the ``start``-th and the ``end``-th arrival."""
    return (end - start) / (times[end] - times[start])


def one_run(database_url: str, queue: str) -> tuple[float, float, float]:
    """One backlog killed once: the rate before the kill, the rate after, the seconds to the new worker's first mail."""
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, database_url=database_url, sweep_interval=0)
    total = TRANSITIONS * WATCHERS
    with Session(engine) as session, sink() as (handler, port):
        first = (session.scalar(select(func.max(Task.id))) or 0) + 1
        tasks = [Task(id=n, watchers=watchers(WATCHERS, first=n * WATCHERS)) for n in range(first, first + TRANSITIONS)]
        session.add_all(tasks)
        session.commit()
        for task in tasks:
            task.finish()
            session.commit()
        outbox.dispatcher.flush(60)
        env = {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
               "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(port),
               "TIDINGS_SWEEP_INTERVAL": "1", "TIDINGS_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER),
               "TIDINGS_LEASE_SECONDS": "10"}
        process = start_worker(["jobs", "bench.app"], env)
        try:
            kill_at = int(total * KILL_AT)
            handler.wait_for(kill_at, timeout=300)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            killed = time.perf_counter()
            with handler.arrived:
                before = sorted(handler.times)
            process = start_worker(["jobs", "bench.app"], env)
            handler.wait_for(int(total * 0.95), timeout=300)
        finally:
            stop_worker(process)
        after = sorted(t for t in _times(handler) if t > killed)
    engine.dispose()
    end = int(total * 0.95) - len(before) - 1
    return (rate(before, int(total * 0.05), len(before) - 1), rate(after, 0, min(end, len(after) - 1)),
            after[0] - killed)


def _times(handler: Sink) -> list[float]:
    with handler.arrived:
        return list(handler.times)


def main() -> list[Figure]:
    header("Recovery: the drain rate after a SIGKILL",
           f"{TRANSITIONS:,} transitions x {WATCHERS} watchers committed one each, then drained by dramatiq 2 x 8 "
           f"(PostgreSQL + Redis, aiosmtpd) sweeping every second what was left for {SWEEP_AFTER} s; the worker "
           f"SIGKILLed at {KILL_AT:.0%} of the mails and a new one started. {RUNS} runs; rate before: 5 % to the kill; "
           f"after: the new worker's first mail to 95 %.")
    quiet_logs()
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    results = []
    with scratch_space() as (database_url, queue):
        for n in range(RUNS):
            results.append(one_run(database_url, f"{queue}_r{n}"))
    jobs.configure(jobs.Settings(), broker_url="stub", sweep_interval=0)
    before, after, gaps = ([r[i] for r in results] for i in range(3))
    figure = Figure(f"drain rate after a SIGKILL vs before it (sweep_after_seconds={SWEEP_AFTER})", unit="mails/s",
                    tidings=after, baseline=before, baseline_name="before the kill", limit=0.9, at_most=False,
                    lower_is_better=False, digits=0)
    return report([figure], "Each run (mails/s, before -> after; the new worker's first mail after the kill): "
                  + "; ".join(f"{b:.0f} -> {a:.0f} ({g:.1f} s)" for b, a, g in results)
                  + f". Ratios: {', '.join(f'{a / b:.2f}' for b, a, _ in results)} (median of ratios "
                  f"{statistics.median(a / b for b, a, _ in results):.2f}).")


if __name__ == "__main__":
    main()
