"""Round two: Tidings against the hand-written alternative, and against the SMTP server's limit.

Run: ``python -m bench.versus`` (part of ``make bench`` and ``make bench-quick``). The
hand-written alternative is ``bench/handwritten.py``: an ``after_commit`` hook sending one
Dramatiq message per party inside ``commit()``, an actor loading the row and the party and
mailing an ``EmailMessage`` over a per-thread smtplib connection. Both run as ``dramatiq``
workers of 2 processes x 8 threads on the same PostgreSQL, Redis and aiosmtpd server, rounds
alternating. Each round, with the worker running (warmed by one mail):

- *paced*: ``PACED`` transitions committed at 50 a second, one each; the latency from the call
  to ``commit()`` to its mail's arrival at the SMTP server;
- *back to back*: ``BACK_TO_BACK`` transitions committed one after the other by one request
  thread (load, change, commit) while the workers deliver: the request thread's rate.

Then the SMTP server's limit: a minimal smtplib client (``bench/smtp_limit.py``, 2 processes x 8
threads, prebuilt bytes) against Tidings delivering transitions to 50 watchers each (a backlog,
one commit each), alternating.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import jobs
from jobs import outbox
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from . import throughput
from .app import Base, HandTask, HandWatcher, Task, watchers
from .common import QUICK, REDIS_URL, Figure, header, quiet_logs, reachable, report, scratch_space
from .runs import ROOT, Sink, drained_at, sink, start_worker, stop_worker

ROUNDS = 1 if QUICK else 3
PACED = 100 if QUICK else 250
RATE = 50.0
BACK_TO_BACK = 300 if QUICK else 1000
WATCHERS = 50


@dataclass
class Round:
    """One round of one side: each paced transition's latency (s), the back-to-back rate (transitions/s)."""

    latencies: list[float] = field(default_factory=list)
    rate: float = 0.0


Request = Callable[[int], None]  # commits the transition of task n


def paced(request: Request, numbers: list[int], handler: Sink) -> list[float]:
    """Commit ``numbers`` at ``RATE`` a second; each one's latency from its commit to its mail."""
    committed: dict[int, float] = {}
    start = time.perf_counter()
    for n, number in enumerate(numbers):
        pause = start + n / RATE - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        committed[number] = time.perf_counter()
        request(number)
    handler.wait_for(len(numbers), timeout=120)
    return [handler.tasks[number] - at for number, at in committed.items()]


def back_to_back(request: Request, numbers: list[int], handler: Sink, before: int) -> float:
    """Commit ``numbers`` one after the other; the rate of the request thread (their mails awaited, untimed)."""
    start = time.perf_counter()
    for number in numbers:
        request(number)
    took = time.perf_counter() - start
    handler.wait_for(before + len(numbers), timeout=300)
    return len(numbers) / took


def measure(request: Request, numbers: list[int], handler: Sink, modules: list[str], env: dict[str, str],
            queue: str) -> Round:
    """Start the worker, warm it with the first of ``numbers``, then the paced and the back-to-back runs."""
    request(numbers[0])
    process = start_worker(modules, env)
    try:
        handler.wait_for(1, timeout=120)
        drained_at(queue)
        with handler.arrived:
            handler.times.clear()
            handler.tasks.clear()
        latencies = paced(request, numbers[1:PACED + 1], handler)
        drained_at(queue)
        rate = back_to_back(request, numbers[PACED + 1:], handler, PACED)
        drained_at(queue)
    finally:
        stop_worker(process)
    with handler.arrived:
        handler.times.clear()
        handler.tasks.clear()
    return Round(latencies, rate)


def _first_free(session: Session, model: type[Task] | type[HandTask]) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def hand(database_url: str, queue: str) -> Round:
    """A round of the hand-written alternative."""
    with sink() as (handler, port):
        env = {"BENCH_REDIS_URL": REDIS_URL, "BENCH_QUEUE": queue, "BENCH_SMTP_HOST": "127.0.0.1",
               "BENCH_SMTP_PORT": str(port), "BENCH_DATABASE_URL": database_url}
        os.environ.update(env)  # the actor's queue and broker are read when it is imported
        from .handwritten import HandSession, finish

        engine = create_engine(database_url)
        Base.metadata.create_all(engine)
        with HandSession(engine) as session:
            first = _first_free(session, HandTask)
            numbers = list(range(first, first + PACED + BACK_TO_BACK + 1))
            session.add_all(HandTask(id=n, state="open", watchers=[HandWatcher(email=f"w{n}@example.com")])
                            for n in numbers)
            session.commit()

            def request(number: int) -> None:
                task = session.get(HandTask, number)
                assert task is not None
                finish(session, task)
                session.commit()

            try:
                return measure(request, numbers, handler, ["bench.handwritten:broker"], env, queue)
            finally:
                engine.dispose()


def tidings(database_url: str, queue: str) -> Round:
    """A round of Tidings."""
    engine = create_engine(database_url)
    _tables(engine)
    jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, database_url=database_url, sweep_interval=0)
    with sink() as (handler, port), Session(engine) as session:
        first = _first_free(session, Task)
        numbers = list(range(first, first + PACED + BACK_TO_BACK + 1))
        session.add_all(Task(id=n, watchers=watchers(1, first=n)) for n in numbers)
        session.commit()

        def request(number: int) -> None:
            task = session.get(Task, number)
            assert task is not None
            task.finish()
            session.commit()

        env = {"TIDINGS_DATABASE_URL": database_url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
               "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(port),
               "TIDINGS_SWEEP_INTERVAL": "0"}
        try:
            return measure(request, numbers, handler, ["jobs", "bench.app"], env, queue)
        finally:
            outbox.dispatcher.flush(30)
            engine.dispose()


def _tables(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)


def smtp_limit(count: int) -> float:
    """Mails per second the aiosmtpd server takes from the minimal client, 2 processes x 8 threads."""
    with sink() as (handler, port):
        command = [sys.executable, "-m", "bench.smtp_limit", "127.0.0.1", str(port), str(count // 2), "8"]
        processes = [subprocess.Popen(command, cwd=ROOT) for _ in range(2)]
        try:
            handler.wait_for(count // 2 * 2, timeout=120)
        finally:
            for process in processes:
                process.wait(timeout=60)
        times = sorted(handler.times)
    return len(times) / (times[-1] - times[0])


@contextmanager
def _quiet() -> Iterator[None]:
    quiet_logs()
    yield
    jobs.configure(jobs.Settings(), broker_url="stub", sweep_interval=0)


def main() -> list[Figure]:
    """The round-two figures: request rate and latency against the hand-written alternative, the SMTP limit."""
    header("Round two: against the hand-written alternative and the SMTP server's limit",
           f"Workers 2 processes x 8 threads, PostgreSQL + Redis, aiosmtpd; {ROUNDS} rounds alternating Tidings "
           f"and the hand-written alternative (bench/handwritten.py: an after_commit hook sending one message per "
           f"party inside commit(), an actor mailing an EmailMessage). Paced: {PACED} transitions at {RATE:.0f}/s, "
           f"commit() called -> mail arrived. Back to back: {BACK_TO_BACK} commits of one request thread while the "
           f"workers deliver. SMTP limit: a minimal smtplib client (2 x 8 threads, prebuilt bytes) against Tidings "
           f"mailing transitions to {WATCHERS} watchers each ({throughput.COUNT:,} mails, a backlog of one commit each).")
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    with _quiet(), scratch_space() as (database_url, queue):
        sides: dict[str, list[Round]] = {"hand": [], "tidings": []}
        limits: list[float] = []
        fifty: list[float] = []
        for _ in range(ROUNDS):
            sides["hand"].append(hand(database_url, f"{queue}_hand"))
            sides["tidings"].append(tidings(database_url, f"{queue}_tidings"))
            limits.append(smtp_limit(throughput.COUNT))
            fifty.append(throughput.tidings(f"{queue}_fifty", database_url, one_commit=False, recipients=WATCHERS).rate)
    hand_rounds, tidings_rounds = sides["hand"], sides["tidings"]
    figures = [
        Figure("one request thread committing back to back while the workers run: transitions/s vs hand-written",
               unit="/s", tidings=[r.rate for r in tidings_rounds], baseline=[r.rate for r in hand_rounds],
               baseline_name="hand-written", limit=1.0, at_most=False, lower_is_better=False, digits=0),
        Figure(f"commit -> mail arrival at a steady {RATE:.0f} transitions/s, vs hand-written", unit="ms",
               tidings=[x for r in tidings_rounds for x in r.latencies],
               baseline=[x for r in hand_rounds for x in r.latencies], baseline_name="hand-written", limit=1.0,
               scale=1000, digits=1),
        Figure(f"{WATCHERS}-watcher transitions: mails/s vs what the SMTP server takes from a minimal smtplib client",
               unit="mails/s", tidings=fifty, baseline=limits, baseline_name="minimal smtplib client", limit=0.6,
               at_most=False, lower_is_better=False, digits=0),
    ]
    spread = ("Each round: back-to-back transitions/s hand-written " + ", ".join(f"{r.rate:.0f}" for r in hand_rounds)
              + "; Tidings " + ", ".join(f"{r.rate:.0f}" for r in tidings_rounds)
              + ". Latency p50 (ms) hand-written " + ", ".join(_p50(r) for r in hand_rounds)
              + "; Tidings " + ", ".join(_p50(r) for r in tidings_rounds)
              + f". SMTP limit (mails/s) {', '.join(f'{x:.0f}' for x in limits)}; Tidings, {WATCHERS} watchers each, "
              + ", ".join(f"{x:.0f}" for x in fifty) + ".")
    return report(figures, spread)


def _p50(run: Round) -> str:
    return f"{statistics.median(run.latencies) * 1000:.1f}"


if __name__ == "__main__":
    main()
