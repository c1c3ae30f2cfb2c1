"""Two transactions firing on the same row: one wins, the other gets ConcurrentTransition."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from workflow import ConcurrentTransition, InvalidTransition, TransitionRecord

from tests.app import Order


def test_the_second_of_two_racing_transitions_gets_a_clear_error(engine: Engine, order: Order,
                                                                 count: Callable[[type], int]) -> None:
    with Session(engine) as first, Session(engine) as second:
        mine, theirs = first.get(Order, order.id), second.get(Order, order.id)
        assert mine is not None and theirs is not None
        theirs.state  # noqa: B018 - loaded before the first one commits
        mine.cancel()
        first.commit()
        with pytest.raises(ConcurrentTransition, match=rf"Order {order.id} was changed by another transaction "
                                                       r"while firing 'pay' from 'new'"):
            theirs.pay()
        assert theirs.state == "new"
        second.rollback()
    assert count(TransitionRecord) == 1


def test_a_concurrent_transition_is_an_invalid_transition_for_request_handlers() -> None:
    assert issubclass(ConcurrentTransition, InvalidTransition)


def test_the_state_update_is_written_once(engine: Engine, session: Session, order: Order) -> None:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", record)
    try:
        order.cancel()  # no callbacks touching other columns
        session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [s for s in statements if s in ("UPDATE", "INSERT")] == ["UPDATE", "INSERT"]


def test_a_callback_that_makes_the_session_autoflush_does_not_defeat_the_check(session: Session,
                                                                              order: Order) -> None:
    order.pay()
    session.commit()  # expires order.buyer: the after-callback of 'ship' loads it again
    order.ship()
    session.commit()
    assert (order.state, order.calls[-1]) == ("shipped", "greet:Bea")
