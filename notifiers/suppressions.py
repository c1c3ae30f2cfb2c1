"""The suppression list: addresses not to send to on a channel, with the reason and since when.

An address that bounced hard, whose owner complained (marked the mail as spam), or that an
operator suppressed is recorded in ``tidings_suppressions`` (in ``workflow.metadata``). Planning
reads the list with the preferences, in one query per fan-out: a delivery to a suppressed
address is written ``skipped`` with the reason and since when, and is not sent.

The reasons (those of django-anymail's tracking events):

- ``bounced``: the receiving server refused the address for good (a hard bounce, ``5.x.x``);
- ``complained``: the recipient reported the mail as spam (a feedback loop);
- ``manual``: an operator's decision (``tidings suppress ADDRESS``);
- ``unsubscribed``: the recipient asked for no more mail at that address.

The first three suppress every notification, ``required`` ones (security, legal) included:
mail to an address that bounces or complains harms the sender's reputation whatever it says.
``unsubscribed`` suppresses all but ``required`` ones, as an opt-out does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import DateTime, String, Text, bindparam, func, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import TidingsBase, utcnow

from .errors import RegistrationError

__all__ = ["REASONS", "Suppression", "suppress", "suppressed", "suppression_reasons", "unsuppress"]

#: Each reason, and whether it suppresses ``required`` notifications too.
REASONS = {"bounced": True, "complained": True, "manual": True, "unsubscribed": False}
_CHUNK = 400  # (channel, address) pairs per IN (...) query, off PostgreSQL (two arrays there): 800 parameters
#: ``reason(channel, address, required)``: why not to send to that address, or ``None``.
SuppressionReason = Callable[[str, str, bool], "str | None"]


class Suppression(TidingsBase):
    """One address suppressed on one channel (``"email"``, ``"sms"``...): why, and since when."""

    __tablename__ = "tidings_suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # normalized: see normalized()
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<Suppression {self.channel} {self.address}: {self.reason} since {self.since:%Y-%m-%d %H:%M:%S}>"

    def describe(self) -> str:
        """The reason a skipped delivery records: ``suppressed: bounced 550 5.1.1 ... at 2026-...``."""
        detail = f" {self.detail}" if self.detail else ""
        return f"suppressed: {self.reason}{detail} at {self.since:%Y-%m-%d %H:%M:%S}Z"


def normalized(address: str) -> str:
    """``address`` as the list keys it: stripped, and lower-cased (mail servers match addresses so in practice)."""
    return address.strip().lower()


def suppress(session: Session, address: str, reason: str, *, channel: str = "email", detail: str = "",
             since: dt.datetime | None = None) -> Suppression:
    """Suppress ``address`` on ``channel`` for ``reason`` (again: the reason is updated); in the caller's transaction.

    Raises:
        RegistrationError: ``reason`` is not one of :data:`REASONS`, or ``address`` is empty.
    """
    if reason not in REASONS:
        raise RegistrationError(f"Suppression reason {reason!r} is not one of {', '.join(sorted(REASONS))}.")
    key = normalized(address)
    if not key:
        raise RegistrationError("Cannot suppress an empty address; give the address to suppress.")
    found = session.get(Suppression, (key, channel))
    if found is None:
        found = Suppression(address=key, channel=channel)
        session.add(found)
    found.reason, found.detail, found.since = reason, detail[:2000], since or utcnow()
    return found


def unsuppress(session: Session, address: str, *, channel: str = "email") -> Suppression | None:
    """Remove ``address`` from the list; return what was removed, ``None`` if it was not there."""
    found = session.get(Suppression, (normalized(address), channel))
    if found is not None:
        session.delete(found)
    return found


def suppressed(session: Session, address: str | None = None, *, channel: str | None = None) -> list[Suppression]:
    """The suppressions of ``address`` (every address when ``None``) on ``channel`` (every one), oldest first."""
    query = select(Suppression).order_by(Suppression.since, Suppression.address)
    if address is not None:
        query = query.where(Suppression.address == normalized(address))
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    return list(session.scalars(query))


# Built once: a fan-out reads its addresses' suppressions with it (building it each time cost more than the read).
_SUPPRESSED = select(Suppression).where(
    tuple_(Suppression.address, Suppression.channel).in_(bindparam("pairs", expanding=True)))
#: On PostgreSQL: the pairs as two arrays (of text of any length, not cut), one statement however many.
_PAIRS = (func.unnest(bindparam("addresses", type_=postgresql.ARRAY(String())),
                      bindparam("channels", type_=postgresql.ARRAY(String())))
          .table_valued("address", "channel").render_derived("pairs"))
_SUPPRESSED_PG = select(Suppression).where(
    tuple_(Suppression.address, Suppression.channel).in_(select(_PAIRS.c.address, _PAIRS.c.channel)))


def suppression_reasons(session: Session, addresses: Iterable[tuple[str, str]]) -> SuppressionReason:
    """Load the suppressions of ``(channel, address)`` pairs at once; return ``reason(channel, address, required)``.

    One query on PostgreSQL (the pairs in two arrays), one per 400 distinct pairs elsewhere, none
    for none: planning calls it once per fan-out batch.
    """
    wanted = sorted({(channel, normalized(address)) for channel, address in addresses if address})
    found: dict[tuple[str, str], Suppression] = {}
    if wanted and session.get_bind(Suppression).dialect.name == "postgresql":
        rows = session.scalars(_SUPPRESSED_PG, {"addresses": [address for _, address in wanted],
                                                "channels": [channel for channel, _ in wanted]})
        found.update(((row.channel, row.address), row) for row in rows)
    else:
        for start in range(0, len(wanted), _CHUNK):
            pairs = [(address, channel) for channel, address in wanted[start:start + _CHUNK]]
            for row in session.scalars(_SUPPRESSED, {"pairs": pairs}):
                found[(row.channel, row.address)] = row

    def reason(channel: str, address: str, required: bool) -> str | None:
        row = found.get((channel, normalized(address))) if found else None
        if row is None or (required and not REASONS.get(row.reason, True)):
            return None
        return row.describe()

    return reason
