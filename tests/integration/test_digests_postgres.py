"""Digests on PostgreSQL with real worker processes: 300 watchers x 50 comments, a worker killed mid-run, throttles."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator

import jobs
import pytest
import workflow
from jobs import Delivery, DigestRow, DigestStatus, Status
from sqlalchemy import Engine, create_engine, func, select, update
from sqlalchemy.orm import Session
from workflow import utcnow

from tests.digest_app import Base, Member, Watched
from tests.processes import wait_for, worker_env
from tests.servers import SMTPServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

QUICK = {"TIDINGS_DUE_INTERVAL": "0.2", "TIDINGS_SWEEP_INTERVAL": "1", "TIDINGS_SWEEP_AFTER_SECONDS": "5",
         "TIDINGS_LEASE_SECONDS": "3"}
WATCHERS, COMMENTS = 300, 50


@pytest.fixture
def tracker(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def watched_issue(engine: Engine, watchers: int) -> int:
    """An issue with ``watchers`` watchers, once the hour is not about to end (its comments fall in one window)."""
    assert wait_for(lambda: utcnow().minute < 58, timeout=180)
    with Session(engine) as session:
        issue = Watched(title="Crash", author=Member(name="Ann", email="ann@example.com"),
                        watchers=[Member(name=f"W{i}", email=f"w{i}@example.com") for i in range(watchers)])
        session.add(issue)
        session.commit()
        return issue.id


def fire(engine: Engine, issue_id: int, trigger: str, times: int, **context: str) -> None:
    with Session(engine) as session:
        issue = session.get(Watched, issue_id)
        assert issue is not None
        for n in range(times):
            issue.fire(trigger, text=f"comment {n}", **context)
            session.commit()


def count(engine: Engine, *where: object) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0)


def close_windows(engine: Engine) -> None:
    """The hour's windows end now (the workers' clock is the real one; the test does not wait an hour)."""
    with Session(engine) as session:
        session.execute(update(DigestRow).where(DigestRow.status == DigestStatus.OPEN).values(due_at=utcnow()))
        session.commit()


def events_in(message: object) -> list[str]:
    """The event lines of a default digest mail."""
    body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    return [line for line in body.splitlines() if line.startswith("- ")]


def distinct(received: list[object]) -> dict[str, object]:
    """The mails by Message-ID: one sent again after a crash carries the same one."""
    return {str(m["Message-ID"]): m for m in received}  # type: ignore[index]


def start_workers(worker_process: Callable[..., subprocess.Popen[bytes]], pg_url: str, redis_url: str,
                  queue_name: str, smtp: SMTPServer) -> subprocess.Popen[bytes]:
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)
    return worker_process("tests.digest_app", env=worker_env(pg_url, redis_url, queue_name, smtp, **QUICK),
                          processes=2, threads=4)


def test_300_watchers_and_50_comments_in_one_window_are_300_digests_of_50_events(
        pg_url: str, tracker: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    start_workers(worker_process, pg_url, redis_url, queue_name, smtp_server)
    issue = watched_issue(tracker, WATCHERS)
    fire(tracker, issue, "comment", COMMENTS)
    assert wait_for(lambda: count(tracker, Delivery.status == Status.DIGEST) == WATCHERS * COMMENTS, timeout=120)
    assert smtp_server.received == []
    close_windows(tracker)
    received = smtp_server.wait_for(WATCHERS, timeout=120)
    assert wait_for(lambda: count(tracker, Delivery.status == Status.SENT) == WATCHERS * COMMENTS, timeout=60)
    assert len(smtp_server.received) == WATCHERS
    assert sorted(str(m["To"]) for m in received) == sorted(f"W{i} <w{i}@example.com>" for i in range(WATCHERS))
    assert {len(events_in(m)) for m in received} == {COMMENTS}


def test_a_worker_killed_while_sending_digests_leaves_every_event_in_exactly_one_delivered_digest(
        pg_url: str, tracker: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    first = start_workers(worker_process, pg_url, redis_url, queue_name, smtp_server)
    issue = watched_issue(tracker, WATCHERS)
    fire(tracker, issue, "comment", 10)
    assert wait_for(lambda: count(tracker, Delivery.status == Status.DIGEST) == WATCHERS * 10, timeout=120)
    smtp_server.delay = 0.02
    close_windows(tracker)
    smtp_server.wait_for(40, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=15)
    at_kill = len(distinct(smtp_server.received))
    assert 40 <= at_kill < WATCHERS  # the kill landed mid-run
    smtp_server.delay = 0.0
    start_workers(worker_process, pg_url, redis_url, queue_name, smtp_server)
    assert wait_for(lambda: count(tracker, Delivery.status == Status.SENT) == WATCHERS * 10, timeout=120)
    mails = distinct(smtp_server.wait_for(WATCHERS, timeout=30))
    told = Counter((str(m["To"]), line) for m in mails.values() for line in events_in(m))  # type: ignore[index]
    assert len(mails) == WATCHERS
    assert len(told) == WATCHERS * 10 and set(told.values()) == {1}


def test_what_a_throttle_holds_back_all_arrives_in_the_following_digest(
        pg_url: str, tracker: Engine, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        worker_process: Callable[..., subprocess.Popen[bytes]]) -> None:
    start_workers(worker_process, pg_url, redis_url, queue_name, smtp_server)
    issue = watched_issue(tracker, 0)
    for label in ("bug", "ui", "db", "api", "docs"):
        fire(tracker, issue, "label", 1, label=label)
    assert wait_for(lambda: count(tracker, Delivery.status == Status.DIGEST) == 3, timeout=60)
    alone = smtp_server.wait_for(2, timeout=30)
    close_windows(tracker)
    received = smtp_server.wait_for(3, timeout=30)
    assert [str(m["Subject"]) for m in alone[:2]] == [f"Issue {issue} labelled bug", f"Issue {issue} labelled ui"]
    assert [line.split(": ")[0] for line in events_in(received[2])] == [
        f"- Issue {issue} labelled {label}" for label in ("db", "api", "docs")]
