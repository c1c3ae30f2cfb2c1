"""On PostgreSQL (one statement writes the state and the log), subclass rows fire and are found again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import workflow
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from workflow import load_subject

from tests.members import Base, Guest, Member, Moderator

pytestmark = pytest.mark.integration


@pytest.fixture
def members(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("cls", [Moderator, Guest])
def test_a_subclass_row_fires_and_is_found_again_as_its_subclass(members: Engine, cls: type[Member]) -> None:
    with Session(members) as session:
        row = cls(email="m@example.com")
        session.add(row)
        session.commit()
        record = row.join()
        session.commit()
        assert (record.model, record.key, row.state) == ("Member", str(row.id), "active")
        session.expunge_all()
        found = load_subject(session, record)
        assert type(found) is cls and found is not None and found.state == "active"
