"""Digests on PostgreSQL without worker processes: the row locks a digests run and a fan-out take and skip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import workflow
from jobs import RetryPolicy, Status, digest_sending
from jobs.digest_log import DigestRow, DigestStatus
from jobs.digesting import attach
from jobs.rows import BATCH
from jobs.testing import Kit
from notifiers import Batch, MemoryChannel
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from workflow import clock, utcnow

from tests.digest_app import HOUR, Base, Member, Watched

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]


@pytest.fixture
def session(pg_url: str) -> Iterator[Session]:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def due_digests(session: Session, tidings: Kit) -> list[int]:
    """Three digests (one per watcher) of two comments, their window closed; their ids."""
    now = utcnow()  # 12:05 UTC: a window just began, and quiet hours (22:00-08:00) are far
    clock.advance((now.replace(hour=12, minute=5, second=0, microsecond=0) - now) % dt.timedelta(days=1))
    ticket = Watched(title="Crash", author=Member(name="Ann", email="ann@example.com"),
                     watchers=[Member(name=f"W{i}", email=f"w{i}@example.com") for i in range(3)])
    session.add(ticket)
    session.commit()
    for n in range(2):
        ticket.fire("comment", text=f"comment {n}")
        session.commit()
    tidings.run()
    clock.advance(HOUR + dt.timedelta(minutes=1))
    return list(session.scalars(select(DigestRow.id).order_by(DigestRow.id)))


def test_on_postgresql_a_digests_run_sends_the_digests_another_holds_none_of_without_waiting_for_it(
        session: Session, tidings: Kit) -> None:
    ids = due_digests(session, tidings)
    engine = session.get_bind()
    with Session(engine) as holder, Session(engine) as runner:
        [held] = holder.scalars(select(DigestRow.id).order_by(DigestRow.id).limit(1).with_for_update())  # another run's
        runner.execute(text("SET lock_timeout = '2s'"))  # waiting for the holder (which never commits) fails the test
        done = digest_sending.close_due(runner, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                                        retry=RetryPolicy(max_retries=2))
        assert (held, done.sent) == (ids[0], 2)
        holder.rollback()
    session.expire_all()
    assert [row.status for row in session.scalars(select(DigestRow).order_by(DigestRow.id))] == [
        DigestStatus.OPEN, DigestStatus.SENT, DigestStatus.SENT]


def test_on_postgresql_a_digests_run_sends_none_of_a_digest_a_fan_out_is_adding_to(session: Session,
                                                                                  tidings: Kit) -> None:
    ids = due_digests(session, tidings)  # their window closed, none taken yet
    first = session.get(DigestRow, ids[0])
    assert first is not None
    batch = Batch("", first.window_start, first.due_at, window=HOUR)
    row = {BATCH: (batch, first.key, None), "status": Status.PENDING, "notifier": first.notifier, "party": first.party,
           "channel": first.channel, "address": first.address, "name": first.name,
           "recipient_ref": first.recipient_ref, "locale": first.locale}
    engine = session.get_bind()
    with engine.connect() as fan_out, Session(engine) as runner:
        attach(fan_out, [row], utcnow())  # its transaction open: the event joins the first digest
        runner.execute(text("SET lock_timeout = '2s'"))
        done = digest_sending.close_due(runner, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                                        retry=RetryPolicy(max_retries=2))
        assert (row["digest_id"], done.sent) == (ids[0], 2)
        fan_out.rollback()
