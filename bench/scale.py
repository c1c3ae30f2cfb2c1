"""Scale: the request path and the worker with 1,000,000 rows already in the transition and delivery logs.

Run: ``python -m bench.scale`` (part of ``make bench``; the throughput at scale is measured by
``bench.throughput`` on the same filled tables). The full tables hold what months of use leave:
1,000,000 transitions, fanned out, and 1,000,000 deliveries, nearly all sent (some failed, dead
or skipped, a few pending or sending). The request is measured on them and on empty tables,
interleaved; then the plans of the statements the worker and the sweeper run are shown, as
PostgreSQL executes them on the full tables (``EXPLAIN (ANALYZE, BUFFERS)``, rolled back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, actors, sweeper
from notifiers import Channel
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, Task, watchers
from .common import REDIS_URL, Figure, fmt_seconds, header, interleaved, quiet_logs, reachable, report, scratch_space
from .request import BLOCK, ITERATIONS, create_rows, plain_update, settle, transition

ROWS = 1_000_000
RECENT = 100  # transitions not yet fanned out and deliveries pending: the work in flight

# How the filler deliveries' columns are written (SQL over i, the row number); any other column
# must be nullable.
_DELIVERY_VALUES = {
    "key": "md5(i::text)",
    "transition_id": "i",
    "notifier": "'bench.app.TaskNotifier.changed'",
    "party": "'watchers'",
    "channel": "'email'",
    "address": "'w' || i || '@example.com'",
    "recipient_ref": "''",
    "status": f"""CASE WHEN i > {ROWS - RECENT} THEN 'pending' WHEN i > {ROWS - RECENT - 20} THEN 'sending'
                       WHEN i % 1000 = 0 THEN 'failed' WHEN i % 1000 = 1 THEN 'dead'
                       WHEN i % 1000 = 2 THEN 'skipped' ELSE 'sent' END""",
    "attempts": "1",
    "created_at": "now() - ({rows} - i) * interval '1 second'",
    "updated_at": "now() - ({rows} - i) * interval '1 second'",
    "lease_until": f"CASE WHEN i > {ROWS - RECENT - 20} AND i <= {ROWS - RECENT} THEN now() + interval '1 minute' END",
    "sent_at": "now() - ({rows} - i) * interval '1 second'",
}


def fill(engine: Engine) -> float:
    """Write the ``ROWS`` transitions and deliveries, then VACUUM ANALYZE; the seconds it took."""
    start = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(f"""
            INSERT INTO tidings_transitions (model, key, trigger, source, dest, actor, context, created_at,
                                             fanned_out_at)
            SELECT 'BenchTask', (i % 5000)::text, 'finish', 'open', 'done', 'bench', '{{}}',
                   now() - ({ROWS} - i) * interval '1 second',
                   CASE WHEN i <= {ROWS - RECENT} THEN now() - ({ROWS} - i) * interval '1 second' END
            FROM generate_series(1, {ROWS}) AS i"""))
        columns = [c for c in Delivery.__table__.columns if c.name != "id"]
        unknown = [c.name for c in columns if c.name not in _DELIVERY_VALUES and not c.nullable]
        if unknown:
            raise RuntimeError(f"bench.scale does not know how to fill the delivery columns {unknown}")
        written = [c.name for c in columns if c.name in _DELIVERY_VALUES]
        values = ", ".join(_DELIVERY_VALUES[name].format(rows=ROWS) for name in written)
        connection.execute(text(f"INSERT INTO tidings_deliveries ({', '.join(written)}) "
                                f"SELECT {values} FROM generate_series(1, {ROWS}) AS i"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE tidings_transitions")
        connection.exec_driver_sql("VACUUM ANALYZE tidings_deliveries")
    return time.perf_counter() - start


@contextmanager
def filled() -> Iterator[str]:
    """A scratch PostgreSQL schema with the bench's tables and ``ROWS`` rows in each log; yields its URL."""
    with scratch_space() as (url, _):
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        tidings_metadata.create_all(engine)
        seconds = fill(engine)
        engine.dispose()
        print(f"(Filled {ROWS:,} transitions and {ROWS:,} deliveries in {fmt_seconds(seconds)}.)", flush=True)
        yield url


def request(full_url: str) -> Figure:
    """The request (PostgreSQL + Redis) on the full tables against the same on empty tables, interleaved."""
    with scratch_space() as (empty_url, queue):
        empty, full = create_engine(empty_url), create_engine(full_url)
        jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, sweep_interval=0)
        create_rows(empty)
        with Session(full) as session:
            if session.get(Task, 1) is None:
                session.add(Task(id=1, watchers=watchers(1)))
            session.commit()
        ops = {"plain": plain_update(empty, 1), "empty": transition(empty, 1), "full": transition(full, 1)}
        interleaved(20, ops, settle)
        times = interleaved(ITERATIONS, ops, settle, block=BLOCK)
        empty.dispose()
        full.dispose()
    return Figure("request (PostgreSQL + Redis), 1,000,000 rows in the logs vs empty", unit="ms",
                  tidings=times["full"], baseline=times["empty"], baseline_name="empty tables", limit=1.1,
                  scale=1000.0, digits=3)


class _Discard(Channel):
    """A channel that accepts everything and keeps nothing."""

    def send(self, message: Any, to: Any, *, key: str, **extra: Any) -> None:
        pass


def plans(full_url: str) -> None:
    """Run one transition through the worker on the full tables, then EXPLAIN each statement it ran."""
    engine = create_engine(full_url)
    stub = StubBroker()
    stub.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=stub, database_url=full_url, channels={"email": _Discard()},
                   sweep_interval=0)
    seen: list[tuple[str, str, Any]] = []
    step = ["request"]

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "tidings_" in statement and statement.split()[0] in ("SELECT", "UPDATE", "INSERT", "WITH", "DELETE"):
            seen.append((step[0], statement, parameters))

    worker_engine = jobs.runtime.current().engine
    for target in (engine, worker_engine):
        event.listen(target, "before_cursor_execute", capture)
    with Session(engine) as session:
        task = session.get(Task, 1)
        assert task is not None
        record_id = task.fire("finish" if task.state == "open" else "reopen").id
        session.commit()
    step[0] = "fan-out"
    actors.fan_out.fn(record_id)
    step[0] = "delivery"
    for queue in list(stub.queues.values()):
        while not queue.empty():
            from dramatiq import Message

            message = Message.decode(queue.get_nowait())
            queue.task_done()
            if message.actor_name == "tidings.deliver":
                actors.deliver.fn(*message.args)
    step[0] = "claim (a delivery message)"
    actors.deliver.fn(ROWS)  # a filler row left pending: claimed, then failed (its task does not exist)
    step[0] = "sweeper"
    with jobs.runtime.current().session() as session:
        sweeper.sweep(session, grace_seconds=60)
    for target in (engine, worker_engine):
        event.remove(target, "before_cursor_execute", capture)
    print("Plans on the full tables: each statement that touched Tidings' tables while one transition went "
          "through the request and its fan-out (which sends and records its one delivery itself), a pending "
          "delivery was claimed by a delivery message, and a sweep ran; each run again under EXPLAIN ANALYZE "
          "in a transaction rolled back (INSERTs: EXPLAIN only).\n")
    seq_scans = []
    with engine.connect() as connection:
        for where, statement, parameters in seen:
            # An INSERT run again would collide with the row it wrote (the fan-out's, also when it rides
            # behind the WITH that marks its transitions): its plan is shown, not run.
            inserts = statement.startswith("INSERT") or "INSERT INTO tidings_deliveries" in statement
            how = "EXPLAIN (COSTS OFF) " if inserts else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            transaction = connection.begin()
            try:
                lines = [row[0] for row in connection.exec_driver_sql(how + statement, parameters)]
            finally:
                transaction.rollback()
            if any("Seq Scan on tidings_" in line for line in lines):
                seq_scans.append(where)
            print(f"**{where}**: `{' '.join(statement.split())[:160]}`\n")
            print("```\n" + "\n".join(lines) + "\n```\n")
    print("Every statement uses an index." if not seq_scans else f"Sequential scans in: {', '.join(seq_scans)}.")
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    engine.dispose()


def main(full_url: str | None = None) -> list[Figure]:
    """Figure 5's request; the plans of the worker's and the sweeper's statements."""
    if full_url is None and reachable(5432) and reachable(6379):
        with filled() as url:
            return main(url)
    header("Figure 5: scale", f"{ROWS:,} rows already in the transition and delivery logs, against empty tables "
                              f"(median and p90 of {ITERATIONS * BLOCK} requests each, interleaved in blocks of {BLOCK}, ms).")
    quiet_logs()
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return []
    assert full_url is not None
    figures = report([request(full_url)])
    plans(full_url)
    return figures


if __name__ == "__main__":
    main()
