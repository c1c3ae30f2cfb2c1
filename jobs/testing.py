"""The test kit: capture and assert notifications (:func:`kit`), or drain an in-process worker.

The ``tidings`` pytest fixture (``jobs.pytest_plugin``, registered on install) wraps :func:`kit`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from queue import Empty
from typing import Any

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from notifiers import Channel, MemoryChannel, registry
from notifiers.channels import Sent
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from . import inprocess, outbox, worker
from .delivery_log import Delivery, Status
from .errors import ConfigurationError

__all__ = ["Kit", "Notification", "Skipped", "drain", "kit", "memory_channels", "stop_workers"]


def drain(broker: StubBroker | None = None, *, timeout: float = 10.0, worker_threads: int = 2) -> None:
    """Run every queued fan-out and delivery (and what they enqueue) until the queues are empty.

    Starts an in-process worker for the broker on first use (stopped at exit or by
    :func:`stop_workers`) and joins every queue, delayed ones included. The first actor failure is re-raised here, with its traceback.

    Raises:
        ConfigurationError: the broker is not a StubBroker.
        TimeoutError: the queues were not empty after ``timeout`` seconds.
    """
    found = broker or dramatiq.get_broker()
    if not isinstance(found, StubBroker):
        raise ConfigurationError(f"drain() needs the StubBroker (TIDINGS_BROKER_URL=stub), not {type(found).__name__}.")
    broker = found
    deadline = time.monotonic() + timeout
    outbox.dispatcher.flush(timeout)  # what a connection's COMMIT handed to the outbox thread
    worker = inprocess.start(broker, threads=worker_threads)
    while True:
        for queue in list(broker.queues):
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                broker.join(queue, timeout=int(remaining * 1000), fail_fast=True)
            except dramatiq.QueueJoinTimeout:
                raise TimeoutError(f"Queue {queue!r} still had messages after {timeout} s.") from None
        worker.join()
        if all(broker.queues[q].unfinished_tasks == 0 for q in broker.queues):
            return


def stop_workers() -> None:
    """Stop the in-process workers that :func:`drain` (or development's delivery on commit) started."""
    inprocess.stop()


# --- The test kit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Delivery:
    """To whom, for which transition, through which channel, by which notifier."""

    to: str
    name: str | None
    party: str
    channel: str
    model: str
    key: str
    trigger: str
    notifier: str

    def _heading(self) -> str:
        return f"{self.model} {self.key} {self.trigger!r} -> {self.party} <{self.to}> by {self.channel}"

    def _matches(self, to: str | None, exact: dict[str, str | None]) -> bool:
        return (to is None or self.to == to) and all(v is None or getattr(self, k) == v for k, v in exact.items())


@dataclass(frozen=True)
class Notification(_Delivery):
    """One notification the kit delivered: to whom, for which transition, through which channel, what."""

    subject: str
    text: str
    html: str

    def __str__(self) -> str:
        return f"{self._heading()}: {self.subject!r}"


@dataclass(frozen=True)
class Skipped(_Delivery):
    """One delivery the kit did not send, and why: an opt-out, or the notifier returned ``None``."""

    reason: str

    def __str__(self) -> str:
        return f"{self._heading()}: {self.reason}"


def _check_count(what: str, found: list[Any], count: int | None, to: str | None, match: dict[str, str],
                 listing: str) -> None:
    """Raise the kit's AssertionError unless ``found`` has ``count`` items (or, without ``count``, any)."""
    if (count is None and found) or (count is not None and len(found) == count):
        return
    wanted = ", ".join(f"{k}={v!r}" for k, v in {"to": to, **match}.items() if v is not None) or "anything"
    expected = f"exactly {count}" if count is not None else "at least one"
    raise AssertionError(f"Expected {expected} {what} matching {wanted}; found {len(found)}.\n{listing}")


class Kit:
    """Captures what an application's transitions would send, and delivers it on demand.

    Each test gets its own: a fresh StubBroker, a memory channel for every channel kind, and
    the jobs run synchronously in the test thread by :meth:`run`, on the connection the test's
    session committed on (so a test wrapped in an outer transaction and SAVEPOINTs works too).
    An actor's exception is raised in the test at once, with its traceback; nothing is retried.
    """

    def __init__(self, broker: StubBroker) -> None:
        self.broker = broker
        self.channel = MemoryChannel()
        self.sent: list[Notification] = []
        self._bind: Engine | Connection | None = None
        self._skipped_after = 0  # deliveries up to this id were forgotten by clear()

    # Delivering -----------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """How many fan-out and delivery messages wait to be run."""
        return sum(queue.qsize() for queue in self.broker.queues.values())

    def run(self) -> list[Notification]:
        """Run every queued fan-out and delivery, and what they enqueue; return what was sent now.

        What a message enqueues runs before the messages queued after it, so the notifications
        of each transition are sent, in order, before those of the next one.
        """
        before = len(self.channel.outbox)
        waiting = self._take()
        while waiting:
            message = waiting.pop(0)
            self._use_bind()
            actor = self.broker.get_actor(message.actor_name)
            actor.fn(*message.args, **message.kwargs)
            waiting[:0] = self._take()
        new = self._describe(self.channel.outbox[before:])
        self.sent.extend(new)
        return new

    def _take(self) -> list[Message[Any]]:
        """Every message queued now, removed from the queues."""
        taken = []
        for queue in self.broker.queues.values():
            while True:
                try:
                    data = queue.get_nowait()
                except Empty:
                    break
                queue.task_done()
                taken.append(Message.decode(data))
        return taken

    def _use_bind(self) -> None:
        if self._bind is not None and worker.runtime.engine is not self._bind:
            worker.runtime = worker.Runtime(worker.runtime.settings, engine=self._bind,
                                            channels=memory_channels(self.channel))

    def _describe(self, sent: list[Sent]) -> list[Notification]:
        if not sent:
            return []
        with worker.runtime.session() as session:
            keys = [s.key for s in sent]
            rows = {d.key: (d, t) for d, t in session.execute(
                select(Delivery, TransitionRecord).join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
                .where(Delivery.key.in_(keys)))}
        notifications = []
        for s in sent:
            delivery, record = rows[s.key]
            message = s.message
            notifications.append(Notification(
                to=s.to.address, name=s.to.name, party=delivery.party, channel=delivery.channel, model=record.model,
                key=record.key, trigger=record.trigger, notifier=delivery.notifier,
                subject=str(getattr(message, "subject", "")), text=str(getattr(message, "text", "") or ""),
                html=str(getattr(message, "html", "") or "")))
        return notifications

    # Asserting ------------------------------------------------------------------------------

    def notifications(self, to: str | None = None, *, trigger: str | None = None, model: str | None = None,
                      party: str | None = None, channel: str | None = None, subject: str | None = None,
                      body: str | None = None) -> list[Notification]:
        """What was sent, filtered: ``subject`` and ``body`` match as substrings, the rest exactly.

        Queued jobs are run first, so a test can fire, commit and assert.
        """
        self.run()
        exact = {"trigger": trigger, "model": model, "party": party, "channel": channel}
        return [n for n in self.sent if n._matches(to, exact) and (subject is None or subject in n.subject)
                and (body is None or body in n.text or body in n.html)]

    def assert_notified(self, to: str | None = None, *, count: int | None = None, **match: str) -> list[Notification]:
        """Assert that notifications matching ``to`` and ``match`` were sent (exactly ``count``, if given).

        The failure message lists everything that was sent instead.
        """
        found = self.notifications(to, **match)
        _check_count("notification(s)", found, count, to, match, self.report())
        return found

    def skipped(self, to: str | None = None, *, trigger: str | None = None, model: str | None = None,
                party: str | None = None, channel: str | None = None, reason: str | None = None) -> list[Skipped]:
        """The deliveries recorded as ``skipped``, filtered: ``reason`` matches as a substring, the rest exactly.

        Queued jobs are run first. A recipient's opt-out is skipped at fan-out with its reason
        (``"Opted out of email."``); a notifier that returned ``None`` is skipped at delivery.
        """
        self.run()
        if self._bind is None:  # nothing was ever committed, so nothing was planned
            return []
        self._use_bind()
        query = (select(Delivery, TransitionRecord)
                 .join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
                 .where(Delivery.status == Status.SKIPPED, Delivery.id > self._skipped_after).order_by(Delivery.id))
        with worker.runtime.session() as session:
            found = [Skipped(to=d.address, name=d.name, party=d.party, channel=d.channel, model=t.model, key=t.key,
                             trigger=t.trigger, notifier=d.notifier, reason=d.last_error or "")
                     for d, t in session.execute(query)]
        exact = {"trigger": trigger, "model": model, "party": party, "channel": channel}
        return [s for s in found if s._matches(to, exact) and (reason is None or reason in s.reason)]

    def assert_skipped(self, to: str | None = None, *, count: int | None = None, **match: str) -> list[Skipped]:
        """Assert that deliveries matching ``to`` and ``match`` were skipped (exactly ``count``, if given).

        The failure message lists everything that was skipped instead, with the reasons.
        """
        found = self.skipped(to, **match)
        if (count is None and not found) or (count is not None and len(found) != count):
            everything = self.skipped()
            listed = "\n".join(f"  {s}" for s in everything) if everything else "  nothing"
            _check_count("skip(s)", found, count, to, match, f"Skipped:\n{listed}")
        return found

    def assert_nothing_sent(self) -> None:
        """Assert that nothing was sent (and nothing is waiting to be)."""
        self.run()
        if self.sent:
            raise AssertionError(f"Expected no notification.\n{self.report()}")

    def assert_sent_count(self, count: int) -> None:
        """Assert that exactly ``count`` notifications were sent in all."""
        self.run()
        if len(self.sent) != count:
            raise AssertionError(f"Expected {count} notification(s) in all; {len(self.sent)} were sent.\n"
                                 f"{self.report()}")

    def report(self) -> str:
        """What was sent, one line each, for failure messages."""
        if not self.sent:
            return "Sent: nothing."
        return "Sent:\n" + "\n".join(f"  {n}" for n in self.sent)

    def clear(self) -> None:
        """Deliver what is queued, then forget everything sent (and skipped) so far."""
        self.run()
        self.sent.clear()
        self.channel.clear()
        if self._bind is not None:
            self._use_bind()
            with worker.runtime.session() as session:
                self._skipped_after = session.scalar(select(func.max(Delivery.id))) or 0


def memory_channels(channel: MemoryChannel) -> dict[str, Channel]:
    """``channel`` for every channel kind a registered notifier uses (and ``email``)."""
    return {kind: channel for kind in {"email", *registry.channel_kinds()}}


@contextmanager
def kit() -> Iterator[Kit]:
    """A :class:`Kit` on a fresh StubBroker; the previous configuration is restored on exit."""
    import jobs

    previous_runtime, previous_broker = worker.runtime, jobs.broker
    broker = StubBroker()
    broker.emit_after("process_boot")
    new = Kit(broker)
    jobs.configure(broker=broker, channels=memory_channels(new.channel), sweep_interval=0)

    def remember_bind(session: Session) -> None:
        new._bind = session.get_bind()

    event.listen(Session, "after_commit", remember_bind)
    try:
        with outbox.session_commits_suffice():  # the jobs run on the test's connection, in its transaction
            yield new
    finally:
        event.remove(Session, "after_commit", remember_bind)
        broker.flush_all()
        broker.close()
        jobs.configure(previous_runtime.settings, broker=previous_broker)
        worker.runtime = previous_runtime
