"""``Channel``: the small interface every way of sending a notification implements."""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar

from ..recipients import Recipient

__all__ = ["Channel"]


class Channel:
    """Hands a rendered message to one recipient.

    Subclasses implement :meth:`send`. The contract: return once the message is accepted; raise
    :class:`~notifiers.TransientChannelError` when a retry later may succeed and
    :class:`~notifiers.PermanentChannelError` when it will not. ``key`` is the same every time the
    same delivery is attempted: use it as an idempotency key or a Message-ID.
    """

    #: The name that ``@on(..., channels=[...])`` uses for this kind of channel.
    kind: ClassVar[str] = "email"

    def send(self, message: Any, to: Recipient, *, key: str) -> None:
        """Send ``message`` to ``to``."""
        raise NotImplementedError(f"{type(self).__name__} must implement send(message, to, *, key).")

    def close(self) -> None:
        """Release connections or files; the default has nothing to release."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
