"""The recipient columns a delivery row and a digest row share, and the recipient they name."""

from __future__ import annotations

from typing import Protocol

from notifiers import Recipient
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["Addressed", "Addressee", "recipient_of"]


class Addressed:
    """Mixin of a table whose rows are sent to one recipient by one notifier through one channel."""

    notifier: Mapped[str] = mapped_column(String(255))
    party: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    recipient_ref: Mapped[str] = mapped_column(String(255), default="")
    locale: Mapped[str | None] = mapped_column(String(35))


class Addressee(Protocol):
    """What a claim holds of its recipient."""

    @property
    def name(self) -> str | None: ...
    @property
    def party(self) -> str: ...
    @property
    def recipient_ref(self) -> str: ...
    @property
    def locale(self) -> str | None: ...
    @property
    def address(self) -> str: ...


def recipient_of(held: Addressee, address_kind: str) -> Recipient:
    """Who ``held`` is sent to: its address is the one of its channel's kind."""
    return Recipient(name=held.name, party=held.party, ref=held.recipient_ref, locale=held.locale,
                     addresses={address_kind: held.address})
