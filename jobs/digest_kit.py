"""The test kit's digests: what was sent (a delivery or a digest) as a test sees it, and assertions on digests.

``tidings.digests()`` lists the digests recorded (open ones too), each with its events;
``tidings.assert_digested("ann@example.com", events=3)`` asserts one was sent to Ann with three
events. ``tidings.advance(hours=1)`` closes the windows that ended meanwhile (the ``digests`` task).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notifiers.channels import Sent
from sqlalchemy import select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from .captured import Notification, aware, check_count
from .delivery_log import Delivery, Status
from .digest_log import DigestRow, DigestStatus

__all__ = ["DigestAssertions", "Digested", "described"]


@dataclass(frozen=True)
class Digested:
    """One digest the kit recorded: to whom, by which notifier, its status and the transitions it tells."""

    id: int
    to: str
    channel: str
    notifier: str
    status: str
    due_at: dt.datetime
    #: ``(model, key, trigger)`` of each event in it, in order: sent in it, or held for it while open.
    events: tuple[tuple[str, str, str], ...]
    throttled: bool

    def __str__(self) -> str:
        return f"digest #{self.id} to <{self.to}> by {self.channel}: {self.status}, {len(self.events)} events"


def described(session: Session, sent: Sequence[Sent]) -> list[Notification]:
    """What the kit's channel was given, as notifications: a delivery's, or a digest's (its latest event's transition)."""
    keys = [one.key for one in sent]
    rows: dict[str, tuple[Any, Any]] = {d.key: (d, t) for d, t in session.execute(
        select(Delivery, TransitionRecord).join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
        .where(Delivery.key.in_(keys)))}
    digests = {row.key: row for row in session.scalars(select(DigestRow).where(
        DigestRow.key.in_([key for key in keys if key not in rows])))}
    latest = {digest_id: record for digest_id, record in session.execute(
        select(Delivery.digest_id, TransitionRecord).join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
        .where(Delivery.digest_id.in_([row.id for row in digests.values()])).order_by(Delivery.id))}
    rows.update((key, (row, latest[row.id])) for key, row in digests.items())
    notifications = []
    for one in sent:
        row, record = rows[one.key]
        message = one.message
        notifications.append(Notification(
            to=row.address, name=one.to.name, party=row.party, channel=row.channel, model=record.model,
            key=record.key, trigger=record.trigger, notifier=row.notifier, subject=str(getattr(message, "subject", "")),
            text=str(getattr(message, "text", None) or getattr(message, "body", "") or ""),
            html=str(getattr(message, "html", "") or "")))
    return notifications


class DigestAssertions:
    """The digest part of the :class:`~jobs.testing.Kit`."""

    def _session(self) -> Any:  # the kit's: on the test's connection
        raise NotImplementedError

    def digests(self, to: str | None = None, *, status: str | None = None) -> list[Digested]:
        """The digests recorded (to ``to``, of ``status``: ``open``, ``sent``...), oldest first."""
        with self._session() as session:
            query = select(DigestRow).order_by(DigestRow.id)
            if to is not None:
                query = query.where(DigestRow.address == to)
            if status is not None:
                query = query.where(DigestRow.status == status)
            rows = list(session.scalars(query))
            members: dict[int, list[tuple[str, str, str]]] = {row.id: [] for row in rows}
            for digest_id, model, key, trigger in session.execute(
                    select(Delivery.digest_id, TransitionRecord.model, TransitionRecord.key, TransitionRecord.trigger)
                    .join(TransitionRecord, Delivery.transition_id == TransitionRecord.id)
                    .where(Delivery.digest_id.in_(list(members)), Delivery.status.in_([Status.DIGEST, Status.SENT]))
                    .order_by(Delivery.transition_id)):
                members[digest_id].append((model, key, trigger))
            return [Digested(row.id, row.address, row.channel, row.notifier, row.status, aware(row.due_at),
                             tuple(members[row.id]), bool(row.throttled)) for row in rows]

    def assert_digested(self, to: str | None = None, *, count: int | None = None,
                        events: int | None = None) -> list[Digested]:
        """Assert that digests were sent (to ``to``; ``count`` of them; each of ``events`` events); those sent."""
        __tracebackhide__ = True
        found = [d for d in self.digests(to, status=DigestStatus.SENT) if events is None or len(d.events) == events]
        every = self.digests()
        check_count("sent digest(s)", found, count, to, {"events": str(events)} if events is not None else {},
                    "Digests:\n" + ("\n".join(f"  {d}" for d in every) if every else "  nothing"))
        return found
