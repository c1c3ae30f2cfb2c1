"""The outbox's thread: before it has a sender, its hook for the StubBroker, its waits for a COMMIT and at exit."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import dispatcher as dispatching
from jobs.dispatcher import Dispatcher

from tests.jobs.test_outbox import Remote, enqueued, remote  # noqa: F401  (the fixture)


def test_a_dispatcher_whose_sender_is_not_installed_yet_sends_nothing_and_still_flushes(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(dispatching, "_send", None)
    dispatcher = Dispatcher()
    dispatcher.submit(remote, [1, 2])
    assert dispatcher.flush(5)
    assert remote.sent == []


def test_with_a_network_broker_the_hook_for_the_stub_broker_is_never_called(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    handed: list[StubBroker] = []
    monkeypatch.setattr(dispatching, "_on_stub", handed.append)
    dispatcher = Dispatcher()
    dispatcher.submit(remote, [1])
    assert dispatcher.flush(5)
    assert len(remote.sent) == 1 and handed == []


def test_what_the_thread_sent_to_the_stub_broker_is_handed_to_the_hook_for_it(
        broker: StubBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[StubBroker] = []
    monkeypatch.setattr(dispatching, "_on_stub", handed.append)
    dispatcher = Dispatcher()
    dispatcher.submit(broker, [1])  # as at a connection's COMMIT: the thread sends, whatever the broker
    assert dispatcher.flush(5)
    assert enqueued(broker) == [("tidings.fan_out", (1,))] and handed == [broker]


def test_fan_outs_sent_to_the_broker_they_were_committed_for_are_not_logged_as_left_to_the_sweeper(
        remote: Remote, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="jobs.outbox")
    dispatcher = Dispatcher()
    dispatcher.submit(remote, [1])
    assert dispatcher.flush(5)
    assert len(remote.sent) == 1 and "since replaced" not in caplog.text


def test_at_exit_the_fan_outs_still_waiting_after_the_timeout_are_left_to_the_sweeper_and_said_so(
        remote: Remote, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    dispatcher = Dispatcher(exit_timeout=0.05)
    remote.gate.clear()
    dispatcher.submit(remote, [1])
    assert remote.entered.acquire(timeout=5)  # the broker hangs with it
    dispatcher._at_exit()
    assert "1 fan-outs not enqueued at exit; the sweeper will." in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_that_starts_its_own_thread_waits_for_its_queue_once_at_exit(
        remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    at_exit: list[object] = []
    monkeypatch.setattr(dispatching.atexit, "register", at_exit.append)
    dispatcher = Dispatcher()
    dispatcher.submit(remote, [1])  # the parent's thread, and its exit flush
    pid = os.fork()
    if pid == 0:  # the child inherits the parent's exit flush, and starts a thread of its own
        dispatcher.submit(remote, [2])
        os._exit(0 if dispatcher.flush(5) and len(at_exit) == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert dispatcher.flush(5) and len(at_exit) == 1


@dataclass
class Clock:
    """Stands in for the dispatcher's ``time``: each sleep moves it on, and is noted."""

    now: float = 0.0
    pauses: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        assert len(self.pauses) < 10_000, "the wait never ends (30 s at 10 ms take 3,000 pauses)"
        self.now += seconds


class Commit:
    """A COMMIT under way that has returned once it was looked at ``looks`` times (never, by default)."""

    def __init__(self, looks: float = float("inf")) -> None:
        self.looks = looks

    @property
    def is_active(self) -> bool:
        self.looks -= 1
        return self.looks > 0


def test_a_commit_under_way_is_checked_after_a_tenth_of_a_millisecond_then_twice_as_late_up_to_10_ms(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(dispatching, "time", clock)
    dispatching._wait_until_ended(Commit(looks=10))  # type: ignore[arg-type]
    assert clock.pauses == pytest.approx([0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.01, 0.01])


def test_a_commit_that_never_returns_is_waited_for_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(dispatching, "time", clock)
    dispatching._wait_until_ended(Commit())  # type: ignore[arg-type]
    assert 30 <= clock.now < 30.01
