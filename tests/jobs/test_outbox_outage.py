"""A broker that refuses enqueues is one warning per outage in the web process, not a traceback per commit."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import outbox
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.jobs.test_outbox import Remote


@pytest.fixture
def remote(engine: Engine, restore_jobs: None) -> Iterator[Remote]:
    broker = Remote()
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, sweep_interval=0)
    yield broker
    assert outbox.dispatcher.flush(10)


@pytest.fixture
def outbox_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captures what jobs.outbox logs, WARNING and above."""
    caplog.set_level(logging.WARNING, logger="jobs.outbox")
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "jobs.outbox"]


def commit_each(session: Session, count: int) -> None:
    """``count`` commits of one paid order each, each enqueue tried before the next commit."""
    for _ in range(count):
        order = Order(buyer=Person(name="Bea", email="bea@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        order.pay()
        session.commit()
        assert outbox.dispatcher.flush(5)


def in_the_clear(session: Session) -> None:
    """One enqueue that works, so that an outage an earlier test left behind is over before this one."""
    commit_each(session, 1)


def refuse(*args: object, **kwargs: object) -> None:
    """An enqueue of a broker that is down."""
    raise ConnectionError("broker down")


def test_a_broker_down_for_many_commits_logs_one_warning_and_no_traceback(
        remote: Remote, session: Session, outbox_log: pytest.LogCaptureFixture) -> None:
    in_the_clear(session)
    outbox_log.clear()
    remote.fail = True
    commit_each(session, 20)
    assert [(r.levelname, r.exc_info) for r in logged(outbox_log)] == [("WARNING", None)]
    assert logged(outbox_log)[0].message.startswith(
        "Could not enqueue the fan-out of 1 transition(s) (ConnectionError: broker down)")


def test_the_first_enqueue_after_an_outage_says_it_is_over_and_how_many_the_sweeper_has(
        remote: Remote, session: Session, outbox_log: pytest.LogCaptureFixture) -> None:
    in_the_clear(session)
    remote.fail = True
    commit_each(session, 5)
    outbox_log.clear()
    remote.fail = False
    commit_each(session, 3)
    assert [r.message for r in logged(outbox_log)] == [
        "Enqueueing works again; 5 fan-out(s) that failed meanwhile are left to the sweeper."]


def test_a_stub_broker_that_refuses_enqueues_logs_one_warning_for_many_commits(
        broker: StubBroker, session: Session, outbox_log: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_the_clear(session)
    outbox_log.clear()
    monkeypatch.setattr(broker, "enqueue", refuse)
    commit_each(session, 10)
    assert [(r.levelname, r.exc_info) for r in logged(outbox_log)] == [("WARNING", None)]


def test_with_a_stub_broker_the_first_enqueue_after_an_outage_counts_each_refused_fan_out(
        broker: StubBroker, session: Session, outbox_log: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    in_the_clear(session)
    monkeypatch.setattr(broker, "enqueue", refuse)
    commit_each(session, 5)
    outbox_log.clear()
    monkeypatch.undo()  # the broker takes enqueues again
    commit_each(session, 3)
    assert [r.message for r in logged(outbox_log)] == [
        "Enqueueing works again; 5 fan-out(s) that failed meanwhile are left to the sweeper."]


def test_a_redis_that_refuses_connections_logs_one_warning_for_many_commits(
        broker: StubBroker, engine: Engine, session: Session, restore_jobs: None,
        outbox_log: pytest.LogCaptureFixture) -> None:
    in_the_clear(session)
    outbox_log.clear()
    with socket.socket() as probe:  # a port nobody listens on: every connect is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jobs.configure(jobs.Settings(), broker_url=f"redis://127.0.0.1:{port}/0", engine=engine, sweep_interval=0)
    commit_each(session, 10)
    assert len(logged(outbox_log)) == 1 and logged(outbox_log)[0].exc_info is None
    assert "the broker seems unreachable" in logged(outbox_log)[0].message


def test_fan_outs_past_the_dispatchers_limit_are_one_warning_until_it_has_emptied(
        remote: Remote, outbox_log: pytest.LogCaptureFixture) -> None:
    dispatcher = outbox.Dispatcher(limit=2)

    def pile_up(ids: range) -> list[str]:
        """Submit ``ids`` one by one while the broker hangs, then let it through; the limit warnings meanwhile."""
        outbox_log.clear()
        remote.gate.clear()
        for transition_id in ids:
            dispatcher.submit(remote, [transition_id])
        remote.gate.set()
        assert dispatcher.flush(5)
        return [r.message for r in logged(outbox_log) if "wait for the broker" in r.message]

    warning = "2 fan-outs wait for the broker already; more are left to the sweeper until they are sent."
    assert pile_up(range(1, 7)) == [warning]
    assert pile_up(range(7, 13)) == [warning]  # once emptied, a new pile-up is told again
