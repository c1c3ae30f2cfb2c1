"""Delivery on PostgreSQL: a claim and an outcome are statements of their own."""

from __future__ import annotations

from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs.actors import deliver, fan_out
from notifiers import MemoryChannel
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.app import Order, Person

pytestmark = pytest.mark.integration


def test_on_postgresql_a_claim_and_an_outcome_are_single_statement_transactions(
        shop: Any, mailbox: MemoryChannel, restore_jobs: None) -> None:
    stub = StubBroker()
    stub.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=stub, engine=shop, channels={"email": mailbox}, sweep_interval=0)
    seen: list[tuple[str, bool]] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        autocommit = conn.connection.dbapi_connection.autocommit
        if "INSERT INTO tidings_deliveries" in statement:  # its transitions marked in the same statement (WITH)
            seen.append(("INSERT", autocommit))
        elif "tidings_deliveries" in statement.split("(")[0]:
            seen.append((statement.split()[0], autocommit))

    with Session(shop) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        record_id = order.pay().id
        session.commit()
    event.listen(shop, "before_cursor_execute", note)
    try:
        fan_out.fn(record_id)  # writes both deliveries claimed, in its transaction, sends both, records both at once
        deliver.fn(1)  # already sent: neither claim (without, with a supersession rule) takes it, nor is it void
    finally:
        event.remove(shop, "before_cursor_execute", note)
    assert seen == [("INSERT", False), ("UPDATE", True), ("UPDATE", True), ("UPDATE", True), ("SELECT", False),
                    ("SELECT", False)]
    assert len(mailbox.outbox) == 2
