"""``InAppChannel``: writes each notification into the recipient's inbox in the application's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import TransientChannelError
from ..inbox import InboxItem
from ..messages import Email, Message
from ..recipients import Recipient
from .base import Channel

if TYPE_CHECKING:
    from ..event import Event

__all__ = ["InAppChannel"]


class InAppChannel(Channel):
    """Adds an :class:`~notifiers.InboxItem` for the recipient; read it back with :class:`~notifiers.Inbox`.

    The item's key is the delivery key, so a delivery attempted twice leaves one item.

    Args:
        bind: the application's engine (or, in tests, a connection whose transaction it joins).
    """

    accepts: ClassVar[tuple[type[Message], ...]] = (Email,)

    kind = "inapp"

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Store ``message`` (its subject, text and HTML) in the inbox of ``to``.

        Raises:
            TransientChannelError: the database refused the write for a reason other than a
                duplicate (retried later).
        """
        row = {
            "key": key, "recipient": to.ref, "party": to.party, "subject": str(getattr(message, "subject", message)),
            "text": getattr(message, "text", None), "html": getattr(message, "html", None),
            "model": event.model if event else None, "record_key": event.key if event else None,
            "trigger": event.trigger if event else None, "transition_id": event.transition_id if event else None,
        }
        try:
            self._insert(row)
        except IntegrityError:
            return  # this delivery's item is already there: an earlier attempt wrote it
        except SQLAlchemyError as error:
            raise TransientChannelError(f"In-app inbox write failed: {type(error).__name__}: {error}",
                                        channel=self.kind) from error

    def _insert(self, row: dict[str, Any]) -> None:
        statement = insert(InboxItem).values(**row)
        if isinstance(self.bind, Engine):
            with self.bind.begin() as connection:
                connection.execute(statement)
        else:
            with self.bind.begin_nested():
                self.bind.execute(statement)
