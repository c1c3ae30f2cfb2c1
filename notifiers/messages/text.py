"""``Text``: one body and no subject, for SMS and chat channels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import MessageError
from ..templates import Templates
from .base import Message, no_template_folder

__all__ = ["Text"]

_SUFFIX = ".text.txt"


@dataclass(frozen=True)
class Text(Message):
    """A short text notification: one body, no subject (an SMS, a chat message).

    The body comes inline (``body=``) or from a template: ``template="accounts/reset"`` renders
    ``accounts/reset.text.txt`` (for a recipient with a locale, the most specific
    ``accounts/reset.<locale>.text.txt`` there is) with ``event``, ``recipient``, ``subject``,
    ``locale`` and ``context``. Leading and trailing whitespace is removed.

    Raises:
        MessageError: neither a body nor a template, or a body with NUL or text not writable in UTF-8.
    """

    body: str | None = None
    template: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if self.body is None and self.template is None:
            raise MessageError("Text has neither body= nor template=.")
        if self.body is not None:
            _check_body(self.body)

    def rendered(self, templates: Templates | None, variables: Mapping[str, Any], locale: str | None = None) -> Text:
        """This text with its template rendered for ``locale`` (itself when it has a body already).

        Raises:
            TemplateError: no template folder, no ``.text.txt`` variant, or a broken template.
            MessageError: the body rendered empty, or with NUL.
        """
        if self.template is None:
            return self
        if templates is None:
            raise no_template_folder("Text", self.template)
        name = f"{templates.variant(self.template, locale, (_SUFFIX,))}{_SUFFIX}"
        if not templates.exists(name):
            raise MessageError(f"Text template {self.template!r} not found: {name} is not in {templates.directory}.")
        values = {**variables, "locale": locale, "context": dict(self.context), **self.context}
        body = templates.render(name, values).strip()
        if not body:
            raise MessageError(f"Template {name!r} rendered an empty text.")
        _check_body(body)
        return replace(self, body=body, template=None)


def _check_body(body: str) -> None:
    if not isinstance(body, str):
        raise MessageError(f"Text body {body!r} is a {type(body).__name__}, not text.")
    if "\0" in body:
        raise MessageError(f"Text body {body[:40]!r} contains a NUL character.")
    try:
        body.encode()
    except UnicodeEncodeError:
        raise MessageError(f"Text body {body[:40]!r} cannot be written in UTF-8.") from None
