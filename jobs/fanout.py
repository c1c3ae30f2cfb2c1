"""Fan-out: a committed transition becomes one delivery row per (notifier, recipient, channel)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from collections.abc import Iterable, Sequence
from typing import Any, cast

from notifiers import registry
from sqlalchemy import Connection, Dialect, String, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine
from workflow import TransitionRecord, WorkflowError, load_subjects, read_records, utcnow

from . import digesting, holding, notifier_modules, runtime, taking, timers, tracing
from .claims import Claim
from .delivery_log import Delivery, Status
from .errors import TransitionNotFound
from .rows import plan_rows

__all__ = ["Planned", "fan_out", "missing_deliveries", "plan", "plan_many"]

_log = logging.getLogger(__name__)
_table = cast(Table, Delivery.__table__)
_INSERT = insert(_table).returning(_table.c.id, _table.c.key)  # ids are matched by key: any order
_RETURNING_UP_TO = 50
_transitions = cast(Table, TransitionRecord.__table__)
_MARK = update(_transitions).values(fanned_out_at=bindparam("mark_at"), held_reason=None)
_HOLD = update(_transitions).where(_transitions.c.id == bindparam("held_id")).values(held_reason=bindparam("reason"))


@dataclass
class Planned:
    """What one fan-out wrote.

    Attributes:
        claimed: deliveries written already claimed (``sending``, under a lease) for the caller
            to send now; the rows commit before anything is sent, so the claim holds.
        pending: ids of deliveries written ``pending``, for delivery messages.
        loaded: each transition that got new deliveries, and its row, as read for the planning.
        missing: the transitions asked for that do not exist.
    """

    claimed: list[Claim] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    loaded: dict[int, tuple[TransitionRecord, Any]] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def fan_out(session: Session, transition_id: int) -> list[int]:
    """Plan the deliveries of one transition and commit them; return the ids of the new ones.

    Parties are resolved now, from the row as it is. A delivery that already exists (same
    transition, notifier, address and channel) is not written again, so running this twice
    returns nothing the second time.

    Raises:
        TransitionNotFound: no transition has this id.
    """
    return plan(session, transition_id).pending


def plan(session: Session, transition_id: int, *, claim_up_to: int = 0, lease_seconds: float = 60.0) -> Planned:
    """:func:`fan_out`, writing the deliveries already claimed when there are at most ``claim_up_to``.

    A first fan-out of few deliveries is then one message instead of one plus one per delivery:
    the caller sends them itself. A worker killed meanwhile leaves them ``sending``; once their
    lease (``lease_seconds``) runs out the sweeper sends them again, as for any claim.

    Raises:
        TransitionNotFound: no transition has this id.
    """
    planned = plan_many(session, [transition_id], claim_up_to=claim_up_to, lease_seconds=lease_seconds)
    if planned.missing:
        raise TransitionNotFound(f"Transition {transition_id} does not exist (rolled back or deleted?).")
    return planned


def plan_many(session: Session, transition_ids: Sequence[int], *, claim_up_to: int = 0,
              claim_total: int | None = None, lease_seconds: float = 60.0, waiting: int | None = None,
              recall: bool = True) -> Planned:
    """:func:`plan` for several transitions at once, in one transaction of a few statements.

    One read of the transitions, one of their rows per model (with the parties named by a
    relationship), one of the preferences, one of the suppressions, one INSERT of every delivery,
    one UPDATE marking them fanned out (on PostgreSQL, with many deliveries, in the same statement
    as the INSERT): what planning costs is paid once for all of them, not per transition. The
    deliveries of a first fan-out are written claimed when it has at most ``claim_up_to``, while
    they fit within ``claim_total`` in all. Transitions that do not exist are returned as ``missing``.

    With ``waiting`` (PostgreSQL only; 0 for none), the transitions are locked, and up to that
    many others are taken, not yet fanned out nor ever swept, oldest first, of the models this
    process has notifiers for: under a backlog, one message
    plans what the messages behind it would, and those find their transition done. The rows are
    locked (``FOR UPDATE SKIP LOCKED``), so concurrent fan-outs take different transitions; one
    of the message's own that another fan-out holds, or has planned already, is left to it. This
    process remembers the last 20,000 transitions it planned, and (with ``recall``) does not read
    them again. Should ids be reused (a table emptied while a worker runs), a transition would be
    taken for planned: the sweeper's messages are sent with ``recall=False``, so it waits for
    the sweeper, it is not lost.

    Should another fan-out of one of them commit first (a unique key taken), or one fail to be
    planned (the database failing on it; one recipient's bad data only fails that recipient's delivery,
    see :mod:`jobs.rows`), the message's own transitions
    are planned again each on its own, so the others are not held back by it; the one that fails
    is left to the sweeper, or raises when it was the message's only one (Dramatiq retries it).
    """
    notifier_modules.load()  # TIDINGS_NOTIFIERS, once per process: planning needs the application's registry
    if waiting is not None and session.get_bind().dialect.name == "postgresql":
        records, missing = taking.take(session, transition_ids, waiting, recall)
    else:
        records = read_records(session.connection(), transition_ids)
        missing = [i for i in transition_ids if i not in records]
    total = claim_up_to if claim_total is None else claim_total
    try:
        with tracing.span("fan_out", runtime.current().settings.queue, (r.traceparent for r in records.values()),
                          transitions=len(records)):
            return _plan_many(session, records, missing, claim_up_to, total, lease_seconds)
    except IntegrityError:  # another fan-out of one of them committed first
        session.rollback()
        if len(records) == 1:
            _log.info("Transition %s was fanned out concurrently; nothing new written.", next(iter(records)),
                      extra={"transition_id": next(iter(records))})
            return Planned(missing=missing)
    except Exception:  # one of them cannot be planned (a bug in a party, a value too long...): the others can
        session.rollback()
        if len(records) == 1:
            raise
        _log.warning("Transitions %s could not be planned together; planning each on its own.", sorted(records),
                     exc_info=True)
    own = [i for i in transition_ids if i in records]  # the ones taken besides go back to waiting
    return _each_alone(session, own, missing, claim_up_to, total, lease_seconds)


def _each_alone(session: Session, own: list[int], missing: list[int], claim_up_to: int, total: int,
                lease_seconds: float) -> Planned:
    """Plan transitions one by one, after planning them together failed; one failing alone waits for the sweeper."""
    planned = Planned(missing=missing)
    for transition_id in own:
        try:
            one = plan_many(session, [transition_id], claim_up_to=min(claim_up_to, total - len(planned.claimed)),
                            lease_seconds=lease_seconds)
        except Exception:
            session.rollback()
            if len(own) == 1:
                raise
            _log.exception("Transition %s could not be planned; the sweeper will try it again.", transition_id,
                           extra={"transition_id": transition_id})
            continue
        planned.claimed += one.claimed
        planned.pending += one.pending
        planned.loaded.update(one.loaded)
    return planned


def _plan_many(session: Session, records: dict[int, TransitionRecord], missing: list[int], claim_up_to: int,
               claim_total: int, lease_seconds: float) -> Planned:
    # The timeouts of the states entered: written by each first planning, held ones too (a second writes nothing).
    timers.schedule(session.connection(), [record for record in records.values() if record.fanned_out_at is None])
    held = holding.reasons(records.values())
    if held:  # written with the rest; not marked fanned out, so they stay in sight and the sweeper retries them
        session.connection().execute(_HOLD, [{"held_id": i, "reason": reason} for i, reason in held.items()])
        records = {i: record for i, record in records.items() if i not in held}
    subjects = _subjects(session, [r for r in records.values() if registry.for_transition(r.model, r.trigger)])
    rows_of = plan_rows(session, records, subjects)
    again = [record.id for record in records.values() if record.fanned_out_at is not None]
    if again:  # second runs: keep only what the first did not write
        rows_of.update(_not_written(session, {i: rows_of[i] for i in again}))
    now = utcnow()
    connection = session.connection()
    digesting.attach(connection, [row for rows in rows_of.values() for row in rows], now)
    lease_until = now + dt.timedelta(seconds=lease_seconds)
    to_claim: list[dict[str, Any]] = []
    for transition_id, rows in rows_of.items():
        pending = [row for row in rows if row["status"] == Status.PENDING]
        if (records[transition_id].fanned_out_at is None and len(pending) <= claim_up_to
                and len(to_claim) + len(pending) <= claim_total):
            to_claim += pending
    for row in to_claim:
        row.update(status=Status.SENDING, attempts=1, lease_until=lease_until, claimed_at=now)
    rows = [row for transition_rows in rows_of.values() for row in transition_rows]
    first = [record.id for record in records.values() if record.fanned_out_at is None]
    # The rows and the markers commit together, so a first run (no marker) finds no rows to skip.
    ids, marked = _insert(connection, list(rows_of), rows, first, now) if rows else ({}, False)
    if first and not marked:
        connection.execute(_MARK.where(_transitions.c.id.in_(first)), {"mark_at": now})
    session.commit()
    taking.remember(session, first)
    for transition_id in first:
        records[transition_id].fanned_out_at = now
    for transition_id, transition_rows in rows_of.items():
        if transition_rows and _log.isEnabledFor(logging.DEBUG):
            _log.debug("Transition %s fanned out to %d new deliveries.", transition_id, len(transition_rows),
                      extra={"transition_id": transition_id})
    return Planned(claimed=[_claim_of(ids[row["key"]], row) for row in to_claim],
                   pending=[ids[row["key"]] for row in rows if row["status"] == Status.PENDING],
                   loaded={i: (records[i], subjects.get(i)) for i, r in rows_of.items() if r}, missing=missing)


def missing_deliveries(session: Session, records: dict[int, TransitionRecord]) -> dict[int, list[dict[str, Any]]]:
    """The delivery rows that planning these transitions now would add (none is written), by transition id."""
    notifier_modules.load()
    subjects = _subjects(session, [r for r in records.values() if registry.for_transition(r.model, r.trigger)])
    return _not_written(session, plan_rows(session, records, subjects))


def _not_written(session: Session, rows_of: dict[int, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """``rows_of`` without the deliveries these transitions have already.

    A delivery is known by its key, or, for one with an address, by (notifier, address, channel):
    keys written before they carried the installation id differ from today's, and would
    otherwise be written, and sent, a second time.
    """
    written = session.execute(select(Delivery.transition_id, Delivery.key, Delivery.notifier, Delivery.address,
                                     Delivery.channel).where(Delivery.transition_id.in_(list(rows_of))))
    keys: set[str] = set()
    sent_to: set[tuple[int, str, str, str]] = set()
    for transition_id, key, notifier, address, channel in written:
        keys.add(key)
        if address:
            sent_to.add((transition_id, notifier, address, channel))
    return {i: [row for row in rows if row["key"] not in keys
                and (i, row["notifier"], row["address"], row["channel"]) not in sent_to]
            for i, rows in rows_of.items()}


def _subjects(session: Session, records: Iterable[TransitionRecord]) -> dict[int, Any]:
    """Each transition's row, ``None`` when it is gone or its model unknown (both logged)."""
    by_model: dict[str, list[TransitionRecord]] = {}
    for record in records:
        by_model.setdefault(record.model, []).append(record)
    found: dict[int, Any] = {}
    for group in by_model.values():
        try:
            found.update(load_subjects(session, group))
        except WorkflowError as error:
            for record in group:
                _log.error("Transition %s: %s", record.id, error, extra={"transition_id": record.id})
                found[record.id] = None
            continue
        for record in group:
            if found[record.id] is None:
                _log.warning("Transition %s: %s %s no longer exists; nobody to notify.", record.id, record.model,
                             record.key, extra={"transition_id": record.id})
    return found


def _insert(connection: Connection, transition_ids: list[int], rows: list[dict[str, Any]], first: list[int],
            now: dt.datetime) -> tuple[dict[str, int], bool]:
    """Insert the rows; their ids by key, and whether the transitions ``first`` were marked fanned out with them.

    On PostgreSQL through psycopg, however few, they go in one INSERT ... SELECT FROM unnest(...)
    RETURNING, one array parameter per column sent in binary (one value for a column the same in
    every row), with the UPDATE marking ``first`` (at ``now``) in the same statement: one round
    trip where a separate mark is a second, and a statement of 20 placeholders where VALUES would
    have 15 per row (over 50 parameters psycopg parses a statement afresh each time; the text is
    the same for every transition of one notifier, so the server prepares it once). Elsewhere a
    few rows go in one INSERT ... VALUES ... RETURNING; many through the driver's executemany,
    then one SELECT reads their ids.
    """
    names = tuple(rows[0])
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg" and _DEFAULTED <= set(names):
        values: dict[str, Any] = {name: [row[name] for row in rows] for name in names}
        # The columns equal in every row go as one value; the first (the key) stays an array, for unnest.
        same = tuple(name for name in names[1:] if values[name].count(values[name][0]) == len(rows))
        for name in same:
            values[name] = values[name][0]
        if first:
            values.update(mark_ids_=first, mark_at_=now)
        statement = _unnest_insert(connection.dialect, names, same, bool(first))
        return {key: id_ for id_, key in connection.exec_driver_sql(statement, values)}, bool(first)
    if len(rows) <= _RETURNING_UP_TO:
        return {key: id_ for id_, key in connection.execute(_INSERT, rows)}, False
    connection.execute(insert(_table), rows)
    written = {row["key"] for row in rows}
    found = connection.execute(select(_table.c.key, _table.c.id).where(_table.c.transition_id.in_(transition_ids)))
    return {key: id_ for key, id_ in found if key in written}, False


#: The columns the model fills in when a row leaves them out: the rows written by unnest must carry them.
_DEFAULTED = {column.name for column in _table.columns if column.default is not None}
_UNNEST: dict[tuple[tuple[str, ...], tuple[str, ...], bool], str] = {}


def _unnest_insert(dialect: Dialect, names: tuple[str, ...], same: tuple[str, ...], marking: bool) -> str:
    """The INSERT ... SELECT FROM unnest(...) RETURNING id, key of rows with these columns (psycopg's SQL), built once.

    Each column is an array of its type without a length, or, in ``same``, one value of that type:
    an explicit cast to ``varchar(n)`` would cut a longer value silently, where the insert into
    the column refuses it. With ``marking``, a data-modifying WITH marks the transitions
    ``mark_ids_`` fanned out at ``mark_at_`` (as ``_MARK`` does), in the same statement.
    """
    statement = _UNNEST.get((names, same, marking))
    if statement is None:
        preparer = dialect.identifier_preparer
        quote = preparer.quote
        types = {name: _unbounded(_table.c[name].type).compile(dialect=dialect) for name in names}
        varying = [name for name in names if name not in same]
        arrays = ", ".join(f"%({name})b::{types[name]}[]" for name in varying)
        columns = ", ".join(f"%({name})b::{types[name]}" if name in same else f"rows_.{quote(name)}" for name in names)
        statement = (f"INSERT INTO {preparer.format_table(_table)} ({', '.join(quote(name) for name in names)}) "
                     f"SELECT {columns} FROM unnest({arrays}) AS rows_({', '.join(quote(name) for name in varying)}) "
                     f"RETURNING {quote(_table.c.id.name)}, {quote(_table.c.key.name)}")
        if marking:
            t = _transitions.c
            statement = (f"WITH marked AS (UPDATE {preparer.format_table(_transitions)} SET "
                         f"{quote(t.fanned_out_at.name)} = %(mark_at_)b::{t.fanned_out_at.type.compile(dialect=dialect)}, "
                         f"{quote(t.held_reason.name)} = NULL "
                         f"WHERE {quote(t.id.name)} = ANY(%(mark_ids_)b::{t.id.type.compile(dialect=dialect)}[])) "
                         + statement)
        _UNNEST[(names, same, marking)] = statement
    return statement


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """``type_``, a ``String`` of any length in place of a bounded one."""
    return type(type_)() if isinstance(type_, String) and type_.length is not None else type_


def _claim_of(delivery_id: int, row: dict[str, Any]) -> Claim:
    return Claim(delivery_id, row["key"], row["transition_id"], row["notifier"], row["party"], row["channel"],
                 row["address"], row["name"], row["recipient_ref"], row["locale"], row["attempts"])
