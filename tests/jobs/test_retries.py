"""The retry policy: one object for the tries, the backoff and the cap on what a channel asks for."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

import jobs
from jobs import actors
from jobs.config import Settings
from jobs.retries import RetryPolicy


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
