"""``Notifier``, ``@on`` and ``@remind``: who is told what when a transition happens, or when a row stays."""

from __future__ import annotations

import datetime as dt
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from workflow import Stateful, Workflow, did_you_mean

from . import unsubscribe_links as unsubscribe
from .digests import Digest, Throttle
from .errors import RegistrationError
from .event import Event
from .messages import Message
from .recipients import Recipient
from .registry import Registration, registry
from .templates import Templates, templates_in
from .timing import MAX_REMINDERS, Left, Timing, Window, checked_span

__all__ = ["Notifier", "on", "remind"]

_MARK = "__tidings_on__"
F = TypeVar("F", bound=Callable[..., Any])


def on(model: type[Stateful], trigger: str, *, to: str | Sequence[str],
       channels: Sequence[str] = ("email",), required: bool = False,
       message: type[Message] | Sequence[type[Message]] | None = None, delay: dt.timedelta | None = None,
       superseded_by: Left | Sequence[str] | None = None,
       quiet_hours: Window | tuple[str, str] | None = None, digest: Digest | None = None,
       throttle: Throttle | None = None) -> Callable[[F], F]:
    """Register a notifier method for ``trigger`` on ``model``, sent to the party or parties ``to``.

    The method is called as ``method(self, event, recipient)`` once per recipient and channel and
    returns the message (an :class:`Email` or a :class:`Text`), or ``None`` to send nothing to that recipient.
    Decorators stack: one method may answer several transitions. ``required=True`` (security or
    legal mail) sends it even to recipients who opted out, and in their quiet hours. The kind of message it returns
    (``message=Text``, else the method's return annotation) is checked against what each channel
    accepts (:attr:`Channel.accepts`) once both are known.

    Time (docs/time.md): ``delay`` holds the deliveries until that long after the transition;
    ``superseded_by=LEFT`` voids those still pending once the row has left the transition's
    destination state, ``superseded_by=["hand_over", "cancel"]`` once it fired one of those
    triggers; ``quiet_hours=("22:00", "08:00")`` moves a delivery due inside that window of the
    recipient's time zone to its end.

    Digests (docs/digests.md): ``digest=Digest(window=timedelta(hours=1))`` tells each recipient
    the events of a window in one message (the notifier's :meth:`Notifier.digest`);
    ``throttle=Throttle(5, per=timedelta(hours=1))`` sends at most 5 a window and the rest in one
    digest when it closes. Neither goes with ``required=True``, which is always sent at once.

    Raises:
        RegistrationError: ``model`` is not a Stateful model, or the trigger, a party or a
            superseding trigger is unknown, or a time is not one; raised at import, naming what is known.
    """
    workflow, name = _workflow_of(model), _name_of(model)
    where = f"@on({name}, {trigger!r})"
    _check_trigger(workflow, where, trigger)
    timing = _timing(workflow, where, superseded_by, quiet_hours,
                     delay=checked_span(delay or dt.timedelta(0), "delay", zero=True))
    return _mark([(name, trigger)], where, workflow, to, channels, required, message, timing,
                 _batching(where, required, digest, throttle))


def _batching(where: str, required: bool, digest: Digest | None, throttle: Throttle | None) -> Digest | Throttle | None:
    """The registration's digest or throttle, checked."""
    if digest is not None and throttle is not None:
        raise RegistrationError(f"{where}: give digest= or throttle=, not both (a throttle sends its overflow "
                                f"in a digest of its own window).")
    spec = digest if digest is not None else throttle
    if spec is not None and not isinstance(spec, Digest | Throttle):
        raise RegistrationError(f"{where}: digest= takes a Digest(...), throttle= a Throttle(...); got {spec!r}.")
    if spec is not None and required:
        raise RegistrationError(f"{where}: required=True is sent at once to everyone; it cannot be "
                                f"{'digested' if digest is not None else 'throttled'}. Drop one of them.")
    return spec


def remind(model: type[Stateful], state: str, *, after: dt.timedelta, to: str | Sequence[str],
           every: dt.timedelta | None = None, times: int = 1, channels: Sequence[str] = ("email",),
           required: bool = False, message: type[Message] | Sequence[type[Message]] | None = None,
           superseded_by: Sequence[str] = (), quiet_hours: Window | tuple[str, str] | None = None) -> Callable[[F], F]:
    """Register a reminder: sent to ``to`` if the row is still in ``state`` ``after`` it got there.

    Repeated ``times`` in all (at most :data:`MAX_REMINDERS`), ``every`` apart. Each entry into
    ``state`` (not a self-loop) plans them; once the row has left ``state`` (or fired one of
    ``superseded_by``), those still pending are recorded ``skipped`` instead of sent. The method
    is called as for :func:`on`, with the event of the transition into ``state``.

    Raises:
        RegistrationError: an unknown state, no transition into it, a party unknown, or a bad time or count.
    """
    workflow, name = _workflow_of(model), _name_of(model)
    where = f"@remind({name}, {state!r})"
    if state not in workflow.states:
        raise RegistrationError(f"{where}: {name} has no state {state!r}; its states: {', '.join(workflow.states)}."
                                f"{did_you_mean(state, workflow.states)}")
    into = list(dict.fromkeys(t["trigger"] for t in workflow.transitions if t["dest"] == state))
    if not into:
        raise RegistrationError(f"{where}: no transition of {name} goes to {state!r}; nothing would plan it.")
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_REMINDERS:
        raise RegistrationError(f"{where}: times={times!r}: give a whole number from 1 to {MAX_REMINDERS}.")
    repeat = checked_span(every, "every") if times > 1 or every is not None else dt.timedelta(0)
    timing = _timing(workflow, where, superseded_by, quiet_hours, left=True,
                     reminder=(checked_span(after, "after"), repeat, times))
    return _mark([(name, trigger) for trigger in into], where, workflow, to, channels, required, message, timing)


def _name_of(model: type[Stateful]) -> str:
    return model.workflow.name or model.__name__


def _check_trigger(workflow: Workflow, where: str, trigger: str) -> None:
    if trigger not in workflow.triggers:
        name = workflow.name or getattr(workflow.model, "__name__", "?")
        raise RegistrationError(
            f"{where}: {name} has no trigger {trigger!r}; its triggers: "
            f"{', '.join(workflow.triggers)}.{did_you_mean(trigger, workflow.triggers)}"
        )


def _timing(workflow: Workflow, where: str, superseded_by: Left | Sequence[str] | None,
            quiet_hours: Window | tuple[str, str] | None, **given: Any) -> Timing | None:
    """The registration's :class:`Timing`, checked; ``None`` when it has nothing to say about time."""
    left = isinstance(superseded_by, Left) or given.pop("left", False)
    triggers = () if isinstance(superseded_by, Left) or superseded_by is None else tuple(superseded_by)
    if isinstance(superseded_by, str):
        raise RegistrationError(f"{where}: superseded_by= is LEFT or a list of triggers, not the string "
                                f"{superseded_by!r}.")
    for trigger in triggers:
        _check_trigger(workflow, f"{where} superseded_by", trigger)
    timing = Timing(quiet_hours=None if quiet_hours is None else Window.of(quiet_hours), left=left,
                    superseded_by=triggers, **given)
    return None if timing == Timing() else timing


def _mark(transitions: list[tuple[str, str]], where: str, workflow: Workflow, to: str | Sequence[str],
          channels: Sequence[str], required: bool, message: object, timing: Timing | None,
          batching: Digest | Throttle | None = None) -> Callable[[F], F]:
    parties = (to,) if isinstance(to, str) else tuple(to)
    if not parties:
        raise RegistrationError(f"{where}: name at least one party in to=.")
    for party in parties:
        if party not in workflow.parties:
            known = list(workflow.parties)
            raise RegistrationError(
                f"{where}: {transitions[0][0]} has no party {party!r}; its parties: "
                f"{', '.join(known) or 'none declared'}.{did_you_mean(party, known)}"
            )
    if isinstance(channels, str) or not channels:
        raise RegistrationError(f"{where}: channels= is a non-empty list of names.")
    kinds = _kinds(message)

    def mark(method: F) -> F:
        marks = list(getattr(method, _MARK, ()))
        marks += [(name, trigger, parties, tuple(channels), required, kinds, timing, batching) for name, trigger in transitions]
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
            for model, trigger, parties, channels, required, kinds, timing, batching in getattr(value, _MARK, ()):
                registry.add(Registration(cls, attr, model, trigger, parties, channels, required,
                                          kinds or _returned(value), timing, batching))
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

    def digest(self, events: list[Event], recipient: Recipient, messages: list[Message]) -> Message | None:
        """The one message of a digest (docs/digests.md): ``events`` in order, and each one's own ``messages``.

        Override it to return your own, e.g. ``Email(template="digest")``, whose template gets
        ``events`` and ``messages``; the default is a plain list of the messages.
        """
        from .digest_messages import plain_list

        return plain_list(events, messages)

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
