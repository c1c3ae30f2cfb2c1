"""Fan-out: one transition to 10,000 recipients, planned (rows written) and enqueued by the worker.

Run: ``python -m bench.fanout`` (part of ``make bench``). Target: under 2 s of worker time.
"""

from __future__ import annotations

import time

import jobs
from jobs.actors import fan_out
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .common import REDIS_URL, header, scratch_space, table
from .request import Base, Task, reachable

RECIPIENTS = 10_000


def measure(label: str, database_url: str, **configuration: object) -> tuple[str, ...]:
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), database_url=database_url, sweep_interval=0, **configuration)  # type: ignore[arg-type]
    with Session(engine) as session:
        task = Task(id=1, watchers=[f"w{n}@example.com" for n in range(RECIPIENTS)])
        session.add(task)
        session.commit()
        record = task.finish()
        session.commit()
        transition_id = record.id
    start = time.perf_counter()
    fan_out.fn(transition_id)  # what the worker runs for this message: plan, write, enqueue
    seconds = time.perf_counter() - start
    engine.dispose()
    return (label, f"{seconds:.2f} s", f"{seconds / RECIPIENTS * 1e6:.0f} µs", "< 2 s", "yes" if seconds < 2 else "NO")


def main() -> None:
    header("Fan-out", f"One transition to {RECIPIENTS:,} recipients: delivery rows written and messages enqueued.")
    if not (reachable(5432) and reachable(6379)):
        print("PostgreSQL or Redis not reachable on 127.0.0.1: skipped.")
        return
    rows = []
    with scratch_space() as (database_url, queue):
        rows.append(measure("PostgreSQL + StubBroker", database_url, broker_url="stub"))
    with scratch_space() as (database_url, queue):
        rows.append(measure("PostgreSQL + Redis", database_url, broker_url=REDIS_URL, queue=queue))
    table(rows, ["scenario", "worker time", "per recipient", "target", "met"])


if __name__ == "__main__":
    main()
