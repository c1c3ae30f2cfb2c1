"""The after-commit hook: one fan-out message per transition, only after the outermost commit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import outbox
from jobs.outage import outage
from notifiers import MemoryChannel
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from tests.app import Order
from tests.processes import ROOT


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


def test_rolling_back_an_outer_savepoint_with_an_inner_one_open_sends_nothing_of_either(
        broker: StubBroker, session: Session, order: Order) -> None:
    outer = session.begin_nested()
    session.begin_nested()
    order.pay()
    session.flush()
    outer.rollback()
    session.commit()
    assert enqueued(broker) == []


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


def test_a_session_used_again_after_a_close_without_commit_sends_only_its_new_transitions(
        broker: StubBroker, engine: object, order: Order) -> None:
    session = Session(engine)  # type: ignore[arg-type]
    session.get(Order, order.id).pay()  # type: ignore[union-attr]
    session.flush()
    session.close()  # the payment is gone
    record_id = session.get(Order, order.id).cancel().id  # type: ignore[union-attr]
    session.commit()
    session.close()
    assert enqueued(broker) == [("tidings.fan_out", (record_id,))]


def test_several_transitions_in_one_commit_enqueue_one_message_each(broker: StubBroker, session: Session,
                                                                    order: Order) -> None:
    first, second = order.pay(), order.ship()
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (first.id,)), ("tidings.fan_out", (second.id,))]


def test_after_a_commit_enqueued_on_the_stub_broker_its_hook_gets_the_broker(
        broker: StubBroker, session: Session, order: Order, monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[StubBroker] = []  # jobs' hook starts the in-process worker of broker_url=stub there
    monkeypatch.setattr(outbox, "_on_stub", handed.append)
    record = order.pay()
    session.commit()
    assert enqueued(broker) == [("tidings.fan_out", (record.id,))] and handed == [broker]


def test_a_failed_enqueue_does_not_raise_into_the_request(broker: StubBroker, session: Session, order: Order,
                                                          monkeypatch: object) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(broker, "enqueue", refuse)  # type: ignore[attr-defined]
    order.pay()
    session.commit()
    assert order.state == "paid"


# --- A network broker: the commit returns at once, a thread of the process enqueues ---------------


class Remote(dramatiq.Broker):
    """A broker that is not the StubBroker, whose enqueues wait for ``gate`` and may fail."""

    def __init__(self) -> None:
        super().__init__(middleware=[])
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.entered = threading.Semaphore(0)

    def declare_queue(self, queue_name: str) -> None:
        self.queues[queue_name] = None

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        self.entered.release()
        if not self.gate.wait(10):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((message.actor_name, message.args))
        return message

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 100) -> Any:
        raise NotImplementedError

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def get_declared_delay_queues(self) -> set[str]:
        return set()

    def flush(self, queue_name: str) -> None:
        pass

    def flush_all(self) -> None:
        pass

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        pass


@pytest.fixture
def remote(engine: Engine, restore_jobs: None) -> Iterator[Remote]:
    broker = Remote()
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, sweep_interval=0)
    yield broker
    broker.gate.set()
    assert outbox.dispatcher.flush(10)


def test_with_a_network_broker_the_commit_does_not_wait_for_the_enqueue(remote: Remote, session: Session,
                                                                         order: Order) -> None:
    remote.gate.clear()  # the broker hangs
    record = order.pay()
    session.commit()  # returns although the enqueue has not happened
    assert remote.entered.acquire(timeout=5) and remote.sent == []
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    assert remote.sent == [("tidings.fan_out", (record.id,))]


def test_fan_outs_that_queue_up_behind_a_busy_enqueue_go_in_fewer_messages(
        remote: Remote, session: Session, order: Order) -> None:
    remote.gate.clear()
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)  # the thread waits on the broker...
    orders = [Order(buyer=order.buyer, seller=order.seller) for _ in range(40)]
    session.add_all(orders)
    session.commit()
    queued = [o.pay().id for o in orders]
    session.commit()  # ...while 40 more queue up behind it
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    batches = [args[0] if isinstance(args[0], list) else [args[0]] for _, args in remote.sent[1:]]
    assert 1 < len(batches) < 40 and all(len(batch) <= 50 for batch in batches)
    assert [i for batch in batches for i in batch] == queued


@pytest.mark.parametrize(("waiting", "sizes"), [(10, [4, 4, 2]), (1000, [50] * 20)])
def test_a_backlog_of_fan_outs_goes_in_messages_of_4_to_50_ids(remote: Remote, waiting: int,
                                                               sizes: list[int]) -> None:
    remote.gate.clear()
    outbox.dispatcher.submit(remote, [1])
    assert remote.entered.acquire(timeout=5)  # the thread waits on the broker...
    outbox.dispatcher.submit(remote, list(range(2, waiting + 2)))  # ...while the backlog queues up
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    batches = [args[0] for _, args in remote.sent[1:]]
    assert [len(batch) for batch in batches] == sizes
    assert [i for batch in batches for i in batch] == list(range(2, waiting + 2))


def test_fan_outs_beyond_10000_waiting_are_left_to_the_sweeper(remote: Remote,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = outbox.Dispatcher()  # the process's own, as configured by default
    remote.gate.clear()
    dispatcher.submit(remote, [1])
    assert remote.entered.acquire(timeout=5)  # the thread waits on the broker with one
    dispatcher.submit(remote, list(range(2, 10_001)))  # 10,000 wait: queued
    dispatcher.submit(remote, [10_001])  # one more: left to the sweeper
    remote.gate.set()
    assert dispatcher.flush(10)
    sent = [i for _, (ids,) in remote.sent for i in (ids if isinstance(ids, list) else [ids])]
    assert sent == list(range(1, 10_001))
    assert "10000 fan-outs wait for the broker already; more are left to the sweeper" in caplog.text


def test_a_flush_returns_once_everything_was_enqueued_not_at_its_timeout(remote: Remote, session: Session,
                                                                      order: Order) -> None:
    remote.gate.clear()
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)
    flushed: list[bool] = []
    waiter = threading.Thread(target=lambda: flushed.append(outbox.dispatcher.flush(3600)), daemon=True)
    waiter.start()
    remote.gate.set()
    waiter.join(timeout=30)  # a deadline, far below the flush's own hour
    assert flushed == [True] and len(remote.sent) == 1


def test_a_failed_background_enqueue_drops_the_queue_behind_it_for_the_sweeper(
        remote: Remote, session: Session, order: Order, caplog: pytest.LogCaptureFixture) -> None:
    outage.ended()  # an outage an earlier test left behind is over: this one's first failure is logged
    remote.gate.clear()
    remote.fail = True
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)  # the first enqueue waits on the broker...
    order.ship()
    session.commit()
    order.reopen()
    session.commit()  # ...while two more queue up behind it
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    assert remote.sent == []
    assert "Could not enqueue the fan-out of 3 transition(s)" in caplog.text  # the failed one, and 2 dropped
    with Session(session.get_bind()) as fresh:  # the log still has them, unfanned: the sweeper's work
        assert fresh.scalar(select(func.count()).where(TransitionRecord.fanned_out_at.is_(None))) == 3


def test_messages_committed_for_a_broker_since_replaced_are_not_sent_to_the_new_one(
        remote: Remote, session: Session, order: Order) -> None:
    remote.gate.clear()
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)
    order.ship()
    session.commit()  # queued for `remote`
    other = Remote()
    jobs.configure(broker=other)
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    assert len(remote.sent) == 1 and other.sent == []


def test_a_swapped_broker_still_gets_what_was_committed_after_the_swap(
        remote: Remote, session: Session, order: Order) -> None:
    remote.gate.clear()
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)  # the first enqueue waits on the old broker
    order.ship()
    session.commit()  # queued for the old broker
    other = Remote()
    jobs.configure(broker=other)
    record = order.reopen()
    session.commit()  # queued for the new one, behind the stale one
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    assert other.sent == [("tidings.fan_out", (record.id,))]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_thread_and_never_sends_what_its_parent_queued(
        remote: Remote, session: Session, order: Order) -> None:
    remote.gate.clear()
    order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)  # the parent's thread holds one message
    pid = os.fork()
    if pid == 0:  # the child: nothing inherited; its own commits go through its own thread
        ok = outbox.dispatcher.flush(0) and remote.sent == []
        remote.gate.set()
        outbox.dispatcher.submit(remote, [4242])
        ok = ok and outbox.dispatcher.flush(5) and remote.sent == [("tidings.fan_out", (4242,))]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    remote.gate.set()
    assert outbox.dispatcher.flush(5) and len(remote.sent) == 1


def test_what_is_queued_at_exit_is_still_enqueued(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, threading, time
        import jobs
        from jobs import outbox
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session
        import workflow
        from tests.app import Base, Order, Person
        from tests.jobs.test_outbox import Remote

        class Slow(Remote):
            def enqueue(self, message, *, delay=None):
                time.sleep(0.5)  # the interpreter is already exiting by then
                with open(sys.argv[1], "a") as out:
                    out.write(message.actor_name + "\\n")
                return message

        engine = create_engine("sqlite:///" + sys.argv[2])
        Base.metadata.create_all(engine)
        workflow.metadata.create_all(engine)
        jobs.configure(jobs.Settings(), broker=Slow(), engine=engine, sweep_interval=0)
        with Session(engine) as session:
            order = Order(buyer=Person(name="B", email="b@example.com"), seller=Person(name="S", email="s@example.com"))
            session.add(order)
            session.commit()
            order.pay()
            session.commit()
    """)
    sent = tmp_path / "sent.txt"
    subprocess.run([sys.executable, "-c", script, str(sent), str(tmp_path / "exit.db")], cwd=ROOT, check=True,
                   timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert sent.read_text() == "tidings.fan_out\n"


def test_transitions_the_outbox_thread_sent_together_are_each_delivered_once(
        remote: Remote, engine: Engine, session: Session, order: Order) -> None:
    # Given the production path: a network broker, and the outbox's thread busy while 40 transitions commit
    mailbox = MemoryChannel()
    jobs.configure(broker=remote, engine=engine, channels={"email": mailbox})
    remote.gate.clear()
    first = order.pay()
    session.commit()
    assert remote.entered.acquire(timeout=5)
    orders = [Order(buyer=order.buyer, seller=order.seller) for _ in range(40)]
    session.add_all(orders)
    session.commit()
    records = [first] + [o.pay() for o in orders]
    session.commit()
    remote.gate.set()
    assert outbox.dispatcher.flush(5)
    # When a worker runs each message the thread enqueued (and those they enqueue in turn)
    done = 0
    while done < len(remote.sent):
        name, args = remote.sent[done]
        remote.get_actor(name).fn(*args)
        done += 1
    # Then the 41 transitions went in fewer messages, and each party of each got one email
    fan_outs = [args for name, args in remote.sent if name == "tidings.fan_out"]
    assert len(fan_outs) < 41
    expected = Counter((f"Order {r.key} paid", a) for r in records for a in ("bea@example.com", "sam@example.com"))
    assert Counter((s.message.subject, s.to.address) for s in mailbox.outbox) == expected


def test_at_exit_the_outbox_thread_gets_the_5_seconds_the_readme_promises(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher = outbox.Dispatcher()
    waited: list[float] = []
    monkeypatch.setattr(dispatcher, "flush", lambda timeout: waited.append(timeout) or True)
    dispatcher._at_exit()
    assert waited == [5.0]
