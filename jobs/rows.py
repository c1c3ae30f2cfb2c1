"""The delivery rows of transitions: the intents notifiers plan, as rows that always insert.

One recipient's bad data (a value its column cannot hold, of the wrong type, not encodable, a
party that raises) fails that recipient's delivery alone, with the reason: the row is checked
here against the columns of the delivery log, as the table declares them, and a row that would
not insert is written ``failed`` with safe values instead, so the transition's other parties are
told all the same.
"""

from __future__ import annotations

import datetime as dt
import reprlib
from collections.abc import Mapping
from typing import Any, cast

from notifiers import Event, Found, Intent, Recipient, Registration, parties_of, plan, registry, skip_reasons
from sqlalchemy import String, Table
from sqlalchemy.orm import Session
from workflow import TransitionRecord, utcnow
from workflow.clock import aware

from . import runtime, supersession, suppressions
from .delivery_log import Delivery, Status, delivery_key
from .digest_log import digest_key
from .throttle_log import throttle_key
from .installation import installation_id

__all__ = ["BATCH", "plan_rows"]

#: The key of a row's :class:`~notifiers.Batch`, digest key and shared throttle's key (or ``None``),
#: popped by :func:`jobs.digesting.attach` before the insert.
BATCH = "_batch"

_table = cast(Table, Delivery.__table__)
#: Each text column of a delivery row: its length (None: unbounded) and whether it may be NULL.
_TEXT = {column.name: (column.type.length, bool(column.nullable))
         for column in _table.columns if isinstance(column.type, String)}
_TEXT_COLUMNS = tuple(_TEXT.items())


def plan_rows(session: Session, records: Mapping[int, TransitionRecord],
              subjects: Mapping[int, Any]) -> dict[int, list[dict[str, Any]]]:
    """A delivery row for each intent :func:`notifiers.plan` gives for each transition, by transition id.

    The preferences of every recipient of every transition are read in one query, and the
    suppressed addresses among theirs in one more (:mod:`jobs.suppressions`).
    """
    resolved: list[tuple[TransitionRecord, list[Registration], dict[str, Found]]] = []
    for record in records.values():
        subject = subjects.get(record.id)
        if subject is None:  # no notifier for it, or its row is gone
            continue
        registrations = registry.for_transition(record.model, record.trigger)
        resolved.append((record, registrations,
                         parties_of(subject, registrations, model=record.model, key=record.key)))
    refs = (r.ref for *_, parties in resolved for found in parties.values() for r in found if isinstance(r, Recipient))
    skip = skip_reasons(session, (ref for ref in refs if _problem({"recipient_ref": ref}) is None))
    rows: dict[int, dict[str, dict[str, Any]]] = {record_id: {} for record_id in records}
    installation = installation_id(session) if resolved else ""
    kinds = runtime.current().address_kinds(registry.channel_kinds()) if resolved else {}
    events = {record.id: Event.of(record, subjects[record.id]) for record, *_ in resolved}  # a digest's group
    intents = [(record, intent) for record, registrations, parties in resolved
               for intent in plan(registrations, parties, skip, kinds, at=aware(record.created_at),
                                  self_loop=record.source == record.dest, event=events[record.id],
                                  every=getattr(skip, "every", None))]
    for record, intent in suppressions.applied(session, intents):
        planned = rows[record.id]
        key = delivery_key(record.id, intent.registration.name, intent.target, intent.channel,
                           installation=installation, repetition=intent.repetition)
        planned.setdefault(key, _row(record, key, intent, installation))
    return {record_id: list(planned.values()) for record_id, planned in rows.items()}


def _row(record: TransitionRecord, key: str, intent: Intent, installation: str) -> dict[str, Any]:
    """The row to insert; ``failed``, with values its columns hold, when one of its values cannot be stored."""
    now, recipient, transition_id = utcnow(), intent.recipient, record.id
    status = Status.FAILED if intent.failure else Status.SKIPPED if intent.skip_reason else Status.PENDING
    if status == Status.PENDING and intent.due_at is not None and intent.due_at > now:
        status = Status.SCHEDULED
    row: dict[str, Any] = {
        "key": key, "transition_id": transition_id, "notifier": intent.registration.name, "party": intent.party,
        "channel": intent.channel, "address": intent.address,
        "name": recipient.name if recipient else None, "recipient_ref": recipient.ref if recipient else "",
        "locale": recipient.locale if recipient else None, "status": status, "attempts": 0,
        "last_error": _safe(intent.failure or intent.skip_reason, _TEXT["last_error"]), "created_at": now,
        "updated_at": now, "lease_until": None, **supersession.columns(intent.registration.timing, record.dest),
        "due_at": intent.due_at, "claimed_at": None, "digest_id": None,
    }
    problem = _problem(row)
    if problem is not None:
        row.update(status=Status.FAILED, last_error=f"Party {intent.party!r}: {problem}; not sent.")
        row.update({name: _safe(row[name], _TEXT[name]) for name in _TEXT if name in row})
    elif intent.batch is not None:
        batch = intent.batch
        budget = None if batch.scope == "notifier" else throttle_key(
            installation, batch.scope, recipient.ref if recipient else intent.address, intent.channel, batch.window,
            batch.start)
        row[BATCH] = (batch, digest_key(installation, intent.address, intent.channel, intent.registration.name,
                                        batch.group, batch.start), budget)
    return row


def _problem(values: Mapping[str, Any]) -> str | None:
    """Why one of ``values`` (by column name) cannot be stored in its column of the delivery log, or ``None``.

    A first look takes the usual values of a whole row at a glance, in its text columns only:
    short ASCII text without NUL, or NULL where allowed. Given any other, or a few values, each
    value is looked at in turn, and the problem named is the first in the order of ``values``.
    """
    if len(values) < len(_TEXT_COLUMNS):
        return _first_problem(values)
    for name, (length, nullable) in _TEXT_COLUMNS:
        value = values.get(name)
        if value.__class__ is str:
            if (length is None or len(value) <= length) and value.isascii() and "\x00" not in value:
                continue
        elif value is None and (nullable or name not in values):
            continue
        return _first_problem(values)
    return None


def _first_problem(values: Mapping[str, Any]) -> str | None:
    """:func:`_problem`, value by value."""
    for name, value in values.items():
        length, nullable = _TEXT.get(name, (None, True))
        if name not in _TEXT or (value is None and nullable):
            continue
        if not isinstance(value, str):
            return f"{name} {_shown(value)} is a {type(value).__name__}, not text"
        if length is not None and len(value) > length:
            return f"{name} {_shown(value)} is {len(value)} characters long; its column holds {length}"
        if "\x00" in value:
            return f"{name} {_shown(value)} contains a NUL character, which databases refuse"
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return f"{name} {_shown(value)} is not valid Unicode (a lone surrogate)"
    return None


def _safe(value: object, column: tuple[int | None, bool]) -> str | None:
    """``value`` as its column can hold it: text, no NUL, valid UTF-8, cut to the column's length."""
    length, nullable = column
    if value is None and nullable:
        return None
    text = value if isinstance(value, str) else _shown(value)
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()
    return text[:length] if length is not None else text


def _shown(value: object) -> str:
    """A short repr of ``value`` for a reason: ``reprlib`` cuts long ones; a huge int or a broken repr has none."""
    try:
        return reprlib.repr(value)
    except Exception:
        return f"a {type(value).__name__}"
