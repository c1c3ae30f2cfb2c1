"""Recipients: objects with an ``email`` and/or ``phone`` attribute, address strings, or lists of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import inspect
from workflow import actor_reference

from .addresses import check_address, parse_mailboxes, shown
from .errors import MessageError, RecipientError
from .timing import zone

__all__ = ["Recipient", "recipients_of"]


@dataclass(frozen=True)
class Recipient:
    """One addressee of a notification, with an address per channel kind.

    ``Recipient("ann@example.com")`` is the email shorthand; a recipient reached otherwise gives
    ``addresses={"phone": "+49 30 1234567"}`` (with or without an email). A channel takes the
    address of its kind (:attr:`~notifiers.Channel.address_kind`) with :meth:`address_for`.

    Attributes:
        address: the email address (``""`` when there is none), checked for CR/LF and shape.
        name: the display name, if known.
        party: the party it was resolved from (e.g. ``"borrower"``), if any.
        ref: who this is, stably: ``"User:42"`` for a mapped row, else the (first) address.
            Preferences and in-app inboxes are kept under it.
        locale: the recipient's language, e.g. ``"de"`` or ``"pt_BR"``, if known; templates
            have a variant per locale.
        addresses: every address by kind (``"email"``, ``"phone"``, a chat id...), the email included.
        timezone: the recipient's IANA time zone (``"Europe/Berlin"``), for quiet hours; ``None``: UTC.

    Raises:
        RecipientError: no address at all, or one that is malformed or carries CR/LF; an unknown time zone.
    """

    address: str = ""
    name: str | None = None
    party: str | None = None
    ref: str = ""
    locale: str | None = None
    addresses: Mapping[str, str] = field(default_factory=dict, hash=False)
    timezone: str | None = None

    def __post_init__(self) -> None:
        if self.timezone is not None:
            try:
                zone(self.timezone)
            except RecipientError as error:
                raise RecipientError(f"Recipient {self.address or dict(self.addresses)!r}: {error}",
                                     recipient=self.address or self.addresses) from None
        addresses = _checked_addresses(self.address, self.addresses, self)
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "address", addresses.get("email", ""))
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
            object.__setattr__(self, "ref", self.address.lower() or next(iter(addresses.values())))

    def address_for(self, kind: str) -> str | None:
        """The address of ``kind`` (``"email"``, ``"phone"``...), or ``None`` when this recipient has none."""
        return self.addresses.get(kind)

    def __str__(self) -> str:
        if self.address:
            return shown(self.name, self.address)
        first = next(iter(self.addresses.values()))
        return f"{self.name} ({first})" if self.name else first


def _checked_addresses(address: object, addresses: Mapping[str, object], given: object) -> dict[str, str]:
    """``addresses`` with the email shorthand merged in, each checked for its kind (a phone is normalised)."""
    merged = dict(addresses)
    if address:
        if merged.get("email", address) != address:
            raise RecipientError(f"Recipient {given!r} gives two email addresses, {address!r} and "
                                 f"{merged['email']!r}: give one.", recipient=given)
        merged["email"] = address
    if not merged:
        check_address(address, given)  # raises: no address at all
    checked: dict[str, str] = {}
    for kind, value in merged.items():
        if kind == "email":
            check_address(value, given)
            checked[kind] = str(value).strip()
        elif kind == "phone":
            checked[kind] = _phone(value, given)
        else:
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise RecipientError(f"Recipient {given!r}: {kind} address {value!r} is not printable text.",
                                     recipient=given)
            checked[kind] = value.strip()
    return checked


def _phone(value: object, given: object) -> str:
    """A phone number without its separators (``"+49 30 123-4567"`` -> ``"+49301234567"``).

    Raises:
        RecipientError: anything but an optional ``+`` and 3 to 20 digits, with spaces, dots, dashes or brackets.
    """
    digits = re.sub(r"[ .()\-]", "", value) if isinstance(value, str) else ""
    if not re.fullmatch(r"\+?[0-9]{3,20}", digits):
        raise RecipientError(f"Recipient {given!r}: phone {value!r} is not a phone number: give digits, "
                             f"with a leading + for the country code, e.g. '+49 30 1234567'.", recipient=given)
    return digits


def recipients_of(value: Any, party: str | None = None) -> list[Recipient]:
    """Normalise what a party resolved to into a list of recipients.

    Accepts ``None`` (nobody), a :class:`Recipient`, an object with an ``email`` and/or a ``phone``
    attribute (and optional ``name``, ``locale`` and ``timezone``), an address string (``"Ann <ann@example.com>"`` too), or a
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
    if hasattr(value, "email") or hasattr(value, "phone"):
        found = {kind: getattr(value, kind) for kind in ("phone",) if getattr(value, kind, None)}
        return [Recipient(getattr(value, "email", None) or "", getattr(value, "name", None), party,
                          ref=_row_ref(value), locale=_locale(value), addresses=found,
                          timezone=_zone_name(getattr(value, "timezone", None)))]
    raise RecipientError(
        f"Party {party!r} gave {value!r}, which is not a recipient: give an object with an 'email' "
        f"or 'phone' attribute, an address string, or a list of them.",
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


def _zone_name(value: object) -> str | None:
    """A row's time zone as its IANA name: a string, or a ``ZoneInfo`` (its key); ``None`` when it has none."""
    return str(value) if value else None


def _locale(value: object) -> str | None:
    locale = getattr(value, "locale", None)
    return str(locale) if locale else None
