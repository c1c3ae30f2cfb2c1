"""The retry policy: one object for the tries, the backoff and the cap on what a channel asks for."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from notifiers import MemoryChannel, TransientChannelError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import jobs
from jobs import Delivery, actors
from jobs.config import Settings
from jobs.retries import RetryPolicy
from jobs.testing import drain

from tests.app import Order
from tests.jobs.test_delivery import Flaky


def test_the_backoff_doubles_with_each_try_up_to_the_longest() -> None:
    policy = RetryPolicy(max_retries=5, min_backoff_ms=100, max_backoff_ms=1_000)
    assert [policy.backoff_ms(attempts) for attempts in range(1, 6)] == [400, 800, 1_000, 1_000, 1_000]


def test_what_a_channel_asks_for_is_waited_within_the_longest_backoff() -> None:
    policy = RetryPolicy(max_retries=5, min_backoff_ms=100, max_backoff_ms=1_000)
    assert (policy.backoff_ms(1, retry_after=0.25), policy.backoff_ms(1, retry_after=60),
            policy.backoff_ms(1, retry_after=-3)) == (250, 1_000, 0)


def test_a_delivery_is_given_up_once_every_try_is_used() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.gives_up(attempts) for attempts in (1, 2, 3)] == [False, False, True]


def test_the_policy_is_built_from_the_settings() -> None:
    settings = Settings(max_retries=7, min_backoff_ms=20, max_backoff_ms=90)
    assert RetryPolicy.of(settings) == RetryPolicy(max_retries=7, min_backoff_ms=20, max_backoff_ms=90)


def test_a_policy_given_only_its_tries_waits_as_the_default_settings_do() -> None:
    defaults = Settings()
    assert RetryPolicy(max_retries=defaults.max_retries) == RetryPolicy.of(defaults)


def test_a_policy_cannot_be_changed_once_built() -> None:
    policy = RetryPolicy(max_retries=2)
    with pytest.raises(AttributeError):
        policy.max_retries = 9  # type: ignore[misc]


@pytest.fixture
def restored() -> Iterator[None]:
    previous, broker = jobs.runtime.current().settings, jobs.broker
    yield
    jobs.configure(previous, broker=broker)


@pytest.mark.usefixtures("restored")
def test_configure_gives_every_actor_the_policy_and_the_queue() -> None:
    jobs.configure(broker=StubBroker(), max_retries=4, min_backoff_ms=30, max_backoff_ms=300, queue="elsewhere")
    assert {(a.actor_name, a.queue_name, a.options["max_retries"], a.options["min_backoff"], a.options["max_backoff"])
            for a in actors.ACTORS} == {(name, "elsewhere", 4, 30, 300) for name in
                                         ("tidings.fan_out", "tidings.deliver", "tidings.deliver_each")}
    assert all(actor.broker is dramatiq.get_broker() for actor in actors.ACTORS)


# --- One retry path: the policy's backoff, whichever message retries ------------------------------


def failing_four_times(broker: StubBroker, engine: Engine, failures: int) -> tuple[MemoryChannel, list[int | None]]:
    """Bea's email on a channel failing ``failures`` times with a 421, tried up to 4 times with a backoff of
    4, 8, 16 ms; and the delays of the ``tidings.deliver`` messages enqueued delayed from now on (a delayed
    message is enqueued again, without a delay, once it is due)."""
    channel = Flaky(TransientChannelError("421 try later", channel="smtp"), failures=failures)
    jobs.configure(broker=broker, engine=engine, channels={"email": channel},
                   max_retries=3, min_backoff_ms=1, max_backoff_ms=1_000)
    delays: list[int | None] = []
    real = broker.enqueue

    def spy(message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        if message.actor_name == "tidings.deliver" and delay is not None:
            delays.append(delay)
        return real(message, delay=delay)

    broker.enqueue = spy  # type: ignore[method-assign]
    return channel, delays


def cancel_for_bea(session: Session, order: Order) -> None:
    order.watchers = []
    order.cancel()
    session.commit()
    drain()
    session.rollback()


def test_every_retry_of_a_delivery_waits_the_policys_backoff(broker: StubBroker, engine: Engine, session: Session,
                                                              order: Order) -> None:
    channel, delays = failing_four_times(broker, engine, failures=3)
    cancel_for_bea(session, order)
    policy = jobs.runtime.current().retry
    # the fan-out's own try, then two tidings.deliver messages raising dramatiq.Retry: each waits the policy's
    assert delays == [policy.backoff_ms(1), policy.backoff_ms(2), policy.backoff_ms(3)] == [4, 8, 16]
    assert [(d.status, d.attempts) for d in session.scalars(select(Delivery))] == [("sent", 4)]
    assert len(channel.outbox) == 1


def test_a_transient_retry_logs_one_warning_naming_it_and_no_traceback(
        broker: StubBroker, engine: Engine, session: Session, order: Order, caplog: pytest.LogCaptureFixture) -> None:
    failing_four_times(broker, engine, failures=2)
    with caplog.at_level(logging.DEBUG):
        cancel_for_bea(session, order)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "Delivery 1 on channel 'email': attempt 1 of 4 failed (421 try later); next try in 0.004 s.",
        "Delivery 1 on channel 'email': attempt 2 of 4 failed (421 try later); next try in 0.008 s."]
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text] == []


def test_a_delivery_retried_by_dramatiq_is_dead_once_max_retries_are_used(
        broker: StubBroker, engine: Engine, session: Session, order: Order, caplog: pytest.LogCaptureFixture) -> None:
    failing_four_times(broker, engine, failures=99)
    cancel_for_bea(session, order)
    [delivery] = session.scalars(select(Delivery))
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "dead", 4, "Gave up after 4 attempts: 421 try later")
    assert not any("Retries exceeded" in r.getMessage() for r in caplog.records)  # Tidings gave up, not Dramatiq
