"""Disabled webhook endpoints: those that answered 410 Gone, skipped until an operator re-enables them.

A receiver answering ``410 Gone`` says the endpoint is gone for good (the Standard Webhooks
convention): Tidings records it in ``tidings_disabled_endpoints`` (in ``workflow.metadata``),
and every later delivery to it is ``skipped`` with a reason naming the endpoint and when it
answered, instead of being sent and failing again. ``tidings webhooks enable <url>`` (or
:func:`enable_endpoint`) removes the row. The row holds a digest of the URL, never the URL
itself (its query string may carry a token), and the URL as shown (no query, no credentials).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Connection, DateTime, Engine, Integer, String, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import TidingsBase, utcnow

__all__ = ["DisabledEndpoint", "disable_endpoint", "disabled_at", "disabled_endpoints", "enable_endpoint",
           "endpoint_digest"]


class DisabledEndpoint(TidingsBase):
    """One endpoint that answered 410 Gone: which, by which channel, and when."""

    __tablename__ = "tidings_disabled_endpoints"

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)  # endpoint_digest(url)
    shown: Mapped[str] = mapped_column(String(2000))
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer, default=410)
    disabled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<DisabledEndpoint {self.shown} ({self.channel}) since {self.disabled_at:%Y-%m-%d %H:%M:%S}>"


def endpoint_digest(url: str) -> str:
    """The key of ``url`` in the table: its SHA-256, so a token in the URL is not stored."""
    return hashlib.sha256(url.encode()).hexdigest()


def disabled_at(bind: Engine | Connection, url: str) -> dt.datetime | None:
    """When ``url`` answered 410 Gone, or ``None`` while it is enabled."""
    query = select(DisabledEndpoint.disabled_at).where(DisabledEndpoint.endpoint == endpoint_digest(url))
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            return connection.scalar(query)
    return bind.scalar(query)


def disable_endpoint(bind: Engine | Connection, url: str, *, shown: str, channel: str, status: int = 410) -> None:
    """Record that ``url`` answered ``status`` (410): later deliveries to it are skipped; a second record is a no-op."""
    statement = insert(DisabledEndpoint).values(endpoint=endpoint_digest(url), shown=shown[:2000], channel=channel,
                                                status=status, disabled_at=utcnow())
    try:
        if isinstance(bind, Engine):
            with bind.begin() as connection:
                connection.execute(statement)
        else:
            with bind.begin_nested():
                bind.execute(statement)
    except IntegrityError:
        return  # another worker recorded it first


def disabled_endpoints(session: Session) -> list[DisabledEndpoint]:
    """Every disabled endpoint, the longest disabled first."""
    return list(session.scalars(select(DisabledEndpoint).order_by(DisabledEndpoint.disabled_at)))


def enable_endpoint(session: Session, url: str) -> list[DisabledEndpoint]:
    """Re-enable ``url`` (as configured, or as listed: without its query string); return what was enabled.

    In the caller's transaction: commit it for the workers to send to the endpoint again.
    """
    match = or_(DisabledEndpoint.endpoint == endpoint_digest(url), DisabledEndpoint.shown == url)
    found = list(session.scalars(select(DisabledEndpoint).where(match)))
    if found:
        session.execute(delete(DisabledEndpoint).where(match))
    return found
