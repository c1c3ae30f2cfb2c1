"""Time: what timeouts cost the request, how fast workers fire them, and the periodic query on a full table.

Run: ``python -m bench.timers`` (part of ``make bench``).

1. The request firing a transition into a state that declares a timeout, against one into the
   same state of a model without it (SQLite and PostgreSQL, StubBroker): the timer is written by
   the worker's fan-out, so the request should pay nothing.
2. 100,000 due timers fired by ``dramatiq jobs bench.app`` (2 processes, PostgreSQL + Redis,
   ``due_interval`` 0.2 s): from the first fired to the last, and from the worker's start.
3. ``EXPLAIN (ANALYZE, BUFFERS)`` of the periodic query (and of the query telling which rows moved
   on) with 1,000,000 pending timers, 1,000 of them due.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import timers
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, TimedTask, UntimedTask
from .common import (
    REDIS_URL,
    Figure,
    fmt_seconds,
    header,
    interleaved,
    machine,
    quiet_logs,
    reachable,
    report,
    scratch_space,
)
from .request import BLOCK, ITERATIONS, ms, settle
from .runs import group_cpu, start_worker, stop_worker

DUE = 100_000
DUE_RUNS = 3
PENDING = 1_000_000


def flipping(engine: Engine, model: type, key: int) -> Callable[[], None]:
    """A request: load the row, flip it to the other state (both time out, or neither), commit."""
    def op() -> None:
        with Session(engine) as session:
            row = session.get(model, key)
            assert row is not None
            row.fire("flip" if row.state == "a" else "flop", actor="bench")
            session.commit()
    return op


def requests(engine: Engine, label: str) -> Figure:
    """Figure (i): into a timed state against into an untimed one, interleaved."""
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([TimedTask(id=1, state="a"), UntimedTask(id=1, state="a")])
        session.commit()
    ops = {"untimed": flipping(engine, UntimedTask, 1), "timed": flipping(engine, TimedTask, 1)}
    interleaved(20, ops, settle)
    times = interleaved(ITERATIONS, ops, settle, block=BLOCK)
    return ms(f"{label}: transition into a state with a timeout vs without", times["timed"], times["untimed"],
              "same transition, no timeout", 1.05)


def fill_due(engine: Engine, count: int, due_now: int) -> None:
    """``count`` TimedTask rows in 'a', each started long ago, with its timer pending; ``due_now`` of them due."""
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO bench_timed_tasks (id, state) SELECT i, 'a' FROM generate_series(1, {count}) i"))
        connection.execute(text(f"""
            INSERT INTO tidings_transitions (id, model, key, trigger, source, dest, actor, context, created_at, fanned_out_at)
            SELECT i, 'BenchTimed', i::text, 'start', 'new', 'a', 'bench', '{{}}', now() - interval '8 days',
                   now() - interval '8 days' FROM generate_series(1, {count}) i"""))
        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('tidings_transitions', 'id'), {count})"))
        connection.execute(text(f"""
            INSERT INTO tidings_timers (transition_id, model, key, trigger, due_at, status, created_at, updated_at)
            SELECT i, 'BenchTimed', i::text, 'lapse',
                   CASE WHEN i <= {due_now} THEN now() - interval '1 day' + i * interval '1 millisecond'
                        ELSE now() + i * interval '1 second' END, 'pending', now(), now()
            FROM generate_series(1, {count}) i"""))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("bench_timed_tasks", "tidings_transitions", "tidings_timers"):
            connection.exec_driver_sql(f"VACUUM ANALYZE {table}")


def pending(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(timers.Timer)
                                  .where(timers.Timer.status == timers.TimerStatus.PENDING)) or 0)


def any_with(engine: Engine, status: str) -> bool:
    """Whether some timer has ``status``: one probe, so that polling costs the workers nothing."""
    with Session(engine) as session:
        return session.scalar(select(timers.Timer.id).where(timers.Timer.status == status).limit(1)) is not None


def fire_run() -> tuple[float, float, float, float]:
    """Figure (ii), one run: seconds from the first timer fired to the last, and from the worker's start; the
    worker processes' CPU seconds meanwhile; the machine's load average (1 minute) at the end."""
    with scratch_space() as (url, queue):
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        tidings_metadata.create_all(engine)
        fill_due(engine, DUE, DUE)
        env = {"TIDINGS_DATABASE_URL": url, "TIDINGS_BROKER_URL": REDIS_URL, "TIDINGS_QUEUE": queue,
               "TIDINGS_DUE_INTERVAL": "0.2", "TIDINGS_EMAIL_CHANNEL": "console"}
        started = time.perf_counter()
        worker = start_worker(["jobs", "bench.app"], env)
        try:
            first = last = None
            deadline = started + 600
            while time.perf_counter() < deadline:  # polled every 0.1 s: each figure is within 0.1 s
                if first is None and any_with(engine, timers.TimerStatus.FIRED):
                    first = time.perf_counter()
                if first is not None and not any_with(engine, timers.TimerStatus.PENDING):
                    last = time.perf_counter()
                    break
                time.sleep(0.1)
            if first is None or last is None:
                raise TimeoutError(f"{pending(engine)} of {DUE} timers still pending after 600 s")
            with Session(engine) as session:
                fired = session.scalar(select(func.count()).select_from(timers.Timer)
                                       .where(timers.Timer.status == timers.TimerStatus.FIRED))
            if fired != DUE:
                raise RuntimeError(f"{fired} of {DUE} timers fired")
            cpu = group_cpu(worker.pid)
        finally:
            stop_worker(worker)
            engine.dispose()
    return last - first, last - started, cpu, os.getloadavg()[0]


def plans() -> list[Figure]:
    """Figure (iii): the periodic query's plan and time with ``PENDING`` pending timers."""
    with scratch_space() as (url, _):
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        tidings_metadata.create_all(engine)
        start = time.perf_counter()
        fill_due(engine, PENDING, 1000)
        print(f"(Filled {PENDING:,} transitions and pending timers, 1,000 due, in "
              f"{fmt_seconds(time.perf_counter() - start)}.)\n")
        seen: list[tuple[str, str, object]] = []
        step = ["the due timers, locked (FOR UPDATE SKIP LOCKED)"]

        def capture(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
            if "tidings_timers" in statement and not statement.startswith("UPDATE"):
                seen.append((step[0], statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        with Session(engine) as session:
            taken = session.execute(timers._DUE, {"due_now": timers.utcnow(), "models": ["BenchTimed"],
                                                  "most": timers.BATCH}).all()
            step[0] = "which of their rows had a later transition"
            timers._left(session, taken)
            session.rollback()
        event.remove(engine, "before_cursor_execute", capture)
        times: list[float] = []
        unindexed = []
        with engine.connect() as connection:
            for where, statement, parameters in seen:
                for _ in range(20):
                    transaction = connection.begin()
                    begun = time.perf_counter()
                    connection.exec_driver_sql(statement, parameters).all()  # type: ignore[arg-type]
                    if where.startswith("the due"):
                        times.append(time.perf_counter() - begun)
                    transaction.rollback()
                transaction = connection.begin()
                lines = [row[0] for row in connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)]  # type: ignore[arg-type]
                transaction.rollback()
                if any("Seq Scan on tidings_" in line for line in lines):
                    unindexed.append(where)
                print(f"**{where}**: `{' '.join(statement.split())[:200]}`\n")
                print("```\n" + "\n".join(lines) + "\n```\n")
        print("Every statement uses an index." if not unindexed else f"Sequential scans in: {', '.join(unindexed)}.")
        engine.dispose()
    return [Figure(f"the due query, {timers.BATCH} of 1,000 due among {PENDING:,} pending timers", unit="ms",
                   tidings=times, scale=1000.0, digits=2)]


def main() -> list[Figure]:
    header("Time: timeouts", f"(i) the request into a timed state, median and p90 of {ITERATIONS * BLOCK} requests, "
                             f"interleaved in blocks of {BLOCK} (ms); (ii) {DUE:,} due timers fired by 2 worker "
                             f"processes, {DUE_RUNS} runs; (iii) the periodic query on {PENDING:,} pending timers.")
    quiet_logs()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
        engine = create_engine(f"sqlite:///{Path(folder) / 'timers.db'}")
        figures.append(requests(engine, "SQLite + StubBroker"))
        engine.dispose()
    if not reachable(5432):
        return report(figures, "PostgreSQL is not reachable on 127.0.0.1:5432: only the embedded default was measured.")
    with scratch_space() as (url, _):
        jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
        engine = create_engine(url)
        figures.append(requests(engine, "PostgreSQL + StubBroker"))
        engine.dispose()
    if reachable(6379):
        runs = [fire_run() for _ in range(DUE_RUNS)]
        figures.append(Figure(f"{DUE:,} due timers fired by 2 worker processes, first to last", unit="s",
                              tidings=[r[0] for r in runs], limit=60.0, digits=1))
        figures.append(Figure(f"{DUE:,} due timers fired, from the worker's start", unit="s",
                              tidings=[r[1] for r in runs], digits=1))
        figures.append(Figure(f"{DUE:,} due timers: CPU seconds of the 2 worker processes (firing and the fan-outs "
                              f"of what they fired)", unit="s", tidings=[r[2] for r in runs], digits=1))
        rates = [DUE / r[0] for r in runs]
        print(f"(Timers fired per second, first to last: median {statistics.median(rates):,.0f}, "
              f"runs {', '.join(f'{r:,.0f}' for r in rates)}; the machine's load average (1 min) after each run: "
              f"{', '.join(f'{r[3]:.1f}' for r in runs)} on {os.cpu_count()} CPUs.)\n")
    figures += plans()
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    return report(figures)


if __name__ == "__main__":
    from .__main__ import commit

    print(f"# Tidings benchmarks: time\n\nCommit: {commit()}.\nStarted: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
          f"\nMachine: {machine()}.", flush=True)
    main()
