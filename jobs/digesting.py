"""Digests at fan-out: the delivery rows of a digesting notifier become members of their open digest.

Each row :mod:`jobs.rows` planned with a :class:`~notifiers.Batch` names its digest by key
(recipient address, channel, notifier, group, window). Here, in the fan-out's transaction, the
digest rows are written if new (``ON CONFLICT DO NOTHING``), locked (``FOR UPDATE`` on
PostgreSQL: the task closing a digest waits for a fan-out adding to it, and the other way
round), and each member row gets its ``digest_id`` and the status ``digest``. A digest that
closed already (a fan-out late after its window) is not added to: its events go to the digest
of the window the fan-out runs in (the next window's if that one closed too, and sent alone
if the one after had as well: a clock far behind). The first events of a window a lead mode
or a throttle lets through (the digest's ``alone`` count) are written as any other delivery,
to be sent at once.
A throttle of scope ``"channel"`` or ``"all"`` counts them on its shared budget row instead
(:mod:`jobs.throttle_log`), written if new and locked in the same way, after the digests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, cast

from notifiers import Batch, window_start
from sqlalchemy import Connection, String, Table, any_, bindparam, false, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .delivery_log import Status
from .digest_log import DigestRow, DigestStatus
from .rows import BATCH
from .throttle_log import ThrottleRow

__all__ = ["attach"]

_digests = cast(Table, DigestRow.__table__)
_ALONE = update(_digests).where(_digests.c.id == bindparam("digest_id_")).values(alone=bindparam("alone_"))
_throttles = cast(Table, ThrottleRow.__table__)
_SENT = update(_throttles).where(_throttles.c.key == bindparam("key_")).values(sent=bindparam("sent_"))
_LATE_TRIES = 3
#: On PostgreSQL the keys go as one array (``= ANY``), not an IN list of one placeholder each: built once,
#: its SQL short enough for psycopg to keep parsed; an IN list of 300 keys is parsed afresh each time.
#: Locked in key order, waiting for a lock another holds (never skipping it): fan-outs sharing digests lock them alike.
_KEYS = bindparam("keys", type_=postgresql.ARRAY(String()))
_DIGESTS_PG = (select(_digests.c.key, _digests.c.id, _digests.c.status, _digests.c.alone)
               .where(_digests.c.key == any_(_KEYS)).order_by(_digests.c.key).with_for_update())
_BUDGETS_PG = (select(_throttles.c.key, _throttles.c.sent)
               .where(_throttles.c.key == any_(_KEYS)).order_by(_throttles.c.key).with_for_update())
#: How a held event's reason names what its throttle counts.
_SHARED = {"notifier": "", "channel": " (shared by the notifiers on this channel)",
           "all": " (shared by the notifiers on every channel)"}


def attach(connection: Connection, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Make the rows planned with a batch members of their digest (or sent alone, as its first ones); in place."""
    held = [row for row in rows if row.get(BATCH) is not None]
    if not held:
        return
    if connection.dialect.name == "sqlite":  # no row locks: take the write lock before reading counts (see jobs.due)
        connection.execute(update(_digests).where(false()).values(alone=_digests.c.alone))
    wanted: dict[str, dict[str, Any]] = {}
    shared: dict[str, dict[str, Any]] = {}
    for row in held:
        batch, key, budget = row[BATCH]
        wanted.setdefault(key, _values(row, key, batch, now))
        if budget is not None:
            shared.setdefault(budget, _budget(row, budget, batch, now))
    found = _open(connection, wanted, now)
    used_before = _budgets(connection, shared)
    alone_before = {digest_id: alone for digest_id, alone, _ in found.values()}
    alone, used = dict(alone_before), dict(used_before)
    for row in held:
        batch, key, budget = row.pop(BATCH)
        if key not in found or row["status"] not in (Status.PENDING, Status.SCHEDULED):
            continue  # no open digest (see _open): sent alone
        digest_id, _, leads = found[key]
        if (alone[digest_id] if budget is None else used[budget]) < leads:
            alone[digest_id] += 1
            if budget is not None:
                used[budget] += 1
            continue
        row.update(status=Status.DIGEST, digest_id=digest_id)
        if batch.throttled:
            row["last_error"] = (f"Over the throttle of {leads} a window{_SHARED[batch.scope]}: "
                                 f"told in digest #{digest_id}.")
    changed = [{"digest_id_": i, "alone_": n} for i, n in alone.items() if n != alone_before[i]]
    if changed:
        connection.execute(_ALONE, changed)
    spent = [{"key_": key, "sent_": n} for key, n in used.items() if n != used_before[key]]
    if spent:
        connection.execute(_SENT, spent)


def _budget(row: dict[str, Any], key: str, batch: Batch, now: dt.datetime) -> dict[str, Any]:
    """The shared budget row of a member row of a throttle of scope ``"channel"`` or ``"all"``."""
    return {"key": key, "scope": batch.scope, "recipient_ref": row["recipient_ref"] or row["address"].lower(),
            "channel": row["channel"] if batch.scope == "channel" else "*", "window_start": batch.start,
            "window_end": batch.start + batch.window, "sent": 0, "created_at": now}


def _budgets(connection: Connection, shared: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many events each shared budget let through so far: locked (in key order), written first if new."""
    if not shared:
        return {}
    used = _spent(connection, list(shared))
    new = [shared[key] for key in sorted(shared) if key not in used]
    if new:  # the first event of a window under these budgets: they are written, then locked
        make: Callable[..., Any] = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        connection.execute(make(_throttles).on_conflict_do_nothing(index_elements=["key"]), new)
        used.update(_spent(connection, [values["key"] for values in new]))
    return used


def _spent(connection: Connection, keys: list[str]) -> dict[str, int]:
    """``sent`` of the budgets of ``keys`` that exist, locked on PostgreSQL (in key order)."""
    if connection.dialect.name == "postgresql":
        return {key: sent for key, sent in connection.execute(_BUDGETS_PG, {"keys": keys})}
    query = select(_throttles.c.key, _throttles.c.sent).where(_throttles.c.key.in_(keys)).order_by(_throttles.c.key)
    return {key: sent for key, sent in connection.execute(query)}


def _values(row: dict[str, Any], key: str, batch: Batch, now: dt.datetime) -> dict[str, Any]:
    """The digest row of a member row."""
    return {"key": key, "notifier": row["notifier"], "party": row["party"], "channel": row["channel"],
            "address": row["address"], "name": row["name"], "recipient_ref": row["recipient_ref"],
            "locale": row["locale"], "group_key": batch.group, "window_start": batch.start, "due_at": batch.due_at,
            "status": DigestStatus.OPEN, "throttled": int(batch.throttled), "alone": 0, "events": 0, "attempts": 0,
            "created_at": now, "updated_at": now, "_leads": batch.leads, "_window": batch.window}


def _open(connection: Connection, wanted: dict[str, dict[str, Any]], now: dt.datetime) -> dict[str, tuple[int, int, int]]:
    """``(id, alone, leads)`` of the open digest each key's events go into, written if new and locked.

    A key whose digest and those of the next two windows are all closed has none: a member
    joined to a digest being sent or sent would never be told, so its events are sent alone.
    """
    found: dict[str, tuple[int, int, int]] = {}
    todo = {key: (key, values) for key, values in wanted.items()}
    for attempt in range(_LATE_TRIES):
        rows = _locked(connection, [key for key, _ in todo.values()])
        new = [values for key, values in todo.values() if key not in rows]
        if new:  # the first event of a window for these recipients: their digests are written, then locked
            _insert(connection, [{k: v for k, v in values.items() if not k.startswith("_")} for values in new])
            rows.update(_locked(connection, [values["key"] for values in new]))
        late = {}
        for asked, (key, values) in todo.items():
            id_, status, alone = rows[key]
            if status == DigestStatus.OPEN:
                found[asked] = (id_, alone, values["_leads"])
            elif attempt < _LATE_TRIES - 1:  # closed already: the window the fan-out runs in (then the next)
                late[asked] = _later(values, now + attempt * values["_window"])
            # else the digests of three windows running closed (a clock far behind): its events are sent alone
        if not late:
            break
        todo = late
    return found


def _locked(connection: Connection, keys: list[str]) -> dict[str, tuple[int, str, int]]:
    """``(id, status, alone)`` of the digests of ``keys`` that exist, locked on PostgreSQL (in key order)."""
    if connection.dialect.name == "postgresql":
        return {key: (id_, status, alone) for key, id_, status, alone in connection.execute(_DIGESTS_PG, {"keys": keys})}
    query = (select(_digests.c.key, _digests.c.id, _digests.c.status, _digests.c.alone)
             .where(_digests.c.key.in_(keys)).order_by(_digests.c.key))
    return {key: (id_, status, alone) for key, id_, status, alone in connection.execute(query)}


def _later(values: dict[str, Any], at: dt.datetime) -> tuple[str, dict[str, Any]]:
    """The digest of the window around ``at`` for the same recipient, notifier and group."""
    length = values["_window"]
    start = max(window_start(at, length), values["window_start"] + length)
    key = hashlib.sha256(f"{values['key']}|{start.isoformat()}".encode()).hexdigest()[:32]
    return key, {**values, "key": key, "window_start": start, "due_at": start + length}


def _insert(connection: Connection, digests: list[dict[str, Any]]) -> None:
    """Write the digests that do not exist yet, in key order (two fan-outs lock them in the same order)."""
    digests.sort(key=lambda values: str(values["key"]))
    make: Callable[..., Any] = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(make(_digests).on_conflict_do_nothing(index_elements=["key"]), digests)
