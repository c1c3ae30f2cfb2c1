"""Fan-out: a committed transition becomes one delivery row per (notifier, recipient, channel)."""

from __future__ import annotations

import logging
from typing import Any

from notifiers import Recipient, RecipientError, Registration, recipients_of, registry, skip_reasons
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from workflow import TransitionRecord, WorkflowError, load_subject, utcnow

from .delivery_log import Delivery, Status, delivery_key
from .errors import TransitionNotFound

__all__ = ["fan_out"]

_log = logging.getLogger(__name__)


def fan_out(session: Session, transition_id: int) -> list[int]:
    """Plan the deliveries of one transition and commit them; return the ids of the new ones.

    Parties are resolved now, from the row as it is. A delivery that already exists (same
    transition, notifier, address and channel) is not written again, so running this twice
    returns nothing the second time.

    Raises:
        TransitionNotFound: no transition has this id.
    """
    record = session.get(TransitionRecord, transition_id)
    if record is None:
        raise TransitionNotFound(f"Transition {transition_id} does not exist (rolled back or deleted?).")
    registrations = registry.for_transition(record.model, record.trigger)
    rows = _plan(session, record, registrations) if registrations else []
    if record.fanned_out_at is not None:  # a second run: keep only what the first did not write
        existing = set(session.scalars(select(Delivery.key).where(Delivery.transition_id == transition_id)))
        rows = [row for row in rows if row["key"] not in existing]
    # The rows and the marker commit together, so a first run (no marker) finds no rows to skip.
    ids = _insert(session, rows) if rows else {}
    record.fanned_out_at = record.fanned_out_at or utcnow()
    try:
        session.commit()
    except IntegrityError:  # another fan-out of the same transition won the race
        session.rollback()
        _log.info("Transition %s was fanned out concurrently; nothing new written.", transition_id)
        return []
    new = [ids[row["key"]] for row in rows if row["status"] == Status.PENDING]
    if new:
        _log.info("Transition %s fanned out to %d new deliveries.", transition_id, len(new))
    return new


def _insert(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows in batches (one statement per batch where the database allows); their ids by key."""
    result = session.execute(insert(Delivery).returning(Delivery.id, Delivery.key, sort_by_parameter_order=True), rows)
    return {key: id_ for id_, key in result}


def _plan(session: Session, record: TransitionRecord, registrations: list[Registration]) -> list[dict[str, Any]]:
    try:
        subject = load_subject(session, record)
    except WorkflowError as error:
        _log.error("Transition %s: %s", record.id, error)
        return []
    if subject is None:
        _log.warning("Transition %s: %s %s no longer exists; nobody to notify.", record.id, record.model, record.key)
        return []
    parties = subject.parties()
    resolved: list[tuple[Registration, str, list[Recipient] | RecipientError]] = []
    for registration in registrations:
        for party in registration.parties:
            try:
                resolved.append((registration, party, recipients_of(parties.get(party), party)))
            except RecipientError as error:
                resolved.append((registration, party, error))
    skip = skip_reasons(session, (r.ref for _, _, found in resolved if isinstance(found, list) for r in found))
    rows: dict[str, dict[str, Any]] = {}
    for registration, party, found in resolved:
        for channel in registration.channels:
            if isinstance(found, RecipientError):
                key = delivery_key(record.id, registration.name, f"!{party}", channel)
                rows.setdefault(key, _row(record.id, key, registration, party, channel, None,
                                          Status.FAILED, f"Party {party!r}: {found}"))
                continue
            for recipient in found:
                key = delivery_key(record.id, registration.name, recipient.address, channel)
                reason = skip(recipient.ref, registration, channel)
                rows.setdefault(key, _row(record.id, key, registration, party, channel, recipient,
                                          Status.SKIPPED if reason else Status.PENDING, reason))
    return list(rows.values())


def _row(transition_id: int, key: str, registration: Registration, party: str, channel: str,
         recipient: Recipient | None, status: str, error: str | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "key": key, "transition_id": transition_id, "notifier": registration.name, "party": party,
        "channel": channel, "address": recipient.address if recipient else "",
        "name": recipient.name if recipient else None, "recipient_ref": recipient.ref if recipient else "",
        "locale": recipient.locale if recipient else None, "status": status, "attempts": 0,
        "last_error": error, "created_at": now, "updated_at": now,
    }
