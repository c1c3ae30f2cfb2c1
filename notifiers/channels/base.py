"""``Channel``: the small interface every way of sending a notification implements."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..messages import Message
from ..recipients import Recipient

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ..event import Event

__all__ = ["Channel"]


class Channel:
    """Hands a rendered message to one recipient.

    Subclasses implement :meth:`send`. The contract: return once the message is accepted; raise
    :class:`~notifiers.TransientChannelError` when a retry later may succeed (with ``retry_after``
    when the other side said when) and :class:`~notifiers.PermanentChannelError` when it will not.
    ``key`` is the same every time the same delivery is attempted: use it as an idempotency key or
    a Message-ID. ``event`` is the transition the message is about (``None`` when a message is sent
    by hand), for channels whose payload carries it, such as webhooks.
    """

    #: The name that ``@on(..., channels=[...])`` uses for this kind of channel. A class default
    #: that an instance may override (one ``WebhookChannel`` per endpoint, each its own kind).
    kind: str = "email"
    #: The kind of recipient address it sends to (:meth:`~notifiers.Recipient.address_for`):
    #: ``"email"``, ``"phone"``... A recipient without one is skipped on this channel.
    address_kind: str = "email"
    #: The kinds of message it sends (``(Email,)``, ``(Text,)``); a notifier declared to return
    #: another kind for this channel is refused when both are known (see ``Registry.expect_channels``).
    accepts: ClassVar[tuple[type[Message], ...]] = (Message,)

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Send ``message`` to ``to``."""
        raise NotImplementedError(f"{type(self).__name__} must implement send(message, to, *, key, event=None).")

    def attach(self, bind: Engine | Connection) -> None:
        """Called by the worker runtime with the application's database before the first send, for a
        channel that keeps state there (a webhook's disabled endpoint); the default keeps none."""

    def close(self) -> None:
        """Release connections or files; the default has nothing to release."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
