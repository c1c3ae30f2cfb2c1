"""``tidings preview``: what each recipient would get if a trigger fired on a record now, sent to nobody.

The record is read, its parties resolved and each registered notifier's message rendered, as a
fan-out and a delivery would; nothing is fired, written or sent (the session is rolled back).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from notifiers import Email, Event, Recipient, Registration, Text, parties_of, plan, registry, skip_reasons
from sqlalchemy.orm import Session
from workflow import Stateful, TransitionRecord, WorkflowError, load_subject, model_class, utcnow

from .. import runtime
from ..errors import ConfigurationError, JobsError

__all__ = ["Preview", "add_parser", "preview", "render", "run"]


@dataclass(frozen=True)
class Preview:
    """One message a recipient would get through one channel; or why they would get none."""

    notifier: str
    party: str
    channel: str
    to: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    skipped: str | None = None
    error: str | None = None


def preview(session: Session, model: str, key: str, trigger: str, *, party: str | None = None,
            context: dict[str, Any] | None = None) -> tuple[Event, list[Preview]]:
    """The event ``trigger`` would record on ``model`` ``key`` now, and what each recipient would get.

    Raises:
        ConfigurationError: an unknown model, trigger or party, or no notifier answers the trigger.
        JobsError: no such record.
    """
    try:
        cls = model_class(model)
    except WorkflowError as error:
        raise ConfigurationError(str(error)) from None
    workflow = cls.workflow
    if trigger not in workflow.triggers:
        raise ConfigurationError(f"{model} has no trigger {trigger!r}; its triggers: {', '.join(workflow.triggers)}.")
    if party is not None and party not in workflow.parties:
        raise ConfigurationError(f"{model} has no party {party!r}; its parties: {', '.join(workflow.parties)}.")
    registrations = registry.for_transition(model, trigger)
    if not registrations:
        raise ConfigurationError(f"No notifier answers {model} {trigger!r}: pass the module that declares it "
                                 f"(--import myapp.notifications).")
    try:
        with session.no_autoflush:
            row = load_subject(session, TransitionRecord(model=model, key=key))
            if row is None:
                raise JobsError(f"{model} {key} does not exist.")
            event = _event(row, model, key, trigger, context or {})
            return event, _previews(session, event, registrations, party)
    finally:
        session.rollback()  # whatever a notifier or a party may have changed


def _event(row: Stateful, model: str, key: str, trigger: str, context: dict[str, Any]) -> Event:
    """The event the trigger would record from the row's state (or, if not allowed now, its first declared source)."""
    declared = [t for t in type(row).workflow.transitions if t["trigger"] == trigger]
    now = [t for t in declared if {"*", row.state} & set(_sources(t))]
    chosen = (now or declared)[0]
    source = row.state if now else _sources(chosen)[0]
    dest = chosen["dest"] if chosen["dest"] not in (None, "=") else source
    return Event(0, model, key, trigger, source, dest, None, context, utcnow(), row)


def _sources(transition: dict[str, Any]) -> list[str]:
    source = transition["source"]
    return [source] if isinstance(source, str) else list(source)


def _previews(session: Session, event: Event, registrations: list[Registration], only: str | None) -> list[Preview]:
    """What each intent :func:`notifiers.plan` gives would be: rendered, skipped with its reason, or failed."""
    if only is not None:
        registrations = [dataclasses.replace(r, parties=tuple(p for p in r.parties if p == only)) for r in registrations]
    parties = parties_of(event.subject, registrations, model=event.model, key=event.key)
    skip = skip_reasons(session, (r.ref for found in parties.values() for r in found if isinstance(r, Recipient)))
    kinds = runtime.current().address_kinds({c for r in registrations for c in r.channels})
    previews = []
    for intent in plan(registrations, parties, skip, kinds):
        registration, recipient = intent.registration, intent.recipient
        one = Preview(f"{registration.notifier.__qualname__}.{registration.method}", intent.party, intent.channel,
                      str(recipient) if recipient is not None else "")
        if recipient is None:
            previews.append(dataclasses.replace(one, error=intent.failure))
        elif intent.skip_reason:
            previews.append(dataclasses.replace(one, skipped=intent.skip_reason))
        else:
            previews.append(_rendered(one, registration, event, recipient))
    return previews


def _rendered(one: Preview, registration: Registration, event: Event, recipient: Recipient) -> Preview:
    """``one`` with the message the notifier composes for ``recipient``, or why there is none."""
    try:
        message = registration.notifier().compose(registration.method, event, recipient)
    except Exception as error:  # a template, a malformed message, or a bug in the notifier
        return dataclasses.replace(one, error=f"{type(error).__name__}: {error}")
    if message is None:
        return dataclasses.replace(one, skipped="The notifier returned None for this recipient.")
    if isinstance(message, Text):
        return dataclasses.replace(one, text=message.body)
    if isinstance(message, Email):
        return dataclasses.replace(one, subject=message.subject, text=message.text, html=message.html)
    return dataclasses.replace(one, text=repr(message))


def render(event: Event, previews: list[Preview]) -> str:
    """The previews as text: a heading per message, then its subject and bodies."""
    lines = [f"{event.model} {event.key} {event.trigger!r} ({event.source} -> {event.dest}): a preview; "
             f"nothing is sent or written."]
    if event.subject.state != event.source:
        lines.append(f"({event.model} {event.key} is {event.subject.state!r} now: {event.trigger!r} is not allowed "
                     f"from it; previewed as from {event.source!r}.)")
    if not previews:
        lines.append("\nNobody would be told: the parties resolved to nobody.")
    for one in previews:
        heading = f"\n{one.notifier} -> {one.party} {one.to or '(nobody)'} by {one.channel}"
        if one.error is not None:
            lines.append(f"{heading}: error: {one.error}")
        elif one.skipped is not None:
            lines.append(f"{heading}: skipped: {one.skipped}")
        else:
            lines.append(f"{heading}\nSubject: {one.subject}")
            for kind, body in (("text", one.text), ("html", one.html)):
                if body is not None:
                    lines.append(f"--- {kind}\n{body.rstrip()}")
    return "\n".join(lines)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``preview`` subcommand."""
    shown = commands.add_parser("preview", help="render what each recipient would get for a trigger; send nothing",
                                description="Render the messages TRIGGER on the record MODEL KEY would send now, to "
                                            "each recipient and channel, without firing, writing or sending anything.",
                                epilog="Exit codes: 0 every message rendered; 1 one could not be (the error is shown) "
                                       "or the record does not exist; 2 an unknown model, trigger or party.")
    shown.add_argument("model", help="the model's name, e.g. Loan")
    shown.add_argument("key", help="the record's primary key")
    shown.add_argument("trigger", help="the trigger, e.g. accept")
    shown.add_argument("--party", help="only this party's recipients")
    shown.add_argument("--context", action="append", default=[], metavar="NAME=VALUE",
                       help="a context value of the transition (repeatable; JSON values are parsed)")
    shown.add_argument("--json", action="store_true", help="the previews as JSON")


def run(args: argparse.Namespace, session: Session) -> int:
    """``tidings preview``: print the previews; 1 if one could not be rendered."""
    event, previews = preview(session, args.model, args.key, args.trigger, party=args.party,
                              context=dict(_context_value(given) for given in args.context))
    print(json.dumps([dataclasses.asdict(one) for one in previews], indent=2) if args.json else render(event, previews))
    return 1 if any(one.error for one in previews) else 0


def _context_value(given: str) -> tuple[str, Any]:
    name, equals, text = given.partition("=")
    if not equals or not name.isidentifier():
        raise ConfigurationError(f"--context {given!r}: give NAME=VALUE, e.g. --context note=Friday.")
    try:
        return name, json.loads(text)
    except ValueError:
        return name, text
