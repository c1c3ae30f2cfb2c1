"""Addresses: checked, and written into header fields so that a standards parser reads back exactly them.

The email package folds a display name that needs both encoding and quoting wrongly: ``Zoë,
<victim@evil.example>`` came out as an encoded ``Zoë,`` followed by a bare
``<victim@evil.example>``, which readers take for the address. So Tidings writes every header
field itself: a display name of plain words as it is; another printable ASCII name as a quoted
string; any other (non-ASCII, control characters, an encoded-word lookalike ``=?...?=``) as one
RFC 2047 encoded word; an unstructured field (Subject) that is not plain ASCII as encoded words of
whole characters. A domain travels in ASCII (IDNA A-labels); only a non-ASCII local part needs
SMTPUTF8.
"""

from __future__ import annotations

import base64
import email.policy
import re
from collections.abc import Iterable
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address
from functools import lru_cache

import idna

from .errors import MessageError, RecipientError

__all__ = ["ADDRESS_FIELDS", "address_field", "check_address", "display_name", "needs_smtputf8", "one_mailbox",
           "parse_mailboxes", "shown", "text_field", "wire_address"]

ADDRESS_FIELDS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender",
                            "resent-to", "resent-cc", "resent-bcc"})
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_WORDS = re.compile(rf"{_ATOM}(?: {_ATOM})*")
_LINE = 78  # RFC 5322's recommended line length
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# A plain ASCII dot-atom address, which the parser below always accepts as it is: most addresses.
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_BLANKS = re.compile(r"[ \t]\s*")  # a space or tab and any whitespace after it, as a parser's FWS takes it
_LONGEST_WORD = 720  # UTF-8 bytes of one encoded display name: 960 base64 characters, within a 998-octet line
_EW_BYTES = 36  # UTF-8 bytes per encoded word: 48 base64 characters, 60 with its =?utf-8?b?...?= frame


def check_address(address: object, given: object = None) -> None:
    """Refuse an empty, CR/LF-carrying, unprintable or malformed address, or one whose domain has no ASCII form.

    Raises:
        RecipientError: naming the address and what is wrong.
    """
    if not isinstance(address, str) or not address.strip():
        raise RecipientError(f"Recipient {given!r} has no email address.", recipient=given)
    if "\r" in address or "\n" in address:
        raise RecipientError(f"Address {address!r} contains CR or LF (header injection refused).",
                             recipient=given)
    if not address.isprintable():
        raise RecipientError(f"Address {address!r} contains control or unprintable characters.", recipient=given)
    problem = _shape_problem(address.strip())
    if problem is not None:
        raise RecipientError(f"Address {address!r} {problem}", recipient=given)


@lru_cache(maxsize=4096)
def _shape_problem(address: str) -> str | None:
    """What is wrong with the shape or the domain of ``address``, or ``None``; remembered per address.

    The parse costs about 0.1 ms. An address is checked when its recipient is resolved and again
    when the delivery read back from its row is sent, usually by the same process soon after: the
    second check is then a look-up.
    """
    if _PLAIN.fullmatch(address):
        return None
    local, at, domain = address.rpartition("@")
    probe = _NON_ASCII.sub("u", local) + at + domain  # RFC 6532: UTF-8 wherever ASCII letters may be
    try:
        parsed = Address(addr_spec=probe)
    except Exception as error:  # the email package's parser raises assorted errors on broken input ('0@[')
        return f"is malformed{_reason(error)}."
    if not at or parsed.addr_spec != probe:
        return "is malformed: write it as local-part@domain, without comments or needless quotes."
    try:
        _ascii_domain(parsed.domain)
    except idna.IDNAError as error:
        return f"has a domain that is not a valid internationalized domain name ({error})."
    return None


def _reason(error: Exception) -> str:
    """``": <the parser's reason>"``, or nothing when the parser failed without one (an IndexError...)."""
    return f": {error}" if isinstance(error, (HeaderParseError, ValueError)) else ""


def wire_address(address: str) -> str:
    """``address`` as SMTP and header fields carry it: its domain in ASCII (IDNA), the local part as it is."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{_ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """Whether ``address`` can only travel with SMTPUTF8 (RFC 6531): a local part that is not ASCII."""
    return not address.rpartition("@")[0].isascii()


@lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str:
    if domain.isascii():
        return domain
    return idna.encode(domain, uts46=True).decode("ascii")


def shown(name: str | None, address: str) -> str:
    """``Name <address>`` for people and logs (RFC 6532: UTF-8 as it is, the name quoted when it must be)."""
    return str(Address(display_name=name or "", addr_spec=address))


@lru_cache(maxsize=256)
def parse_mailboxes(field: str, value: str) -> tuple[tuple[str | None, str], ...]:
    """The (display name, address) pairs of an address field's ``value``, read as a standards parser reads it.

    Raises:
        MessageError: the value is not a plain list of mailboxes (a defect, a group, no address), or an
            address in it is refused.
    """
    try:
        header = email.policy.default.header_factory(field, value)
    except Exception as error:  # the email package's parser raises assorted errors on broken input
        raise MessageError(f"{field} {value!r} is not a list of addresses{_reason(error)}.") from None
    defects = [defect for defect in header.defects if not isinstance(defect, NonASCIILocalPartDefect)]
    if defects or not header.addresses or any(group.display_name is not None for group in header.groups):
        found = "; ".join(str(defect) for defect in defects) or "no address, or a group"
        raise MessageError(f"{field} {value!r} is not a list of addresses ({found}); write it as "
                           f"'Name <local@domain>', names with commas or quotes in double quotes.")
    mailboxes = tuple((address.display_name or None, address.addr_spec) for address in header.addresses)
    for _, address in mailboxes:
        try:
            check_address(address)
        except RecipientError as error:
            raise MessageError(f"{field} {value!r}: {error}") from None
    return mailboxes


def one_mailbox(value: str) -> tuple[str | None, str]:
    """The one (display name, address) a sender such as ``"Shop <shop@example.com>"`` names.

    Raises:
        MessageError: it names none, several, or a refused address.
    """
    mailboxes = parse_mailboxes("From", value)
    if len(mailboxes) != 1:
        raise MessageError(f"Sender {value!r} names {len(mailboxes)} addresses; give one.")
    return mailboxes[0]


def address_field(field: str, mailboxes: Iterable[tuple[str | None, str]]) -> str:
    """The value of an address field (To, From, Reply-To, Cc...) for ``mailboxes``, folded after ``field: ``."""
    tokens: list[str] = []
    for name, address in mailboxes:
        if tokens:
            tokens[-1] += ","
        words = _display_name(name)
        tokens += [*words, f"<{wire_address(address)}>"] if words else [wire_address(address)]
    return _fold(field, tokens)


def text_field(field: str, text: str) -> str:
    """The value of an unstructured field (Subject, X-...) for ``text``, folded after ``field: ``.

    Printable ASCII that folds at single spaces is written as it is; anything else as encoded words.
    """
    if text.isascii() and text.isprintable() and "=?" not in text and text == text.strip(" "):
        if len(field) + 2 + len(text) <= _LINE:
            return text
        words = text.split(" ")
        if all(words) and len(field) + 2 + len(words[0]) <= _LINE and max(map(len, words)) < _LINE:
            return _fold(field, words)
    return _fold(field, _encoded_words(text))


def display_name(name: str | None) -> str:
    """The display name as header fields carry it: a run of whitespace that begins with a space or tab
    as one space, none at either end.

    A standards parser reads whitespace inside an encoded word so (Python's email package does), and
    outside one as one space: written so, the name reads back the same from any form.
    """
    return _BLANKS.sub(" ", name or "").strip(" ")


def _display_name(name: str | None) -> list[str]:
    """The tokens of a display name: its words, one quoted string, or one encoded word.

    One encoded word however long (up to a line): RFC 2047 allows 75 characters, but parsers that
    insert a space between two encoded words of a phrase (Python's email package does) would read
    a split name wrongly, and common readers decode longer ones. Only a name too long for a line
    is split (then readers that follow RFC 2047 read it exactly).
    """
    name = display_name(name)
    if not name:
        return []
    if "=?" not in name and name.isascii() and name.isprintable():
        if _WORDS.fullmatch(name):
            return name.split(" ")
        return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(name, _LONGEST_WORD)


def _encoded_words(text: str, limit: int = _EW_BYTES) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words of whole characters, each of at most ``limit`` UTF-8 bytes."""
    chunks: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        length = len(char.encode())
        if chunk and size + length > limit:
            chunks.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    chunks.append("".join(chunk))
    return [f"=?utf-8?b?{base64.b64encode(part.encode()).decode('ascii')}?=" for part in chunks]


def _fold(field: str, tokens: list[str]) -> str:
    """``tokens`` joined by spaces, folded (CRLF, space) where a line would pass 78 characters."""
    lines = [tokens[0]]
    used = len(field) + 2 + len(tokens[0])
    for token in tokens[1:]:
        if used + 1 + len(token) <= _LINE:
            lines[-1] += " " + token
            used += 1 + len(token)
        else:
            lines.append(token)
            used = 1 + len(token)
    return "\r\n ".join(lines)
