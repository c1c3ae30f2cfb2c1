"""Which transitions a fan-out message plans, on PostgreSQL: its own and the oldest others waiting, locked.

Under a backlog a message takes up to ``waiting`` transitions besides its own, each locked with
``FOR UPDATE SKIP LOCKED`` so that concurrent fan-outs never take the same one; and this process
remembers the last transitions it planned, so a message arriving after its transition was
planned with another batch costs no read.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Sequence
from typing import cast

from notifiers import registry
from sqlalchemy import BigInteger, Connection, String, Table, all_, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from .claims import single_statement

__all__ = ["remember", "take"]

_transitions = cast(Table, TransitionRecord.__table__)
# The transitions of a message, and the oldest others waiting to be fanned out (each locked, and
# skipped when another fan-out holds it): two index scans. The waiting ones are ordered as the
# index on (fanned_out_at, id) holds them, so it serves them in order and stops at the limit:
# ORDER BY id alone would sort the whole backlog (IS NULL is no equality to the planner), and no
# ORDER BY may get a sequential scan through every row fanned out already.
# Every list goes as one array (= ANY): one statement text however many ids or models, which neither
# SQLAlchemy nor psycopg renders again per count.
_OWN_STATE = select(_transitions.c.id, _transitions.c.fanned_out_at).where(
    _transitions.c.id == any_(bindparam("own_ids", type_=postgresql.ARRAY(BigInteger))))
_OWN = bindparam("own", type_=postgresql.ARRAY(BigInteger))
_MODELS = bindparam("models", type_=postgresql.ARRAY(String()))
_WAITING = (select(_transitions.c.id)
            .where(_transitions.c.fanned_out_at.is_(None), _transitions.c.model == any_(_MODELS),
                   _transitions.c.id != all_(_OWN),
                   _transitions.c.retried_at.is_(None))  # one the sweeper had to resend may fail: not in others' batches
            .order_by(_transitions.c.fanned_out_at, _transitions.c.id)
            .limit(bindparam("most")).with_for_update(skip_locked=True))
_TAKE = (select(_transitions)
         .where(_transitions.c.id == any_(func.array_cat(_OWN, func.array(_WAITING.scalar_subquery()))))
         .with_for_update(skip_locked=True))


class _Recent:
    """The last ``size`` transition ids this process planned, for messages that arrive after their transition was."""

    def __init__(self, size: int = 20_000) -> None:
        self._ids: collections.OrderedDict[tuple[object, int], None] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, transition_id: object) -> bool:
        return transition_id in self._ids

    def update(self, transition_ids: Iterable[tuple[object, int]]) -> None:
        with self._lock:
            self._ids.update(dict.fromkeys(transition_ids))
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)


_planned_here = _Recent()


def remember(session: Session, transition_ids: Iterable[int]) -> None:
    """Note that this process planned ``transition_ids`` (on the database of ``session``): see :func:`take`."""
    _planned_here.update((_database(session), i) for i in transition_ids)


def _database(session: Session) -> object:
    """Which database ``session`` works on (ids are unique within one)."""
    bind = session.get_bind()
    return bind.engine.url if isinstance(bind, Connection) else bind.url


def take(session: Session, transition_ids: Sequence[int], waiting: int,
          recall: bool) -> tuple[dict[int, TransitionRecord], list[int]]:
    """The transitions asked for and up to ``waiting`` others, locked; and those asked for that do not exist.

    Under a backlog, a message's transitions were often planned already by a message before
    it. If by this process (and ``recall``), nothing is read; else one read, in a transaction of
    its own, tells.
    """
    database = _database(session)
    if recall and all((database, i) in _planned_here for i in transition_ids):  # planned by this process
        return {}, []
    single_statement(session)
    known = {i: at for i, at in session.connection().execute(_OWN_STATE, {"own_ids": list(transition_ids)})}
    session.commit()
    missing = [i for i in transition_ids if i not in known]
    todo = [i for i, fanned_out_at in known.items() if fanned_out_at is None]
    if not todo:
        return {}, missing
    rows = session.connection().execute(_TAKE, {"own": todo, "models": sorted(registry.models()), "most": waiting})
    taken = (TransitionRecord(**row) for row in rows.mappings())
    return {record.id: record for record in taken if record.fanned_out_at is None}, missing
