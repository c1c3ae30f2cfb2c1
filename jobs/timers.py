"""Timeouts: a row left in a state for a declared time fires a trigger, from durable timer rows.

The fan-out of a transition (:mod:`jobs.fanout`: once per committed transition, recovered by the
sweeper) writes one timer per timeout the state it entered declares, due at the transition's
time plus the timeout; the request writes nothing more. Each worker process's schedule runs
:func:`run` every ``due_interval`` seconds: it takes the due timers in batches (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so that processes take different ones), locks their rows, and for each
fires its trigger through the row's own workflow, or voids it with why: the row is gone, it had a
later transition (it left the state; coming back made a new timer), or the trigger was refused
(a human's transition won). The fired transition and the timer's mark commit together, so a timer
fires at most once; it is one row, so after downtime it fires once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Row,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import (
    ConcurrentTransition,
    Id,
    InvalidTransition,
    TidingsBase,
    TransitionRecord,
    load_subjects,
    stateful_models,
    utcnow,
)
from workflow.clock import aware

from . import notifier_modules
from .runtime import current

__all__ = ["ACTOR", "BATCH", "Fired", "Timer", "TimerStatus", "fire_due", "run", "schedule"]

_log = logging.getLogger(__name__)

#: The actor a timeout's transition is recorded with.
ACTOR = "tidings:timeout"
#: The most timers one transaction takes.
BATCH = 500
#: The longest reason a void timer keeps: its column's length, and where a longer one is cut.
_REASON_LENGTH = 500


class TimerStatus:
    """The statuses of a timer: pending -> fired, or void (with the reason)."""

    PENDING = "pending"
    FIRED = "fired"
    VOID = "void"


class Timer(TidingsBase):
    """A timeout scheduled by a transition: fire ``trigger`` on the row at ``due_at``, unless it moved on."""

    __tablename__ = "tidings_timers"
    __table_args__ = (
        UniqueConstraint("transition_id", "trigger", name="uq_tidings_timers_transition_trigger"),
        # "Pending and due, oldest first": only pending timers are in it, so it stays small.
        Index("ix_tidings_timers_due", "due_at", "id", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    transition_id: Mapped[int] = mapped_column(Id, ForeignKey("tidings_transitions.id"))
    model: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(128))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=TimerStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(_REASON_LENGTH))
    fired_transition_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tidings_transitions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<Timer {self.id} {self.model} {self.key} {self.trigger} at {self.due_at}: {self.status}>"


_table = cast(Table, Timer.__table__)
_Due = Row[Any, Any, Any, Any, Any]  # a due timer as taken: id, transition_id, model, key, trigger
_transitions = cast(Table, TransitionRecord.__table__)
_DUE = (select(_table.c.id, _table.c.transition_id, _table.c.model, _table.c.key, _table.c.trigger)
        .where(_table.c.status == TimerStatus.PENDING, _table.c.due_at <= bindparam("due_now"),
               _table.c.model.in_(bindparam("models", expanding=True)))
        .order_by(_table.c.due_at, _table.c.id).limit(bindparam("most")).with_for_update(skip_locked=True))
_ONE = (select(_table.c.id, _table.c.transition_id, _table.c.model, _table.c.key, _table.c.trigger)
        .where(_table.c.id == bindparam("timer_id"), _table.c.status == TimerStatus.PENDING)
        .with_for_update(skip_locked=True))
_MARK = (update(_table).where(_table.c.id == bindparam("timer_id"))
         .values(status=bindparam("mark_status"), reason=bindparam("mark_reason"),
                 fired_transition_id=bindparam("mark_fired"), updated_at=bindparam("mark_at")))


@dataclass
class Fired:
    """What a run did: the timers fired (timer id -> the transition it made) and voided (timer id -> why)."""

    fired: dict[int, int] = field(default_factory=dict)
    void: dict[int, str] = field(default_factory=dict)


def schedule(connection: Connection, records: Iterable[TransitionRecord]) -> int:
    """Write the timers of the timeouts declared on each transition's destination state; how many were due.

    A timer already written (same transition and trigger) is left as it is, so a transition
    planned again (held back, then retried) writes nothing new. A model not imported here writes
    none: its transitions are held back (:mod:`jobs.holding`) until a worker that has it plans them.
    """
    models = stateful_models()
    now = utcnow()
    rows = []
    for record in records:
        model = models.get(record.model)
        for trigger, timeout in model.workflow.timeouts.get(record.dest, ()) if model is not None else ():
            rows.append({"transition_id": record.id, "model": record.model, "key": record.key, "trigger": trigger,
                         "due_at": aware(record.created_at) + timeout, "status": TimerStatus.PENDING,
                         "created_at": now, "updated_at": now})
    if rows:
        _insert_new(connection, rows)
    return len(rows)


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert the timers not written yet (``ON CONFLICT DO NOTHING`` where the database has it)."""
    name = connection.dialect.name
    if name == "postgresql":
        statement: Any = postgresql.insert(_table).on_conflict_do_nothing(index_elements=["transition_id", "trigger"])
    elif name == "sqlite":
        statement = sqlite.insert(_table).on_conflict_do_nothing()
    else:
        written = {(transition_id, trigger) for transition_id, trigger in connection.execute(
            select(_table.c.transition_id, _table.c.trigger).where(
                _table.c.transition_id.in_({row["transition_id"] for row in rows})))}
        rows = [row for row in rows if (row["transition_id"], row["trigger"]) not in written]
        statement = insert(_table)
    if rows:
        connection.execute(statement, rows)


def run() -> Fired:
    """Fire what is due now, in a session of its own: the ``timers`` task of each worker's schedule."""
    notifier_modules.load()  # the application's models, whose workflows declare the timeouts
    with current().session() as session:
        return fire_due(session)


def fire_due(session: Session, *, batch: int = BATCH) -> Fired:
    """Fire (or void) every timer due now, ``batch`` at a time, each batch in one transaction.

    Only timers of models imported in this process are taken. The session's objects are expunged
    after each batch (a long run keeps no identity map growing). Raises what the database raises
    when even a timer on its own cannot be handled (the schedule runs it again at its next turn).
    """
    done = Fired()
    now = utcnow()  # fixed for the run, so that it ends
    models = sorted(stateful_models())  # those whose timeouts were since removed too: fired or void, never stuck
    while models:
        if session.get_bind().dialect.name == "sqlite":  # no row locks: take the write lock first (see sweeper)
            session.execute(update(_table).where(false()).values(status=_table.c.status))
        taken = session.execute(_DUE, {"due_now": now, "models": models, "most": batch}).all()
        if not taken:
            session.commit()
            break
        try:
            marks = _fire(session, taken)
            _mark(session, marks, done)
        except DBAPIError:  # a deadlock, a serialisation failure...: each on its own, in its own transaction
            session.rollback()
            _log.warning("Timers %s could not be fired together; firing each on its own.", [t.id for t in taken],
                         exc_info=True)
            for timer in taken:
                _alone(session, timer.id, done)
        session.expunge_all()
        if len(taken) < batch:
            break
    if done.fired or done.void:
        _log.info("Timers: %d fired, %d void.", len(done.fired), len(done.void))
    return done


def _alone(session: Session, timer_id: int, done: Fired) -> None:
    """Fire or void one timer in a transaction of its own (if it is still pending and nobody holds it).

    A database error of its own (what the trigger's callbacks wrote breaks a constraint...) voids it
    with the reason, so that it does not hold back the timers behind it at every turn; one of the
    database itself (``OperationalError``: connection, deadlock, lock) is raised, for the next turn.
    """
    try:
        taken = session.execute(_ONE, {"timer_id": timer_id}).all()
        if taken:
            _mark(session, _fire(session, taken), done)
        else:
            session.commit()
    except OperationalError:
        session.rollback()
        raise
    except DBAPIError as error:
        session.rollback()
        _log.error("Timer %s: firing it failed in the database; the timer is void.", timer_id, exc_info=True)
        reason = f"The trigger failed in the database: {type(error.orig).__name__}: {error.orig}"
        _mark(session, [{"timer_id": timer_id, "mark_status": TimerStatus.VOID, "mark_reason": reason[:_REASON_LENGTH],
                         "mark_fired": None, "mark_at": utcnow()}], done)


def _mark(session: Session, marks: list[dict[str, Any]], done: Fired) -> None:
    """Write the timers' outcomes, and commit them with the transitions they fired."""
    session.execute(_MARK, marks)
    session.commit()
    for mark in marks:
        if mark["mark_status"] == TimerStatus.FIRED:
            done.fired[mark["timer_id"]] = mark["mark_fired"]
        else:
            done.void[mark["timer_id"]] = mark["mark_reason"]


def _fire(session: Session, taken: Sequence[_Due]) -> list[dict[str, Any]]:
    """Fire each taken timer's trigger on its row, locked, or say why not; the marks to write."""
    records = [TransitionRecord(id=t.transition_id, model=t.model, key=t.key) for t in taken]
    rows = load_subjects(session, records, lock=True)  # a human's transition now waits for this one's commit
    left = _left(session, taken)
    fired_here: dict[tuple[str, str], tuple[int, str, str]] = {}  # by another timer of this batch
    now = utcnow()
    marks = []
    for timer in taken:
        row, moved_on = rows.get(timer.transition_id), left.get(timer.id) or fired_here.get((timer.model, timer.key))
        fired, reason = None, None
        if row is None:
            reason = f"{timer.model} {timer.key} no longer exists."
        elif moved_on is not None:
            reason = (f"{timer.model} {timer.key} left the state by transition {moved_on[0]} ({moved_on[1]!r} to "
                      f"{moved_on[2]!r}) before the timeout.")
        else:
            try:
                record = row.fire(timer.trigger, actor=ACTOR, timer=timer.id)
            except (InvalidTransition, ConcurrentTransition) as refused:  # the row moved on, or a condition said no
                reason = str(refused)
            except DBAPIError:
                raise
            except Exception as error:  # a callback of the application failed: said, and never retried in a loop
                _log.error("Timer %s: %s.%s raised; the timer is void.", timer.id, timer.model, timer.trigger,
                           exc_info=True)
                reason = f"The trigger raised {type(error).__name__}: {error}"
            else:
                fired = record.id
                fired_here[(timer.model, timer.key)] = (record.id, record.trigger, record.dest)
        marks.append({"timer_id": timer.id, "mark_status": TimerStatus.VOID if fired is None else TimerStatus.FIRED,
                      "mark_reason": None if reason is None else reason[:_REASON_LENGTH], "mark_fired": fired,
                      "mark_at": now})
    return marks


def _left(session: Session, taken: Sequence[_Due]) -> dict[int, tuple[int, str, str]]:
    """For each timer whose row had a transition after the timer's own: the first such (id, trigger, dest).

    A subquery per timer, so that each is one probe of the index on (model, key).
    """
    later = _transitions.alias("later")
    next_id = (select(func.min(later.c.id)).where(later.c.model == _table.c.model, later.c.key == _table.c.key,
                                                   later.c.id > _table.c.transition_id).scalar_subquery())
    moved = {timer_id: id_ for timer_id, id_ in session.execute(
        select(_table.c.id, next_id).where(_table.c.id.in_([t.id for t in taken]))) if id_ is not None}
    if not moved:
        return {}
    found = session.execute(select(_transitions.c.id, _transitions.c.trigger, _transitions.c.dest)
                            .where(_transitions.c.id.in_(set(moved.values()))))
    by_id = {id_: (id_, trigger, dest) for id_, trigger, dest in found}
    return {timer_id: by_id[id_] for timer_id, id_ in moved.items()}

