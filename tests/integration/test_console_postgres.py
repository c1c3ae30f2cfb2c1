"""The console's pages on PostgreSQL, where their queries differ: the chart's minutes, the estimated counts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.console import Console, Request
from jobs.status import sent_per_minute
from jobs.testing import drain, stop_workers
from notifiers import MemoryChannel
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.failing_channels import Refusing

pytestmark = pytest.mark.integration




@pytest.fixture
def seeded(shop: Engine) -> Iterator[Engine]:
    """Three orders paid and told (six sent), one refused (two failed), on PostgreSQL."""
    stub = StubBroker()
    stub.emit_after("process_boot")
    with Session(shop) as session:
        orders = [Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                        seller=Person(name=f"S{n}", email=f"s{n}@example.com")) for n in range(4)]
        session.add_all(orders)
        session.commit()
        for channel, chosen in ((MemoryChannel(), orders[:3]), (Refusing("550 no such user"), orders[3:])):
            jobs.configure(jobs.Settings(), broker=stub, engine=shop, channels={"email": channel}, max_retries=0)
            for order in chosen:
                order.pay()
            session.commit()
            drain()
    yield shop
    stop_workers()
    jobs.configure(jobs.Settings(), broker=StubBroker())


def page(engine: Engine, path: str, **query: str) -> str:
    response = Console(engine, authorize=lambda request: "ops").answer(
        Request("GET", path, query={k: [v] for k, v in query.items()}))
    assert response.status == 200
    return response.body.decode()


def test_on_postgresql_the_chart_counts_the_minute_each_delivery_was_sent(seeded: Engine) -> None:
    assert "(6 sent; peak 6 a minute)" in page(seeded, "/")


def test_on_postgresql_in_a_session_zone_other_than_utc_the_chart_counts_each_delivery_in_its_utc_minute(
        seeded: Engine) -> None:
    with seeded.connect() as connection:
        connection.exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")  # +05:30: the minutes themselves move
        with Session(connection) as session:
            counted = sum(count for _, count in sent_per_minute(session))
    assert counted == 6


def test_on_postgresql_the_overview_estimates_the_sent_count_from_the_statistics_once_analysed(seeded: Engine) -> None:
    assert re.search(r"sent<b>6</b>", page(seeded, "/"))  # never analysed: counted
    with seeded.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE tidings_deliveries")
    shown = page(seeded, "/")
    assert re.search(r"sent<b>&asymp; 6</b>", shown) and re.search(r"failed<b>2</b>", shown)


def test_on_postgresql_the_lists_filter_and_page_by_id(seeded: Engine) -> None:
    assert page(seeded, "/failures").count("550 no such user") == 2
    assert page(seeded, "/deliveries", status="sent", notifier="OrderNotifier", since="1h").count("<td>email</td>") == 6
    with Session(seeded) as session:
        newest = max(session.scalars(select(Delivery.id)))
    older = page(seeded, "/deliveries", before=str(newest))
    assert f'<td class="n">{newest}</td>' not in older and older.count("<td>email</td>") == 7


def test_on_postgresql_a_timeline_shows_each_delivery_with_its_preview(seeded: Engine) -> None:
    with Session(seeded) as session:
        failed = session.scalars(select(Delivery).where(Delivery.status == "failed")).first()
        assert failed is not None
        transition = failed.transition_id
    shown = page(seeded, "/timeline", transition=str(transition))
    assert shown.count("550 no such user") == 2 and "is paid." in shown
