"""The after-commit hook: one fan-out message per transition, only after the outermost commit."""

from __future__ import annotations

from dramatiq.brokers.stub import StubBroker
from sqlalchemy.orm import Session

from tests.app import Order


def enqueued(broker: StubBroker) -> list[tuple[str, tuple[object, ...]]]:
    queue = broker.queues.get("tidings")
    if queue is None:
        return []
    messages = []
    while not queue.empty():
        from dramatiq import Message

        message = Message.decode(queue.get_nowait())
        messages.append((message.actor_name, message.args))
        queue.task_done()
    return messages


def test_a_committed_transition_enqueues_one_fan_out_with_its_id_only(broker: StubBroker, session: Session,
                                                                      order: Order) -> None:
    record = order.pay()
    session.flush()
    assert enqueued(broker) == []
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (record.id,))]


def test_a_rolled_back_transaction_sends_nothing(broker: StubBroker, session: Session, order: Order) -> None:
    order.pay()
    session.flush()
    session.rollback()
    session.commit()
    assert enqueued(broker) == []


def test_a_rolled_back_savepoint_sends_nothing_but_the_outer_transition_is_sent(
        broker: StubBroker, session: Session, order: Order) -> None:
    outer = order.pay()
    nested = session.begin_nested()
    order.ship()
    session.flush()
    nested.rollback()
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (outer.id,))]


def test_a_released_savepoint_is_sent_once_after_the_outer_commit(broker: StubBroker, session: Session,
                                                                  order: Order) -> None:
    with session.begin_nested():
        record = order.pay()
    assert enqueued(broker) == []
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (record.id,))]


def test_a_released_savepoint_inside_a_rolled_back_transaction_sends_nothing(
        broker: StubBroker, session: Session, order: Order) -> None:
    with session.begin_nested():
        order.pay()
    session.rollback()
    session.commit()
    assert enqueued(broker) == []


def test_a_session_closed_without_commit_sends_nothing(broker: StubBroker, engine: object, order: Order) -> None:
    with Session(engine) as other:  # type: ignore[arg-type]
        other.get(Order, order.id).pay()  # type: ignore[union-attr]
        other.flush()
    with Session(engine) as later:  # type: ignore[arg-type]
        later.commit()
    assert enqueued(broker) == []


def test_several_transitions_in_one_commit_enqueue_one_message_each(broker: StubBroker, session: Session,
                                                                    order: Order) -> None:
    first, second = order.pay(), order.ship()
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (first.id,)), ("tidings.fan_out", (second.id,))]


def test_a_failed_enqueue_does_not_raise_into_the_request(broker: StubBroker, session: Session, order: Order,
                                                          monkeypatch: object) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(broker, "enqueue", refuse)  # type: ignore[attr-defined]
    order.pay()
    session.commit()
    assert order.state == "paid"
