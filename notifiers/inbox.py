"""The in-app inbox: notifications kept in the application's database, read in its pages.

:class:`~notifiers.InAppChannel` writes one :class:`InboxItem` per delivery (the delivery key is
unique, so a retried delivery writes nothing twice). :class:`Inbox` is what a web page uses:
the newest items of one recipient, the unread count, and marking items read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import DateTime, Index, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import Id, TidingsBase, utcnow

from .recipients import ref_of

__all__ = ["Inbox", "InboxItem"]



class InboxItem(TidingsBase):
    """One notification in one recipient's inbox; ``read_at`` is empty until it is read."""

    __tablename__ = "tidings_inbox"
    __table_args__ = (Index("ix_tidings_inbox_recipient", "recipient", "id"),
                      Index("ix_tidings_inbox_unread", "recipient", "read_at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    recipient: Mapped[str] = mapped_column(String(255))
    party: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    record_key: Mapped[str | None] = mapped_column(String(128))
    trigger: Mapped[str | None] = mapped_column(String(128))
    transition_id: Mapped[int | None] = mapped_column(Id)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def unread(self) -> bool:
        """Whether the recipient has not read it yet."""
        return self.read_at is None

    def __repr__(self) -> str:
        return f"<InboxItem {self.id} for {self.recipient}: {self.subject!r}{'' if self.read_at else ' (unread)'}>"


class Inbox:
    """One recipient's inbox, in the caller's session (and transaction: commit to keep a change).

    Args:
        session: the application's session.
        recipient: a mapped row (e.g. the current ``User``), a :class:`~notifiers.Recipient`,
            or its ref (``"User:42"``) or address.

    Raises:
        RecipientError: ``recipient`` is of no known kind.
    """

    def __init__(self, session: Session, recipient: object) -> None:
        self.session = session
        self.recipient = ref_of(recipient)

    def items(self, *, unread_only: bool = False, limit: int = 20, before: int | None = None) -> list[InboxItem]:
        """The newest items first; ``before`` (an item id) gives the next page."""
        query = select(InboxItem).where(InboxItem.recipient == self.recipient)
        if unread_only:
            query = query.where(InboxItem.read_at.is_(None))
        if before is not None:
            query = query.where(InboxItem.id < before)
        return list(self.session.scalars(query.order_by(InboxItem.id.desc()).limit(limit)))

    def unread_count(self) -> int:
        """How many items are not read yet (the badge on the bell)."""
        return int(self.session.scalar(select(func.count()).select_from(InboxItem).where(
            InboxItem.recipient == self.recipient, InboxItem.read_at.is_(None))) or 0)

    def mark_read(self, ids: Iterable[int] | None = None) -> int:
        """Mark these items (or, with ``None``, every item) read; return how many changed.

        Items of other recipients are never touched, whatever ids are given.
        """
        return self._mark(ids, utcnow())

    def mark_unread(self, ids: Iterable[int]) -> int:
        """Mark these items unread again; return how many changed."""
        return self._mark(ids, None)

    def _mark(self, ids: Iterable[int] | None, read_at: dt.datetime | None) -> int:
        query = update(InboxItem).where(InboxItem.recipient == self.recipient)
        query = query.where(InboxItem.read_at.is_(None) if read_at else InboxItem.read_at.is_not(None))
        if ids is not None:
            query = query.where(InboxItem.id.in_(list(ids)))
        result = self.session.execute(query.values(read_at=read_at).execution_options(synchronize_session="fetch"))
        return int(getattr(result, "rowcount", 0) or 0)
