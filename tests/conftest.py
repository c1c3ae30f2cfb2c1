"""Fixtures of the unit tests: the embedded default (SQLite file, StubBroker, MemoryChannel), and putting
jobs and the notifier registry back after a test changed them. The real services (PostgreSQL, Redis,
RabbitMQ, SMTP and HTTP servers, worker processes, TCP proxies) are in tests/integration/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs.testing import stop_workers
from notifiers import MemoryChannel
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from tests.app import Base, Order, Person
from tests.leftovers import pytest_sessionstart  # noqa: F401  (the hook, for every run of the suite)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with the shop's and Tidings' tables, shared by the test and the worker threads."""
    engine = create_engine(f"sqlite:///{tmp_path / 'test.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def mailbox() -> MemoryChannel:
    """The email channel of the in-process worker: what it sent, in order."""
    return MemoryChannel()


@pytest.fixture
def broker(engine: Engine, mailbox: MemoryChannel) -> Iterator[StubBroker]:
    """A fresh StubBroker wired to the test database and mailbox, with quick retries."""
    broker = StubBroker()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, channels={"email": mailbox},
                   max_retries=2, min_backoff_ms=10, max_backoff_ms=40, sweep_interval=0)
    yield broker
    stop_workers()
    broker.flush_all()
    broker.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


@pytest.fixture
def order(session: Session) -> Order:
    """A committed new order: Bea buys from Sam, two watchers."""
    order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                  seller=Person(name="Sam", email="sam@example.com"),
                  watchers=["w1@example.com", "Wes <w2@example.com>"])
    session.add(order)
    session.commit()
    return order


@pytest.fixture
def count(engine: Engine) -> Callable[[type], int]:
    """Rows in a table, read in a fresh session (so uncommitted work is not counted)."""

    def count(table: type) -> int:
        with Session(engine) as fresh:
            return int(fresh.scalar(select(func.count()).select_from(table)) or 0)

    return count


@pytest.fixture
def restore_jobs() -> Iterator[None]:
    """Put jobs back on a fresh StubBroker after a test that pointed it at a real broker."""
    yield
    stop_workers()
    fresh = StubBroker()
    fresh.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=fresh)  # closes the real broker it had built


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Notifiers a test declares are forgotten after it, so they do not answer other tests' transitions."""
    from notifiers import registry

    by_name, by_transition = dict(registry._by_name), {k: list(v) for k, v in registry._by_transition.items()}
    accepts = dict(registry._accepts)
    yield
    registry._accepts = accepts
    registry._by_name.clear()
    registry._by_name.update(by_name)
    registry._by_transition.clear()
    registry._by_transition.update(by_transition)
