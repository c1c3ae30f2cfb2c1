"""Two transactions firing on the same row, on PostgreSQL: one statement each, and the loser writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session
from workflow import ConcurrentTransition, TransitionRecord

from tests.app import Order, Person

pytestmark = pytest.mark.integration


def new_order(engine: Engine) -> int:
    with Session(engine) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        return order.id


def test_on_postgresql_the_state_and_the_log_row_are_one_statement(shop: Engine) -> None:
    order_id = new_order(shop)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    with Session(shop) as session:
        order = session.get(Order, order_id)
        assert order is not None
        event.listen(shop, "before_cursor_execute", record)
        try:
            record_ = order.cancel()
            session.commit()
        finally:
            event.remove(shop, "before_cursor_execute", record)
        assert [s for s in statements if s in ("UPDATE", "INSERT", "WITH")] == ["WITH"]
        assert (record_.source, record_.dest, order.state) == ("new", "cancelled", "cancelled")
    assert session_count(shop) == 1


def test_on_postgresql_the_loser_of_a_race_writes_nothing(shop: Engine) -> None:
    order_id = new_order(shop)
    with Session(shop) as first, Session(shop) as second:
        mine, theirs = first.get(Order, order_id), second.get(Order, order_id)
        assert mine is not None and theirs is not None
        mine.cancel()
        first.commit()
        with pytest.raises(ConcurrentTransition):
            theirs.pay()
        second.commit()
    with Session(shop) as session:
        assert session.get(Order, order_id).state == "cancelled"  # type: ignore[union-attr]
    assert session_count(shop) == 1


def session_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(TransitionRecord)) or 0)
