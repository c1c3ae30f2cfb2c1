"""Digests at fan-out: the delivery rows of a digesting notifier become members of their open digest.

Each row :mod:`jobs.rows` planned with a :class:`~notifiers.Batch` names its digest by key
(recipient address, channel, notifier, group, window). Here, in the fan-out's transaction, the
digest rows are written if new (``ON CONFLICT DO NOTHING``), locked (``FOR UPDATE`` on
PostgreSQL: the task closing a digest waits for a fan-out adding to it, and the other way
round), and each member row gets its ``digest_id`` and the status ``digest``. A digest that
closed already (a fan-out late after its window) is not added to: its events go to the digest
of the window the fan-out runs in. The first events of a window a lead mode or a throttle lets
through (the digest's ``alone`` count) are written as any other delivery, to be sent at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, cast

from notifiers import Batch, window_start
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .delivery_log import Status
from .digest_log import DigestRow, DigestStatus
from .rows import BATCH

__all__ = ["attach"]

_digests = cast(Table, DigestRow.__table__)
_ALONE = update(_digests).where(_digests.c.id == bindparam("digest_id_")).values(alone=bindparam("alone_"))
_LATE_TRIES = 3


def attach(connection: Connection, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Make the rows planned with a batch members of their digest (or sent alone, as its first ones); in place."""
    held = [row for row in rows if row.get(BATCH) is not None]
    if not held:
        return
    wanted: dict[str, dict[str, Any]] = {}
    for row in held:
        batch, key = row[BATCH]
        wanted.setdefault(key, _values(row, key, batch, now))
    found = _open(connection, wanted, now)
    alone_before = {digest_id: alone for digest_id, alone, _ in found.values()}
    alone = dict(alone_before)
    for row in held:
        batch, key = row.pop(BATCH)
        digest_id, _, leads = found[key]
        if row["status"] not in (Status.PENDING, Status.SCHEDULED):
            continue
        if alone[digest_id] < leads:
            alone[digest_id] += 1
            continue
        row.update(status=Status.DIGEST, digest_id=digest_id)
        if batch.throttled:
            row["last_error"] = f"Over the throttle of {leads} a window: told in digest #{digest_id}."
    changed = [{"digest_id_": i, "alone_": n} for i, n in alone.items() if n != alone_before[i]]
    if changed:
        connection.execute(_ALONE, changed)


def _values(row: dict[str, Any], key: str, batch: Batch, now: dt.datetime) -> dict[str, Any]:
    """The digest row of a member row."""
    return {"key": key, "notifier": row["notifier"], "party": row["party"], "channel": row["channel"],
            "address": row["address"], "name": row["name"], "recipient_ref": row["recipient_ref"],
            "locale": row["locale"], "group_key": batch.group, "window_start": batch.start, "due_at": batch.due_at,
            "status": DigestStatus.OPEN, "throttled": int(batch.throttled), "alone": 0, "events": 0, "attempts": 0,
            "created_at": now, "updated_at": now, "_leads": batch.leads, "_window": batch.window}


def _open(connection: Connection, wanted: dict[str, dict[str, Any]], now: dt.datetime) -> dict[str, tuple[int, int, int]]:
    """``(id, alone, leads)`` of the open digest each key's events go into, written if new and locked."""
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
            if status == DigestStatus.OPEN or attempt == _LATE_TRIES - 1:
                found[asked] = (id_, alone, values["_leads"])
            else:  # closed already: the window the fan-out runs in (then the one after) takes its events
                late[asked] = _later(values, now + attempt * values["_window"])
        if not late:
            break
        todo = late
    return found


def _locked(connection: Connection, keys: list[str]) -> dict[str, tuple[int, str, int]]:
    """``(id, status, alone)`` of the digests of ``keys`` that exist, locked on PostgreSQL (in key order)."""
    query = (select(_digests.c.key, _digests.c.id, _digests.c.status, _digests.c.alone)
             .where(_digests.c.key.in_(keys)).order_by(_digests.c.key))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
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
