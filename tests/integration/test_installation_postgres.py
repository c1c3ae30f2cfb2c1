"""On PostgreSQL, two installations (two schemas) give the same transition different delivery keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import workflow
from jobs import Delivery
from jobs.fanout import fan_out
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from tests import scenarios
from tests.app import Base

pytestmark = pytest.mark.integration


@pytest.fixture
def other_shop(shop: Engine) -> Iterator[Engine]:
    """A second schema with the shop's and Tidings' tables: another installation on the same server."""
    schema = f"it_{uuid.uuid4().hex[:12]}"
    with shop.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = create_engine(shop.url.update_query_dict({"options": f"-csearch_path={schema}"}))
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()
    with shop.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def planned_keys(engine: Engine) -> tuple[list[int], set[str]]:
    with Session(engine) as session:
        ids = scenarios.paid_orders(session, 1)
        fan_out(session, ids[0])
        return ids, set(session.scalars(select(Delivery.key)))


def test_the_same_transition_in_two_schemas_gets_different_keys(shop: Engine, other_shop: Engine) -> None:
    staging_ids, staging = planned_keys(shop)
    production_ids, production = planned_keys(other_shop)
    assert staging_ids == production_ids and len(staging) == len(production) == 2
    assert staging.isdisjoint(production)
