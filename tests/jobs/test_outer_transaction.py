"""A session inside a connection's outer transaction: its commit is a SAVEPOINT, the connection's is the real one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import outbox
from jobs.testing import Kit, drain
from notifiers import MemoryChannel
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.jobs.test_outbox import Remote, enqueued


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


def paid_inside(connection: Connection) -> int:
    """Pay a new order in a session joined to ``connection``'s transaction, and commit the session; the id."""
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        record_id = order.pay().id
        session.commit()
    return record_id


def sent(broker: StubBroker) -> list[tuple[str, tuple[object, ...]]]:
    assert outbox.dispatcher.flush(5)
    return enqueued(broker)


def test_the_sessions_commit_enqueues_nothing_until_the_connection_commits(
        broker: StubBroker, connection: Connection) -> None:
    outer = connection.begin()
    record_id = paid_inside(connection)
    assert sent(broker) == []
    outer.commit()
    assert sent(broker) == [("tidings.fan_out", (record_id,))]


def test_an_outer_rollback_after_the_sessions_commit_enqueues_nothing(
        broker: StubBroker, connection: Connection) -> None:
    outer = connection.begin()
    paid_inside(connection)
    outer.rollback()
    assert sent(broker) == []


def test_a_connection_closed_without_commit_enqueues_nothing(broker: StubBroker, engine: Engine) -> None:
    with engine.connect() as connection:
        connection.begin()
        paid_inside(connection)
    assert sent(broker) == []


def test_a_rolled_back_savepoint_of_the_connection_takes_the_sessions_commit_with_it(
        broker: StubBroker, connection: Connection) -> None:
    outer = connection.begin()
    kept = paid_inside(connection)
    savepoint = connection.begin_nested()
    paid_inside(connection)
    savepoint.rollback()
    outer.commit()
    assert sent(broker) == [("tidings.fan_out", (kept,))]


def test_a_released_savepoint_of_the_connection_is_enqueued_at_its_commit(
        broker: StubBroker, connection: Connection) -> None:
    outer = connection.begin()
    with connection.begin_nested():
        record_id = paid_inside(connection)
    assert sent(broker) == []
    outer.commit()
    assert sent(broker) == [("tidings.fan_out", (record_id,))]


def test_a_released_savepoint_inside_a_rolled_back_one_takes_the_sessions_commit_with_it(
        broker: StubBroker, connection: Connection) -> None:
    outer = connection.begin()
    around = connection.begin_nested()
    with connection.begin_nested():
        paid_inside(connection)
    around.rollback()
    outer.commit()
    assert sent(broker) == []


def test_drain_after_the_connections_commit_delivers_the_sessions_transitions(
        broker: StubBroker, connection: Connection, mailbox: MemoryChannel) -> None:
    outer = connection.begin()
    paid_inside(connection)
    outer.commit()
    drain(broker)
    assert sorted(s.to.address for s in mailbox.outbox) == ["bea@example.com", "sam@example.com"]


def test_the_kit_delivers_at_the_sessions_commit_inside_an_outer_transaction(
        tidings: Kit, connection: Connection) -> None:
    outer = connection.begin()
    paid_inside(connection)
    tidings.assert_notified("bea@example.com", trigger="pay", count=1)
    outer.rollback()


def test_with_a_network_broker_the_ids_are_enqueued_only_once_the_connections_commit_returned(
        engine: Engine, connection: Connection, restore_jobs: None) -> None:
    outer = connection.begin()
    seen: list[bool] = []

    class Watching(Remote):
        def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
            seen.append(outer.is_active)  # True: the COMMIT had not returned yet
            return super().enqueue(message, delay=delay)

    broker = Watching()
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, sweep_interval=0)
    paid_inside(connection)

    def hold_the_commit(conn: Connection) -> None:  # runs after the outbox's own listener, before the COMMIT
        broker.entered.acquire(timeout=0.5)  # an enqueue that did not wait for the COMMIT comes now

    event.listen(connection, "commit", hold_the_commit)
    outer.commit()
    assert outbox.dispatcher.flush(5)
    assert seen == [False] and len(broker.sent) == 1


def test_a_connection_that_handed_on_ids_at_one_commit_commits_its_next_transactions_too(
        broker: StubBroker, connection: Connection) -> None:
    first = connection.begin()
    earlier = paid_inside(connection)
    first.commit()  # hands the ids on; the connection's listeners stay
    connection.begin().commit()  # nothing waits for this one
    last = connection.begin()
    later = paid_inside(connection)
    last.commit()
    assert sent(broker) == [("tidings.fan_out", (earlier,)), ("tidings.fan_out", (later,))]
