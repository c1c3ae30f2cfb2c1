"""Digests and throttles, through the test kit (docs/digests.md)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import workflow
from jobs import Delivery, RetryPolicy, Status, digest_sending
from jobs.digest_log import DigestRow
from jobs.digest_sending import Closed
from jobs.testing import Kit
from notifiers import (Channel, Digest, MemoryChannel, choose_every, MessageError, PermanentChannelError, RegistrationError, Throttle, TransientChannelError,
                       on)
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.orm import Session, object_session
from workflow import clock, utcnow

from tests.digest_app import HOUR, Base, Member, WatchNotifier, Watched


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def ticket(session: Session) -> Watched:
    now = utcnow()  # 12:05 UTC: a window just began, and quiet hours (22:00-08:00) are far
    clock.advance((now.replace(hour=12, minute=5, second=0, microsecond=0) - now) % dt.timedelta(days=1))
    ticket = Watched(title="Crash", author=Member(name="Ann", email="ann@example.com"),
                    watchers=[Member(name=f"W{i}", email=f"w{i}@example.com") for i in range(3)])
    session.add(ticket)
    session.commit()
    return ticket


def fire(session: Session, ticket: Watched, trigger: str, times: int = 1, **context: str) -> None:
    for n in range(times):
        ticket.fire(trigger, text=f"comment {n}", **context) if trigger == "comment" else ticket.fire(trigger, **context)
        session.commit()


def statuses(session: Session) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in session.scalars(select(Delivery.status)):
        found[status] = found.get(status, 0) + 1
    return found


def test_events_of_a_window_are_held_until_it_closes(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 5)
    assert tidings.run() == []
    assert [len(d.events) for d in tidings.digests(status="open")] == [5, 5, 5]


def test_a_closed_window_sends_one_message_per_recipient_listing_its_events(session: Session, ticket: Watched,
                                                                             tidings: Kit) -> None:
    fire(session, ticket, "comment", 5)
    sent = tidings.advance(hours=1)
    assert sorted(n.to for n in sent) == ["w0@example.com", "w1@example.com", "w2@example.com"]
    assert sent[0].subject.startswith("5 updates")
    assert sent[0].text.count("\n- ") + sent[0].text.startswith("- ") == 5
    tidings.assert_digested("w0@example.com", count=1, events=5)


def test_every_event_of_a_sent_digest_is_recorded_sent_in_it(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 4)
    tidings.advance(hours=1)
    rows = session.scalars(select(Delivery)).all()
    assert {row.status for row in rows} == {Status.SENT}
    assert len({row.digest_id for row in rows}) == 3


def test_a_digest_is_sent_once_even_when_the_task_runs_again(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.advance(hours=1)
    assert tidings.advance(hours=1) == []
    assert len(tidings.assert_digested()) == 3


def test_events_after_the_window_go_into_the_next_digest(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.advance(hours=1)
    fire(session, ticket, "comment", 3)
    tidings.advance(hours=1)
    assert sorted(len(d.events) for d in tidings.assert_digested("w1@example.com")) == [2, 3]


def test_lead_mode_sends_the_first_event_at_once_and_collects_the_rest(session: Session, ticket: Watched,
                                                                      tidings: Kit) -> None:
    fire(session, ticket, "edit", 3)
    assert len(tidings.run()) == 3  # the first edit, to each of the three watchers
    tidings.advance(hours=1)
    tidings.assert_digested("w0@example.com", count=1, events=2)


def test_a_digest_by_subject_gathers_the_events_of_one_row(session: Session, ticket: Watched, tidings: Kit) -> None:
    other = Watched(title="Other", author=ticket.author)
    session.add(other)
    session.commit()
    fire(session, ticket, "nudge", 2)
    fire(session, other, "nudge", 1)
    tidings.advance(hours=1)
    assert sorted(len(d.events) for d in tidings.assert_digested("ann@example.com")) == [1, 2]


def test_a_superseded_event_leaves_the_digest_before_it_is_sent(session: Session, ticket: Watched,
                                                               tidings: Kit) -> None:
    fire(session, ticket, "nudge", 2)
    fire(session, ticket, "close")
    tidings.run()  # the watchers are told of the close at once
    assert tidings.advance(hours=1) == []
    skipped = tidings.skipped("ann@example.com", trigger="nudge")
    assert len(skipped) == 2 and "superseded by close" in skipped[0].reason
    assert [d.status for d in tidings.digests("ann@example.com")] == ["empty"]


def test_a_superseded_event_leaves_the_digest_alone_and_the_events_of_other_digests_stay(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    other = Watched(title="Other", author=ticket.author)
    session.add(other)
    session.commit()
    fire(session, ticket, "nudge")
    fire(session, other, "nudge")
    fire(session, ticket, "close")
    tidings.run()
    tidings.advance(hours=1)
    assert [len(d.events) for d in tidings.assert_digested("ann@example.com")] == [1]
    assert len(tidings.skipped("ann@example.com", trigger="nudge")) == 1


def test_quiet_hours_delay_a_digest_as_a_whole(session: Session, ticket: Watched, tidings: Kit) -> None:
    clock.advance(dt.timedelta(hours=9, minutes=10))  # 21:15 UTC: the window closes at 22:00, inside the quiet hours
    fire(session, ticket, "nudge", 2)
    assert tidings.advance(hours=2) == []
    assert [d.due_at.hour for d in tidings.digests("ann@example.com")] == [8]
    assert len(tidings.advance(hours=9)) == 1


def test_a_throttle_sends_up_to_its_limit_at_once(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "label", 5, label="bug")
    assert len(tidings.run()) == 2


def test_what_a_throttle_holds_back_is_all_in_the_following_digest(session: Session, ticket: Watched,
                                                                   tidings: Kit) -> None:
    fire(session, ticket, "label", 5, label="bug")
    tidings.advance(hours=1)
    [digest] = tidings.assert_digested("ann@example.com", events=3)
    assert digest.throttled
    assert statuses(session) == {Status.SENT: 5}


def test_a_throttle_records_why_an_event_was_held(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "label", 3, label="bug")
    tidings.run()
    held = session.scalars(select(Delivery).where(Delivery.status == Status.DIGEST)).all()
    assert len(held) == 1 and "Over the throttle of 2" in (held[0].last_error or "")


def test_in_the_kit_a_digest_whose_message_cannot_be_built_fails_the_test_and_is_recorded_failed(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    ticket.fire("comment", text="two\nlines")  # the notifier puts it in a subject: a header with a line break
    session.commit()
    with pytest.raises(MessageError, match="CR or LF"):
        tidings.advance(hours=1)
    assert {d.status for d in tidings.digests()} == {"failed"}
    assert statuses(session) == {Status.FAILED: 3}


def test_a_required_notifier_cannot_digest() -> None:
    with pytest.raises(RegistrationError, match="required=True is sent at once"):
        on(Watched, "comment", to="watchers", required=True, digest=Digest(window=HOUR))


def test_a_notifier_cannot_both_digest_and_throttle() -> None:
    with pytest.raises(RegistrationError, match="not both"):
        on(Watched, "comment", to="watchers", digest=Digest(window=HOUR), throttle=Throttle(2, per=HOUR))


@pytest.mark.parametrize("make", [lambda: Digest(window=dt.timedelta(0)), lambda: Digest(window=HOUR, mode="x"),
                                  lambda: Digest(window=HOUR, by="y"), lambda: Throttle(0, per=HOUR)])
def test_a_bad_digest_or_throttle_is_refused_naming_it(make: object) -> None:
    with pytest.raises(RegistrationError, match="Digest|Throttle"):
        make()  # type: ignore[operator]


class Refusing(Channel):
    """A channel that refuses every message, permanently or for now."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def send(self, message: object, to: object, *, key: str, **extra: object) -> None:
        raise self.error


def close_with(tidings: Kit, channel: Channel, max_retries: int = 3) -> Closed:
    with tidings._session() as db:
        return digest_sending.close_due(db, channel_for=lambda kind: channel, lease_seconds=60,
                                        retry=RetryPolicy(max_retries=max_retries))


class Meddling(Channel):
    """Changes the event's row (or adds a row to its session) while sending, then takes the message."""

    def __init__(self, change: str) -> None:
        self.change = change

    def send(self, message: object, to: object, *, key: str, event: Any = None, **extra: object) -> None:
        if self.change == "dirty":
            event.subject.title = "Meddled"
        else:
            object_session(event.subject).add(Member(name="Meddler", email="meddler@example.com"))


class MeddlingThenRefusing(Meddling):
    """Changes the event's row (or adds a row to its session) while sending, then refuses the message."""

    def send(self, message: object, to: object, *, key: str, event: Any = None, **extra: object) -> None:
        super().send(message, to, key=key, event=event)
        raise PermanentChannelError("550 no such user")


def assert_nothing_meddled_committed(session: Session) -> None:
    """Another session sees the ticket's title as it was, and no member the channel added."""
    with Session(session.get_bind()) as other:
        assert other.scalars(select(Watched.title)).all() == ["Crash"]
        assert other.scalar(select(func.count()).select_from(Member).where(Member.name == "Meddler")) == 0


@pytest.mark.parametrize("change", ["dirty", "new"])
def test_what_is_changed_in_the_session_while_a_digest_is_sent_is_never_committed(
        session: Session, ticket: Watched, tidings: Kit, change: str) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    assert close_with(tidings, MeddlingThenRefusing(change)).failed == 3
    assert_nothing_meddled_committed(session)


@pytest.mark.parametrize("change", ["dirty", "new"])
def test_what_is_changed_in_the_session_while_a_digest_is_sent_and_taken_is_never_committed(
        session: Session, ticket: Watched, tidings: Kit, change: str) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    assert close_with(tidings, Meddling(change)).sent == 3
    assert_nothing_meddled_committed(session)
    with Session(session.get_bind()) as other:
        assert set(other.scalars(select(DigestRow.status))) == {"sent"}


def test_what_a_channel_changed_in_one_digest_is_not_committed_by_the_next_digests_reads(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    other = Watched(title="Other", author=Member(name="Bo", email="bo@example.com"),
                    watchers=[Member(name="W9", email="w9@example.com")])
    session.add(other)
    session.commit()
    fire(session, ticket, "comment", 2)
    fire(session, other, "comment", 2)
    tidings.run()
    clock.advance(HOUR)

    class MeddlingOnce(Channel):  # changes the first digest's row; the next digest's reads autoflush it
        changed = False

        def send(self, message: object, to: object, *, key: str, event: Any = None, **extra: object) -> None:
            if not self.changed:
                event.subject.title, self.changed = "Meddled", True

    assert close_with(tidings, MeddlingOnce()).sent >= 2
    with Session(session.get_bind()) as reader:
        assert sorted(reader.scalars(select(Watched.title))) == ["Crash", "Other"]
        assert set(reader.scalars(select(DigestRow.status))) == {"sent"}


def test_a_digest_refused_permanently_fails_with_its_events(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    assert close_with(tidings, Refusing(PermanentChannelError("550 no such user"))).failed == 3
    assert [d.status for d in tidings.digests()] == ["failed"] * 3
    assert {(f.reason.split(":")[0]) for f in tidings.failed()} == {f"Digest #{d.id} failed" for d in tidings.digests()}


def test_a_digest_that_failed_records_no_time_sent_nor_do_its_events(session: Session, ticket: Watched,
                                                                      tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    close_with(tidings, Refusing(PermanentChannelError("550 no such user")))
    assert {row.sent_at for row in session.scalars(select(DigestRow))} == {None}
    assert {row.sent_at for row in session.scalars(select(Delivery))} == {None}


def test_a_digest_refused_for_now_is_sent_again_after_the_backoff(session: Session, ticket: Watched,
                                                                  tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    assert close_with(tidings, Refusing(TransientChannelError("421 busy"))).retried == 3
    assert [d.status for d in tidings.digests()] == ["open"] * 3
    sent = tidings.advance(minutes=10)
    assert len(sent) == 3 and statuses(session) == {Status.SENT: 6}


def test_a_digest_refused_for_now_until_the_policy_gives_up_is_dead_with_its_events(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    assert close_with(tidings, Refusing(TransientChannelError("421 busy")), max_retries=0).failed == 3
    assert statuses(session) == {Status.DEAD: 6}


def test_a_digest_refused_for_now_is_tried_as_often_as_the_policy_says_then_dead(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    outcomes = []
    for _ in range(3):
        done = close_with(tidings, Refusing(TransientChannelError("421 busy")), max_retries=2)
        outcomes.append((done.retried, done.failed))
        clock.advance(dt.timedelta(minutes=15))  # past the backoff
    assert outcomes == [(3, 0), (3, 0), (0, 3)] and statuses(session) == {Status.DEAD: 6}


def test_an_event_fanned_out_after_its_digest_closed_goes_into_the_next_one(session: Session, ticket: Watched,
                                                                            tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    fire(session, ticket, "comment", 1)  # its fan-out waits in the queue...
    clock.advance(HOUR)
    close_with(tidings, tidings.channel)  # ...while its window's digests are sent
    tidings.run()
    tidings.advance(hours=1)
    assert sorted(len(d.events) for d in tidings.assert_digested("w0@example.com")) == [1, 2]
    assert statuses(session) == {Status.SENT: 9}


def test_an_event_fanned_out_in_the_window_of_a_digest_closed_early_goes_into_the_next_window(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    session.execute(update(DigestRow).values(status="sending"))  # taken by a worker whose clock is ahead
    session.commit()
    [closed] = set(session.scalars(select(DigestRow.window_start)))
    fire(session, ticket, "comment", 1)
    tidings.run()
    opened = session.execute(select(DigestRow.window_start, DigestRow.due_at).where(DigestRow.status == "open"))
    assert set(opened) == {(closed + HOUR, closed + 2 * HOUR)}


def test_an_event_fanned_out_when_the_digests_of_two_windows_running_closed_early_goes_into_the_third(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    for _ in range(2):  # this window's digests, then the next one's, each taken early
        fire(session, ticket, "comment", 1)
        tidings.run()
        session.execute(update(DigestRow).values(status="sending"))
        session.commit()
    first = min(session.scalars(select(DigestRow.window_start)))
    fire(session, ticket, "comment", 1)
    assert tidings.run() == []
    assert set(session.scalars(select(DigestRow.window_start).where(DigestRow.status == "open"))) == {first + 2 * HOUR}


def test_an_event_fanned_out_when_the_digests_of_three_windows_running_closed_early_is_sent_alone(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    for _ in range(3):  # W0's digest of this window, then of the next one, then of the one after, each taken early
        fire(session, ticket, "comment", 1)
        tidings.run()
        session.execute(update(DigestRow).where(DigestRow.address == "w0@example.com").values(status="sending"))
        session.commit()
    fire(session, ticket, "comment", 1)
    assert [n.to for n in tidings.run()] == ["w0@example.com"]  # the others' events join their open digests


def test_a_recipient_who_chose_hourly_gets_an_instant_notifier_in_an_hourly_digest(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    choose_every(session, ticket.watchers[0], "hourly", notifier=WatchNotifier.closed)
    session.commit()
    fire(session, ticket, "close")
    assert sorted(n.to for n in tidings.run()) == ["w1@example.com", "w2@example.com"]
    [sent] = tidings.advance(hours=1)
    assert (sent.to, sent.trigger) == ("w0@example.com", "close")


def test_a_recipient_who_chose_instant_gets_each_event_of_a_digest_at_once(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    choose_every(session, ticket.watchers[1], "instant", notifier=WatchNotifier)
    session.commit()
    fire(session, ticket, "comment", 3)
    assert [n.to for n in tidings.run()] == ["w1@example.com"] * 3
    assert sorted(len(d.events) for d in tidings.digests()) == [3, 3]


def test_a_recipient_who_chose_daily_for_a_channel_gets_one_digest_a_day(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    choose_every(session, ticket.watchers[2], "daily", channel="email")
    session.commit()
    fire(session, ticket, "comment", 2)
    assert "w2@example.com" not in {n.to for n in tidings.advance(hours=1)}
    tidings.advance(hours=23)
    tidings.assert_digested("w2@example.com", count=1, events=2)


def test_a_choice_of_how_often_must_be_instant_hourly_or_daily(session: Session) -> None:
    with pytest.raises(RegistrationError, match="every='weekly': give one of 'instant', 'hourly', 'daily'"):
        choose_every(session, "w0@example.com", "weekly")


def test_on_sqlite_a_run_started_while_another_is_between_its_read_and_its_claim_sends_none_of_its_digests(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR + dt.timedelta(minutes=1))  # three digests due
    engine = session.get_bind()
    first_read, second_read = threading.Event(), threading.Event()
    holder: list[int] = []

    def hold_the_first_before_it_claims(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == holder[0] and statement.startswith("UPDATE tidings_digests SET status"):
            first_read.set()
            second_read.wait(timeout=1)  # the second run reads now, unless the write lock holds it back

    def one_run(hold: bool) -> Closed:
        if hold:
            holder.append(threading.get_ident())
        else:
            assert first_read.wait(timeout=10)
        with Session(engine) as own:
            done = digest_sending.close_due(own, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                                            retry=RetryPolicy(max_retries=2))
        if not hold:
            second_read.set()
        return done

    event.listen(engine, "before_cursor_execute", hold_the_first_before_it_claims)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(one_run, [True, False])
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first_before_it_claims)
    assert (first.sent, second.sent) == (3, 0)


def test_a_digest_whose_worker_died_while_sending_it_is_sent_once_its_lease_ran_out(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR + dt.timedelta(minutes=1))
    session.execute(update(DigestRow).values(status="sending", attempts=1,  # claimed by a worker killed since
                                             lease_until=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    done = digest_sending.close_due(session, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                                    retry=RetryPolicy(max_retries=2))
    assert (done.sent, done.events) == (3, 6)


class SendingMeanwhile(MemoryChannel):
    """Runs another digests run while it sends its first message; notes what that run sent."""

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine, self.meanwhile = engine, list[int]()

    def send(self, message: Any, to: Any, *, key: str, event: Any = None) -> None:
        if not self.meanwhile:
            with Session(self.engine) as other:
                self.meanwhile.append(digest_sending.close_due(
                    other, channel_for=lambda kind: MemoryChannel(), lease_seconds=60, retry=RetryPolicy(2)).sent)
        super().send(message, to, key=key, event=event)


def test_a_digest_being_sent_is_held_for_its_lease_and_another_run_takes_none_of_them(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR + dt.timedelta(minutes=1))
    channel = SendingMeanwhile(session.get_bind())
    done = digest_sending.close_due(session, channel_for=lambda kind: channel, lease_seconds=60,
                                    retry=RetryPolicy(max_retries=2))
    assert (done.sent, channel.meanwhile) == (3, [0])


def test_a_sent_digest_records_how_many_events_it_told(session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.advance(hours=1)
    assert [row.events for row in session.scalars(select(DigestRow))] == [2, 2, 2]


class RefusingOnceTakenAgain(Channel):
    """Refuses the message after another run took the digest again (its lease ran out meanwhile)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def send(self, message: object, to: object, *, key: str, **extra: object) -> None:
        with Session(self.engine) as other:
            other.execute(update(DigestRow).values(attempts=DigestRow.attempts + 1))
            other.commit()
        raise PermanentChannelError("550 no such user")


def test_a_run_whose_claim_was_taken_since_records_nothing_for_the_digests_events(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR)
    close_with(tidings, RefusingOnceTakenAgain(session.get_bind()))
    assert statuses(session) == {Status.DIGEST: 6}


def claimed_digests(session: Session, ticket: Watched, tidings: Kit) -> list[digest_sending.HeldDigest]:
    """Three digests due and claimed by a run for 60 seconds, as it holds them while a slow channel sends."""
    fire(session, ticket, "comment", 2)
    tidings.run()
    clock.advance(HOUR + dt.timedelta(minutes=1))
    return digest_sending._claim(session, utcnow(), 20, 60)


def test_renewed_digest_claims_are_not_taken_by_another_run_before_their_new_lease_runs_out(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    held = claimed_digests(session, ticket, tidings)
    clock.advance(dt.timedelta(seconds=50))
    digest_sending._renew(session, held, 60)
    clock.advance(dt.timedelta(seconds=30))  # past the first lease, within the renewed one
    with Session(session.get_bind()) as other:
        assert digest_sending.close_due(other, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                                        retry=RetryPolicy(max_retries=2)).sent == 0


def test_renewing_digest_claims_returns_those_still_held_and_not_one_taken_since(
        session: Session, ticket: Watched, tidings: Kit) -> None:
    held = claimed_digests(session, ticket, tidings)
    session.execute(update(DigestRow).where(DigestRow.id == held[0].id).values(attempts=DigestRow.attempts + 1))
    session.commit()  # another run took the first again (its lease ran out meanwhile)
    assert [one.id for one in digest_sending._renew(session, held, 60)] == [one.id for one in held[1:]]
