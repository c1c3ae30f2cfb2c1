"""The one message of a digest: the notifier's :meth:`~notifiers.Notifier.digest`, or a plain list.

Each event's own message is composed first (the notifier's method, as if sent alone); the
digest receives the events and those messages. The default digest lists them: an email whose
subject counts the updates and whose text has one line per event (its subject, then its
first line of text), or a text of one line per event; a digest of one event is its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import unsubscribe_links as unsubscribe
from .errors import MessageError
from .event import Event
from .messages import Email, Message, Text
from .recipients import Recipient
from .registry import Registration

__all__ = ["compose_digest", "plain_list"]


def plain_list(events: Sequence[Event], messages: Sequence[Message]) -> Message:
    """The default digest: a line per message, an email if all are emails, else a text; one message as it is."""
    if len(messages) == 1:
        return messages[0]
    if all(isinstance(message, Email) for message in messages):
        emails = [m for m in messages if isinstance(m, Email)]
        lines = [f"- {m.subject}" + (f": {_first_line(m.text)}" if m.text else "") for m in emails]
        subject = emails[0].subject if len(emails) == 1 else f"{len(emails)} updates: {emails[0].subject}"
        return Email(subject=subject, text="\n".join(lines) + "\n")
    texts = [m.body if isinstance(m, Text) and m.body else getattr(m, "subject", "") for m in messages]
    return Text(body="\n".join(f"- {_first_line(text)}" for text in texts))


def compose_digest(registration: Registration, events: Sequence[Event], recipient: Recipient, *,
                   channel: str | None) -> Message | None:
    """The rendered digest of ``events`` for ``recipient``: ``None`` when the notifier sends nothing.

    Raises:
        TemplateError, MessageError: a message cannot be built.
    """
    notifier = registration.notifier()
    link = unsubscribe.link_for(registration, recipient, channel)
    messages: list[Message] = []
    for event in events:
        message = notifier.compose(registration.method, event, recipient, unsubscribe_url=link)
        if message is not None:
            messages.append(message)
    if not messages:
        return None
    digest: Any = notifier.digest(list(events), recipient, messages)
    if digest is None:
        return None
    if not isinstance(digest, Message):
        raise MessageError(f"{type(notifier).__qualname__}.digest returned {type(digest).__name__}; return an Email, "
                           f"a Text or None.")
    variables = {"events": list(events), "messages": messages, "recipient": recipient, "unsubscribe_url": link}
    return unsubscribe.with_link(digest.rendered(notifier.template_set(), variables, recipient.locale), link)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
