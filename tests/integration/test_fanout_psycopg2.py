"""On PostgreSQL through a driver other than psycopg (psycopg2, SQLAlchemy's default for ``postgresql://``),
a fan-out of many rows writes them the portable way (executemany), not with psycopg's own SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import workflow
from jobs import Delivery, Status
from jobs.fanout import plan
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Base, Order, Person

pytestmark = pytest.mark.integration


@pytest.fixture
def psycopg2_shop(pg_url: str) -> Iterator[Engine]:
    """The test shop's tables and Tidings' own on the test's PostgreSQL schema, through psycopg2."""
    engine = create_engine(pg_url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1))
    assert engine.dialect.driver == "psycopg2"
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_through_psycopg2_a_fan_out_of_many_rows_writes_each_and_marks_its_transition(psycopg2_shop: Engine) -> None:
    with Session(psycopg2_shop) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"),
                      watchers=[f"w{n}@example.com" for n in range(60)])
        session.add(order)
        session.commit()
        transition_id = order.cancel().id
        session.commit()
        planned = plan(session, transition_id)
        written = session.execute(select(Delivery.id, Delivery.address, Delivery.status)).all()
        assert sorted(planned.pending) == sorted(id_ for id_, *_ in written) and len(written) == 61
        assert {address for _, address, _ in written} == {"bea@example.com"} | {f"w{n}@example.com" for n in range(60)}
        assert {status for *_, status in written} == {Status.PENDING}
        assert session.get(TransitionRecord, transition_id).fanned_out_at is not None  # type: ignore[union-attr]
