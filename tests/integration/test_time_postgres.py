"""Deliveries in time on PostgreSQL with real worker processes: supersession racing sends, delays across restarts."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import jobs
import pytest
import redis
from jobs import Delivery, Status
from jobs.due import due_query, take_due
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow

from examples.lending.models import Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import stop_group, wait_for, worker_env
from tests.servers import SMTPServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

PICK_UP = "examples.lending.notifications.LoanNotifier.pick_up"
QUICK = {"TIDINGS_DUE_INTERVAL": "0.1", "TIDINGS_SWEEP_INTERVAL": "1", "TIDINGS_SWEEP_AFTER_SECONDS": "5",
         "TIDINGS_LEASE_SECONDS": "3"}


def requested_loans(engine: Engine, count: int) -> list[int]:
    """``count`` loans waiting for their lender's answer, each with its own borrower and lender; their ids."""
    with Session(engine) as session:
        loans = [Loan(item=Item(title=f"item {i}", owner=User(name=f"L{i}", email=f"l{i}@example.com")),
                      borrower=User(name=f"B{i}", email=f"b{i}@example.com"), state="requested") for i in range(count)]
        session.add_all(loans)
        session.commit()
        return [loan.id for loan in loans]


def fire_each(engine: Engine, ids: list[int], trigger: str) -> dict[str, dt.datetime]:
    """Fire ``trigger`` on each loan in its own transaction; when each commit had returned, by loan key."""
    committed = {}
    with Session(engine) as session:
        for loan_id in ids:
            loan = session.get(Loan, loan_id)
            assert loan is not None
            loan.fire(trigger)
            session.commit()
            committed[str(loan_id)] = utcnow()
    return committed


def pick_ups(engine: Engine) -> list[tuple[str, str, str | None, dt.datetime | None, str | None]]:
    """Each pick-up nudge: (loan key, delivery key, status, claimed at, reason)."""
    with Session(engine) as session:
        return [(key, d_key, status, claimed, reason) for key, d_key, status, claimed, reason in session.execute(
            select(TransitionRecord.key, Delivery.key, Delivery.status, Delivery.claimed_at, Delivery.last_error)
            .join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
            .where(Delivery.notifier == PICK_UP))]


def arrived_keys(smtp: SMTPServer, subject: str) -> list[str]:
    """The delivery keys (from the Message-IDs) of the mails that arrived with ``subject`` in it."""
    with smtp.arrived:
        return [str(m["Message-ID"]).strip("<>").split("@")[0] for m in smtp.received if subject in str(m["Subject"])]


def test_no_superseded_mail_arrives_when_supersession_races_the_sends(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    # Given 200 accepted loans, each with a pick-up nudge pending (void once handed over), and workers running
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = requested_loans(pg_engine, 200)
    worker_process("examples.lending.notifications", env=worker_env(pg_url, redis_url, queue_name, smtp_server,
                                                                     **QUICK), processes=2, threads=8)
    fire_each(pg_engine, ids, "accept")
    assert wait_for(lambda: len(pick_ups(pg_engine)) == 200, timeout=60)
    # When the nudges fall due one after the other, 100 ms apart, while the loans are handed over in order from
    # 2 s after the first fell due (a hand-over takes less than 100 ms: the first ones are sent, then the
    # hand-overs catch up with the due times and race them, then they overtake them)
    with Session(pg_engine) as session:
        start = utcnow() + dt.timedelta(seconds=1)
        for n, (delivery_id,) in enumerate(session.execute(select(Delivery.id).where(Delivery.notifier == PICK_UP)
                                                            .order_by(Delivery.transition_id))):
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
                due_at=start + n * dt.timedelta(milliseconds=100), created_at=utcnow() - dt.timedelta(hours=2),
                updated_at=utcnow() - dt.timedelta(hours=2)))
        session.commit()
    wait_for(lambda: utcnow() >= start + dt.timedelta(seconds=2), timeout=5)
    handed_over = fire_each(pg_engine, ids, "hand_over")
    assert wait_for(lambda: all(s in (Status.SENT, Status.SKIPPED) for _, _, s, _, _ in pick_ups(pg_engine)),
                    timeout=60), pick_ups(pg_engine)
    rows = pick_ups(pg_engine)
    sent = {d_key: (loan, claimed) for loan, d_key, status, claimed, _ in rows if status == Status.SENT}
    skipped = [reason for _, _, status, _, reason in rows if status == Status.SKIPPED]
    assert wait_for(lambda: len(arrived_keys(smtp_server, "Have you picked up")) >= len(sent), timeout=30)
    arrived = arrived_keys(smtp_server, "Have you picked up")
    # (the race's premise: some nudges were sent before their hand-over, some were superseded)
    print(f"\n[figures] supersession race: {len(sent)} sent, {len(skipped)} superseded of 200")
    assert sent and skipped
    # Then every nudge that arrived was claimed before its loan's hand-over had committed, and no superseded one arrived
    assert sorted(arrived) == sorted(sent)
    for loan, claimed in sent.values():
        assert claimed is not None and claimed.replace(tzinfo=dt.timezone.utc) < handed_over[loan]
    assert all(reason is not None and reason.startswith("superseded by hand_over at ") for reason in skipped)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A redis-server of this test's own, on a free port, without persistence; calling it (re)starts it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port, running = free_port(), []

    def start() -> str:
        for process in running:
            stop_group(process)
        running.clear()
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(tmp_path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        running.append(process)
        client = redis.Redis(port=port)
        assert wait_for(lambda: _pings(client), timeout=10), "the private redis-server did not start"
        return f"redis://127.0.0.1:{port}/0"

    yield start
    for process in running:
        stop_group(process)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_delay_of_hours_survives_a_worker_restart_and_a_broker_that_lost_its_messages(
        pg_url: str, pg_engine: Engine, queue_name: str, smtp_server: SMTPServer, private_redis: Callable[[], str],
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    # Given a loan accepted, its pick-up nudge due in an hour, planned by a worker
    broker_url = private_redis()
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    [loan_id] = requested_loans(pg_engine, 1)
    env = worker_env(pg_url, broker_url, queue_name, smtp_server, **QUICK)
    first = worker_process("examples.lending.notifications", env=env)
    fire_each(pg_engine, [loan_id], "accept")
    assert wait_for(lambda: len(pick_ups(pg_engine)) == 1 and len(smtp_server.received) == 1, timeout=30)

    # When the worker stops, the broker restarts empty, and the hours pass (the rows are made two hours older)
    stop_group(first)
    assert private_redis() == broker_url
    assert redis.Redis.from_url(broker_url).dbsize() == 0  # whatever it held is gone
    older = dt.timedelta(hours=2)
    with Session(pg_engine) as session:
        session.execute(update(TransitionRecord).values(created_at=TransitionRecord.created_at - older))
        session.execute(update(Delivery).values(created_at=Delivery.created_at - older,
                                                updated_at=Delivery.updated_at - older, due_at=Delivery.due_at - older))
        session.commit()
    assert [status for _, _, status, _, _ in pick_ups(pg_engine)] == [Status.SCHEDULED]
    worker_process("examples.lending.notifications", env=env)

    # Then the nudge arrives, once
    assert wait_for(lambda: len(arrived_keys(smtp_server, "Have you picked up")) == 1, timeout=30), pick_ups(pg_engine)
    assert wait_for(lambda: pick_ups(pg_engine)[0][2] == Status.SENT, timeout=10)
    [(_, key, _, _, _)] = pick_ups(pg_engine)
    assert arrived_keys(smtp_server, "Have you picked up") == [key]
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status != Status.SENT)) == 0


def scheduled_deliveries(engine: Engine, count: int) -> list[int]:
    """``count`` pick-up nudges held for a time and due a minute ago or more, oldest last; their ids."""
    with Session(engine) as session:
        record = TransitionRecord(model="Loan", key="1", trigger="accept", source="requested", dest="accepted",
                                  actor="test", context={})
        session.add(record)
        session.flush()
        due = utcnow() - dt.timedelta(minutes=1)
        rows = [Delivery(key=f"due-{i}", transition_id=record.id, notifier=PICK_UP, party="borrower", channel="email",
                         address=f"b{i}@example.com", status=Status.SCHEDULED, due_at=due - dt.timedelta(seconds=i))
                for i in range(count)]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def test_on_postgresql_a_due_task_takes_the_due_deliveries_another_holds_none_of_without_waiting_for_it(
        pg_engine: Engine) -> None:
    ids = scheduled_deliveries(pg_engine, 4)
    with Session(pg_engine) as first, Session(pg_engine) as second:
        held = list(first.scalars(due_query(utcnow(), 2)))  # a due task between its read and its write: the 2 oldest
        second.execute(text("SET lock_timeout = '2s'"))  # waiting for the first (which never commits) fails the test
        taken = take_due(second)
        assert held == [ids[3], ids[2]] and sorted(taken) == ids[:2]
        first.rollback()

