"""The partitioning recipe of docs/operations.md on PostgreSQL: the log keeps its rows, deliveries go through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Settings, Status
from jobs.fanout import plan_many
from jobs.retention import Pruned, prune
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from tests import scenarios

pytestmark = pytest.mark.integration

SPAN = 4  # transitions per partition, so that a few orders spread over several


def recipe() -> str:
    """The recipe's SQL as docs/operations.md gives it, with a span of ``SPAN`` transitions."""
    operations = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    section = operations.split("## Partitioning the delivery log (PostgreSQL)", 1)[1]
    sql = section.split("```sql\n", 1)[1].split("```", 1)[0]
    assert "span bigint := 1000000;" in sql
    return sql.replace("span bigint := 1000000;", f"span bigint := {SPAN};")


@pytest.fixture
def parted(shop: Engine, restore_jobs: None) -> Iterator[tuple[Engine, MemoryChannel]]:
    """The shop with six orders delivered, then its delivery log partitioned by the recipe; jobs on it."""
    broker, mailbox = StubBroker(), MemoryChannel()
    broker.emit_after("process_boot")
    jobs.configure(Settings(), broker=broker, engine=shop, channels={"email": mailbox}, sweep_interval=0)
    with Session(shop) as session:
        scenarios.paid_orders(session, 6)
    drain()
    with shop.begin() as connection:  # as psql runs it: no parameters, so format()'s %s stay the SQL's
        connection.connection.driver_connection.execute(recipe())
    yield shop, mailbox


def partitions(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT tableoid::regclass::text, count(*) FROM tidings_deliveries GROUP BY 1"))
        return {name: count for name, count in rows}


def test_the_recipe_keeps_every_delivery_and_spreads_them_over_partitions(parted: tuple[Engine, MemoryChannel]) -> None:
    engine, _ = parted
    assert partitions(engine) == {"tidings_deliveries_p0": 6, "tidings_deliveries_p1": 6}  # 2 per order, ids 1..6


def test_deliveries_go_through_the_partitioned_log(parted: tuple[Engine, MemoryChannel]) -> None:
    engine, mailbox = parted
    mailbox.clear()
    with Session(engine) as session:
        ids = scenarios.paid_orders(session, 4)  # transitions 7 to 10
    drain()
    assert len(mailbox.outbox) == 8
    with Session(engine) as session:
        statuses = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        assert dict(statuses) == {Status.SENT: 20}
        assert plan_many(session, ids).pending == []  # a second fan-out writes nothing
    assert partitions(engine)["tidings_deliveries_p2"] == 6  # transitions 8 to 10


def test_a_done_span_is_dropped_and_a_prune_deletes_from_the_others(parted: tuple[Engine, MemoryChannel]) -> None:
    engine, _ = parted
    with engine.begin() as connection:  # all six orders' deliveries sent 100 days ago
        connection.execute(update(Delivery).values(updated_at=func.now() - text("interval '100 days'")))
        assert connection.scalar(text("SELECT count(*) FROM tidings_deliveries_p1 "
                                      "WHERE status NOT IN ('sent', 'failed', 'dead', 'skipped')")) == 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ALTER TABLE tidings_deliveries DETACH PARTITION tidings_deliveries_p1 CONCURRENTLY")
        connection.exec_driver_sql("DROP TABLE tidings_deliveries_p1")
    assert partitions(engine) == {"tidings_deliveries_p0": 6}
    assert prune(engine, Settings(keep_deliveries_days=30)) == Pruned(deliveries=6)
    assert partitions(engine) == {}
