"""The throttles table: one row per budget a throttle wider than one notifier shares, and window.

A ``Throttle(n, per, scope="channel")`` or ``scope="all"`` counts the events it sent alone to a
recipient across notifiers (and channels): that count cannot live on one digest row, as the
default scope's does (the digest's ``alone``), since each notifier keeps its own digest. This
row holds it; the fan-out writes it with the first event of its window (``ON CONFLICT DO
NOTHING``) and locks it (``FOR UPDATE`` on PostgreSQL) before counting, so two fan-outs at once
never both take the last place. Once its window ended it is read no more: retention prunes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from workflow import Id, TidingsBase, utcnow

__all__ = ["ThrottleRow", "throttle_key"]


def throttle_key(installation: str, scope: str, recipient: str, channel: str, per: dt.timedelta,
                 start: dt.datetime) -> str:
    """The key of the budget of ``scope`` (``"channel"``: one per channel; ``"all"``: one for every channel)."""
    moment = start.astimezone(dt.timezone.utc).isoformat()
    where = channel if scope == "channel" else "*"
    text = f"throttle|{installation}|{scope}|{recipient.strip().lower()}|{where}|{per.total_seconds()}|{moment}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ThrottleRow(TidingsBase):
    """One shared budget: how many events of one window a recipient was sent alone, under throttles of one scope."""

    __tablename__ = "tidings_throttles"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    #: ``"channel"`` or ``"all"``.
    scope: Mapped[str] = mapped_column(String(16))
    #: Who it counts for: the recipient's ref (``"User:42"``, else its address in lower case).
    recipient_ref: Mapped[str] = mapped_column(String(255))
    #: The channel, for ``scope="channel"``; ``"*"`` for ``"all"``.
    channel: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: When its window ends; retention prunes it once that is older than ``keep_deliveries_days``.
    window_end: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: Events of its window sent alone, at once, under the throttles sharing it.
    sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<Throttle {self.scope} {self.channel} for {self.recipient_ref}: {self.sent} sent>"
