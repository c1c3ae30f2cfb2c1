"""``Email``: the content of one email notification, its MIME form and its bytes for SMTP."""

from __future__ import annotations

import email.policy
import hashlib
import random
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from .errors import MessageError, TemplateError
from .recipients import Recipient
from .templates import Templates

__all__ = ["Email", "message_id"]


def _no_crlf(what: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise MessageError(f"{what} {value!r} contains CR or LF (header injection refused).")


_BODIES = (".txt", ".html")

# What to_bytes writes directly: header fields of printable ASCII without encoded words, From and To
# as `Name Name <addr>` or a bare address of plain atoms, extra headers the email package gives no
# structure to, and 7bit bodies (RFC 5322 lines of at most 998 octets, no NUL).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MAILBOX = re.compile(rf"(?:{_ATEXT}(?: {_ATEXT})* <{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*>"
                      rf"|{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)")
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_STRUCTURED = frozenset(HeaderRegistry().registry)
_LINE, _BODY_LINE = 78, 998
_PART = {subtype: f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
         .encode("ascii") for subtype in ("plain", "html")}


@dataclass(frozen=True)
class Email:
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

    def __post_init__(self) -> None:
        _no_crlf("Subject", self.subject)
        if self.sender is not None:
            _no_crlf("Sender", self.sender)
        for name, value in self.headers.items():
            _no_crlf(f"Header {name}", name)
            _no_crlf(f"Header {name}", value)
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
            raise TemplateError(
                f"Email {self.subject!r} uses template {self.template!r}, but its notifier declares no "
                f"templates folder (set `templates = \"templates\"` on the Notifier).",
                template=self.template,
            )
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

    def _fields(self, to: Recipient, sender: str, key: str) -> Iterator[tuple[str, str]]:
        """The header fields of to_mime and to_bytes alike (one list, so they cannot drift): Subject, From,
        To, Date, Message-ID, then ``headers``."""
        yield "Subject", self.subject
        yield "From", self.sender or sender
        yield "To", str(to)
        yield "Date", format_datetime(datetime.now(timezone.utc))  # "+0000": RFC 5322 makes "GMT" obsolete
        yield "Message-ID", message_id(key, self.sender or sender)
        yield from self.headers.items()

    def to_mime(self, to: Recipient, *, sender: str, key: str) -> EmailMessage:
        """The MIME message for ``to``, with a Message-ID derived from the delivery ``key``."""
        mime = EmailMessage()
        for name, value in self._fields(to, sender, key):
            mime[name] = value
        if self.text is not None:
            mime.set_content(self.text)
            if self.html is not None:
                mime.add_alternative(self.html, subtype="html")
        elif self.html is not None:
            mime.set_content(self.html, subtype="html")
        else:
            raise MessageError(f"Email {self.subject!r} has no body; render it first.")
        return mime

    def to_bytes(self, to: Recipient, *, sender: str, key: str) -> bytes:
        """The message for ``to`` as SMTP carries it (CRLF line endings, no Bcc), for ``smtplib.SMTP.sendmail``.

        A plain ASCII email is written directly, an order of magnitude faster than building and
        flattening :meth:`to_mime`; any other (non-ASCII, a quoted name, a word too long to fold, an
        address or MIME field among ``headers``) is :meth:`to_mime` flattened, with the same meaning.
        """
        data = self._plain_bytes(to, sender, key)
        if data is not None:
            return data
        mime = self.to_mime(to, sender=sender, key=key)
        del mime["Bcc"], mime["Resent-Bcc"]  # smtplib.SMTP.send_message leaves them out too
        return mime.as_bytes(policy=email.policy.SMTP)

    def _plain_bytes(self, to: Recipient, sender: str, key: str) -> bytes | None:
        """The message written without the email package, or None when it needs it (see :meth:`to_bytes`)."""
        parts: list[tuple[str, bytes]] = []
        for subtype, body in (("plain", self.text), ("html", self.html)):
            if body is not None:
                data = _7bit(body)
                if data is None:
                    return None
                parts.append((subtype, data))
        if not parts or not _STRUCTURED.isdisjoint(name.lower() for name in self.headers):
            return None
        lines = []
        for name, value in self._fields(to, sender, key):
            line = _folded(name, value)
            if line is None or (name in ("From", "To") and not _MAILBOX.fullmatch(value)):
                return None
            lines.append(line)
        head = "\r\n".join([*lines, "MIME-Version: 1.0", ""]).encode("ascii")
        if len(parts) == 1:
            subtype, data = parts[0]
            return head + _PART[subtype] + data
        boundary = _boundary(*(data for _, data in parts))
        delimiter = b"\r\n--" + boundary
        return b"".join([head, b'Content-Type: multipart/alternative;\r\n boundary="', boundary, b'"\r\n',
                         *(delimiter + b"\r\n" + _PART[subtype] + data for subtype, data in parts),
                         delimiter, b"--\r\n"])


def _folded(name: str, value: str) -> str | None:
    """``name: value`` folded before spaces into lines of at most 78 characters; None for a field that is
    not printable ASCII, holds an encoded word, or has a word too long to fold."""
    if not (_FIELD_NAME.fullmatch(name) and value.isascii() and value.isprintable() and "=?" not in value):
        return None
    line = f"{name}: {value}"
    if len(line) <= _LINE:
        return line
    words = value.split(" ")
    if not all(words):  # runs of spaces, or spaces at an end: unfolding them is parser-dependent
        return None
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= _LINE:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return "\r\n".join(lines) if max(map(len, lines)) <= _LINE else None


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
