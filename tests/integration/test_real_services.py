"""End to end on real parts: a committed transition reaches a real SMTP server, once per party."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jobs
import pytest
import workflow
from jobs import Delivery, Status
from jobs.testing import drain
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from examples.lending.models import Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import worker_env
from tests.scenarios import create_lending_tables
from tests.servers import SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

# Each step of the story, and who must receive what.
STORY = [
    ("request", [("ann@example.com", "Bob would like to borrow your ladder")]),
    ("accept", [("bob@example.com", "Ann said yes")]),
    ("hand_over", [("ann@example.com", "ladder changed hands"), ("bob@example.com", "ladder changed hands")]),
    ("give_back", [("ann@example.com", "Your ladder is back")]),
]
EXPECTED = sorted(mail for _, mails in STORY for mail in mails)


def tell_the_story(engine: Engine, after_each: Callable[[], None] = lambda: None) -> None:
    """Fire every step of a loan, each in its own committed transaction, as request handlers do."""
    with Session(engine) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        loan = Loan(item=Item(title="ladder", owner=ann), borrower=bob)
        session.add(loan)
        session.commit()
        for trigger, _ in STORY:
            loan.fire(trigger, actor=bob if trigger in ("request", "give_back") else ann)
            session.commit()
            after_each()


def wait_until_settled(engine: Engine, expected: int, timeout: float = 60.0) -> list[str]:
    """Poll the delivery log until ``expected`` deliveries exist and none is pending or sending.

    Those held for later (the lending example's reminder and pick-up nudge, due hours or days on) are not counted.
    """
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            statuses = list(session.scalars(select(Delivery.status).where(Delivery.status != Status.SCHEDULED)))
        settled = len(statuses) >= expected and not {Status.PENDING, Status.SENDING} & set(statuses)
        if settled or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def received(server: SMTPServer) -> list[tuple[str, str]]:
    return sorted((str(m["To"]).rpartition("<")[2].rstrip(">") or str(m["To"]), str(m["Subject"]))
                  for m in server.received)


def test_a_worker_process_delivers_one_email_per_party_on_postgresql(
        pg_url: str, pg_engine: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., Any]) -> None:
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    worker_process("examples.lending.notifications",
                   env=worker_env(pg_url, broker_url, queue_name, smtp_server,
                                  TIDINGS_SENDER="Lending <loans@lending.example>"))

    tell_the_story(pg_engine)

    smtp_server.wait_for(len(EXPECTED), timeout=60)
    assert wait_until_settled(pg_engine, len(EXPECTED)) == [Status.SENT] * len(EXPECTED)
    assert received(smtp_server) == EXPECTED
    message_ids = {str(m["Message-ID"]) for m in smtp_server.received}
    assert len(message_ids) == len(EXPECTED) and all(i.endswith("@lending.example>") for i in message_ids)


def test_an_in_process_worker_delivers_one_email_per_party_on_sqlite_and_the_stub_broker(
        tmp_path: Any, smtp_server: SMTPServer) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'lending.db'}")
    create_lending_tables(engine)
    jobs.configure(jobs.Settings(), broker_url="stub", engine=engine, email_channel="smtp",
                   smtp_host=smtp_server.host, smtp_port=smtp_server.port)

    tell_the_story(engine, after_each=drain)

    assert received(smtp_server) == EXPECTED
    assert wait_until_settled(engine, len(EXPECTED), timeout=5) == [Status.SENT] * len(EXPECTED)


def test_a_rolled_back_transition_never_reaches_the_smtp_server(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., Any]) -> None:
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    worker_process("examples.lending.notifications", env=worker_env(pg_url, redis_url, queue_name, smtp_server))
    with Session(pg_engine) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        declined = Loan(item=Item(title="saw", owner=ann), borrower=bob)
        kept = Loan(item=Item(title="drill", owner=ann), borrower=bob)
        session.add_all([declined, kept])
        session.commit()
        declined.request()
        session.rollback()  # this request failed: nothing may be sent for it
        kept.request()
        session.commit()  # the barrier: once its mail arrived, the rolled-back one had its chance too

    smtp_server.wait_for(1, timeout=60)
    assert wait_until_settled(pg_engine, 1) == [Status.SENT]
    assert received(smtp_server) == [("ann@example.com", "Bob would like to borrow your drill")]
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(workflow.TransitionRecord)) == 1
