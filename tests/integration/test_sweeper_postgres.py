"""The sweeper on PostgreSQL: several at once take different overdue rows, none waiting for another."""

from __future__ import annotations

import datetime as dt

import pytest
from jobs.sweeper import sweep
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from tests import scenarios

pytestmark = pytest.mark.integration


def test_on_postgresql_a_sweep_takes_the_overdue_rows_another_sweep_holds_none_of_without_waiting_for_it(
        shop: Engine) -> None:
    with Session(shop) as session:  # three transitions never fanned out, committed an hour ago
        ids = scenarios.paid_orders(session, 3)
        session.execute(update(TransitionRecord).values(created_at=utcnow() - dt.timedelta(hours=1)))
        session.commit()
    with Session(shop) as first, Session(shop) as second:
        [held] = first.scalars(select(TransitionRecord.id).where(TransitionRecord.id == ids[0]).with_for_update())
        second.execute(text("SET lock_timeout = '2s'"))  # waiting for the first (which never commits) fails the test
        taken = sweep(second, grace_seconds=60)
        assert sorted(taken.transitions) == ids[1:] and held == ids[0]
        first.rollback()
