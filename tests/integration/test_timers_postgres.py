"""Timeouts on PostgreSQL with real worker processes: each fires once, a person racing it wins or loses whole,
a kill loses none."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jobs
import pytest
import workflow
from jobs import Status, timers
from jobs.fanout import plan_many
from jobs.timers import ACTOR, Timer, TimerStatus
from sqlalchemy import Engine, create_engine, func, select, update
from sqlalchemy.orm import Session
from workflow import ConcurrentTransition, TransitionNotAllowed, TransitionRecord, utcnow

from examples.lending.models import Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import wait_for, worker_env
from tests.scenarios import delivery_statuses
from tests.servers import SMTPServer
from tests.timed import Base as TimedBase
from tests.timed import Silent, Unheard

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

DUE_INTERVAL = "0.2"
WEEK = dt.timedelta(days=7)


def draft_loans(engine: Engine, count: int) -> list[int]:
    """``count`` loans in 'draft', each with its own borrower (b<i>@example.com) and lender; their ids."""
    with Session(engine) as session:
        people = [User(name=f"P{i}", email=f"{'lb'[i % 2]}{i // 2}@example.com") for i in range(2 * count)]
        items = [Item(title=f"item {i}", owner=people[2 * i]) for i in range(count)]
        loans = [Loan(item=items[i], borrower=people[2 * i + 1]) for i in range(count)]
        session.add_all(loans)
        session.commit()
        return [loan.id for loan in loans]


def requested_at(engine: Engine, ids: list[int], at: dt.datetime, *, fanned_out: bool) -> None:
    """Move the loans to 'requested' as a request at ``at`` would have; fanned out already (their timers written) or not."""
    with Session(engine) as session:
        session.execute(update(Loan).where(Loan.id.in_(ids)).values(state="requested"))
        records = [TransitionRecord(model="Loan", key=str(i), trigger="request", source="draft", dest="requested",
                                    actor="test", context={}, created_at=at, fanned_out_at=at if fanned_out else None)
                   for i in ids]
        session.add_all(records)
        session.flush()
        if fanned_out:
            timers.schedule(session.connection(), records)
        session.commit()


def histories(engine: Engine) -> dict[str, list[tuple[str, str, str, str | None]]]:
    """Each loan's log, oldest first: (trigger, source, dest, actor)."""
    with Session(engine) as session:
        rows = session.execute(select(TransitionRecord.key, TransitionRecord.trigger, TransitionRecord.source,
                                      TransitionRecord.dest, TransitionRecord.actor).order_by(TransitionRecord.id))
        found: dict[str, list[tuple[str, str, str, str | None]]] = {}
        for key, *entry in rows:
            found.setdefault(key, []).append(tuple(entry))  # type: ignore[arg-type]
        return found


def timer_statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.scalars(select(Timer.status)))


def expire_mails(server: SMTPServer) -> Counter[str]:
    """The expiry mails received, by Message-ID (a count above 1 is a duplicate)."""
    return Counter(str(m["Message-ID"]) for m in server.received if str(m["Subject"]).endswith("expired"))


def ready(log: Path, processes: int) -> Callable[[], bool]:
    return lambda: log.exists() and log.read_text(errors="replace").count("is ready for action") >= processes


def test_a_thousand_timeouts_due_at_once_fire_exactly_once_across_two_worker_processes(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    # Given 1,000 loans requested 8 days ago, their requests not yet fanned out (so not yet timed)
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = draft_loans(pg_engine, 1000)
    requested_at(pg_engine, ids, utcnow() - WEEK - dt.timedelta(days=1), fanned_out=False)

    # When two worker processes fan them out (writing the timers) and fire what is due
    worker_process("examples.lending.notifications", processes=2, threads=4,
                   env=worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_DUE_INTERVAL=DUE_INTERVAL))

    # Then each loan expires once: one timer fired per loan, one valid history each, one mail each
    assert wait_for(lambda: timer_statuses(pg_engine) == Counter({TimerStatus.FIRED: 1000}), timeout=120), \
        timer_statuses(pg_engine)
    logs = histories(pg_engine)
    assert len(logs) == 1000
    assert all(log == [("request", "draft", "requested", "test"), ("expire", "requested", "expired", ACTOR)]
               for log in logs.values())
    with Session(pg_engine) as session:
        assert set(session.scalars(select(Loan.state))) == {"expired"}
    assert wait_for(lambda: len(expire_mails(smtp_server)) >= 1000, timeout=60)
    assert set(expire_mails(smtp_server).values()) == {1}


def test_a_human_trigger_racing_its_timeout_leaves_one_winner_per_row_and_only_its_mail(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]], tmp_path: Path) -> None:
    # Given 200 requested loans whose timeouts fall due one after the other over 2 s, from T0
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = draft_loans(pg_engine, 200)
    worker_process("examples.lending.notifications", processes=2, threads=4,
                   env=worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_DUE_INTERVAL=DUE_INTERVAL))
    assert wait_for(ready(tmp_path / "worker-0.log", 2), timeout=60)
    requested_at(pg_engine, ids, utcnow() - WEEK + dt.timedelta(hours=1), fanned_out=True)  # not due yet
    start = utcnow() + dt.timedelta(seconds=1)
    with Session(pg_engine) as session:
        for n, loan_id in enumerate(ids):
            session.execute(update(Timer).where(Timer.key == str(loan_id))
                            .values(due_at=start + dt.timedelta(milliseconds=10 * n)))
        session.commit()

    # When the lenders accept them over the same 2 s, from the last to the first
    outcomes: Counter[str] = Counter()
    time.sleep(max(0.0, (start - utcnow()).total_seconds()))
    with Session(pg_engine) as session:
        for loan_id in reversed(ids):
            loan = session.get(Loan, loan_id, populate_existing=True)
            assert loan is not None
            try:
                loan.accept(actor="lender")
                session.commit()
                outcomes["accepted"] += 1
            except ConcurrentTransition:  # read 'requested'; the timeout wrote first
                session.rollback()
                outcomes["conflict"] += 1
            except TransitionNotAllowed:  # the timeout had committed before the read
                session.rollback()
                outcomes["not allowed"] += 1
            time.sleep(0.01)

    # Then the race happened, each row has one winner, its log that winner alone, and only winners' mails arrive
    assert wait_for(lambda: timer_statuses(pg_engine)[TimerStatus.PENDING] == 0, timeout=60)
    logs = histories(pg_engine)
    winners = Counter(log[-1][0] for log in logs.values())
    print(f"\n[figures] of 200 rows: {outcomes['accepted']} accepted by the human, {winners['expire']} expired by "
          f"the timeout; the human met {outcomes['conflict']} ConcurrentTransition, {outcomes['not allowed']} "
          f"TransitionNotAllowed")
    assert winners["accept"] > 0 and winners["expire"] > 0
    assert winners == Counter({"accept": outcomes["accepted"], "expire": 200 - outcomes["accepted"]})
    assert all(len(log) == 2 and log[0][0] == "request" for log in logs.values())
    assert timer_statuses(pg_engine) == Counter({TimerStatus.FIRED: winners["expire"],
                                                 TimerStatus.VOID: winners["accept"]})
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 200}), timeout=60), \
        delivery_statuses(pg_engine)
    subjects = Counter("expired" if str(m["Subject"]).endswith("expired") else "accepted"
                       for m in smtp_server.received)
    assert subjects == Counter({"accepted": winners["accept"], "expired": winners["expire"]})


def test_a_worker_killed_while_firing_timeouts_leaves_every_one_fired_once(
        pg_url: str, pg_engine: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    # Given 5,000 loans whose expiry timers are due, and a worker firing them
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    ids = draft_loans(pg_engine, 5000)
    requested_at(pg_engine, ids, utcnow() - WEEK - dt.timedelta(days=1), fanned_out=True)
    env = worker_env(pg_url, redis_url, queue_name, smtp_server, TIDINGS_DUE_INTERVAL=DUE_INTERVAL,
                     TIDINGS_LEASE_SECONDS="3", TIDINGS_SWEEP_AFTER_SECONDS="8", TIDINGS_SWEEP_INTERVAL="1")
    first = worker_process("examples.lending.notifications", processes=1, threads=4, env=env)

    # When it is killed with SIGKILL while firing, and another started
    assert wait_for(lambda: timer_statuses(pg_engine)[TimerStatus.FIRED] > 0, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    at_kill = timer_statuses(pg_engine)
    worker_process("examples.lending.notifications", processes=2, threads=4, env=env)

    # (the kill landed mid-run: some timers had fired, others were still pending)
    assert 0 < at_kill[TimerStatus.FIRED] < 5000 and at_kill[TimerStatus.PENDING] > 0, at_kill

    # Then every timer fires, none twice: one expiry per loan, and its mail arrives
    assert wait_for(lambda: timer_statuses(pg_engine) == Counter({TimerStatus.FIRED: 5000}), timeout=120), \
        timer_statuses(pg_engine)
    with Session(pg_engine) as session:
        expiries = Counter(session.scalars(select(TransitionRecord.key).where(TransitionRecord.trigger == "expire")))
        assert session.scalar(select(func.count()).select_from(Loan).where(Loan.state != "expired")) == 0
    assert len(expiries) == 5000 and set(expiries.values()) == {1}
    print(f"\n[figures] at the kill: {at_kill[TimerStatus.FIRED]} of 5000 timers fired")
    assert wait_for(lambda: len(expire_mails(smtp_server)) >= 5000, timeout=120), len(expire_mails(smtp_server))


def test_on_postgresql_a_held_transition_and_one_told_to_nobody_get_their_timers_once(pg_url: str) -> None:
    engine = create_engine(pg_url)
    TimedBase.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        rows = [Unheard(), Silent()]
        session.add_all(rows)
        session.commit()
        ids = [row.wait().id for row in rows]
        session.commit()
        for _ in range(2):  # the message's fan-out, then the sweeper's retry of the held one
            plan_many(session, ids, waiting=48, recall=False)
        written = session.execute(select(Timer.model, Timer.trigger, Timer.status).order_by(Timer.id)).all()
        held = session.scalars(select(TransitionRecord.held_reason).where(TransitionRecord.id == ids[0])).one()
    engine.dispose()
    assert [tuple(row) for row in written] == [("Unheard", "go", "pending"), ("Silent", "go", "pending")]
    assert held is not None and "No notifier for Unheard" in held
