"""The test kit: capture and assert notifications (:func:`kit`), or drain an in-process worker.

The ``tidings`` pytest fixture (:mod:`tidings_pytest`, registered on install) wraps :func:`kit`;
:func:`drain` and :func:`stop_workers` come from :mod:`jobs.inprocess`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any, TypeVar

from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from notifiers import Channel, MemoryChannel, SMSChannel, registry
from notifiers.channels import Sent
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord, clock, utcnow

from . import delivery, outbox, runtime
from .delivery_log import Delivery, Status
from .digest_kit import DigestAssertions, Digested, described
from .captured import Failed, Notification, Scheduled, Skipped, aware, check_count, fields_of, listing
from .inprocess import drain, stop_workers
from .timers import Timer, TimerStatus

__all__ = ["Digested", "Failed", "Kit", "Notification", "Scheduled", "Skipped", "drain", "kit", "memory_channels", "stop_workers"]

_R = TypeVar("_R", Skipped, Failed)


class Kit(DigestAssertions):
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
        self._forgotten_up_to = 0  # deliveries up to this id were forgotten by clear()

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

    def advance(self, delta: dt.timedelta | None = None, **units: float) -> list[Notification]:
        """Move the clock forward (``advance(days=3)``), run what became due; return what was sent now.

        Queued jobs run first, at the old time; then each of the schedule's time tasks runs once
        at the new time, and what they enqueue runs too. Nothing sleeps: a test of "expires after
        7 days" takes milliseconds. The clock goes back to the real time when the test ends.

        Args:
            delta: how far; or ``units``, the arguments of :class:`datetime.timedelta`.
        """
        import jobs

        before = len(self.sent)
        self.run()
        clock.advance((delta or dt.timedelta(0)) + dt.timedelta(**units))
        for task in jobs.due_work if self._bind is not None else ():  # nothing committed: nothing is due
            self._use_bind()
            sent_before = len(self.channel.outbox)
            task.run()  # a task may send itself (digests)
            self.sent.extend(self._describe(self.channel.outbox[sent_before:]))
            self.run()
        return self.sent[before:]

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
        if self._bind is not None and runtime.current().engine is not self._bind:
            runtime.install(runtime.Runtime(runtime.current().settings, engine=self._bind,
                                            channels=memory_channels(self.channel)))

    def _session(self) -> Any:
        self._use_bind()
        return runtime.current().session()

    def _describe(self, sent: list[Sent]) -> list[Notification]:
        with runtime.current().session() as session:
            return described(session, sent) if sent else []

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
        __tracebackhide__ = True
        found = self.notifications(to, **match)
        check_count("notification(s)", found, count, to, match, self.report())
        return found

    def skipped(self, to: str | None = None, *, trigger: str | None = None, model: str | None = None,
                party: str | None = None, channel: str | None = None, reason: str | None = None) -> list[Skipped]:
        """The deliveries recorded as ``skipped``, filtered: ``reason`` matches as a substring, the rest exactly.

        Queued jobs are run first. A recipient's opt-out is skipped at fan-out with its reason
        (``"Opted out of email."``); a notifier that returned ``None`` is skipped at delivery.
        """
        exact = {"trigger": trigger, "model": model, "party": party, "channel": channel}
        return [s for s in self._recorded(Status.SKIPPED, Skipped) if s._matches_reason(to, exact, reason)]

    def failed(self, to: str | None = None, *, trigger: str | None = None, model: str | None = None,
               party: str | None = None, channel: str | None = None, reason: str | None = None) -> list[Failed]:
        """The deliveries recorded as ``failed``, filtered as :meth:`skipped` is.

        Queued jobs are run first. What a recipient's data or a channel fails is recorded, as in
        production (a party that gave a malformed address, a channel that refused it); a message
        that cannot be built (a template, what a notifier returned) raises in the test instead.
        """
        exact = {"trigger": trigger, "model": model, "party": party, "channel": channel}
        return [f for f in self._recorded(Status.FAILED, Failed) if f._matches_reason(to, exact, reason)]

    def scheduled(self, to: str | None = None, *, trigger: str | None = None, model: str | None = None,
                  party: str | None = None, channel: str | None = None) -> list[Scheduled]:
        """The deliveries pending and not due yet (by the clock), with their due times, soonest first.

        Queued jobs are run first. :meth:`advance` sends them once their time has come.
        """
        exact = {"trigger": trigger, "model": model, "party": party, "channel": channel}
        found = [Scheduled(**fields_of(d, t), due_at=aware(d.due_at or utcnow()))
                 for d, t in self._rows(Delivery.status == Status.SCHEDULED, Delivery.due_at > utcnow())]
        return sorted((s for s in found if s._matches(to, exact)), key=lambda s: s.due_at)

    def _recorded(self, status: str, kind: type[_R]) -> list[_R]:
        """Every delivery recorded with ``status`` since the last :meth:`clear`, as ``kind``, oldest first."""
        return [kind(**fields_of(d, t), reason=d.last_error or "") for d, t in self._rows(Delivery.status == status)]

    def _rows(self, *where: Any) -> list[tuple[Delivery, TransitionRecord]]:
        """The deliveries (and their transitions) matching ``where``, since the last :meth:`clear`, oldest first."""
        self.run()
        if self._bind is None:  # nothing was ever committed, so nothing was planned
            return []
        self._use_bind()
        query = (select(Delivery, TransitionRecord)
                 .join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
                 .where(*where, Delivery.id > self._forgotten_up_to).order_by(Delivery.id))
        with runtime.current().session() as session:
            return [(d, t) for d, t in session.execute(query)]

    def timers(self, model: str | None = None, key: object = None, *,
               status: str | None = TimerStatus.PENDING) -> list[Timer]:
        """The timeouts scheduled (``status`` pending unless told; ``None``: all), soonest first; queued jobs run first."""
        self.run()
        if self._bind is None:
            return []
        self._use_bind()
        wanted = ((Timer.model, model), (Timer.key, None if key is None else str(key)), (Timer.status, status))
        query = select(Timer).where(*(c == v for c, v in wanted if v is not None)).order_by(Timer.due_at, Timer.id)
        with runtime.current().session() as session:
            return list(session.scalars(query))

    def assert_skipped(self, to: str | None = None, *, count: int | None = None, **match: str) -> list[Skipped]:
        """Assert that deliveries matching ``to`` and ``match`` were skipped (exactly ``count``, if given).

        The failure message lists everything that was skipped instead, with the reasons.
        """
        __tracebackhide__ = True
        found = self.skipped(to, **match)
        check_count("skip(s)", found, count, to, match, listing("Skipped", self.skipped()))
        return found

    def assert_no_failures(self) -> None:
        """Assert that no delivery was recorded ``failed``; else list each with its reason."""
        __tracebackhide__ = True
        found = self.failed()
        if found:
            raise AssertionError(f"Expected no failed delivery; {len(found)} failed.\n{listing('Failed', found)}")

    def assert_nothing_sent(self) -> None:
        """Assert that nothing was sent (and nothing is waiting to be)."""
        __tracebackhide__ = True
        self.run()
        if self.sent:
            raise AssertionError(f"Expected no notification.\n{self.report()}")

    def assert_sent_count(self, count: int) -> None:
        """Assert that exactly ``count`` notifications were sent in all."""
        __tracebackhide__ = True
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
        """Deliver what is queued, then forget everything sent (skipped, failed) so far."""
        self.run()
        self.sent.clear()
        self.channel.clear()
        if self._bind is not None:
            self._use_bind()
            with runtime.current().session() as session:
                self._forgotten_up_to = session.scalar(select(func.max(Delivery.id))) or 0


def memory_channels(channel: MemoryChannel) -> dict[str, Channel]:
    """``channel`` for every channel kind a registered notifier uses (and ``email``); ``sms`` sends to phones."""
    return {kind: channel.sharing(address_kind=SMSChannel.address_kind) if kind == SMSChannel.kind else channel
            for kind in {"email", *registry.channel_kinds()}}


@contextmanager
def kit() -> Iterator[Kit]:
    """A :class:`Kit` on a fresh StubBroker; the previous configuration is restored on exit.

    Meanwhile a message that cannot be built (a missing template, one that does not compile, an
    undefined variable, a notifier returning something else than a message) is recorded
    ``failed``, as in production, and its error raised in the test, naming the template and line.
    What the test left queued runs when it ends, so such an error fails a test that asserted nothing.
    """
    import jobs

    previous_runtime, previous_broker = runtime.current(), jobs.broker
    broker = StubBroker()
    broker.emit_after("process_boot")
    new = Kit(broker)
    jobs.configure(broker=broker, channels=memory_channels(new.channel), sweep_interval=0)

    def remember_bind(session: Session) -> None:
        bind = session.get_bind()
        if not bind.dialect.is_async:  # an AsyncSession's: the jobs keep the configured database_url's engine
            new._bind = bind

    event.listen(Session, "after_commit", remember_bind)
    raising, delivery.raise_message_errors = delivery.raise_message_errors, True
    try:
        with outbox.session_commits_suffice():  # the jobs run on the test's connection, in its transaction
            yield new
            new.run()  # what the test left queued runs, as production would: a broken template fails it
    finally:
        clock.reset()
        delivery.raise_message_errors = raising
        event.remove(Session, "after_commit", remember_bind)
        broker.flush_all()
        broker.close()
        jobs.configure(previous_runtime.settings, broker=previous_broker)
        runtime.install(previous_runtime)
