"""Fan-out: one transition to 10,000 recipients, planned (rows written) and enqueued by the worker.

Run: ``python -m bench.fanout`` (part of ``make bench``). What is timed is what a worker runs
for the transition's fan-out message (``tidings.fan_out``): load the transition and the row,
resolve the parties, write the delivery rows, enqueue the delivery messages, on PostgreSQL
with each broker. Target: under 1 s of worker time.
"""

from __future__ import annotations

import time
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs.actors import fan_out
from jobs import outbox
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, Task, watchers
from .common import QUICK, RABBITMQ_URL, REDIS_URL, Figure, header, quiet_logs, reachable, report, scratch_space

RECIPIENTS = 10_000
RUNS = 1 if QUICK else 3


def measure(label: str, database_url: str, queue: str, broker: dict[str, Any]) -> Figure:
    """Median and p90 worker time of ``RUNS`` fan-outs, each of a new transition to every recipient."""
    engine = create_engine(database_url)
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    jobs.configure(jobs.Settings(), database_url=database_url, queue=queue, sweep_interval=0, **broker)
    seconds = []
    with Session(engine) as session:
        task = Task(id=1, watchers=watchers(RECIPIENTS))
        session.add(task)
        session.commit()
        for _ in range(RUNS):
            record = task.fire("finish" if task.state == "open" else "reopen")
            session.commit()
            outbox.dispatcher.flush(10)  # the outbox's own fan-out message, not run here
            start = time.perf_counter()
            fan_out.fn(record.id)  # what the worker runs for this message: plan, write, enqueue
            seconds.append(time.perf_counter() - start)
            flush(broker.get("broker"))
    engine.dispose()
    return Figure(f"PostgreSQL + {label}: fan-out to {RECIPIENTS:,} recipients", unit="s", tidings=seconds,
                  limit=1.0, digits=2)


def flush(broker: object) -> None:
    """Empty the StubBroker's queues between runs (the network brokers' queues go with the scratch space)."""
    if isinstance(broker, StubBroker):
        broker.flush_all()


def main() -> list[Figure]:
    header("Figure 3: fan-out", f"One transition to {RECIPIENTS:,} recipients: delivery rows written and messages "
                                f"enqueued; worker time, median and p90 of {RUNS} runs.")
    quiet_logs()
    if not reachable(5432):
        print("PostgreSQL not reachable on 127.0.0.1:5432: skipped.")
        return []
    brokers: list[tuple[str, dict[str, Any]]] = [("StubBroker", {"broker": StubBroker()})]
    if reachable(6379):
        brokers.append(("Redis", {"broker_url": REDIS_URL}))
    if reachable(5672):
        brokers.append(("RabbitMQ", {"broker_url": RABBITMQ_URL}))
    figures = []
    for label, broker in brokers:
        with scratch_space() as (database_url, queue):
            figures.append(measure(label, database_url, queue, broker))
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    for figure in figures:
        figure.name += f" ({sorted(figure.tidings)[len(figure.tidings) // 2] / RECIPIENTS * 1e6:.0f} µs per recipient)"
    return report(figures)


if __name__ == "__main__":
    main()
