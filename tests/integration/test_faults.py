"""Nothing lost, nothing twice: fault tests on real PostgreSQL, Redis/RabbitMQ, SMTP and workers."""

from __future__ import annotations

import os
import signal
import threading
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jobs
import pytest
from jobs import Delivery, Status
from jobs.fanout import fan_out as fan_out_rows
from jobs.sweeper import sweep
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from examples.lending.models import Item, Loan, User
from tests.app import Order, Person
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier
from tests.processes import ROOT, stop_group, wait_for, worker_env
from tests.scenarios import delivery_statuses
from tests.servers import SMTPServer, TCPProxy

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

# Quick recovery for the tests: a claimed delivery belongs to its worker for 3 s, work left
# pending for 8 s is re-enqueued, and each worker sweeps every second.
LEASE_SECONDS, SWEEP_AFTER_SECONDS, SWEEP_INTERVAL = 3, 8, 1
RECOVERY = {"TIDINGS_LEASE_SECONDS": str(LEASE_SECONDS), "TIDINGS_SWEEP_AFTER_SECONDS": str(SWEEP_AFTER_SECONDS),
            "TIDINGS_SWEEP_INTERVAL": str(SWEEP_INTERVAL)}
# After a restart, claims of the killed worker come back once their lease runs out, and work whose
# message it had taken (unfanned transitions, pending deliveries) once left alone for
# sweep_after_seconds; the next sweep finds either within sweep_interval. The margin is for the new
# worker to start and send what is left (1,000-1,500 mails). Redis alone would wait for its 60 s
# heartbeat and its maintenance roll.
RECOVERY_BOUND = max(LEASE_SECONDS, SWEEP_AFTER_SECONDS) + SWEEP_INTERVAL + 10
# The application's connect timeout to the broker. A request that enqueued its fan-out itself would
# wait for it when the broker's host is down: measured 5.0 s per request on Redis (it retries) and
# 2.0 s on RabbitMQ; the outbox's thread leaves the request out of it.
BROKER_TIMEOUT = 1


def accepted_loans(engine: Engine, count: int) -> list[int]:
    """``count`` loans in state 'accepted', each with its own borrower and lender; their ids."""
    with Session(engine) as session:
        people = [User(name=f"P{i}", email=f"p{i}@example.com") for i in range(2 * count)]
        session.add_all(people)
        session.flush()
        items = [Item(title=f"item {i}", owner=people[2 * i]) for i in range(count)]
        session.add_all(items)
        session.flush()
        loans = [Loan(item=items[i], borrower=people[2 * i + 1], state="accepted") for i in range(count)]
        session.add_all(loans)
        session.commit()
        return [loan.id for loan in loans]


def fire_each(engine: Engine, ids: list[int], trigger: str) -> list[float]:
    """Fire ``trigger`` on each loan in its own committed transaction; the seconds each request took."""
    took = []
    with Session(engine) as session:
        for loan_id in ids:
            start = time.monotonic()
            loan = session.get(Loan, loan_id)
            assert loan is not None
            loan.fire(trigger)
            session.commit()
            took.append(time.monotonic() - start)
    return took





def message_ids(server: SMTPServer) -> Counter[str]:
    with server.arrived:
        return Counter(str(m["Message-ID"]) for m in server.received)


def proxied(url: str, proxy: TCPProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return urlunsplit(parts._replace(netloc=netloc))


def test_a_worker_killed_mid_run_loses_nothing_and_sends_at_most_what_was_in_flight_twice(
        pg_url: str, pg_engine: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]], record_property: Callable[[str, object], None]) -> None:
    # Given 1,000 handed-over loans, each telling its borrower and its lender, and a worker delivering them
    jobs.configure(jobs.Settings(), broker_url=broker_url, queue=queue_name, database_url=pg_url)
    ids = accepted_loans(pg_engine, 1000)
    env = worker_env(pg_url, broker_url, queue_name, smtp_server, **RECOVERY)
    smtp_server.delay = 0.02  # each mail takes 20 ms, so that the kill lands mid-run, not after the last mail
    first = worker_process("examples.lending.notifications", env=env, processes=2, threads=8)
    fire_each(pg_engine, ids, "hand_over")

    # When the worker is killed with SIGKILL in the middle, and a new one started
    smtp_server.wait_for(500, timeout=120)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    smtp_server.delay = 0
    in_flight = delivery_statuses(pg_engine)[Status.SENDING]
    arrived_at_kill = sum(message_ids(smtp_server).values())
    restarted = time.monotonic()
    worker_process("examples.lending.notifications", env=env, processes=2, threads=8)

    # (the kill landed mid-run: some mails had not arrived, some deliveries were being sent)
    assert arrived_at_kill < 2000 and in_flight > 0, (arrived_at_kill, in_flight)

    # Then every one of the 2,000 emails arrives within the bound the settings give, and
    # duplicates are at most those in flight
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 2000, timeout=120), delivery_statuses(pg_engine)
    recovery = time.monotonic() - restarted
    counts = message_ids(smtp_server)
    duplicates = sum(counts.values()) - len(counts)
    record_property("recovery_seconds", round(recovery, 1))
    print(f"\n[figures] {broker_url.split(':')[0]}: {arrived_at_kill} arrived before the kill, {in_flight} in flight, "
          f"{duplicates} duplicates, all 2000 within {recovery:.1f} s of the restart (bound {RECOVERY_BOUND} s)")
    assert recovery < RECOVERY_BOUND
    assert len(counts) == 2000 and duplicates <= in_flight
    assert wait_for(lambda: delivery_statuses(pg_engine) == Counter({Status.SENT: 2000}), timeout=30)


def test_transitions_committed_while_the_broker_is_down_are_delivered_when_it_returns(
        pg_url: str, pg_engine: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]], tcp_proxy: Callable[[int], TCPProxy]) -> None:
    # Given the application reaching the broker through a proxy, and the broker's host down: the
    # proxy leaves connections unanswered, so a connect waits for its timeout
    proxy = tcp_proxy(urlsplit(broker_url).port or 0)
    jobs.configure(jobs.Settings(), broker_url=proxied(broker_url, proxy), queue=queue_name, database_url=pg_url,
                   broker_timeout=BROKER_TIMEOUT)
    ids = accepted_loans(pg_engine, 100)
    proxy.hang()

    # When 100 transitions commit
    took = fire_each(pg_engine, ids, "hand_over")

    # Then every request returned well within the broker's connect timeout (which a request enqueuing
    # its own fan-out would wait for), and the transitions wait, unfanned
    print(f"\n[figures] {broker_url.split(':')[0]} down: slowest of 100 requests {max(took) * 1000:.0f} ms, "
          f"median {sorted(took)[50] * 1000:.0f} ms (bound {BROKER_TIMEOUT / 2 * 1000:.0f} ms)")
    assert max(took) < BROKER_TIMEOUT / 2
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).where(TransitionRecord.fanned_out_at.is_(None))) == 100

    # And once the broker is back, a worker's sweeper delivers all 200 emails
    proxy.restore()
    returned = time.monotonic()
    worker_process("examples.lending.notifications",
                   env=worker_env(pg_url, broker_url, queue_name, smtp_server, **RECOVERY))
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 200, timeout=60), delivery_statuses(pg_engine)
    print(f"[figures] all 200 emails within {time.monotonic() - returned:.1f} s of the broker's return")
    assert sum(message_ids(smtp_server).values()) == 200


def test_two_processes_firing_conflicting_transitions_leave_one_winner_per_row(
        pg_url: str, pg_engine: Engine, broker_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]], tmp_path: Any) -> None:
    # Given 100 requested loans, and two processes: one accepts them all, the other declines them all
    with Session(pg_engine) as session:
        ann, bob = User(name="Ann", email="ann@example.com"), User(name="Bob", email="bob@example.com")
        session.add_all([Loan(item=Item(title=f"thing {i}", owner=ann), borrower=bob, state="requested")
                         for i in range(100)])
        session.commit()
    env = {**os.environ, "TIDINGS_DATABASE_URL": pg_url, "TIDINGS_BROKER_URL": broker_url,
           "TIDINGS_QUEUE": queue_name, "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent("""
        import sys, time, jobs
        from sqlalchemy import create_engine, select
        from sqlalchemy.orm import Session
        from workflow import ConcurrentTransition, TransitionNotAllowed
        from examples.lending.models import Loan
        import examples.lending.notifications
        trigger, start = sys.argv[1], float(sys.argv[2])
        engine = create_engine(jobs.runtime.current().settings.database_url)
        won = conflicts = not_allowed = 0
        with Session(engine) as session:
            ids = list(session.scalars(select(Loan.id).order_by(Loan.id)))
            session.rollback()
            time.sleep(max(0.0, start - time.time()))
            for loan_id in ids:
                try:
                    session.get(Loan, loan_id).fire(trigger)
                    session.commit()
                    won += 1
                except ConcurrentTransition:  # both read 'requested'; the other wrote first
                    session.rollback()
                    conflicts += 1
                except TransitionNotAllowed:  # the other had committed before this one read the row
                    session.rollback()
                    not_allowed += 1
        print(won, conflicts, not_allowed)
    """)
    start = time.time() + 2
    racers = [subprocess.Popen([sys.executable, "-c", script, trigger, str(start)], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
              for trigger in ("accept", "decline")]
    finished = []
    for racer in racers:  # wait for both before judging either, so none is left running
        try:
            finished.append(racer.communicate(timeout=120))
        finally:
            stop_group(racer)
    outcomes = []
    for racer, (out, err) in zip(racers, finished):
        assert racer.returncode == 0, err.decode()
        outcomes.append(tuple(int(n) for n in out.split()))

    # Then each row is in one valid state, its log has exactly the winner, and only winners are told
    worker_process("examples.lending.notifications", env=worker_env(pg_url, broker_url, queue_name, smtp_server))
    with Session(pg_engine) as session:
        states = dict(session.execute(select(Loan.id, Loan.state)).all())
        log = dict(session.execute(select(TransitionRecord.key, TransitionRecord.dest)).all())
        assert session.scalar(select(func.count()).select_from(TransitionRecord)) == 100
    conflicts = outcomes[0][1] + outcomes[1][1]
    print(f"\n[figures] accept won {outcomes[0][0]}, decline won {outcomes[1][0]} of 100 rows; "
          f"{conflicts} losers got ConcurrentTransition, {outcomes[0][2] + outcomes[1][2]} TransitionNotAllowed")
    assert conflicts > 0  # the processes really raced: both read a row as 'requested' before either wrote it
    assert set(states.values()) <= {"accepted", "declined"} and len(states) == 100
    assert {str(k): v for k, v in states.items()} == log
    assert outcomes[0][0] + outcomes[1][0] == 100
    assert wait_for(lambda: len(message_ids(smtp_server)) >= 100, timeout=60)
    subjects = Counter(str(m["Subject"]).startswith("Ann said yes") for m in smtp_server.received)
    assert subjects == Counter({True: outcomes[0][0], False: outcomes[1][0]})


def test_two_sweepers_on_postgresql_take_each_overdue_row_once(shop: Engine, broker: object) -> None:
    with Session(shop) as session:
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"), watchers=["w@example.com"])
        session.add(order)
        session.commit()
        for _ in range(50):
            order.cancel()
            order.reopen()
            session.commit()
        for record_id in list(session.scalars(select(TransitionRecord.id))):
            fan_out_rows(session, record_id)
        long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        session.execute(update(Delivery).values(updated_at=long_ago))
        session.execute(update(TransitionRecord).values(fanned_out_at=None, created_at=long_ago))
        session.commit()
    start = threading.Barrier(2)

    def one_sweep(_: int) -> Any:
        with Session(shop) as own:
            start.wait(timeout=10)
            return sweep(own, grace_seconds=60)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(one_sweep, range(2))
    with Session(shop) as session:
        overdue_deliveries = sorted(session.scalars(select(Delivery.id)))
        overdue_transitions = sorted(session.scalars(select(TransitionRecord.id)))
    assert len(overdue_deliveries) == 100 and len(overdue_transitions) == 100
    assert sorted(first.deliveries + second.deliveries) == overdue_deliveries  # each taken, and once
    assert sorted(first.transitions + second.transitions) == overdue_transitions
