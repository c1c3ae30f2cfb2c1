"""``Message``: the contract every kind of message a notifier returns keeps, whatever the channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from ..errors import TemplateError
from ..templates import Templates

__all__ = ["Message", "no_template_folder"]


class Message:
    """What a notifier method returns and a channel sends: an :class:`~notifiers.Email`, a :class:`~notifiers.Text`.

    A message is built by the notifier, possibly naming a template, then :meth:`rendered` for
    its recipient before it is handed to a channel. ``kind`` names the kind (``"email"``,
    ``"text"``); a channel lists the kinds it accepts (:attr:`~notifiers.Channel.accepts`).
    """

    kind: ClassVar[str] = "message"

    def rendered(self, templates: Templates | None, variables: Mapping[str, Any], locale: str | None = None) -> Self:
        """This message with its templates rendered with ``variables`` for ``locale``.

        Raises:
            TemplateError: no template folder, a template missing or broken.
            MessageError: the rendered message is not one that can be sent.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement rendered(templates, variables, locale).")


def no_template_folder(message: str, template: str) -> TemplateError:
    """The error for a message naming a template when its notifier declares no templates folder."""
    return TemplateError(
        f"{message} uses template {template!r}, but its notifier declares no "
        f"templates folder (set `templates = \"templates\"` on the Notifier).",
        template=template,
    )
