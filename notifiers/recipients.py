"""Recipients: objects with an ``email`` attribute, address strings, or lists of them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import inspect
from workflow import actor_reference

from .addresses import check_address, parse_mailboxes, shown
from .errors import MessageError, RecipientError

__all__ = ["Recipient", "recipients_of"]


@dataclass(frozen=True)
class Recipient:
    """One addressee of a notification.

    Attributes:
        address: the email address, checked for CR/LF and shape.
        name: the display name, if known.
        party: the party it was resolved from (e.g. ``"borrower"``), if any.
        ref: who this is, stably: ``"User:42"`` for a mapped row, else the address. Preferences
            and in-app inboxes are kept under it.
        locale: the recipient's language, e.g. ``"de"`` or ``"pt_BR"``, if known; templates
            have a variant per locale.
    """

    address: str
    name: str | None = None
    party: str | None = None
    ref: str = ""
    locale: str | None = None

    def __post_init__(self) -> None:
        check_address(self.address, self)
        object.__setattr__(self, "address", self.address.strip())
        if self.name is not None:
            if not isinstance(self.name, str) or any(c in self.name for c in "\r\n\0"):
                raise RecipientError(f"Recipient name {self.name!r} is not text without CR, LF or NUL.",
                                     recipient=self)
            try:
                self.name.encode()
            except UnicodeEncodeError:
                raise RecipientError(f"Recipient name {self.name!r} cannot be written in UTF-8.",
                                     recipient=self) from None
        if not self.ref:
            object.__setattr__(self, "ref", self.address.lower())

    def __str__(self) -> str:
        return shown(self.name, self.address)


def recipients_of(value: Any, party: str | None = None) -> list[Recipient]:
    """Normalise what a party resolved to into a list of recipients.

    Accepts ``None`` (nobody), a :class:`Recipient`, an object with an ``email`` attribute (and
    optional ``name`` and ``locale``), an address string (``"Ann <ann@example.com>"`` too), or a
    list of these.

    Raises:
        RecipientError: an element has no usable address.
    """
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [r for item in value for r in recipients_of(item, party)]
    if isinstance(value, Recipient):
        return [value if value.party == party or party is None else replace(value, party=party)]
    if isinstance(value, str):
        if "\r" in value or "\n" in value:
            raise RecipientError(f"Address {value!r} contains CR or LF (header injection refused).",
                                 recipient=value)
        try:
            [(name, address)] = parse_mailboxes("To", value) if "@" in value else ((None, value),)
        except (MessageError, ValueError):
            raise RecipientError(f"Party {party!r} gave {value!r}, which is not one address: give "
                                 f"'local@domain' or 'Name <local@domain>'.", recipient=value) from None
        return [Recipient(address, name, party)]
    if hasattr(value, "email"):
        return [Recipient(getattr(value, "email"), getattr(value, "name", None), party, ref=_row_ref(value),
                          locale=_locale(value))]
    raise RecipientError(
        f"Party {party!r} gave {value!r}, which is not a recipient: give an object with an 'email' "
        f"attribute, an address string, or a list of them.",
        recipient=value,
    )


def ref_of(recipient: object) -> str:
    """The ref preferences and inboxes are kept under: ``"User:42"`` for a mapped row, an address in lower case.

    Raises:
        RecipientError: ``recipient`` is empty or of another kind.
    """
    if isinstance(recipient, Recipient):
        return recipient.ref
    if isinstance(recipient, str) and recipient.strip():
        return recipient.strip().lower() if "@" in recipient else recipient.strip()
    ref = _row_ref(recipient)
    if not ref:
        raise RecipientError(f"{recipient!r} is not a recipient: give a mapped row, a Recipient, a ref or an address.",
                             recipient=recipient)
    return ref


def _row_ref(value: object) -> str:
    """``"Model:key"`` for a mapped row, ``""`` for anything else."""
    return (actor_reference(value) or "") if inspect(value, raiseerr=False) is not None else ""


def _locale(value: object) -> str | None:
    locale = getattr(value, "locale", None)
    return str(locale) if locale else None
