"""The digests table: one row per (recipient address, channel, notifier, group, window), and its statuses.

A digest collects the delivery rows of its events (their ``digest_id``) from the fan-outs of
its window; the ``digests`` task of every worker's schedule sends it once when the window
closes (:mod:`jobs.digest_sending`). Its unique key is the Message-ID and ``Idempotency-Key``
of the one message it becomes, so a digest sent again after a crash is recognisably the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from workflow import Id, TidingsBase, utcnow

from .addressed import Addressed
from .throttle_log import ThrottleRow  # noqa: F401 - the budgets wider throttles share, created with the digests

__all__ = ["DigestRow", "DigestStatus", "digest_key"]


class DigestStatus:
    """``open`` (collecting, until ``due_at``) -> ``sending`` (under a lease) -> ``sent``, ``failed``, ``dead`` or
    ``empty`` (no event left to tell: all sent alone, or superseded)."""

    OPEN = "open"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    EMPTY = "empty"


def digest_key(installation: str, address: str, channel: str, notifier: str, group: str, start: dt.datetime) -> str:
    """The unique key of a digest: the same recipient, channel, notifier, group and window always give the same one."""
    moment = start.astimezone(dt.timezone.utc).isoformat()
    text = f"digest|{installation}|{address.strip().lower()}|{channel}|{notifier}|{group}|{moment}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class DigestRow(Addressed, TidingsBase):
    """One digest: the events of a window for one recipient, told in one message."""

    __tablename__ = "tidings_digests"
    __table_args__ = (Index("ix_tidings_digests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    #: What it gathers within the recipient's digests of the notifier: "" (all), "Issue:12", a key function's value.
    group_key: Mapped[str] = mapped_column(String(255), default="")
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: When it is sent: the window's end (out of the recipient's quiet hours); later after a transient failure.
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=DigestStatus.OPEN)
    #: Whether it holds what a throttle let not through (rather than a digest's events).
    throttled: Mapped[int] = mapped_column(Integer, default=0)
    #: Events of its window sent alone, at once (lead mode: the first; a throttle: up to its limit).
    alone: Mapped[int] = mapped_column(Integer, default=0)
    #: Events it told, once sent.
    events: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<Digest {self.id} {self.channel} to {self.address}: {self.status}>"
