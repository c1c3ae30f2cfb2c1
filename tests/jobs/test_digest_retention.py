"""Retention of digests and shared throttles' windows on SQLite: done digests go after their deliveries."""

from __future__ import annotations

import datetime as dt

import pytest
from jobs import Delivery, DigestRow, DigestStatus, Settings, Status
from jobs.retention import DONE_DIGESTS, Pruned, prune
from jobs.throttle_log import ThrottleRow
from sqlalchemy import Engine

from tests.retention_rows import count, delivery, digest, throttle_window, transition

RECENT = dt.timedelta(days=1)
KEEP_30 = Settings(keep_deliveries_days=30)


@pytest.mark.parametrize("status", DONE_DIGESTS)
def test_a_done_digest_goes_with_the_deliveries_of_its_events(engine: Engine, status: str) -> None:
    done = digest(engine, status)
    delivery(engine, transition(engine), Status.SENT, digest_id=done)
    assert prune(engine, KEEP_30) == Pruned(deliveries=1, digests=1)
    assert (count(engine, Delivery), count(engine, DigestRow)) == (0, 0)


@pytest.mark.parametrize("status", [DigestStatus.OPEN, DigestStatus.SENDING])
def test_a_digest_still_collecting_or_being_sent_is_kept(engine: Engine, status: str) -> None:
    digest(engine, status)
    assert prune(engine, KEEP_30) == Pruned()
    assert count(engine, DigestRow) == 1


@pytest.mark.parametrize("member", [Status.DIGEST, Status.PENDING, "recent"])
def test_a_done_digest_is_kept_while_a_delivery_of_it_is_pending_or_kept(engine: Engine, member: str) -> None:
    done = digest(engine, DigestStatus.SENT)
    age = RECENT if member == "recent" else dt.timedelta(days=100)
    delivery(engine, transition(engine), Status.SENT if member == "recent" else member, digest_id=done, age=age)
    assert prune(engine, KEEP_30).digests == 0
    assert count(engine, DigestRow) == 1


def test_a_digest_done_within_the_limit_is_kept(engine: Engine) -> None:
    digest(engine, DigestStatus.EMPTY, age=RECENT)
    assert prune(engine, KEEP_30) == Pruned()


def test_digests_go_by_the_transitions_limit_when_deliveries_are_kept_until_their_transitions_go(
        engine: Engine) -> None:
    done = digest(engine, DigestStatus.SENT)
    delivery(engine, transition(engine), Status.SENT, digest_id=done)
    assert prune(engine, Settings(keep_deliveries_days=0, keep_transitions_days=30)) == Pruned(transitions=1,
                                                                                                digests=1)


def test_digests_are_kept_for_ever_when_deliveries_and_transitions_are(engine: Engine) -> None:
    digest(engine, DigestStatus.SENT)
    throttle_window(engine)
    assert prune(engine, Settings(keep_deliveries_days=0, keep_transitions_days=0)) == Pruned()


def test_a_shared_throttle_s_window_goes_once_it_ended_before_the_limit(engine: Engine) -> None:
    throttle_window(engine)
    throttle_window(engine, age=RECENT)
    assert prune(engine, KEEP_30) == Pruned(throttles=1)
    assert count(engine, ThrottleRow) == 1


def test_a_dry_run_counts_the_digests_and_throttle_windows_that_would_go(engine: Engine) -> None:
    digest(engine, DigestStatus.SENT)
    throttle_window(engine)
    assert prune(engine, KEEP_30, dry_run=True) == Pruned(digests=1, throttles=1)
    assert (count(engine, DigestRow), count(engine, ThrottleRow)) == (1, 1)
