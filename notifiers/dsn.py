"""Delivery status notifications (RFC 3464): bounces read from mail, hard ones put on the suppression list.

A relay that cannot deliver a message sends a report back to the envelope sender: a
``multipart/report; report-type=delivery-status`` whose ``message/delivery-status`` part has
one group of fields per recipient (``Final-Recipient``, ``Action``, ``Status``,
``Diagnostic-Code``). :func:`read_dsn` reads them and never raises, whatever the bytes;
:func:`record_dsn` suppresses the recipients that bounced hard (``Action: failed`` with a
``5.x.x`` status) as ``bounced``. A soft bounce (``4.x.x``, ``Action: delayed``) suppresses
nothing: the relay is still trying, and a later attempt may succeed.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from sqlalchemy.orm import Session

from .suppressions import Suppression, suppress

__all__ = ["Bounce", "read_dsn", "record_dsn"]


@dataclass(frozen=True)
class Bounce:
    """One recipient's line of a delivery status notification.

    Attributes:
        recipient: the address (``Final-Recipient``, or ``Original-Recipient``), lower-cased.
        action: ``failed``, ``delayed``, ``delivered``, ``relayed`` or ``expanded``.
        status: the RFC 3463 status code, such as ``5.1.1``.
        diagnostic: the remote server's reply (``Diagnostic-Code``), ``""`` when none.
    """

    recipient: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def hard(self) -> bool:
        """Whether the address is refused for good: ``Action: failed`` with a ``5.x.x`` status."""
        return self.action == "failed" and self.status.startswith("5")

    def detail(self) -> str:
        """What the suppression records: the status and the server's reply, e.g. ``550 5.1.1 user unknown``."""
        return " ".join(part for part in (self.status, self.diagnostic) if part)[:500]


def read_dsn(raw: bytes | str | Message) -> list[Bounce]:
    """The recipients a delivery status notification reports on; ``[]`` for any other (or malformed) mail."""
    try:
        message = raw if isinstance(raw, Message) else (
            email.message_from_bytes(raw, policy=email.policy.compat32) if isinstance(raw, bytes)
            else email.message_from_string(raw, policy=email.policy.compat32))
        return [bounce for part in message.walk() if part.get_content_type() == "message/delivery-status"
                for bounce in _bounces(part)]
    except Exception:  # a report is mail from anyone: whatever is wrong with it, it reports nothing
        return []


def record_dsn(session: Session, raw: bytes | str | Message) -> list[Suppression]:
    """Suppress the recipients a report says bounced hard (in the caller's transaction); return them."""
    return [suppress(session, bounce.recipient, "bounced", detail=bounce.detail())
            for bounce in read_dsn(raw) if bounce.hard]


def _bounces(part: Message) -> list[Bounce]:
    """The per-recipient groups of a ``message/delivery-status`` part (the first group is the message's own)."""
    payload = part.get_payload()
    found = []
    for group in payload if isinstance(payload, list) else []:  # the per-message group names no recipient
        if not isinstance(group, Message):
            continue
        recipient = _address(str(group.get("Final-Recipient") or group.get("Original-Recipient") or ""))
        action = str(group.get("Action") or "").strip().lower()
        status = str(group.get("Status") or "").strip().split(" ")[0]
        if recipient and action:
            diagnostic = " ".join(str(group.get("Diagnostic-Code") or "").split())
            found.append(Bounce(recipient, action, status, diagnostic.partition(";")[2].strip() or diagnostic))
    return found


def _address(field: str) -> str:
    """``rfc822; Ann@Example.com`` -> ``ann@example.com``; ``""`` when it names no address."""
    kind, _, address = field.partition(";")
    address = (address if _ else kind).strip().strip("<>").strip().lower()
    return address if "@" in address and len(address) <= 320 else ""
