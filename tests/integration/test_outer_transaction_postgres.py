"""PostgreSQL, a real broker and worker: a session inside an outer transaction is sent after the real COMMIT."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jobs
import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from tests.app import Order, Person

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]


def pay_inside(connection: Connection, buyer: str) -> None:
    """Pay a new order (``buyer``@ and a seller) in a session joined to ``connection``'s transaction; commit it."""
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        order = Order(buyer=Person(name=buyer, email=f"{buyer}@example.com"),
                      seller=Person(name="Sam", email=f"sam.{buyer}@example.com"))
        session.add(order)
        session.commit()
        order.pay()
        session.commit()


def test_the_worker_gets_the_transition_after_the_connections_commit_and_nothing_of_a_rolled_back_one(
        pg_url: str, shop: Engine, broker_url: str, queue_name: str, smtp_server: Any,
        worker_process: Callable[..., Any], tmp_path: Path) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    worker_process("tests.app", threads=1, env={
        "TIDINGS_DATABASE_URL": pg_url, "TIDINGS_BROKER_URL": broker_url, "TIDINGS_QUEUE": queue_name,
        "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": smtp_server.host,
        "TIDINGS_SMTP_PORT": str(smtp_server.port)})
    with shop.connect() as connection:
        outer = connection.begin()
        pay_inside(connection, "rolled")
        outer.rollback()  # a test's teardown, or a request that failed after its session committed
    with shop.connect() as connection:
        outer = connection.begin()
        pay_inside(connection, "kept")
        outer.commit()

    mails = smtp_server.wait_for(2, timeout=60)  # one thread: the rolled-back one, had it been sent, came first
    assert sorted(str(m["To"]) for m in mails) == ["Sam <sam.kept@example.com>", "kept <kept@example.com>"]
    log = (tmp_path / "worker-0.log").read_text()
    assert "does not exist" not in log and "ERROR" not in log
