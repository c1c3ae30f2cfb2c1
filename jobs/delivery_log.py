"""The delivery log: one row per (transition, notifier, recipient, channel), and its statuses."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column
from workflow import Id, TidingsBase, utcnow

from .addressed import Addressed

from .digest_log import DigestRow  # noqa: F401 - the table digest_id names, created with this one

__all__ = ["Delivery", "Status", "delivery_key"]


class Status:
    """The statuses of a delivery: (scheduled ->) pending -> sending -> sent, or failed, dead or skipped; or digest -> sent.

    ``scheduled``: held until its ``due_at`` (docs/time.md); the ``due`` task makes it ``pending``
    once due. Out of ``pending``, it costs nothing to what looks for work to do now.
    """

    SCHEDULED = "scheduled"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    #: Held in an open digest (``digest_id``), sent with it when its window closes (docs/digests.md).
    DIGEST = "digest"


def delivery_key(transition_id: int, notifier: str, address: str, channel: str, *, installation: str,
                 repetition: int | None = None) -> str:
    """The unique key of a delivery: the same inputs always give the same 32 hex characters.

    A reminder's deliveries differ by their ``repetition`` (1, 2...); a delivery without one
    keeps the key it always had.

    It is the Message-ID and ``Idempotency-Key`` receivers de-duplicate on, so it includes the
    ``installation`` (see :mod:`jobs.installation`): transition 42 of staging, of production and
    of a database created again are different notifications, with different keys.
    """
    text = f"{installation}|{transition_id}|{notifier}|{address.strip().lower()}|{channel}"
    if repetition is not None:
        text += f"|{repetition}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]  # any str, even a bad one


class Delivery(Addressed, TidingsBase):
    """One notification to one recipient through one channel, and what became of it."""

    __tablename__ = "tidings_deliveries"
    __table_args__ = (
        Index("ix_tidings_deliveries_status_lease", "status", "lease_until"),
        # The deliveries held for a time (docs/time.md): only those rows, so the index stays small.
        Index("ix_tidings_deliveries_due", "status", "due_at", postgresql_where=text("due_at IS NOT NULL"),
              sqlite_where=text("due_at IS NOT NULL")),
        # The console (docs/console.md): sent per minute, and the figures of each failover provider.
        Index("ix_tidings_deliveries_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL"),
              sqlite_where=text("sent_at IS NOT NULL")),
        Index("ix_tidings_deliveries_provider", "provider", "status", postgresql_where=text("provider IS NOT NULL"),
              sqlite_where=text("provider IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    transition_id: Mapped[int] = mapped_column(Id, ForeignKey("tidings_transitions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Not sent before this time (a delay, a reminder, quiet hours); ``None``: at once.
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: When it was last claimed (``pending`` -> ``sending``).
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    #: Void (recorded ``skipped``) once its row has left this state (see :mod:`jobs.supersession`).
    void_unless_in: Mapped[str | None] = mapped_column(String(128))
    #: Void once its row fired one of these triggers after its transition: ``",hand_over,cancel,"``.
    void_on: Mapped[str | None] = mapped_column(String(1000))
    #: The digest it was told in, or is held for (``tidings_digests``); ``None``: sent alone.
    digest_id: Mapped[int | None] = mapped_column(Id, ForeignKey("tidings_digests.id"), index=True)
    #: Which provider of a failover channel sent it, or failed last (see ``notifiers.FailoverChannel``).
    provider: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.channel} to {self.address}: {self.status}>"
