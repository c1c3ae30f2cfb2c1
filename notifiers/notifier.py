"""``Notifier`` and ``@on``: who is told what when a transition happens."""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from workflow import Stateful, Workflow, did_you_mean

from . import unsubscribe_links as unsubscribe
from .errors import RegistrationError
from .event import Event
from .messages import Message
from .recipients import Recipient
from .registry import Registration, registry
from .templates import Templates, templates_in

__all__ = ["Notifier", "on"]

_MARK = "__tidings_on__"
F = TypeVar("F", bound=Callable[..., Any])


def on(model: type[Stateful], trigger: str, *, to: str | Sequence[str],
       channels: Sequence[str] = ("email",), required: bool = False,
       message: type[Message] | Sequence[type[Message]] | None = None) -> Callable[[F], F]:
    """Register a notifier method for ``trigger`` on ``model``, sent to the party or parties ``to``.

    The method is called as ``method(self, event, recipient)`` once per recipient and channel and
    returns the message (an :class:`Email` or a :class:`Text`), or ``None`` to send nothing to that recipient.
    Decorators stack: one method may answer several transitions. ``required=True`` (security or
    legal mail) sends it even to recipients who opted out. The kind of message it returns
    (``message=Text``, else the method's return annotation) is checked against what each channel
    accepts (:attr:`Channel.accepts`) once both are known.

    Raises:
        RegistrationError: ``model`` is not a Stateful model, or the trigger or a party is unknown;
            raised at import, naming what is known.
    """
    parties = (to,) if isinstance(to, str) else tuple(to)
    workflow = _workflow_of(model)
    name = workflow.name or model.__name__
    if trigger not in workflow.triggers:
        raise RegistrationError(
            f"@on({name}, {trigger!r}): {name} has no trigger {trigger!r}; its triggers: "
            f"{', '.join(workflow.triggers)}.{did_you_mean(trigger, workflow.triggers)}"
        )
    if not parties:
        raise RegistrationError(f"@on({name}, {trigger!r}): name at least one party in to=.")
    for party in parties:
        if party not in workflow.parties:
            known = list(workflow.parties)
            raise RegistrationError(
                f"@on({name}, {trigger!r}): {name} has no party {party!r}; its parties: "
                f"{', '.join(known) or 'none declared'}.{did_you_mean(party, known)}"
            )
    if isinstance(channels, str) or not channels:
        raise RegistrationError(f"@on({name}, {trigger!r}): channels= is a non-empty list of names.")

    kinds = _kinds(message)

    def mark(method: F) -> F:
        marks = list(getattr(method, _MARK, ()))
        marks.append((name, trigger, parties, tuple(channels), required, kinds))
        setattr(method, _MARK, marks)
        return method

    return mark


def _kinds(message: object) -> tuple[type[Message], ...]:
    """The message kinds ``message=`` names."""
    kinds = () if message is None else (message,) if isinstance(message, type) else tuple(message)  # type: ignore[arg-type]
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, Message)):
            raise RegistrationError(f"@on(message=...): {kind!r} is not a kind of message such as Email or Text.")
    return kinds


def _returned(method: object) -> tuple[type[Message], ...]:
    """The message kinds ``method``'s return annotation names (``Email | None`` -> ``(Email,)``); none if unknown."""
    try:
        annotation = typing.get_type_hints(method).get("return")
    except Exception:  # an annotation that does not resolve: the kinds are not known, not wrong
        return ()
    found = typing.get_args(annotation) if typing.get_args(annotation) else (annotation,)
    return tuple(k for k in found if isinstance(k, type) and issubclass(k, Message) and k is not Message)


def _workflow_of(model: object) -> Workflow:
    workflow = getattr(model, "workflow", None)
    if isinstance(model, type) and isinstance(workflow, Workflow) and workflow.model not in (model, None):
        declared = workflow.model.__name__
        raise RegistrationError(f"@on: {model.__name__} inherits the workflow of {declared}; register on "
                                f"{declared}: its transitions, its subclasses' included, are recorded as "
                                f"{workflow.name}'s.")
    if not isinstance(model, type) or not isinstance(workflow, Workflow) or workflow.model is not model:
        raise RegistrationError(f"@on: {model!r} is not a Stateful model with a declared Workflow.")
    return workflow


class Notifier:
    """Base class of notifiers: group ``@on`` methods, and say where their templates are.

    Attributes:
        templates: a folder of Jinja2 templates, relative to the notifier's module, or ``None``.
    """

    templates: ClassVar[str | Path | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr, value in list(vars(cls).items()):
            for model, trigger, parties, channels, required, kinds in getattr(value, _MARK, ()):
                registry.add(Registration(cls, attr, model, trigger, parties, channels, required,
                                          kinds or _returned(value)))
        folder = cls.template_folder()
        if folder is not None and not folder.is_dir():
            raise RegistrationError(f"{cls.__qualname__}.templates: folder {folder} does not exist.")

    @classmethod
    def template_folder(cls) -> Path | None:
        """The templates folder as an absolute path, or ``None``."""
        if cls.templates is None:
            return None
        folder = Path(cls.templates)
        if not folder.is_absolute():
            module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
            folder = (Path(module_file).parent if module_file else Path.cwd()) / folder
        return folder

    def template_set(self) -> Templates | None:
        """The :class:`Templates` of this notifier's folder, shared and cached."""
        folder = self.template_folder()
        return templates_in(folder) if folder is not None else None

    @staticmethod
    def compose_for(name: str, event: Event, recipient: Recipient, *, channel: str | None = None) -> Message | None:
        """The message the notifier registered as ``name`` for ``event``'s transition gives ``recipient``, rendered.

        ``None`` when the notifier returned ``None`` (nothing for that recipient). Sent on ``channel``,
        a notifier that is not ``required`` carries an unsubscribe link (:mod:`notifiers.unsubscribe_links`).

        Raises:
            RegistrationError: no notifier ``name`` answers that transition (its module not imported).
            TemplateError, MessageError: the message cannot be built.
        """
        registration = registry.named(name, event.model, event.trigger)
        link = unsubscribe.link_for(registration, recipient, channel)
        return registration.notifier().compose(registration.method, event, recipient, unsubscribe_url=link)

    def compose(self, method: str, event: Event, recipient: Recipient, *,
                unsubscribe_url: str | None = None) -> Message | None:
        """Call ``method`` and render what it returns (with ``unsubscribe_url``, for templates and headers).

        Raises:
            TemplateError, MessageError: the message cannot be built.
        """
        message = getattr(self, method)(event, recipient)
        if message is None:
            return None
        if not isinstance(message, Message):
            raise RegistrationError(
                f"{type(self).__qualname__}.{method} returned {type(message).__name__}; return an Email, a Text "
                f"or None."
            )
        variables = {"event": event, "recipient": recipient, "subject": event.subject,
                     "unsubscribe_url": unsubscribe_url}
        rendered = message.rendered(self.template_set(), variables, recipient.locale)
        return unsubscribe.with_link(rendered, unsubscribe_url)
