"""A delivery row's life: claims, their leases and renewals, backoff, and the outcome each attempt may write."""

from __future__ import annotations

import time
from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Status
from jobs.actors import fan_out
from jobs.claims import SentLog, claim, claim_many, renew
from jobs.delivery import RetryLater, deliver, send
from jobs.retries import RetryPolicy
from jobs.errors import DeliveryNotFound
from jobs.fanout import plan
from jobs.sweeper import sweep
from notifiers import FailoverChannel, MemoryChannel, PermanentChannelError, TransientChannelError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, object_session

from tests.app import Order, Person
from tests.jobs.test_delivery import Flaky, statuses


def test_a_late_outcome_does_not_overwrite_a_claim_taken_since_and_still_being_sent(
        engine: Engine, session: Session, order: Order) -> None:
    # Given a delivery claimed by a worker whose lease then ran out, and claimed by another that is still sending it
    order.watchers = []
    order.cancel()
    session.commit()
    plan(session, 1)
    [delivery_id] = session.scalars(select(Delivery.id))
    stalled = claim(session, delivery_id, lease_seconds=0.000_001)
    with Session(engine) as other:
        taken = claim(other, delivery_id, lease_seconds=60)
    assert stalled is not None and taken is not None
    # When the first worker's send fails for good and it records that
    refused = Flaky(PermanentChannelError("550 no such user", channel="smtp"), failures=1)
    outcome = send(session, stalled, channel_for=lambda kind: refused, lease_seconds=60, retry=RetryPolicy(2))
    # Then the second worker's claim stands: still sending, its attempt, its lease
    session.rollback()
    row = session.get(Delivery, delivery_id)
    assert row is not None and outcome == "lost (sending)"
    assert (row.status, row.attempts, row.last_error) == (Status.SENDING, taken.attempts, None)


def test_renewing_claims_returns_every_claim_still_held(engine: Engine, session: Session, order: Order) -> None:
    order.cancel()
    session.commit()
    pending = plan(session, 1).pending
    held = claim_many(session, pending, lease_seconds=60)
    assert len(held) == 3
    assert renew(session, held, lease_seconds=60) == held


def test_a_renewed_claim_is_not_swept_before_its_new_lease_runs_out(engine: Engine, session: Session,
                                                                    order: Order) -> None:
    # Given a claim whose lease has run out, renewed for a minute by the worker that holds it
    order.watchers = []
    order.cancel()
    session.commit()
    [delivery_id] = plan(session, 1).pending
    [held] = claim_many(session, [delivery_id], lease_seconds=0.000_001)
    assert renew(session, [held], lease_seconds=60) == [held]
    # Then neither the sweeper nor another worker takes it
    assert sweep(session, grace_seconds=0).deliveries == []
    with Session(engine) as other:
        assert claim(other, delivery_id, lease_seconds=60) is None


class Slow(MemoryChannel):
    """Takes ``seconds`` per send: a channel slower than a third of the lease the test sets."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        time.sleep(self.seconds)  # the slowness under test, not a wait for something to happen
        super().send(message, to, key=key, event=event)  # type: ignore[arg-type]


def test_a_fan_out_slower_than_its_lease_renews_its_claims_and_sends_them_all(
        broker: StubBroker, engine: Engine, session: Session, order: Order) -> None:
    # Given claims of 30 ms, renewed every 10 ms, and a channel taking 20 ms per send
    slow = Slow(seconds=0.02)
    jobs.configure(broker=broker, engine=engine, channels={"email": slow}, lease_seconds=0.03)
    order.pay()
    session.commit()
    # When the fan-out runs, and nobody else takes its claims
    fan_out.fn(1)
    # Then it renews the second claim after the first send, and sends both deliveries
    assert sorted(s.to.address for s in slow.outbox) == ["bea@example.com", "sam@example.com"]
    assert [status for _, status, _ in statuses(session)] == ["sent", "sent"]


def one_pending_delivery(session: Session, order: Order) -> int:
    """The id of the one delivery of a cancelled order without watchers, planned and pending."""
    order.watchers = []
    order.cancel()
    session.commit()
    [delivery_id] = plan(session, 1).pending
    return delivery_id


def test_a_chunk_claimed_together_is_not_claimed_again_while_its_lease_lasts(engine: Engine, session: Session,
                                                                            order: Order) -> None:
    order.cancel()
    session.commit()
    pending = plan(session, 1).pending
    assert len(claim_many(session, pending, lease_seconds=60)) == 3
    assert sweep(session, grace_seconds=0).deliveries == []
    with Session(engine) as other:
        assert claim_many(other, pending, lease_seconds=60) == []


def test_a_delivery_waiting_for_its_retry_is_not_swept_before_its_backoff_runs_out(session: Session,
                                                                                    order: Order) -> None:
    delivery_id = one_pending_delivery(session, order)
    held = claim(session, delivery_id, lease_seconds=60)
    assert held is not None
    down = Flaky(TransientChannelError("421 later", channel="smtp"), failures=1)
    with pytest.raises(RetryLater):
        send(session, held, channel_for=lambda kind: down, lease_seconds=60, retry=RetryPolicy(2))
    assert sweep(session, grace_seconds=0).deliveries == []  # pending, but its retry is due in a minute


def test_the_backoff_doubles_with_each_attempt(session: Session, order: Order) -> None:
    delivery_id = one_pending_delivery(session, order)
    down = Flaky(TransientChannelError("421 later", channel="smtp"), failures=99)
    delays = []
    for _ in range(3):
        held = claim(session, delivery_id, lease_seconds=60)
        assert held is not None
        with pytest.raises(RetryLater) as retry:
            send(session, held, channel_for=lambda kind: down, lease_seconds=60, retry=RetryPolicy(8, 10, 10_000))
        delays.append(retry.value.delay_ms)
    assert delays == [40, 80, 160]


def test_a_delivery_sent_alone_records_when_it_was_sent_and_a_failed_one_does_not(
        session: Session, order: Order) -> None:
    order.cancel()
    session.commit()
    first, second, _ = claim_many(session, plan(session, 1).pending, lease_seconds=60)
    refused = Flaky(PermanentChannelError("550 no such user", channel="smtp"), failures=99)
    assert send(session, first, channel_for=lambda kind: MemoryChannel(), lease_seconds=60, retry=RetryPolicy(2)) == "sent"
    assert send(session, second, channel_for=lambda kind: refused, lease_seconds=60, retry=RetryPolicy(2)) == "failed"
    session.rollback()
    rows = {row.id: row for row in session.scalars(select(Delivery))}
    assert rows[first.id].sent_at is not None and rows[second.id].sent_at is None


def test_sent_outcomes_are_written_as_soon_as_the_log_holds_its_size(engine: Engine, session: Session,
                                                                   order: Order) -> None:
    order.cancel()
    session.commit()
    first, second, _ = claim_many(session, plan(session, 1).pending, lease_seconds=60)
    log = SentLog(session, size=2, seconds=3600)

    def status(held: Any) -> str | None:
        with Session(engine) as other:
            return other.scalar(select(Delivery.status).where(Delivery.id == held.id))

    log.add(first)
    assert status(first) == Status.SENDING  # one waits
    log.add(second)
    assert (status(first), status(second)) == (Status.SENT, Status.SENT)  # two: written together


def test_a_delivery_sent_by_a_failover_channel_among_others_records_its_provider_at_once(
        engine: Engine, session: Session, order: Order) -> None:
    order.cancel()
    session.commit()
    first, _, _ = claim_many(session, plan(session, 1).pending, lease_seconds=60)
    failover = FailoverChannel([MemoryChannel(), MemoryChannel()], names=["primary", "secondary"])
    log = SentLog(session, size=8, seconds=3600)  # the batched record, which writes no provider
    assert send(session, first, channel_for=lambda kind: failover, lease_seconds=60, retry=RetryPolicy(2),
                sent=log) == "sent"
    with Session(engine) as other:
        row = other.get_one(Delivery, first.id)
        assert (row.status, row.provider) == (Status.SENT, "primary")


class Meddling(MemoryChannel):
    """Changes the transition's row (or adds a row to its session) while sending."""

    def __init__(self, change: str) -> None:
        super().__init__()
        self.change = change

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        row = event.subject  # type: ignore[attr-defined]
        if self.change == "dirty":
            row.watchers = ["meddler@example.com"]
        else:
            object_session(row).add(Person(name="Meddler", email="meddler@example.com"))  # type: ignore[union-attr]
        super().send(message, to, key=key, event=event)  # type: ignore[arg-type]


@pytest.mark.parametrize("logged", [False, True], ids=["recorded alone", "recorded with others"])
@pytest.mark.parametrize("change", ["dirty", "new"])
def test_what_is_changed_in_the_session_while_a_delivery_is_sent_is_never_committed(
        engine: Engine, session: Session, order: Order, change: str, logged: bool) -> None:
    delivery_id = one_pending_delivery(session, order)
    held = claim(session, delivery_id, lease_seconds=60)
    assert held is not None
    log = SentLog(session) if logged else None
    assert send(session, held, channel_for=lambda kind: Meddling(change), lease_seconds=60, retry=RetryPolicy(2),
                sent=log) == "sent"
    if log is not None:
        log.flush()
    with Session(engine) as other:
        assert other.get(Order, order.id).watchers == []  # type: ignore[union-attr]
        assert other.scalar(select(func.count()).where(Person.name == "Meddler")) == 0


def test_a_delivery_that_cannot_be_claimed_answers_with_its_own_status(session: Session, order: Order) -> None:
    order.cancel()
    session.commit()
    _, second, _ = plan(session, 1).pending
    refused = Flaky(PermanentChannelError("550 no such user", channel="smtp"), failures=99)
    held = claim(session, second, lease_seconds=60)
    assert held is not None
    assert send(session, held, channel_for=lambda kind: refused, lease_seconds=60, retry=RetryPolicy(2)) == "failed"
    assert deliver(session, second, channel_for=lambda kind: MemoryChannel(), lease_seconds=60,
                   retry=RetryPolicy(2)) == "failed"
    with pytest.raises(DeliveryNotFound, match="Delivery 4242 does not exist"):
        deliver(session, 4242, channel_for=lambda kind: MemoryChannel(), lease_seconds=60, retry=RetryPolicy(2))


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_log_of_sent_outcomes_writes_them_every_8_or_once_the_oldest_waited_50_ms(
        engine: Engine, session: Session, order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    order.watchers = [f"w{n}@example.com" for n in range(9)]
    order.cancel()
    session.commit()
    held = claim_many(session, plan(session, 1).pending, lease_seconds=60)
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock)
    log = SentLog(session)

    def written() -> int:
        with Session(engine) as other:
            return other.scalar(select(func.count()).where(Delivery.status == Status.SENT)) or 0

    for one in held[:7]:
        log.add(one)
    assert written() == 0
    log.add(held[7])
    assert written() == 8  # the eighth writes the eight
    log.add(held[8])
    clock.now += 0.049
    log.flush_if_due()
    assert written() == 8
    clock.now += 0.002
    log.flush_if_due()
    assert written() == 9  # the oldest waited 50 ms


class Failing(MemoryChannel):
    """Makes its session's flush fail (a row breaking a constraint), as a channel or notifier with a bug might."""

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        session = object_session(event.subject)  # type: ignore[attr-defined]
        assert session is not None
        session.add(Person(name=None, email="nobody@example.com"))
        session.flush()


def test_a_flush_that_failed_while_sending_still_lets_the_outcome_be_recorded(engine: Engine, session: Session,
                                                                              order: Order) -> None:
    delivery_id = one_pending_delivery(session, order)
    held = claim(session, delivery_id, lease_seconds=60)
    assert held is not None
    with pytest.raises(RetryLater):
        send(session, held, channel_for=lambda kind: Failing(), lease_seconds=60, retry=RetryPolicy(2))
    with Session(engine) as other:
        row = other.get(Delivery, delivery_id)
        assert row is not None and row.status == Status.PENDING and "IntegrityError" in (row.last_error or "")


@pytest.mark.parametrize(("retry_after", "delay_ms"), [(2, 2000), (0, 0), (-5, 0)])
def test_a_retry_after_in_seconds_is_waited_in_milliseconds_never_less_than_none(
        session: Session, order: Order, retry_after: float, delay_ms: int) -> None:
    delivery_id = one_pending_delivery(session, order)
    held = claim(session, delivery_id, lease_seconds=60)
    assert held is not None
    slow_down = Flaky(TransientChannelError("429 slow down", channel="webhook", retry_after=retry_after), failures=1)
    with pytest.raises(RetryLater) as retry:
        send(session, held, channel_for=lambda kind: slow_down, lease_seconds=60, retry=RetryPolicy(2, max_backoff_ms=10_000))
    assert retry.value.delay_ms == delay_ms


def test_a_claimed_delivery_is_not_claimed_again_while_its_lease_lasts(engine: Engine, session: Session,
                                                                       order: Order) -> None:
    delivery_id = one_pending_delivery(session, order)
    assert claim(session, delivery_id, lease_seconds=60) is not None
    assert sweep(session, grace_seconds=0).deliveries == []
    with Session(engine) as other:
        assert claim(other, delivery_id, lease_seconds=60) is None


def test_a_sent_outcome_waiting_in_the_log_leaves_no_transaction_open(session: Session, order: Order) -> None:
    delivery_id = one_pending_delivery(session, order)
    [held] = claim_many(session, [delivery_id], lease_seconds=60)
    session.get(Order, order.id)  # rendering reads: a transaction begins (on SQLite, a read lock)
    assert session.in_transaction()
    SentLog(session).add(held)
    assert not session.in_transaction()
