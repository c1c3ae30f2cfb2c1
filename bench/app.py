"""The application every benchmark uses: a task whose watchers are told when it is finished.

``PlainTask`` is the same table without Tidings, for baselines. ``TimedTask`` flips between
two states that each time out after a week (``bench.timers``); ``UntimedTask`` is the same
without the timeouts. The watchers are rows of their
own table, as an application keeps them; a request never loads them, the fan-out does. Worker
processes load this module (``dramatiq jobs bench.app``) to know the model and its notifier.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from notifiers import Digest, Email, Notifier, on
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from workflow import Stateful, Workflow


class Base(DeclarativeBase):
    pass


class PlainTask(Base):
    __tablename__ = "bench_plain_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(64), index=True)  # as Stateful declares it


class HandTask(Base):
    """The task of the hand-written alternative (``bench/handwritten.py``): a state column, its watchers."""

    __tablename__ = "bench_hand_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(64), index=True)
    watchers: Mapped[list[HandWatcher]] = relationship()


class HandWatcher(Base):
    __tablename__ = "bench_hand_watchers"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("bench_hand_tasks.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))


class Watcher(Base):
    __tablename__ = "bench_watchers"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("bench_tasks.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))


class Task(Stateful, Base):
    __tablename__ = "bench_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    watchers: Mapped[list[Watcher]] = relationship()
    workflow = Workflow(states=["open", "done"], initial="open",
                        transitions=[["finish", "open", "done"], ["reopen", "done", "open"]],
                        parties={"watchers": "watchers"}, name="BenchTask")


class TaskNotifier(Notifier):
    @on(Task, "finish", to="watchers")
    @on(Task, "reopen", to="watchers")
    def changed(self, event: Any, recipient: Any) -> Email:
        return Email(subject=f"Task {event.key} finished", text=f"Hello, task {event.key} is finished.")


def _flipping(name: str, timed: bool) -> Workflow:
    """Rows started in 'a' flip between 'a' and 'b'; with ``timed``, either lapses after a week."""
    lapse = [{"trigger": "lapse", "source": ["a", "b"], "dest": "lapsed", "timeout": dt.timedelta(days=7)}]
    return Workflow(states=["new", "a", "b", "lapsed"], initial="new", name=name,
                    transitions=[["start", "new", "a"], ["flip", "a", "b"], ["flop", "b", "a"], *(lapse if timed else [])])


class TimedTask(Stateful, Base):
    __tablename__ = "bench_timed_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = _flipping("BenchTimed", timed=True)


class UntimedTask(Stateful, Base):
    __tablename__ = "bench_untimed_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = _flipping("BenchUntimed", timed=False)


def mail_text(number: int) -> tuple[str, str]:
    """The subject and body the bare actor sends for task ``number``: the same as the notifier's."""
    return f"Task {number} finished", f"Hello, task {number} is finished."


def watchers(count: int, first: int = 0) -> list[Watcher]:
    """``count`` watchers, w<first>@example.com onwards."""
    return [Watcher(email=f"w{n}@example.com") for n in range(first, first + count)]


class DigestWatcher(Base):
    __tablename__ = "bench_digest_watchers"
    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("bench_digest_issues.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))


class DigestIssue(Stateful, Base):
    """An issue whose watchers get its comments in hourly digests (``bench.digests``)."""

    __tablename__ = "bench_digest_issues"
    id: Mapped[int] = mapped_column(primary_key=True)
    watchers: Mapped[list[DigestWatcher]] = relationship()
    workflow = Workflow(states=["open"], initial="open", transitions=[["comment", "open", "open"]],
                        parties={"watchers": "watchers"}, name="BenchDigestIssue")


def _owner(row: object) -> str:
    return "owner@example.com"


def _told(name: str) -> Workflow:
    """Rows flip between 'a' and 'b'; each flip is told to one owner (in a digest or not: see the notifier)."""
    return Workflow(states=["a", "b"], initial="a", name=name, transitions=[["flip", "a", "b"], ["flop", "b", "a"]],
                    parties={"owner": _owner})


class DigestedTask(Stateful, Base):
    __tablename__ = "bench_digested_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = _told("BenchDigested")


class InstantTask(Stateful, Base):
    __tablename__ = "bench_instant_tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    workflow = _told("BenchInstant")


HOUR = dt.timedelta(hours=1)


class DigestNotifier(Notifier):
    @on(DigestIssue, "comment", to="watchers", digest=Digest(window=HOUR))
    def commented(self, event: Any, recipient: Any) -> Email:
        return Email(subject=f"Issue {event.key}: a comment", text=f"Comment {event.transition_id}.")

    @on(DigestedTask, "flip", to="owner", digest=Digest(window=HOUR))
    @on(DigestedTask, "flop", to="owner", digest=Digest(window=HOUR))
    def digested(self, event: Any, recipient: Any) -> Email:
        return Email(subject=f"Task {event.key} flipped", text="Flipped.")

    @on(InstantTask, "flip", to="owner")
    @on(InstantTask, "flop", to="owner")
    def instant(self, event: Any, recipient: Any) -> Email:
        return Email(subject=f"Task {event.key} flipped", text="Flipped.")
