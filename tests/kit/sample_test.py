"""A user's tests of their notifications, using only the ``tidings`` fixture that Tidings installs.

Copied into a fresh folder and run by tests/test_kit.py, as ``test_sample.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from sample_app import Base, Member, Signup
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """The usual pattern: every test runs in an outer transaction that is rolled back."""
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        yield session
        session.close()
        outer.rollback()


@pytest.fixture
def signup(session: Session) -> Signup:
    signup = Signup(member=Member(name="Ann", email="ann@example.com"))
    session.add(signup)
    session.commit()
    return signup


def test_activating_welcomes_the_member(session, signup, tidings):
    signup.activate()
    session.commit()
    tidings.assert_notified("ann@example.com", trigger="activate", subject="Welcome, Ann", count=1)


def test_a_rolled_back_activation_sends_nothing(session, signup, tidings):
    signup.activate()
    session.rollback()
    tidings.assert_nothing_sent()


def test_nothing_is_sent_before_the_commit(session, signup, tidings):
    signup.activate()
    session.flush()
    assert tidings.queued == 0
    session.commit()
    assert tidings.queued == 1


def test_closing_says_goodbye_with_the_reason(session, signup, tidings):
    signup.close(reason="moving away")
    session.commit()
    [goodbye] = tidings.notifications(party="member", trigger="close")
    assert goodbye.text == "Closed: moving away."


def test_real_commits_work_too(engine, tidings):
    with Session(engine) as session:
        signup = Signup(member=Member(name="Bob", email="bob@example.com"))
        session.add(signup)
        session.commit()
        signup.activate()
        signup.close()
        session.commit()
    tidings.assert_sent_count(2)
    tidings.assert_notified("bob@example.com", subject="Goodbye")
