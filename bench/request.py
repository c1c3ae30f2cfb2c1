"""The request path: a transition costs about what a plain state update costs, whatever the parties.

Run: ``python -m bench.request`` (part of ``make bench``). Each operation is what a request
handler does: open a session, load the row by key, change its state, commit. The baseline
assigns the state column of the same table without Tidings (same columns, same index);
Tidings fires a trigger (checks, the compare-and-set of the state and the log row, and the
fan-out message after the commit). The old way mails each of three parties from the request,
through an SMTP server that takes 50 ms to accept each message.
"""

from __future__ import annotations

import asyncio
import smtplib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from jobs import outbox
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from workflow import metadata as tidings_metadata

from .app import Base, PlainTask, Task, Watcher, watchers
from .common import (
    QUICK,
    RABBITMQ_URL,
    REDIS_URL,
    Figure,
    header,
    interleaved,
    quiet_logs,
    reachable,
    report,
    scratch_space,
)

ITERATIONS = 40 if QUICK else 100
BLOCK = 3  # each timed request follows one of its own kind (see bench.common.interleaved)
OLD_WAY_ITERATIONS = 15
SMTP_DELAY = 0.05
RECIPIENTS = (1, 10, 1000)


def plain_update(engine: Engine, key: int) -> Callable[[], None]:
    """The baseline request: load a plain row, assign its state, commit."""
    def op() -> None:
        with Session(engine) as session:
            row = session.get(PlainTask, key)
            assert row is not None
            row.state = "done" if row.state == "open" else "open"
            session.commit()
    return op


def transition(engine: Engine, key: int) -> Callable[[], None]:
    """Tidings' request: load a stateful row, fire its trigger, commit."""
    def op() -> None:
        with Session(engine) as session:
            row = session.get(Task, key)
            assert row is not None
            row.fire("finish" if row.state == "open" else "reopen", actor="bench")
            session.commit()
    return op


def create_rows(engine: Engine) -> None:
    """The bench's tables, a plain row 1, and stateful rows 1, 10 and 1000 with that many watchers."""
    Base.metadata.create_all(engine)
    tidings_metadata.create_all(engine)
    with Session(engine) as session:
        session.add(PlainTask(id=1, state="open"))
        for count in RECIPIENTS:
            session.add(Task(id=count, watchers=watchers(count)))
        session.commit()


def measure(engine: Engine, label: str, *, network: bool) -> list[Figure]:
    """Plain update against transitions to 1, 10 and 1,000 recipients, interleaved.

    The target: 1.25 with a network broker (the deployment users run), 1.5 on the StubBroker and SQLite.
    """
    limit = 1.25 if network else 1.5
    create_rows(engine)
    ops = {"plain": plain_update(engine, 1), **{str(n): transition(engine, n) for n in RECIPIENTS}}
    if network:  # also time the request and the outbox thread's enqueue together
        ops["1+enqueue"] = enqueued(transition(engine, 1))
    interleaved(20, ops, settle)  # warm up: connections, compiled statements, the broker's connection
    times = interleaved(ITERATIONS, ops, settle, block=BLOCK)
    figures = [
        ms(f"{label}: transition vs plain update", times["1"], times["plain"], "state assignment", limit),
        ms(f"{label}: 10 recipients vs 1", times["10"], times["1"], "1 recipient", 1.1),
        ms(f"{label}: 1,000 recipients vs 1", times["1000"], times["1"], "1 recipient", 1.1),
    ]
    if network:
        figures.append(ms(f"{label}: transition until its message is in the broker vs plain update",
                          times["1+enqueue"], times["plain"], "state assignment", None))
    return figures


def settle() -> None:
    """Wait (untimed) for the outbox thread, so its enqueue is not charged to the next request."""
    outbox.dispatcher.flush(10)


def enqueued(op: Callable[[], None]) -> Callable[[], None]:
    """``op``, then wait until the outbox thread has enqueued its message: the request's full cost."""
    def both() -> None:
        op()
        outbox.dispatcher.flush(10)
    return both


def ms(name: str, tidings: list[float], baseline: list[float], baseline_name: str, limit: float | None) -> Figure:
    """A figure of request times in milliseconds."""
    return Figure(name, unit="ms", tidings=tidings, baseline=baseline, baseline_name=baseline_name, limit=limit,
                  scale=1000.0, digits=3)


class SlowSMTP:
    """An SMTP server that takes ``delay`` seconds to accept each message, like a remote one."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return "250 OK"


@contextmanager
def smtp_server(handler: object) -> Iterator[int]:
    """An aiosmtpd server on 127.0.0.1 and a free port; yields the port."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def old_way(engine: Engine, port: int) -> Callable[[], None]:
    """The request of old: assign the state, commit, then mail each of three parties, one connection each."""
    def op() -> None:
        with Session(engine) as session:
            row = session.get(PlainTask, 1)
            assert row is not None
            row.state = "done" if row.state == "open" else "open"
            session.commit()
            for party in ("buyer", "seller", "watcher"):
                message = EmailMessage()
                message["Subject"], message["From"], message["To"] = "Task 1 finished", "app@localhost", \
                    f"{party}@example.com"
                message.set_content("Hello, task 1 is finished.")
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.send_message(message)
    return op


def measure_old_way(engine: Engine) -> Figure:
    """Tidings (three parties, PostgreSQL + Redis) against mailing them from the request."""
    with Session(engine) as session:
        session.add(Task(id=3, watchers=[Watcher(email=f"{party}@example.com")
                                         for party in ("buyer", "seller", "watcher")]))
        session.commit()
    with smtp_server(SlowSMTP(SMTP_DELAY)) as port:
        ops = {"old": old_way(engine, port), "tidings": transition(engine, 3)}
        interleaved(2, ops, settle)
        times = interleaved(OLD_WAY_ITERATIONS, ops, settle)
    return Figure("PostgreSQL + Redis: transition to 3 parties vs mailing them in the request", unit="ms",
                  tidings=times["tidings"], baseline=times["old"], baseline_name="3 mails, SMTP answering in 50 ms",
                  scale=1000.0, digits=1)


def main() -> list[Figure]:
    header("Figures 1 and 2: the request path",
           f"Median and p90 of {ITERATIONS * BLOCK} requests each, interleaved in blocks of {BLOCK} (ms): "
           f"load a row, change its state, commit.")
    quiet_logs()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'request.db'}")
        stub = StubBroker()
        stub.emit_after("process_boot")
        jobs.configure(jobs.Settings(), broker=stub, sweep_interval=0)
        figures += measure(engine, "SQLite + StubBroker", network=False)
        stub.flush_all()
        engine.dispose()
    if not reachable(5432):
        return report(figures, "PostgreSQL is not reachable on 127.0.0.1:5432: only the embedded default was measured.")
    scenarios: list[tuple[str, dict[str, Any]]] = [("PostgreSQL + StubBroker", {"broker": StubBroker()})]
    if reachable(6379):
        scenarios.append(("PostgreSQL + Redis", {"broker_url": REDIS_URL}))
    if reachable(5672):
        scenarios.append(("PostgreSQL + RabbitMQ", {"broker_url": RABBITMQ_URL}))
    for label, broker in scenarios:
        with scratch_space() as (database_url, queue):
            engine = create_engine(database_url)
            jobs.configure(jobs.Settings(), queue=queue, sweep_interval=0, **broker)
            figures += measure(engine, label, network="broker_url" in broker)
            if label == "PostgreSQL + Redis":
                figures.append(measure_old_way(engine))
            engine.dispose()
    jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
    return report(figures, "With Redis or RabbitMQ the fan-out message is enqueued by the process's outbox thread "
                           "right after the commit, so the request does not wait for the broker; the bench waits "
                           "for that thread between requests, untimed. The 'until its message is in the broker' "
                           "rows time both: what the request would cost if it enqueued itself.")


if __name__ == "__main__":
    main()
