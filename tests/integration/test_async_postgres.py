"""The request side on an AsyncSession against PostgreSQL, with asyncpg and with psycopg's async mode.

The same promises as the sync tests of tests/jobs/test_outbox.py and test_concurrency_postgres.py:
fan-outs are enqueued after the outermost commit only; rolled-back work, SAVEPOINTs included,
sends nothing; of two transitions racing on a row one wins; a broker down at the commit costs
the request nothing and the sweeper delivers later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import outbox
from jobs.actors import sweep
from jobs.testing import drain, stop_workers
from notifiers import MemoryChannel
from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from workflow import ConcurrentTransition, TransitionRecord

from tests.app import Order, Person
from tests.integration.test_faults import proxied
from tests.jobs.test_outbox import enqueued
from tests.servers import TCPProxy

pytestmark = pytest.mark.integration

LONG_AGO = "2000-01-01T00:00:00+00:00"


def async_url(pg_url: str, driver: str) -> tuple[str, dict[str, Any]]:
    """The test schema's URL for an asyncio driver, and its connect arguments.

    asyncpg takes no libpq ``options``: the schema goes in as a server setting instead.
    """
    url = make_url(pg_url)
    if driver == "psycopg":
        return url.render_as_string(hide_password=False), {}
    schema = parse_qs(urlsplit(pg_url).query)["options"][0].split("=", 1)[1]
    plain = url.set(drivername="postgresql+asyncpg", query={})
    return plain.render_as_string(hide_password=False), {"server_settings": {"search_path": schema}}


@pytest.fixture(params=["asyncpg", "psycopg"])
def async_engine(request: pytest.FixtureRequest, pg_url: str, shop: Engine) -> Iterator[AsyncEngine]:
    """The shop's schema through each asyncio driver in turn."""
    url, connect_args = async_url(pg_url, request.param)
    engine = create_async_engine(url, connect_args=connect_args, poolclass=NullPool)  # each asyncio.run its own loop
    yield engine
    asyncio.run(engine.dispose())


@pytest.fixture
def stub(shop: Engine) -> Iterator[tuple[StubBroker, MemoryChannel]]:
    """Jobs on a StubBroker and the shop's schema (through psycopg: workers are sync), mail kept in memory."""
    broker, mailbox = StubBroker(), MemoryChannel()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, engine=shop, channels={"email": mailbox}, sweep_interval=0)
    yield broker, mailbox
    stop_workers()
    broker.close()
    fresh = StubBroker()
    fresh.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=fresh)


def new_order(engine: Engine) -> int:
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        return order.id


def run(engine: AsyncEngine, order_id: int, scenario: Callable[[AsyncSession, Order], Awaitable[Any]]) -> Any:
    """``scenario`` with a fresh AsyncSession and the order loaded in it."""

    async def main() -> Any:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            order = await session.get(Order, order_id)
            assert order is not None
            return await scenario(session, order)

    return asyncio.run(main())


def transitions(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(TransitionRecord)) or 0)


def test_an_async_commit_on_postgresql_enqueues_after_the_outermost_commit(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    broker, _ = stub

    async def pay_in_a_savepoint(session: AsyncSession, order: Order) -> tuple[int, list[tuple[str, tuple[object, ...]]]]:
        async with session.begin_nested():
            record = await order.fire_async("pay")
        released = enqueued(broker)
        await session.commit()
        return record.id, released

    record_id, after_release = run(async_engine, new_order(shop), pay_in_a_savepoint)
    assert after_release == [] and enqueued(broker) == [("tidings.fan_out", (record_id,))]


def test_an_async_rollback_on_postgresql_enqueues_nothing(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    async def pay_then_roll_back(session: AsyncSession, order: Order) -> None:
        await order.fire_async("pay")
        await session.flush()
        await session.rollback()
        await session.commit()

    run(async_engine, new_order(shop), pay_then_roll_back)
    assert enqueued(stub[0]) == [] and transitions(shop) == 0


def test_an_async_savepoint_rolled_back_on_postgresql_drops_its_transitions(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    async def pay_then_ship_in_a_savepoint(session: AsyncSession, order: Order) -> int:
        outer = await order.fire_async("pay")
        nested = await session.begin_nested()
        await order.fire_async("ship")
        await nested.rollback()
        await session.commit()
        return outer.id

    outer_id = run(async_engine, new_order(shop), pay_then_ship_in_a_savepoint)
    assert enqueued(stub[0]) == [("tidings.fan_out", (outer_id,))] and transitions(shop) == 1


def test_an_async_session_closed_without_commit_on_postgresql_enqueues_nothing(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    async def pay_and_close(session: AsyncSession, order: Order) -> None:
        await order.fire_async("pay")
        await session.flush()
        await session.close()
        async with AsyncSession(async_engine) as later:
            await later.commit()

    run(async_engine, new_order(shop), pay_and_close)
    assert enqueued(stub[0]) == [] and transitions(shop) == 0


def test_an_async_session_inside_a_connections_transaction_on_postgresql_enqueues_at_its_commit(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    order_id = new_order(shop)

    async def main() -> tuple[int, list[tuple[str, tuple[object, ...]]]]:
        async with async_engine.connect() as connection:
            await connection.begin()
            async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint",
                                    expire_on_commit=False) as session:
                order = await session.get(Order, order_id)
                assert order is not None
                record = await order.fire_async("pay")
                await session.commit()  # only its SAVEPOINT
            waiting = enqueued(stub[0])
            await connection.commit()
        return record.id, waiting

    record_id, before_the_connections_commit = asyncio.run(main())
    assert outbox.dispatcher.flush(timeout=10)
    assert before_the_connections_commit == [] and enqueued(stub[0]) == [("tidings.fan_out", (record_id,))]


def test_of_two_async_transitions_racing_on_a_row_one_wins_and_the_other_raises_concurrent_transition(
        async_engine: AsyncEngine, shop: Engine, stub: tuple[StubBroker, MemoryChannel]) -> None:
    order_id = new_order(shop)

    async def race() -> None:
        async with AsyncSession(async_engine) as first, AsyncSession(async_engine) as second:
            mine, theirs = await first.get(Order, order_id), await second.get(Order, order_id)
            assert mine is not None and theirs is not None
            await mine.fire_async("cancel")
            await first.commit()
            with pytest.raises(ConcurrentTransition, match="changed by another transaction while firing 'pay'"):
                await theirs.fire_async("pay")
            await second.commit()

    asyncio.run(race())
    with Session(shop) as session:
        assert session.get(Order, order_id).state == "cancelled"  # type: ignore[union-attr]
    assert transitions(shop) == 1


def test_an_async_commit_with_the_broker_down_commits_and_the_sweeper_delivers_it(
        async_engine: AsyncEngine, shop: Engine, redis_url: str, queue_name: str,
        tcp_proxy: Callable[[int], TCPProxy], stub: tuple[StubBroker, MemoryChannel]) -> None:
    # Given the application's broker unreachable (Redis behind a proxy that was cut)
    proxy = tcp_proxy(urlsplit(redis_url).port or 0)
    proxy.cut()
    jobs.configure(jobs.Settings(), broker_url=proxied(redis_url, proxy), queue=queue_name, engine=shop,
                   broker_timeout=1)
    order_id = new_order(shop)

    async def pay(session: AsyncSession, order: Order) -> None:
        await order.fire_async("pay")
        await session.commit()

    # When a request commits a transition: it commits, and its enqueue fails off the request's thread
    run(async_engine, order_id, pay)
    assert outbox.dispatcher.flush(timeout=30)
    with Session(shop) as session:
        assert session.get(Order, order_id).state == "paid"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).where(TransitionRecord.fanned_out_at.is_(None))) == 1
        session.execute(update(TransitionRecord).values(created_at=LONG_AGO))
        session.commit()

    # Then, once a broker answers, the sweep fans it out and both parties get their mail
    broker, mailbox = stub
    jobs.configure(jobs.Settings(), broker=broker, engine=shop, channels={"email": mailbox}, sweep_interval=0)
    assert len(sweep().transitions) == 1
    drain()
    assert sorted(sent.to.address for sent in mailbox.outbox) == ["bea@example.com", "sam@example.com"]
