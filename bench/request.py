"""The request path: a transition costs about what a plain state update costs, whatever the parties.

Run: ``python -m bench.request`` (part of ``make bench``). Each operation is what a request
handler does: load the row by key, change its state, commit. The baseline assigns the state
column; Tidings fires a trigger (checks, compare-and-set of the state, one log row, and one
enqueue after the commit).
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jobs
from dramatiq.brokers.stub import StubBroker
from notifiers import Email, Notifier, on
from sqlalchemy import JSON, Engine, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from workflow import Stateful, Workflow
from workflow import metadata as tidings_metadata

from .common import REDIS_URL, header, interleaved, scratch_space, table

ITERATIONS = 400


class Base(DeclarativeBase):
    pass


class PlainTask(Base):
    __tablename__ = "bench_plain_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(64))
    watchers: Mapped[list[str]] = mapped_column(JSON)


class Task(Stateful, Base):
    __tablename__ = "bench_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    watchers: Mapped[list[str]] = mapped_column(JSON)
    workflow = Workflow(states=["open", "done"], initial="open",
                        transitions=[["finish", "open", "done"], ["reopen", "done", "open"]],
                        parties={"watchers": "watchers"}, name="BenchTask")


class TaskNotifier(Notifier):
    @on(Task, "finish", to="watchers")
    @on(Task, "reopen", to="watchers")
    def changed(self, event: Any, recipient: Any) -> Email:
        return Email(subject="changed", text="changed")


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def plain_update(engine: Engine, key: int) -> Callable[[], None]:
    def op() -> None:
        with Session(engine) as session:
            row = session.get(PlainTask, key)
            assert row is not None
            row.state = "done" if row.state == "open" else "open"
            session.commit()
    return op


def transition(engine: Engine, key: int) -> Callable[[], None]:
    def op() -> None:
        with Session(engine) as session:
            row = session.get(Task, key)
            assert row is not None
            row.fire("finish" if row.state == "open" else "reopen", actor="bench")
            session.commit()
    return op


def measure(engine: Engine, label: str) -> list[tuple[str, ...]]:
    with Session(engine) as session:
        session.add(PlainTask(id=1, state="open", watchers=["w@example.com"]))
        for key, count in ((1, 1), (10, 10), (1000, 1000)):
            session.add(Task(id=key, watchers=[f"w{i}@example.com" for i in range(count)]))
        session.commit()
    for op in (plain_update(engine, 1), transition(engine, 1)):  # warm up
        for _ in range(20):
            op()
    ops = {"plain": plain_update(engine, 1), **{n: transition(engine, n) for n in (1, 10, 1000)}}
    times = interleaved(ITERATIONS, ops)  # ABCD ABCD ...: drift in the machine hits all alike
    base = times["plain"]
    costs = {n: times[n] for n in (1, 10, 1000)}
    ratio, growth = costs[1] / base, costs[1000] / costs[1]
    return [
        (f"{label}: transition vs plain update", f"{base * 1000:.3f}", f"{costs[1] * 1000:.3f}", f"{ratio:.2f}",
         "<= 1.5", "yes" if ratio <= 1.5 else "NO"),
        (f"{label}: 10 recipients vs 1", f"{costs[1] * 1000:.3f}", f"{costs[10] * 1000:.3f}",
         f"{costs[10] / costs[1]:.2f}", "<= 1.1", "yes" if costs[10] / costs[1] <= 1.1 else "NO"),
        (f"{label}: 1,000 recipients vs 1", f"{costs[1] * 1000:.3f}", f"{costs[1000] * 1000:.3f}", f"{growth:.2f}",
         "<= 1.1", "yes" if growth <= 1.1 else "NO"),
    ]


def main() -> None:
    header("The request path", f"Median of {ITERATIONS} requests: load a row, change its state, commit (ms).")
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'request.db'}")
        Base.metadata.create_all(engine)
        tidings_metadata.create_all(engine)
        stub = StubBroker()
        jobs.configure(jobs.Settings(), broker=stub, sweep_interval=0)
        rows += measure(engine, "SQLite + StubBroker")
        engine.dispose()
    if reachable(5432) and reachable(6379):
        with scratch_space() as (database_url, queue):
            engine = create_engine(database_url)
            Base.metadata.create_all(engine)
            tidings_metadata.create_all(engine)
            jobs.configure(jobs.Settings(), broker=StubBroker(), sweep_interval=0)
            rows += measure(engine, "PostgreSQL + StubBroker")
            with engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM bench_tasks")
                connection.exec_driver_sql("DELETE FROM bench_plain_tasks")
            jobs.configure(jobs.Settings(), broker_url=REDIS_URL, queue=queue, sweep_interval=0)
            rows += measure(engine, "PostgreSQL + Redis")
            engine.dispose()
    else:
        print("PostgreSQL or Redis not reachable on 127.0.0.1: only the embedded default is measured.\n")
    table(rows, ["scenario", "baseline ms", "tidings ms", "ratio", "target", "met"])


if __name__ == "__main__":
    main()
