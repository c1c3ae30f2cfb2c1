"""When deliveries are due, without a database: delays, reminders and quiet hours in the recipient's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notifiers import (MAX_REMINDERS, Notifier, Recipient, RecipientError, Registration, RegistrationError, Timing,
                       Window, after_window, plan, remind)

from tests.timed_app import Case

UTC = dt.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = Window.of(("22:00", "08:00"))
AT = dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Notes(Notifier):
    """A notifier class to name in registrations."""


def timed(timing: Timing, required: bool = False) -> Registration:
    return Registration(Notes, "later", "Case", "open", ("author",), ("email",), required, timing=timing)


def due(timing: Timing, recipient: Recipient, at: dt.datetime = AT, required: bool = False) -> list[dt.datetime | None]:
    return [i.due_at for i in plan([timed(timing, required)], {"author": [recipient]}, at=at)]


ANN = Recipient("ann@example.com")
BEA = Recipient("bea@example.com", timezone="Europe/Berlin")


def test_a_delay_is_due_that_long_after_the_transition() -> None:
    assert due(Timing(delay=dt.timedelta(minutes=10)), ANN) == [AT + dt.timedelta(minutes=10)]


def test_a_reminder_plans_one_intent_per_repetition_every_interval_apart() -> None:
    timing = Timing(reminder=(dt.timedelta(days=2), dt.timedelta(days=1), 3), left=True)
    intents = plan([timed(timing)], {"author": [ANN]}, at=AT)
    assert [(i.repetition, i.due_at) for i in intents] == [(k + 1, AT + dt.timedelta(days=2 + k)) for k in range(3)]


def test_a_self_loop_plans_no_reminder() -> None:
    timing = Timing(reminder=(dt.timedelta(days=2), dt.timedelta(days=1), 3), left=True)
    assert plan([timed(timing)], {"author": [ANN]}, at=AT, self_loop=True) == []


def test_an_intent_due_in_the_quiet_hours_waits_for_their_end_in_the_recipients_zone() -> None:
    late = dt.datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert due(Timing(quiet_hours=NIGHT), BEA, late) == [dt.datetime(2026, 12, 2, 7, 0, tzinfo=UTC)]


def test_a_recipient_without_a_zone_has_quiet_hours_in_utc() -> None:
    late = dt.datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    assert due(Timing(quiet_hours=NIGHT), ANN, late) == [dt.datetime(2026, 12, 2, 8, 0, tzinfo=UTC)]


def test_an_intent_outside_the_quiet_hours_is_sent_at_once() -> None:
    assert due(Timing(quiet_hours=NIGHT), BEA) == [None]


def test_a_required_intent_ignores_the_quiet_hours() -> None:
    late = dt.datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    assert due(Timing(quiet_hours=NIGHT), BEA, late, required=True) == [None]


def test_the_end_of_quiet_hours_skipped_by_spring_forward_is_the_first_instant_after_the_gap() -> None:
    window = Window.of(("01:00", "02:30"))  # Berlin skips 02:00-03:00 on 29 March 2026
    asked = dt.datetime(2026, 3, 29, 0, 15, tzinfo=UTC)  # 01:15 CET
    assert after_window(asked, window, BERLIN) == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_the_end_of_quiet_hours_passed_twice_in_autumn_is_the_one_after_the_asked_time() -> None:
    window = Window.of(("02:00", "02:30"))  # Berlin passes 02:00-03:00 twice on 25 October 2026
    asked = dt.datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, the second pass
    assert after_window(asked, window, BERLIN) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_an_unknown_time_zone_is_an_error_naming_it() -> None:
    with pytest.raises(RecipientError, match="'Mars/Olympus' is not an IANA time zone"):
        Recipient("ann@example.com", timezone="Mars/Olympus")


@pytest.mark.parametrize("value", [("22:00",), ("22:00", "22:00"), ("late", "08:00")])
def test_quiet_hours_that_are_not_two_different_times_are_refused(value: tuple[str, str]) -> None:
    with pytest.raises(RegistrationError, match="quiet_hours="):
        Window.of(value)


def test_a_reminder_of_an_unknown_state_names_the_known_ones() -> None:
    with pytest.raises(RegistrationError, match="has no state 'opened'; its states: new, open, answered, closed"):
        remind(Case, "opened", after=dt.timedelta(days=1), to="agent")


def test_a_reminder_repeated_more_than_the_cap_is_refused() -> None:
    with pytest.raises(RegistrationError, match=f"from 1 to {MAX_REMINDERS}"):
        remind(Case, "open", after=dt.timedelta(days=1), every=dt.timedelta(days=1), times=MAX_REMINDERS + 1,
               to="agent")


def test_a_repeated_reminder_without_an_interval_is_refused() -> None:
    with pytest.raises(RegistrationError, match="every=None"):
        remind(Case, "open", after=dt.timedelta(days=1), times=2, to="agent")


ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                         "America/Sao_Paulo", "Pacific/Chatham"])
TIMES = st.times().map(lambda t: t.replace(second=0, microsecond=0))
INSTANTS = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=400, deadline=None)
@given(INSTANTS, TIMES, TIMES, ZONES)
def test_after_the_window_is_never_inside_it_never_earlier_and_at_most_one_window_later(
        asked: dt.datetime, start: dt.time, end: dt.time, name: str) -> None:
    if start == end:
        return
    window, tz = Window(start, end), ZoneInfo(name)
    moved = after_window(asked, window, tz)
    assert not window.contains(moved.astimezone(tz).time())
    assert moved >= asked
    # A change of the clocks inside the window may lengthen it by the change (at most an hour).
    assert moved - asked <= window.length + dt.timedelta(hours=1)


def test_a_row_gives_its_time_zone_by_name_or_as_a_zoneinfo() -> None:
    from notifiers import recipients_of

    class Member:
        email = "bea@example.com"
        timezone = BERLIN

    [recipient] = recipients_of(Member())
    assert recipient.timezone == "Europe/Berlin"


def test_a_reminder_of_a_state_no_transition_enters_is_refused() -> None:
    with pytest.raises(RegistrationError, match="no transition of Case goes to 'new'; nothing would plan it"):
        remind(Case, "new", after=dt.timedelta(days=1), to="agent")
