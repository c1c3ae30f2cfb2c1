"""``Email``: the content of one email notification, its MIME form and its bytes for SMTP."""

from __future__ import annotations

import email.policy
import hashlib
import random
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, ClassVar

from ..addresses import ADDRESS_FIELDS, address_field, one_mailbox, parse_mailboxes, text_field, wire_address
from ..errors import MessageError, TemplateError
from ..recipients import Recipient
from ..templates import Templates
from .base import Message, no_template_folder

__all__ = ["Email", "message_id"]


def _no_crlf(what: str, value: str) -> None:
    """Refuse CR or LF (header injection), and text that has no UTF-8 form."""
    if "\r" in value or "\n" in value:
        raise MessageError(f"{what} {value!r} contains CR or LF (header injection refused).")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise MessageError(f"{what} {value!r} cannot be written in UTF-8.") from None


_BODIES = (".txt", ".html")

# Header fields are always written by notifiers.addresses (folded, encoded where needed); a message whose
# bodies are 7bit (RFC 5322 lines of at most 998 octets of ASCII, no NUL) is then written directly.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_OWN = frozenset({"subject", "from", "to", "date", "message-id", "mime-version", "content-type",
                  "content-transfer-encoding"})
# Resent-Date and the like, and the fields receivers parse (RFC 8058, RFC 3834): written as given, printable ASCII.
_STRUCTURED = (frozenset(HeaderRegistry().registry) - ADDRESS_FIELDS - _OWN
               | {"list-unsubscribe", "list-unsubscribe-post", "auto-submitted"})
_BODY_LINE = 998
_PART = {subtype: f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
         .encode("ascii") for subtype in ("plain", "html")}
# By UTF-8 in header fields (an address's local part): our folded fields stay as they are written.
_POLICY = {utf8: email.policy.default.clone(refold_source="none", utf8=utf8) for utf8 in (False, True)}
_SMTP = {utf8: policy.clone(linesep="\r\n") for utf8, policy in _POLICY.items()}


@dataclass(frozen=True)
class Email(Message):
    """An email notification: a subject and a plain-text and/or HTML body.

    The body comes either inline (``text=``, ``html=``) or from templates: with
    ``template="loans/accepted"``, ``loans/accepted.txt`` and ``loans/accepted.html`` (either or
    both) are rendered with ``event``, ``recipient``, ``subject``, ``locale`` and ``context``. A
    recipient with a locale reads the most specific variant there is (``loans/accepted.de.txt``).
    Without ``subject=``, the subject is rendered from the most specific
    ``loans/accepted[.<locale>].subject.txt`` there is.

    Raises:
        MessageError: a CR or LF in the subject, sender or a header.
    """

    subject: str = ""
    text: str | None = None
    html: str | None = None
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    sender: str | None = None

    kind: ClassVar[str] = "email"

    def __post_init__(self) -> None:
        _no_crlf("Subject", self.subject)
        if self.sender is not None:
            _no_crlf("Sender", self.sender)
            one_mailbox(self.sender)
        for name, value in self.headers.items():
            _no_crlf(f"Header {name}", name)
            _no_crlf(f"Header {name}", value)
            _check_field(name, value)
        if not self.subject and self.template is None:
            raise MessageError("Email has no subject: give subject=, or a template with a .subject.txt variant.")

    def rendered(self, templates: Templates | None, variables: Mapping[str, Any], locale: str | None = None) -> Email:
        """This email with its template bodies (and subject, when it has none) rendered for ``locale``.

        Raises:
            TemplateError: no template folder, no ``.txt``/``.html`` variant, or a broken template.
            MessageError: the result has neither text nor HTML, or no subject.
        """
        if self.template is None:
            if self.text is None and self.html is None:
                raise MessageError(f"Email {self.subject!r} has neither text, html nor template.")
            return self
        if templates is None:
            raise no_template_folder(f"Email {self.subject!r}", self.template)
        base = templates.variant(self.template, locale, _BODIES)
        names = [f"{base}.txt", f"{base}.html"]
        found = [name for name in names if templates.exists(name)]
        if not found:
            raise TemplateError(
                f"Template {self.template!r} not found: neither {' nor '.join(names)} is in "
                f"{templates.directory}.",
                template=self.template,
            )
        values = {**variables, "locale": locale, "context": dict(self.context), **self.context}
        text = templates.render(names[0], values) if names[0] in found else self.text
        html = templates.render(names[1], values) if names[1] in found else self.html
        subject = self.subject or self._subject(templates, self.template, locale, values)
        return replace(self, subject=subject, text=text, html=html, template=None)

    def _subject(self, templates: Templates, template: str, locale: str | None, values: dict[str, Any]) -> str:
        name = f"{templates.variant(template, locale, ('.subject.txt',))}.subject.txt"
        if not templates.exists(name):
            raise MessageError(f"Email from template {self.template!r} has no subject: give subject=, "
                               f"or add {name} to {templates.directory}.")
        subject = re.sub(r"[ \t\r\n]+", " ", templates.render(name, values)).strip()  # one header line
        if not subject:
            raise MessageError(f"Template {name!r} rendered an empty subject.")
        return subject

    def _fields(self, to: Recipient, sender: str, key: str, reply_to: str | None) -> Iterator[tuple[str, str]]:
        """The header fields, folded and encoded (see notifiers.addresses): Subject, From, To, Date,
        Message-ID, ``Auto-Submitted: auto-generated`` (RFC 3834: auto-responders stay quiet), the
        channel's Reply-To, then ``headers`` (which may replace the last two)."""
        name, address = one_mailbox(self.sender or sender)
        own = {field.lower() for field in self.headers}
        yield "Subject", text_field("Subject", self.subject)
        yield "From", address_field("From", [(name, address)])
        yield "To", address_field("To", [(to.name, to.address)])
        yield "Date", format_datetime(datetime.now(timezone.utc))  # "+0000": RFC 5322 makes "GMT" obsolete
        yield "Message-ID", message_id(key, wire_address(address))
        if "auto-submitted" not in own:
            yield "Auto-Submitted", "auto-generated"
        if reply_to and "reply-to" not in own:
            yield "Reply-To", address_field("Reply-To", parse_mailboxes("Reply-To", reply_to))
        for field, value in self.headers.items():
            kind = field.lower()
            yield field, (address_field(field, parse_mailboxes(field, value)) if kind in ADDRESS_FIELDS
                          else value if kind in _STRUCTURED else text_field(field, value))

    def to_mime(self, to: Recipient, *, sender: str, key: str, reply_to: str | None = None) -> EmailMessage:
        """The MIME message for ``to``, with a Message-ID derived from the delivery ``key``.

        Its header fields are those :meth:`to_bytes` writes; the email package reads them back as they are.
        """
        fields = list(self._fields(to, sender, key, reply_to))
        return self._mime(fields, _POLICY[not all(value.isascii() for _, value in fields)])

    def _mime(self, fields: Iterable[tuple[str, str]], policy: email.policy.EmailPolicy[EmailMessage]) -> EmailMessage:
        mime = EmailMessage(policy=policy)
        for name, value in fields:
            mime.set_raw(name, value)
        if self.text is not None:
            mime.set_content(self.text)
            if self.html is not None:
                mime.add_alternative(self.html, subtype="html")
        elif self.html is not None:
            mime.set_content(self.html, subtype="html")
        else:
            raise MessageError(f"Email {self.subject!r} has no body; render it first.")
        return mime

    def to_bytes(self, to: Recipient, *, sender: str, key: str, eight_bit: bool = True,
                 reply_to: str | None = None) -> bytes:
        """The message for ``to`` as SMTP carries it (CRLF line endings, no Bcc), for ``smtplib.SMTP.sendmail``.

        Header fields are ASCII, except a non-ASCII local part of an address (a message that needs
        SMTPUTF8). A body that is not 7bit is written 8bit where ``eight_bit`` (a server offering
        8BITMIME), else quoted-printable or base64. 7bit bodies are written directly, an order of
        magnitude faster than building and flattening :meth:`to_mime`. ``reply_to`` is the
        channel's Reply-To, for an email that gives none in its headers.
        """
        fields = [(name, value) for name, value in self._fields(to, sender, key, reply_to)
                  if name.lower() not in ("bcc", "resent-bcc")]  # smtplib.SMTP.send_message leaves them out too
        utf8 = not all(value.isascii() for _, value in fields)
        data = self._plain_bytes(fields)
        if data is not None:
            return data
        policy = _SMTP[utf8] if eight_bit or utf8 else _SMTP[False].clone(cte_type="7bit")
        return self._mime(fields, policy).as_bytes()

    def _plain_bytes(self, fields: list[tuple[str, str]]) -> bytes | None:
        """The message written without the email package, or None when a body is not 7bit."""
        parts: list[tuple[str, bytes]] = []
        for subtype, body in (("plain", self.text), ("html", self.html)):
            if body is not None:
                data = _7bit(body)
                if data is None:
                    return None
                parts.append((subtype, data))
        if not parts:
            return None
        head = "\r\n".join([*(f"{name}: {value}" for name, value in fields), "MIME-Version: 1.0", ""]).encode()
        if len(parts) == 1:
            subtype, data = parts[0]
            return head + _PART[subtype] + data
        boundary = _boundary(*(data for _, data in parts))
        delimiter = b"\r\n--" + boundary
        return b"".join([head, b'Content-Type: multipart/alternative;\r\n boundary="', boundary, b'"\r\n',
                         *(delimiter + b"\r\n" + _PART[subtype] + data for subtype, data in parts),
                         delimiter, b"--\r\n"])


def _check_field(name: str, value: str) -> None:
    """Refuse a header the email writes itself, a bad field name, a bad address field or a non-ASCII structured one.

    Raises:
        MessageError: naming the header.
    """
    kind = name.lower()
    if kind in _OWN:
        raise MessageError(f"Header {name!r} is written by the Email itself (give subject=, sender=, text= or "
                           f"html= instead); remove it from headers=.")
    if not _FIELD_NAME.fullmatch(name):
        raise MessageError(f"Header name {name!r} is not printable ASCII without spaces or colons.")
    if kind in ADDRESS_FIELDS:
        parse_mailboxes(name, value)
    elif kind in _STRUCTURED and not (value.isascii() and value.isprintable()):
        raise MessageError(f"Header {name} {value!r} must be printable ASCII.")


def _7bit(body: str) -> bytes | None:
    """``body`` with CRLF line endings, or None when it is not 7bit (non-ASCII, NUL, a line over 998 octets)."""
    if not body.isascii() or "\0" in body:
        return None
    lines = body.encode("ascii").splitlines()  # on CR, LF and CRLF only, as the email package splits
    if max(map(len, lines), default=0) > _BODY_LINE:
        return None
    return b"\r\n".join(lines) + b"\r\n"


def _boundary(*bodies: bytes) -> bytes:
    """A multipart boundary shaped like the email package's, found in none of ``bodies``."""
    while True:
        boundary = b"===============%019d==" % random.randrange(sys.maxsize)
        if not any(boundary in body for body in bodies):
            return boundary


def message_id(key: str, sender: str) -> str:
    """A Message-ID that is the same every time the same delivery is sent, so duplicates can be dropped."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tidings.invalid"
    token = key if key.isalnum() else hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{token}@{domain}>"
