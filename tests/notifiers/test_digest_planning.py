"""Planning digests without a database: the window and group of each intent, and what a recipient chose."""

from __future__ import annotations

import datetime as dt

from notifiers import Digest, Event, Notifier, Recipient, Registration, Throttle, Timing, plan, window_start
from notifiers.digests import chosen

HOUR = dt.timedelta(hours=1)
AT = dt.datetime(2026, 12, 1, 12, 5, tzinfo=dt.timezone.utc)
ANN = Recipient("ann@example.com", ref="User:1")
EVENT = Event(7, "Issue", "12", "comment", "open", "open", None, {}, AT, None)


class Notes(Notifier):
    """A notifier class to name in registrations."""


def registration(batching: Digest | Throttle | None = None, *, required: bool = False,
                 timing: Timing | None = None) -> Registration:
    return Registration(Notes, "commented", "Issue", "comment", ("watchers",), ("email",), required, (), timing,
                        batching)


def every(choice: str) -> object:
    return lambda ref, registration, channel: choice


def test_windows_start_on_multiples_of_their_length() -> None:
    assert window_start(AT, HOUR) == AT.replace(minute=0)
    assert window_start(AT, dt.timedelta(days=1)) == AT.replace(hour=0, minute=0)


def test_an_intent_of_a_digest_closes_at_its_windows_end_grouped_as_declared() -> None:
    [intent] = plan([registration(Digest(window=HOUR, by="subject"))], {"watchers": [ANN]}, at=AT, event=EVENT)
    assert intent.batch is not None
    assert (intent.batch.group, intent.batch.start, intent.batch.due_at) == ("Issue:12", AT.replace(minute=0),
                                                                             AT.replace(hour=13, minute=0))


def test_a_group_function_names_the_group() -> None:
    [intent] = plan([registration(Digest(window=HOUR, by=lambda event: event.trigger))], {"watchers": [ANN]}, at=AT,
                    event=EVENT)
    assert intent.batch is not None and intent.batch.group == "comment"


def test_a_recipients_daily_choice_replaces_the_notifiers_hourly_digest() -> None:
    [intent] = plan([registration(Digest(window=HOUR))], {"watchers": [ANN]}, at=AT, event=EVENT,
                    every=every("daily"))  # type: ignore[arg-type]
    assert intent.batch is not None and intent.batch.due_at == dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)


def test_a_required_notifier_is_not_digested_whatever_the_recipient_chose() -> None:
    [intent] = plan([registration(required=True)], {"watchers": [ANN]}, at=AT, event=EVENT,
                    every=every("hourly"))  # type: ignore[arg-type]
    assert intent.batch is None


def test_a_reminder_is_not_digested_whatever_the_recipient_chose() -> None:
    reminder = Timing(reminder=(HOUR, HOUR, 2), left=True)
    intents = plan([registration(timing=reminder)], {"watchers": [ANN]}, at=AT, event=EVENT,
                   every=every("hourly"))  # type: ignore[arg-type]
    assert [i.batch for i in intents] == [None, None]


def test_a_throttle_lets_its_limit_through_before_its_digest() -> None:
    [intent] = plan([registration(Throttle(3, per=HOUR))], {"watchers": [ANN]}, at=AT, event=EVENT)
    assert intent.batch is not None and (intent.batch.leads, intent.batch.throttled) == (3, True)


def test_a_stored_choice_of_how_often_that_tidings_does_not_know_leaves_the_notifiers_own_digest() -> None:
    hourly = Digest(window=dt.timedelta(hours=1), by="subject")
    assert chosen(hourly, "weekly") is hourly and chosen(None, "weekly") is None
