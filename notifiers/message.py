"""``Email``: the content of one email notification, and its MIME form."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from .errors import MessageError, TemplateError
from .recipients import Recipient
from .templates import Templates

__all__ = ["Email", "message_id"]


def _no_crlf(what: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise MessageError(f"{what} {value!r} contains CR or LF (header injection refused).")


_BODIES = (".txt", ".html")


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

    def to_mime(self, to: Recipient, *, sender: str, key: str) -> EmailMessage:
        """The MIME message for ``to``, with a Message-ID derived from the delivery ``key``."""
        mime = EmailMessage()
        mime["Subject"] = self.subject
        mime["From"] = self.sender or sender
        mime["To"] = str(to)
        mime["Date"] = formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = message_id(key, self.sender or sender)
        for name, value in self.headers.items():
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


def message_id(key: str, sender: str) -> str:
    """A Message-ID that is the same every time the same delivery is sent, so duplicates can be dropped."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tidings.invalid"
    token = key if key.isalnum() else hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{token}@{domain}>"
