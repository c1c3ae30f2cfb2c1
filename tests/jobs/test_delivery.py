"""Delivery: claim, render, send, record; end to end through the StubBroker and an in-process worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Status
from jobs.actors import deliver, deliver_each, fan_out
from jobs.claims import claim
from jobs.delivery import send
from jobs.retries import RetryPolicy
from jobs.fanout import plan
from jobs.testing import drain
from notifiers import MemoryChannel, PermanentChannelError, TransientChannelError
from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session

from workflow import TransitionRecord

from tests.app import Order, Person
from tests.scenarios import paid_orders


class Flaky(MemoryChannel):
    """Fails with ``error`` the first ``failures`` times, then records like MemoryChannel."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__()
        self.error, self.failures, self.calls = error, failures, 0

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        super().send(message, to, key=key, event=event)  # type: ignore[arg-type]


def statuses(session: Session) -> list[tuple[str, str, int]]:
    session.rollback()
    return [(d.address, d.status, d.attempts) for d in session.scalars(select(Delivery).order_by(Delivery.id))]


def use_channel(broker: StubBroker, engine: object, channel: MemoryChannel) -> None:
    jobs.configure(broker=broker, engine=engine, channels={"email": channel})  # type: ignore[arg-type]


def test_each_party_gets_exactly_one_email_after_commit(broker: StubBroker, session: Session, order: Order,
                                                       mailbox: MemoryChannel) -> None:
    order.pay(actor="clerk")
    session.commit()
    drain()
    assert sorted((s.to.address, s.message.subject) for s in mailbox.outbox) == [
        ("bea@example.com", f"Order {order.id} paid"), ("sam@example.com", f"Order {order.id} paid")]
    assert [status for _, status, _ in statuses(session)] == ["sent", "sent"]


def test_a_template_email_is_rendered_with_the_event_recipient_and_row(broker: StubBroker, session: Session,
                                                                       order: Order, mailbox: MemoryChannel) -> None:
    order.pay()
    order.ship()
    session.commit()
    drain()
    shipped = [s.message for s in mailbox.outbox if s.message.subject.endswith("shipped")]
    assert [m.text for m in shipped] == [f"Hello Bea, order {order.id} is on its way."]
    assert shipped[0].html == f"<p>Hello Bea, order {order.id} is on its way.</p>"


def test_running_the_delivery_twice_sends_nothing_twice(broker: StubBroker, session: Session, order: Order,
                                                        mailbox: MemoryChannel) -> None:
    order.pay()
    session.commit()
    drain()
    for delivery_id in session.scalars(select(Delivery.id)):
        deliver.send(delivery_id)
    fan_out.send(1)
    drain()
    assert len(mailbox.outbox) == 2


def test_the_channel_gets_the_transition_and_the_recipient_as_a_row_reference(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel) -> None:
    order.pay(actor="clerk")
    session.commit()
    drain()
    sent = {s.to.address: s for s in mailbox.outbox}
    assert sent["bea@example.com"].to.ref == f"Person:{order.buyer.id}"
    assert sent["bea@example.com"].event is not None
    assert (sent["bea@example.com"].event.trigger, sent["bea@example.com"].event.actor) == ("pay", "clerk")


def retry_delays(broker: StubBroker, engine: object, session: Session, order: Order,
                 retry_after: float) -> tuple[int | None, int]:
    """The delays of the retries after a channel asked twice to wait ``retry_after`` seconds (max backoff: 40 ms).

    The first attempt is the fan-out's own (one recipient): its retry is a delayed ``deliver``
    message. The second is that message's: it raises ``dramatiq.Retry`` with the delay asked for.
    """
    use_channel(broker, engine, Flaky(TransientChannelError("429 slow down", channel="webhook",
                                                            retry_after=retry_after), failures=2))
    order.watchers = []
    order.cancel()
    session.commit()
    enqueued: list[tuple[str, int | None]] = []
    real = broker.enqueue

    def spy(message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        enqueued.append((message.actor_name, delay))
        return real(message, delay=delay)

    broker.enqueue = spy  # type: ignore[method-assign]
    fan_out.fn(1)
    [delivery_id] = session.scalars(select(Delivery.id))
    assert [name for name, _ in enqueued] == ["tidings.deliver"]
    with pytest.raises(dramatiq.Retry) as retry:
        deliver.fn(delivery_id)
    session.rollback()
    assert session.get(Delivery, delivery_id).status == Status.PENDING  # type: ignore[union-attr]
    return enqueued[0][1], int(retry.value.delay or 0)


def test_a_retry_after_from_the_channel_sets_the_retry_delay(broker: StubBroker, engine: object, session: Session,
                                                             order: Order) -> None:
    assert retry_delays(broker, engine, session, order, retry_after=0.03) == (30, 30)


def test_a_retry_after_is_capped_at_the_longest_backoff(broker: StubBroker, engine: object, session: Session,
                                                        order: Order) -> None:
    assert retry_delays(broker, engine, session, order, retry_after=3600) == (40, 40)


def test_a_notifier_returning_none_is_recorded_as_skipped(broker: StubBroker, session: Session, order: Order,
                                                          mailbox: MemoryChannel) -> None:
    order.cancel(quiet=True)
    session.commit()
    drain()
    assert mailbox.outbox == [] and {status for _, status, _ in statuses(session)} == {Status.SKIPPED}


def test_transient_errors_are_retried_until_sent(broker: StubBroker, engine: object, session: Session,
                                                 order: Order) -> None:
    channel = Flaky(TransientChannelError("421 try later", channel="smtp"), failures=2)
    use_channel(broker, engine, channel)
    order.watchers = []
    order.cancel()
    session.commit()
    drain()
    assert [s.to.address for s in channel.outbox] == ["bea@example.com"]
    assert statuses(session) == [("bea@example.com", "sent", 3)]


def test_a_permanent_error_fails_at_once_with_the_reply(broker: StubBroker, engine: object, session: Session,
                                                        order: Order) -> None:
    use_channel(broker, engine, Flaky(PermanentChannelError("550 no such user", channel="smtp"), failures=99))
    order.pay()
    session.commit()
    drain()
    session.rollback()
    rows = session.scalars(select(Delivery)).all()
    assert {(d.status, d.attempts, d.last_error) for d in rows} == {("failed", 1, "550 no such user")}


def test_exhausted_retries_leave_the_delivery_dead(broker: StubBroker, engine: object, session: Session,
                                                   order: Order) -> None:
    use_channel(broker, engine, Flaky(TransientChannelError("connection refused", channel="smtp"), failures=99))
    order.pay()
    session.commit()
    drain()
    session.rollback()
    rows = session.scalars(select(Delivery)).all()
    assert {(d.status, d.attempts) for d in rows} == {("dead", 3)}
    assert all("Gave up after 3 attempts: connection refused" == d.last_error for d in rows)


@pytest.mark.parametrize(("context", "reason"), [
    ({"template": "broken"}, "TemplateError: Template 'broken.txt' does not compile, line 1"),
    ({"template": "missing"}, "TemplateError: Template 'missing' not found"),
    ({"template": "undefined"}, "TemplateError: Template 'undefined.txt' failed to render, line 1: "
                                "'no_such_variable' is undefined."),
])
def test_a_template_error_at_render_time_is_a_recorded_failure(broker: StubBroker, session: Session, order: Order,
                                                               mailbox: MemoryChannel, context: dict[str, str],
                                                               reason: str) -> None:
    order.pay()
    order.ship(**context)
    session.commit()
    drain()
    session.rollback()
    failed = session.scalars(select(Delivery).where(Delivery.status == "failed")).one()
    assert (failed.last_error or "").startswith(reason)
    assert len(mailbox.outbox) == 2  # the other deliveries went out


def test_a_header_injection_in_a_subject_is_a_recorded_failure(broker: StubBroker, session: Session, order: Order,
                                                               mailbox: MemoryChannel) -> None:
    order.cancel(subject="Hi\r\nBcc: everyone@example.com")
    session.commit()
    drain()
    session.rollback()
    errors = {d.last_error for d in session.scalars(select(Delivery))}
    assert mailbox.outbox == [] and len(errors) == 1 and "contains CR or LF" in str(errors.pop())


def test_a_message_for_a_missing_delivery_or_transition_is_dropped_with_a_log(
        broker: StubBroker, mailbox: MemoryChannel, caplog: pytest.LogCaptureFixture) -> None:
    deliver.send(12345)
    fan_out.send(54321)
    drain()
    assert "Delivery 12345 does not exist" in caplog.text and "Transition 54321 does not exist" in caplog.text


class FirstAttemptFails(MemoryChannel):
    """Notes the Message-ID of every attempt, then fails each delivery's first attempt transiently."""

    def __init__(self) -> None:
        super().__init__()
        self.message_ids: dict[str, list[str]] = {}

    def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
        mime = message.to_mime(to, sender="shop@example.com", key=key)  # type: ignore[attr-defined]
        attempts = self.message_ids.setdefault(to.address, [])  # type: ignore[attr-defined]
        attempts.append(mime["Message-ID"])
        if len(attempts) == 1:
            raise TransientChannelError("451 try again later", channel="smtp")
        super().send(message, to, key=key, event=event)  # type: ignore[arg-type]


def test_the_message_id_is_the_same_for_every_attempt_of_a_delivery(broker: StubBroker, engine: object,
                                                                   session: Session, order: Order) -> None:
    channel = FirstAttemptFails()
    use_channel(broker, engine, channel)
    order.cancel(subject="x")
    session.commit()
    drain()
    attempts = channel.message_ids
    assert sorted(len(ids) for ids in attempts.values()) == [2, 2, 2]  # a failed attempt, then the one that went
    assert all(len(set(ids)) == 1 for ids in attempts.values())
    assert len({ids[0] for ids in attempts.values()}) == 3  # and each delivery its own


def test_nothing_is_delivered_for_rows_counted_before_drain(broker: StubBroker, session: Session, order: Order,
                                                           count: Callable[[type], int]) -> None:
    order.pay()
    session.commit()
    assert count(Delivery) == 0  # the request wrote no delivery: that is the worker's job
    drain()
    assert count(Delivery) == 2


def test_an_unforeseen_error_is_retried_then_leaves_the_delivery_dead(broker: StubBroker, engine: object,
                                                                     session: Session, order: Order) -> None:
    use_channel(broker, engine, Flaky(RuntimeError("bug in a channel"), failures=99))  # type: ignore[arg-type]
    order.pay()
    session.commit()
    drain()
    session.rollback()
    rows = session.scalars(select(Delivery)).all()
    assert {(d.status, d.last_error) for d in rows} == {
        ("dead", "Gave up after 3 attempts: RuntimeError: bug in a channel")}


def spy_enqueues(broker: StubBroker) -> list[tuple[str, tuple[Any, ...]]]:
    """The (actor, args) of every message enqueued on ``broker`` from now on."""
    enqueued: list[tuple[str, tuple[Any, ...]]] = []
    real = broker.enqueue

    def spy(message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        enqueued.append((message.actor_name, message.args))
        return real(message, delay=delay)

    broker.enqueue = spy  # type: ignore[method-assign]
    return enqueued


def test_a_transition_to_a_few_recipients_is_delivered_by_its_one_fan_out_message(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel) -> None:
    enqueued = spy_enqueues(broker)
    order.pay()
    session.commit()
    drain()
    assert [name for name, _ in enqueued] == ["tidings.fan_out"]
    assert sorted(s.to.address for s in mailbox.outbox) == ["bea@example.com", "sam@example.com"]
    assert [status for _, status, _ in statuses(session)] == ["sent", "sent"]


def test_one_fan_out_message_of_several_transitions_sends_the_deliveries_of_each(
        broker: StubBroker, session: Session, mailbox: MemoryChannel) -> None:
    ids = paid_orders(session, 3)
    drain()
    mailbox.outbox.clear()
    session.execute(update(Delivery).values(status=Status.PENDING))  # forget them, and
    session.execute(delete(Delivery))
    session.execute(update(TransitionRecord).values(fanned_out_at=None))  # plan them again, in one message
    session.commit()
    enqueued = spy_enqueues(broker)
    fan_out.send(ids)
    drain()
    assert [name for name, _ in enqueued] == ["tidings.fan_out"]
    assert sorted(s.to.address for s in mailbox.outbox) == sorted(f"{p}{n}@example.com" for n in range(3)
                                                                  for p in "bs")
    assert [status for _, status, _ in statuses(session)] == ["sent"] * 6


def test_a_large_fan_out_is_sent_in_chunks_not_one_message_per_delivery(
        broker: StubBroker, session: Session, order: Order, mailbox: MemoryChannel) -> None:
    order.watchers = [f"w{n}@example.com" for n in range(60)]  # more than one INSERT ... RETURNING takes
    session.commit()
    enqueued = spy_enqueues(broker)
    order.cancel()
    session.commit()
    drain()
    chunks = [args[0] for name, args in enqueued if name == "tidings.deliver_each"]
    assert [name for name, _ in enqueued if name != "tidings.deliver_each"] == ["tidings.fan_out"]
    assert 1 < len(chunks) < 61 and sorted(i for chunk in chunks for i in chunk) == list(range(1, 62))
    assert len(mailbox.outbox) == 61 and {status for _, status, _ in statuses(session)} == {"sent"}


def test_a_chunk_run_twice_sends_nothing_twice(broker: StubBroker, session: Session, order: Order,
                                               mailbox: MemoryChannel) -> None:
    order.watchers = [f"w{n}@example.com" for n in range(40)]
    session.commit()
    order.cancel()
    session.commit()
    drain()
    deliver_each.send(list(range(1, 42)))
    drain()
    assert len(mailbox.outbox) == 41


def test_a_transient_failure_in_a_chunk_retries_that_delivery_alone(broker: StubBroker, engine: object,
                                                                    session: Session, order: Order) -> None:
    channel = Flaky(TransientChannelError("421 try later", channel="smtp"), failures=1)
    use_channel(broker, engine, channel)
    order.watchers = [f"w{n}@example.com" for n in range(40)]
    session.commit()
    enqueued = spy_enqueues(broker)
    order.cancel()
    session.commit()
    drain()
    retried = {args for name, args in enqueued if name == "tidings.deliver"}  # (delayed, then due)
    assert len(retried) == 1  # whichever delivery the worker threads tried first
    assert len(channel.outbox) == 41
    assert sorted(attempts for _, _, attempts in statuses(session)) == [1] * 40 + [2]


# --- A claim that ran out belongs to whoever took it next ------------------------------------------


def test_a_late_outcome_does_not_overwrite_the_next_claims_result(engine: Engine, session: Session,
                                                                   order: Order) -> None:
    # Given a delivery claimed by a worker whose lease then ran out, and claimed and sent by another
    order.watchers = []
    order.cancel()
    session.commit()
    plan(session, 1)
    [delivery_id] = session.scalars(select(Delivery.id))
    stalled = claim(session, delivery_id, lease_seconds=0.000_001)
    with Session(engine) as other:
        taken = claim(other, delivery_id, lease_seconds=60)
        assert stalled is not None and taken is not None
        assert send(other, taken, channel_for=lambda kind: MemoryChannel(), lease_seconds=60, retry=RetryPolicy(max_retries=2)) == "sent"
    # When the first worker's send fails transiently and it records that
    down = Flaky(TransientChannelError("421 later", channel="smtp"), failures=1)
    outcome = send(session, stalled, channel_for=lambda kind: down, lease_seconds=60, retry=RetryPolicy(max_retries=2))
    # Then the delivery stays sent, and no retry is asked for
    session.rollback()
    assert (outcome, session.get(Delivery, delivery_id).status) == ("lost (sent)", "sent")  # type: ignore[union-attr]


def claimed_by_another_worker_meanwhile(engine: Engine) -> tuple[MemoryChannel, list[int]]:
    """A channel during whose first send another worker claims every other delivery it can; and what it took."""
    taken: list[int] = []

    class Slow(MemoryChannel):
        def send(self, message: object, to: object, *, key: str, event: object = None) -> None:
            super().send(message, to, key=key, event=event)  # type: ignore[arg-type]
            with Session(engine) as other:
                for delivery_id in other.scalars(select(Delivery.id).where(Delivery.key != key)):
                    if claim(other, delivery_id, lease_seconds=60) is not None:
                        taken.append(delivery_id)

    return Slow(), taken


def test_a_fan_out_does_not_send_a_claim_it_lost_while_sending_the_others(
        broker: StubBroker, engine: Engine, session: Session, order: Order) -> None:
    # Given a fan-out to two parties whose claims last a millisecond, and another worker taking
    # the second delivery while the fan-out sends the first
    slow, taken = claimed_by_another_worker_meanwhile(engine)
    jobs.configure(broker=broker, engine=engine, channels={"email": slow}, lease_seconds=0.001)
    order.pay()
    session.commit()
    # When the fan-out runs
    fan_out.fn(1)
    # Then it sent the first delivery only: the second is the other worker's now
    assert len(slow.outbox) == 1 and len(taken) == 1
    session.rollback()
    assert session.get(Delivery, taken[0]).status == Status.SENDING  # type: ignore[union-attr]


def test_a_chunk_does_not_send_a_claim_it_lost_while_sending_the_others(
        broker: StubBroker, engine: Engine, session: Session, order: Order) -> None:
    # Given a chunk of two deliveries whose claims last a millisecond, and another worker taking
    # the second while the chunk sends the first
    slow, taken = claimed_by_another_worker_meanwhile(engine)
    jobs.configure(broker=broker, engine=engine, channels={"email": slow}, lease_seconds=0.001)
    record = order.pay()
    session.commit()
    pending = plan(session, record.id).pending
    # When the chunk runs
    deliver_each.fn(pending)
    # Then it sent the first delivery only: the second is the other worker's now
    assert len(slow.outbox) == 1 and len(taken) == 1


def test_a_chunk_reads_its_rows_without_loading_their_parties(broker: StubBroker, engine: Engine, session: Session,
                                                              order: Order, mailbox: MemoryChannel) -> None:
    # Given a cancelled order's deliveries planned, to its buyer and its watchers
    jobs.configure(broker=broker, engine=engine, channels={"email": mailbox})
    record = order.cancel()
    session.commit()
    pending = plan(session, record.id).pending
    sent: list[str] = []

    def note(*args: object) -> None:
        sent.append(str(args[2]))

    # When a chunk sends them (the notifier's message reads no party)
    event.listen(engine, "before_cursor_execute", note)
    try:
        deliver_each.fn(pending)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    # Then every one is sent, and no party was read: the claims name the recipients
    assert len(mailbox.outbox) == len(pending) == 3
    assert not [s for s in sent if "FROM shop_people" in s]
