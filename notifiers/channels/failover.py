"""``FailoverChannel``: providers of one kind (two SMTP relays...) tried in order, the next when one fails for now.

Within one attempt of a delivery each provider is tried once, in order: a transient failure of
one (a 4xx reply, a refused or dropped connection, a timeout) moves to the next at once, and
the first to accept the message sent it. Only when every provider failed for now is the attempt
transient, and the retry policy of the runtime decides when to try again (from the first
provider: a primary that is back is used again). A permanent failure (a 5xx refusal of the
recipient) ends the attempt at once: another relay would refuse the same address.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ChannelConfigurationError, TransientChannelError
from ..recipients import Recipient
from .base import Channel

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ..event import Event

__all__ = ["FailoverChannel", "provider_of"]

_log = logging.getLogger(__name__)


class FailoverChannel(Channel):
    """Send through the first of ``providers`` that accepts the message.

    Args:
        providers: the channels, in order of preference; of one address kind, two at least.
        names: what the delivery log records as each one's ``provider`` (default: its repr,
            such as ``SMTPChannel('relay1.example.com', 587)``, cut to 200 characters).
        kind: the channel's name (default: the first provider's).

    Raises:
        ChannelConfigurationError: fewer than two providers, of different address kinds, or
            ``names`` not one per provider.
    """

    def __init__(self, providers: Sequence[Channel], *, names: Sequence[str] | None = None,
                 kind: str | None = None) -> None:
        if len(providers) < 2:
            raise ChannelConfigurationError(f"FailoverChannel needs two providers at least, not {len(providers)}.")
        kinds = {provider.address_kind for provider in providers}
        if len(kinds) > 1:
            raise ChannelConfigurationError(f"FailoverChannel providers send to different addresses: {sorted(kinds)}.")
        if names is not None and len(names) != len(providers):
            raise ChannelConfigurationError(f"FailoverChannel: {len(names)} names for {len(providers)} providers.")
        self.providers = list(providers)
        self.names = [name[:200] for name in names or [repr(provider) for provider in providers]]
        self.kind = kind or providers[0].kind
        self.address_kind = providers[0].address_kind
        self.accepts = providers[0].accepts  # type: ignore[misc]  # an instance's, as a WebhookChannel's kind
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"FailoverChannel([{', '.join(self.names)}])"

    @property
    def last_provider(self) -> str | None:
        """The provider this thread's last send ended with: the one that sent it, or the last that failed."""
        return getattr(self._local, "provider", None)

    def send(self, message: Any, to: Recipient, *, key: str, event: Event | None = None) -> None:
        """Send through each provider in turn until one accepts; a permanent failure ends it at once.

        Raises:
            TransientChannelError: every provider failed for now, each named with its error.
            PermanentChannelError: a provider refused the message for good.
        """
        failures: list[str] = []
        asked: list[float] = []
        for provider, name in zip(self.providers, self.names):
            self._local.provider = name
            try:
                provider.send(message, to, key=key, event=event)
                return
            except TransientChannelError as error:
                _log.warning("Provider %s of channel %r failed for now (%s); %s.", name, self.kind, error,
                             "trying the next" if name != self.names[-1] else "no provider is left")
                failures.append(f"{name}: {error}")
                asked += [error.retry_after] if error.retry_after is not None else []
        raise TransientChannelError(f"All {len(self.providers)} providers failed for now: {'; '.join(failures)}",
                                    channel=self.kind, retry_after=min(asked) if asked else None)

    def attach(self, bind: Engine | Connection) -> None:
        """Give each provider the database, as the runtime gives a single channel."""
        for provider in self.providers:
            provider.attach(bind)

    def close(self) -> None:
        """Close every provider."""
        for provider in self.providers:
            provider.close()


def provider_of(channel: Channel | None) -> str | None:
    """Which provider of a :class:`FailoverChannel` this thread's last send ended with; ``None`` for another channel."""
    return channel.last_provider if isinstance(channel, FailoverChannel) else None
