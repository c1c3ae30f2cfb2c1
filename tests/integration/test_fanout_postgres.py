"""On PostgreSQL a fan-out message also plans the transitions waiting behind it, each taken by one fan-out."""

from __future__ import annotations

import pytest
from jobs import Delivery
from jobs.fanout import _take, plan_many
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Order, Person

pytestmark = pytest.mark.integration


def paid_orders(engine: Engine, count: int) -> list[int]:
    """``count`` orders paid and committed, their transitions not fanned out yet; the transitions' ids."""
    with Session(engine) as session:
        orders = [Order(buyer=Person(name=f"B{n}", email=f"b{n}@example.com"),
                        seller=Person(name=f"S{n}", email=f"s{n}@example.com")) for n in range(count)]
        session.add_all(orders)
        session.commit()
        ids = [order.pay().id for order in orders]
        session.commit()
    return ids


def unfanned(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(TransitionRecord.fanned_out_at.is_(None))) or 0


def test_a_fan_out_plans_the_transitions_waiting_behind_its_own(shop: Engine) -> None:
    ids = paid_orders(shop, 5)
    with Session(shop) as session:
        planned = plan_many(session, [ids[0]], waiting=10)
    assert sorted(planned.loaded) == ids and len(planned.pending) == 10 and unfanned(shop) == 0


def test_a_message_whose_transition_was_planned_by_another_does_nothing(shop: Engine) -> None:
    ids = paid_orders(shop, 3)
    with Session(shop) as session:
        plan_many(session, [ids[0]], waiting=10)
        again = plan_many(session, [ids[2]], waiting=10)
        assert again.loaded == {} and again.pending == [] and again.missing == []
        assert session.scalar(select(func.count()).select_from(Delivery)) == 6


def test_two_fan_outs_at_once_take_different_transitions(shop: Engine) -> None:
    ids = paid_orders(shop, 5)
    with Session(shop) as first, Session(shop) as second:
        held, _ = _take(first, [ids[0]], 2)  # the first fan-out holds three, still planning them
        planned = plan_many(second, [ids[1]], waiting=10)  # its own is among them
        assert sorted(held) == ids[:3]
        assert sorted(planned.loaded) == ids[3:] and planned.missing == []
        first.rollback()


def test_a_transition_that_does_not_exist_is_reported_missing(shop: Engine) -> None:
    ids = paid_orders(shop, 1)
    with Session(shop) as session:
        planned = plan_many(session, [424242], waiting=10)
    assert planned.missing == [424242] and sorted(planned.loaded) == ids
