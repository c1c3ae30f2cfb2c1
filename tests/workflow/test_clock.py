"""The one clock: tests move it forward, production never does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from workflow import clock, utcnow


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    yield
    clock.reset()


def test_utcnow_is_timezone_aware_utc() -> None:
    assert utcnow().tzinfo is not None
    assert utcnow().utcoffset() == dt.timedelta(0)


def test_advance_moves_utcnow_forward_by_the_delta() -> None:
    before = utcnow()
    clock.advance(dt.timedelta(days=7))
    assert dt.timedelta(days=7) <= utcnow() - before < dt.timedelta(days=7, minutes=1)
    assert clock.offset() == dt.timedelta(days=7)


def test_the_clock_never_moves_backwards() -> None:
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(dt.timedelta(seconds=-1))
    assert clock.offset() == dt.timedelta(0)


def test_reset_puts_the_clock_back_to_the_real_time() -> None:
    clock.advance(dt.timedelta(hours=3))
    clock.reset()
    assert abs(utcnow() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_a_transition_is_logged_at_the_moved_time() -> None:
    from workflow.transition_log import TransitionRecord

    clock.advance(dt.timedelta(days=2))
    default = TransitionRecord.__table__.c.created_at.default
    stamped = default.arg(None)  # type: ignore[union-attr]
    assert stamped - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=1, hours=23)
