"""Retention: pruning what is done (final deliveries, read inbox items and, if asked, fully delivered transitions).

Each kind is deleted in batches of ``prune_batch`` rows, one short transaction per batch, by
primary key. On PostgreSQL a batch is selected ``FOR UPDATE SKIP LOCKED``, so a row a worker or a
command holds (a re-send resetting a delivery) is left for the next turn instead of waited on;
the ``DELETE`` repeats the conditions, so a row that changed since is kept. Nothing takes a table
lock. A delivery is deleted only when final (sent, failed, dead, skipped) and last changed before
the limit; a transition only when it was fanned out, every delivery of it is final and older than
the limit, and no delivery of its record is still to be sent nor any timer of it pending (a later
transition is what supersession and timeouts read, so it stays while anything of that record waits).
A digest is deleted once done (sent, failed, dead, empty), last changed before the limit and with
no delivery left pointing at it (its events' rows went first: the foreign key ``digest_id``); a
shared throttle's row once its window ended before the limit.
"""

from __future__ import annotations

import dataclasses
import time
import datetime as dt
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

from notifiers.inbox import InboxItem
from sqlalchemy import ColumnElement, Connection, Engine, Select, Transaction, Table, and_, delete, exists, func, select, update
from workflow import TransitionRecord, utcnow

from .config import Settings
from .delivery_log import Delivery, Status
from .digest_log import DigestRow, DigestStatus
from .runtime import current
from .throttle_log import ThrottleRow
from .timers import Timer, TimerStatus

__all__ = ["DONE_DIGESTS", "FINAL", "Pruned", "Turns", "batches", "prune"]

#: The statuses nothing changes any more.
FINAL = (Status.SENT, Status.FAILED, Status.DEAD, Status.SKIPPED)
_deliveries = cast(Table, Delivery.__table__)
_transitions = cast(Table, TransitionRecord.__table__)
_timers = cast(Table, Timer.__table__)
_inbox = cast(Table, InboxItem.__table__)
_digests = cast(Table, DigestRow.__table__)
_throttles = cast(Table, ThrottleRow.__table__)
#: The statuses of a digest nothing sends or adds to any more.
DONE_DIGESTS = (DigestStatus.SENT, DigestStatus.FAILED, DigestStatus.DEAD, DigestStatus.EMPTY)


@dataclasses.dataclass
class Pruned:
    """How many rows of each kind a prune deleted (or, dry, would delete)."""

    deliveries: int = 0
    transitions: int = 0
    inbox: int = 0
    digests: int = 0
    throttles: int = 0


def _final_deliveries(cutoff: dt.datetime) -> ColumnElement[bool]:
    return and_(_deliveries.c.status.in_(FINAL), _deliveries.c.updated_at < cutoff)


def _done_transitions(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Transitions older than ``cutoff`` with nothing of theirs, or of their record, still to happen."""
    mine = _deliveries.c.transition_id == _transitions.c.id
    later = _deliveries.alias("waiting")
    record = _transitions.alias("same_record")
    waiting_on_record = (select(later.c.id).join(record, record.c.id == later.c.transition_id)
                         .where(record.c.model == _transitions.c.model, record.c.key == _transitions.c.key,
                                later.c.status.not_in(FINAL)))
    timer_waits = (select(_timers.c.id).where(_timers.c.status == TimerStatus.PENDING,
                                              _timers.c.model == _transitions.c.model,
                                              _timers.c.key == _transitions.c.key))
    return and_(_transitions.c.created_at < cutoff, _transitions.c.fanned_out_at.is_not(None),
                ~exists(select(_deliveries.c.id).where(mine, ~_final_deliveries(cutoff))),
                ~exists(waiting_on_record), ~exists(timer_waits))


def _done_digests(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Digests done before ``cutoff`` whose events' delivery rows are all gone."""
    member = select(_deliveries.c.id).where(_deliveries.c.digest_id == _digests.c.id)
    return and_(_digests.c.status.in_(DONE_DIGESTS), _digests.c.updated_at < cutoff, ~exists(member))


def _past_throttles(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Shared throttles' rows of windows that ended before ``cutoff``: no fan-out counts on them any more."""
    return _throttles.c.window_end < cutoff


@contextlib.contextmanager
def _transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A transaction of its own on an engine; on the caller's connection, a SAVEPOINT in its transaction."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
        return
    opened: Transaction = bind.begin_nested() if bind.in_transaction() else bind.begin()
    with opened:
        yield bind


def _batch(bind: Engine | Connection, table: Table, condition: ColumnElement[bool], most: int) -> Select[tuple[Any]]:
    """The ids of one batch; on PostgreSQL the rows are locked, skipping those someone holds."""
    query = select(table.c.id).where(condition).order_by(table.c.id).limit(most)
    if bind.dialect.name == "postgresql":
        query = query.with_for_update(of=table, skip_locked=True)
    return query


def _delete(bind: Engine | Connection, table: Table, condition: ColumnElement[bool], most: int) -> Iterator[int]:
    """Delete ``table``'s rows matching ``condition``, a batch per transaction; yields each batch's count."""
    while True:
        with _transaction(bind) as connection:
            ids = connection.scalars(_batch(bind, table, condition, most)).all()
            if table is _transitions and ids:
                _release(connection, ids)
            deleted = connection.execute(delete(table).where(table.c.id.in_(ids), condition)).rowcount if ids else 0
        if deleted:
            yield deleted  # committed: a caller that stops here loses nothing
        if len(ids) < most:
            return


def _release(connection: Connection, ids: Sequence[Any]) -> None:
    """What points at transitions about to go: their final deliveries and their fired or void timers.

    Final only: a delivery a re-send made pending since stays, and so does its transition (the
    ``DELETE`` repeats the conditions).
    """
    connection.execute(delete(_deliveries).where(_deliveries.c.transition_id.in_(ids),
                                                 _deliveries.c.status.in_(FINAL)))
    connection.execute(delete(_timers).where(_timers.c.transition_id.in_(ids)))
    connection.execute(update(_timers).where(_timers.c.fired_transition_id.in_(ids)).values(fired_transition_id=None))


def _count(bind: Engine | Connection, table: Table, condition: ColumnElement[bool]) -> int:
    with _transaction(bind) as connection:
        return int(connection.scalar(select(func.count()).select_from(table).where(condition)) or 0)


def _kinds(settings: Settings) -> Iterator[tuple[str, Table, ColumnElement[bool]]]:
    """Each kind kept for a limited time: its name, its table, and which of its rows are past the limit."""
    now = utcnow()
    # Digests and throttle rows go by the deliveries' limit, or the transitions' when deliveries stay
    # until their transitions go; after those, so a digest whose members went in this prune goes too.
    told = settings.keep_deliveries_days or settings.keep_transitions_days
    limits = (("deliveries", _deliveries, settings.keep_deliveries_days, _final_deliveries),
              ("transitions", _transitions, settings.keep_transitions_days, _done_transitions),
              ("inbox", _inbox, settings.keep_read_inbox_days, _read_inbox),
              ("digests", _digests, told, _done_digests),
              ("throttles", _throttles, told, _past_throttles))
    for name, table, days, condition_of in limits:
        if days > 0:
            yield name, table, condition_of(now - dt.timedelta(days=days))


def _read_inbox(cutoff: dt.datetime) -> ColumnElement[bool]:
    return and_(_inbox.c.read_at.is_not(None), _inbox.c.read_at < cutoff)


def batches(bind: Engine | Connection, settings: Settings) -> Iterator[tuple[str, int]]:
    """Prune one batch per step: yields the kind and the rows deleted after each transaction.

    After each batch it pauses ``prune_pause`` times as long as the batch took, so a prune leaves
    the database to the workers that much of the time (and longer when the database is busy,
    since its batches then take longer).
    """
    for name, table, condition in _kinds(settings):
        started = time.perf_counter()
        for deleted in _delete(bind, table, condition, settings.prune_batch):
            time.sleep((time.perf_counter() - started) * settings.prune_pause)  # real time: a pause, not the clock
            yield name, deleted
            started = time.perf_counter()


def prune(bind: Engine | Connection, settings: Settings, *, dry_run: bool = False) -> Pruned:
    """Delete what the retention settings no longer keep; ``dry_run``: count it, delete nothing."""
    pruned = Pruned()
    if dry_run:
        for name, table, condition in _kinds(settings):
            setattr(pruned, name, _count(bind, table, condition))
        return pruned
    for name, deleted in batches(bind, settings):
        setattr(pruned, name, getattr(pruned, name) + deleted)
    return pruned


class Turns:
    """The ``prune`` task of each worker's schedule: at most ``TURN_SECONDS`` of batches per turn.

    The schedule runs its tasks one after the other, so a long prune would hold back the sweep,
    the due deliveries and the timeouts: a turn stops after its time, and while rows are left the
    next turn comes within a second instead of after ``prune_interval``.
    """

    #: The most seconds of batches one turn runs (checked between batches).
    TURN_SECONDS = 1.0

    def __init__(self) -> None:
        self.left = False

    def run(self) -> Pruned:
        """Prune with the process's engine and settings until done or out of time."""
        runtime, pruned = current(), Pruned()
        ends = time.monotonic() + self.TURN_SECONDS  # a work budget, not a time the clock controls
        self.left = False
        for name, deleted in batches(runtime.engine, runtime.settings):
            setattr(pruned, name, getattr(pruned, name) + deleted)
            if time.monotonic() >= ends:
                self.left = True
                break
        return pruned

    def interval(self) -> float:
        """Seconds to the next turn: ``prune_interval`` (0: off), or at most 1 while rows are left."""
        every = current().settings.prune_interval
        return min(every, 1.0) if self.left else every
