"""Triggers on rows of an AsyncSession (aiosqlite): the outbox enqueues after the outermost commit, as on a sync one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from workflow import NotAwaited, TransitionRecord

from tests.app import Order, Person
from tests.jobs.test_outbox import enqueued


@pytest.fixture
def async_engine(engine: Engine) -> Iterator[AsyncEngine]:
    """The test's SQLite file through aiosqlite."""
    async_engine = create_async_engine(engine.url.set(drivername="sqlite+aiosqlite"), poolclass=NullPool)
    yield async_engine
    asyncio.run(async_engine.dispose())


def run(async_engine: AsyncEngine, scenario: Callable[[AsyncSession, Order], Awaitable[Any]], order: Order) -> Any:
    """Run ``scenario`` with a fresh AsyncSession and the committed order loaded in it."""

    async def main() -> Any:
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            loaded = await session.get(Order, order.id)
            assert loaded is not None
            return await scenario(session, loaded)

    return asyncio.run(main())


def test_an_async_commit_enqueues_one_fan_out_after_the_commit(broker: StubBroker, async_engine: AsyncEngine,
                                                              order: Order) -> None:
    async def pay(session: AsyncSession, order: Order) -> tuple[int, list[tuple[str, tuple[object, ...]]]]:
        record = await order.fire_async("pay")
        await session.flush()
        before = enqueued(broker)
        await session.commit()
        return record.id, before

    record_id, before_commit = run(async_engine, pay, order)
    assert before_commit == [] and enqueued(broker) == [("tidings.fan_out", (record_id,))]


def test_an_async_rollback_enqueues_nothing(broker: StubBroker, async_engine: AsyncEngine, order: Order) -> None:
    async def pay_then_roll_back(session: AsyncSession, order: Order) -> None:
        await order.fire_async("pay")
        await session.flush()
        await session.rollback()
        await session.commit()

    run(async_engine, pay_then_roll_back, order)
    assert enqueued(broker) == []


def test_an_async_savepoint_rolled_back_drops_its_transitions_and_the_outer_one_is_sent(
        broker: StubBroker, async_engine: AsyncEngine, order: Order) -> None:
    async def pay_then_ship_in_a_savepoint(session: AsyncSession, order: Order) -> int:
        outer = await order.fire_async("pay")
        nested = await session.begin_nested()
        await order.fire_async("ship")
        await session.flush()
        await nested.rollback()
        await session.commit()
        return outer.id

    outer_id = run(async_engine, pay_then_ship_in_a_savepoint, order)
    assert enqueued(broker) == [("tidings.fan_out", (outer_id,))]


def test_an_async_savepoint_released_is_sent_once_after_the_outer_commit(
        broker: StubBroker, async_engine: AsyncEngine, order: Order) -> None:
    async def pay_in_a_savepoint(session: AsyncSession, order: Order) -> tuple[int, list[tuple[str, tuple[object, ...]]]]:
        async with session.begin_nested():
            record = await order.fire_async("pay")
        released = enqueued(broker)
        await session.commit()
        return record.id, released

    record_id, after_release = run(async_engine, pay_in_a_savepoint, order)
    assert after_release == [] and enqueued(broker) == [("tidings.fan_out", (record_id,))]


def test_an_async_session_closed_without_commit_enqueues_nothing(
        broker: StubBroker, async_engine: AsyncEngine, order: Order, engine: Engine) -> None:
    async def pay_and_close(session: AsyncSession, order: Order) -> None:
        await order.fire_async("pay")
        await session.flush()
        await session.close()
        async with AsyncSession(async_engine) as later:
            await later.commit()

    run(async_engine, pay_and_close, order)
    with Session(engine) as fresh:
        assert enqueued(broker) == [] and fresh.scalar(select(Order.state)) == "new"


def test_an_async_session_inside_a_connections_transaction_enqueues_at_the_connections_commit(
        broker: StubBroker, async_engine: AsyncEngine, order: Order) -> None:
    async def main() -> tuple[int, list[tuple[str, tuple[object, ...]]]]:
        async with async_engine.connect() as connection:
            await connection.begin()
            async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint",
                                    expire_on_commit=False) as session:
                loaded = await session.get(Order, order.id)
                assert loaded is not None
                record = await loaded.fire_async("pay")
                await session.commit()  # only its SAVEPOINT
            waiting = enqueued(broker)
            await connection.commit()
        return record.id, waiting

    record_id, before_the_connections_commit = asyncio.run(main())
    assert before_the_connections_commit == []
    assert wait_for_enqueued(broker) == [("tidings.fan_out", (record_id,))]


def wait_for_enqueued(broker: StubBroker) -> list[tuple[str, tuple[object, ...]]]:
    """What the outbox thread enqueued once it is idle (an outer COMMIT hands the ids to it)."""
    from jobs import outbox

    assert outbox.dispatcher.flush(timeout=10)
    return enqueued(broker)


def test_a_trigger_whose_callback_loads_a_relationship_fires_through_fire_async(
        broker: StubBroker, async_engine: AsyncEngine, order: Order) -> None:
    async def pay_and_ship(session: AsyncSession, order: Order) -> list[str]:
        await order.fire_async("pay")
        await order.fire_async("ship")  # its after-callback reads order.buyer, not loaded yet
        await session.commit()
        return order.calls

    assert run(async_engine, pay_and_ship, order)[-1] == "greet:Bea"


def test_a_trigger_called_directly_on_an_async_row_says_to_await_fire_async_and_writes_nothing(
        broker: StubBroker, async_engine: AsyncEngine, order: Order, engine: Engine) -> None:
    async def pay_directly(session: AsyncSession, order: Order) -> None:
        with pytest.raises(NotAwaited, match=r"Order 1 belongs to an AsyncSession: .*await row.fire_async\('pay'"):
            order.pay()  # type: ignore[attr-defined]
        await session.commit()

    run(async_engine, pay_directly, order)
    with Session(engine) as fresh:
        assert enqueued(broker) == [] and fresh.scalar(select(Order.state)) == "new"


def test_fire_async_on_a_row_of_a_sync_session_fires_it(broker: StubBroker, session: Session, order: Order) -> None:
    record = asyncio.run(order.fire_async("pay"))
    session.commit()
    assert (record.dest, order.state) == ("paid", "paid")
    assert enqueued(broker) == [("tidings.fan_out", (record.id,))]


def test_a_new_row_of_an_async_session_is_flushed_and_fired_through_fire_async(
        broker: StubBroker, async_engine: AsyncEngine, engine: Engine) -> None:
    async def add_and_pay() -> int:
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                          seller=Person(name="Sam", email="sam@example.com"))
            session.add(order)
            record = await order.fire_async("pay")  # the row is flushed first, so the log row knows its key
            await session.commit()
            return record.id

    record_id = asyncio.run(add_and_pay())
    with Session(engine) as fresh:
        record = fresh.get(TransitionRecord, record_id)
        assert record is not None and (record.key, record.dest) == ("1", "paid")
    assert enqueued(broker) == [("tidings.fan_out", (record_id,))]
