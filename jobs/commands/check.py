"""``tidings check``: every registration rendered with stand-ins for its record, every template compiled.

For CI: no database is needed. Each ``@on`` method is called with a stand-in row (any attribute
gives another stand-in, printed as ``‹subject.item.title›``) and a stand-in context (``get``
gives its default), then its message is rendered for each locale its templates have; every file
of each templates folder is compiled. A template that is missing, does not compile, includes one
that is missing or uses a variable that is not there is a problem; so is an attribute of the row
(or of a row it leads to by a many-to-one relationship) that its model does not have. A method that cannot run on
stand-ins (arithmetic on a value of the row, say) is listed as not checked: preview it on a real
record with ``tidings preview``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifiers import Email, Event, Notifier, NotifierError, Recipient, Registration, Templates, registry
from sqlalchemy import inspect
from sqlalchemy.orm import Mapper
from workflow import did_you_mean, model_class, utcnow

from ..errors import ConfigurationError

__all__ = ["Finding", "add_parser", "check", "run"]

_SUFFIXES = (".txt", ".html", ".subject.txt")


@dataclass(frozen=True)
class Finding:
    """One registration or template file and what is wrong with it (``problem``) or could not be checked."""

    what: str
    reason: str
    problem: bool


class _StandIn:
    """Any value of a record: every attribute or item is another stand-in; printed as its path.

    The stand-in of a row knows its model (``model``): an attribute the model does not have is
    noted in ``misses`` (a misspelling would otherwise pass, as a stand-in accepts anything), and
    one that is a many-to-one relationship gives a stand-in of the related model.
    """

    def __init__(self, path: str, model: type | None = None, misses: list[str] | None = None) -> None:
        self._path, self._model, self._misses = path, model, misses

    def __getattr__(self, name: str) -> _StandIn:
        if name.startswith("_"):  # __html__, __iter__...: not pretend to be what it is not
            raise AttributeError(name)
        path = f"{self._path}.{name}"
        if self._model is None or self._misses is None:
            return _StandIn(path)
        if not hasattr(self._model, name):
            known = [attribute for attribute in dir(self._model) if not attribute.startswith("_")]
            self._misses.append(f"{self._model.__name__} has no attribute {name!r} ({path}).{did_you_mean(name, known)}")
            return _StandIn(path)
        return _StandIn(path, _related(self._model, name), self._misses)

    def __getitem__(self, key: object) -> _StandIn:
        return _StandIn(f"{self._path}[{key!r}]")

    def __call__(self, *args: object, **kwargs: object) -> _StandIn:
        return _StandIn(f"{self._path}()")

    def __str__(self) -> str:
        return f"‹{self._path}›"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __iter__(self) -> Iterator[_StandIn]:
        return iter(())


def _related(model: type, name: str) -> type | None:
    """The model a many-to-one relationship ``name`` of ``model`` leads to, else ``None``."""
    mapper: Mapper[Any] | None = inspect(model, raiseerr=False)
    relationship = mapper.relationships.get(name) if mapper is not None else None
    return relationship.mapper.class_ if relationship is not None and not relationship.uselist else None


class _Context(dict[str, Any]):
    """A transition's context on stand-ins: ``get`` gives its default (the usual path), ``[name]`` a stand-in."""

    def __getitem__(self, name: str) -> Any:
        return _StandIn(f"event.context.{name}")

    def get(self, name: str, default: Any = None) -> Any:
        return default


def check() -> tuple[int, list[Finding]]:
    """Check every registration and template folder; the number of registrations, and the findings.

    Raises:
        ConfigurationError: no notifier is registered (the modules that declare them were not imported).
    """
    registrations = _registrations()
    if not registrations:
        raise ConfigurationError("No notifier is registered: pass the modules that declare them "
                                 "(tidings --import myapp.notifications check).")
    findings: list[Finding] = []
    reported: set[tuple[Path, str]] = set()
    for registration in registrations:
        findings += _check_registration(registration, reported)
    for folder in sorted({f for f in (r.notifier.template_folder() for r in registrations) if f is not None}):
        findings += _check_folder(folder, reported)
    return len(registrations), findings


def _registrations() -> list[Registration]:
    """Every registration, by model and trigger as their workflows declare them."""
    return [r for name in sorted(registry.models()) for trigger in model_class(name).workflow.triggers
            for r in registry.for_transition(name, trigger)]


def _check_registration(registration: Registration, reported: set[tuple[Path, str]]) -> list[Finding]:
    """The registration's message composed for each of its parties and locales on stand-ins; what went wrong."""
    what = f"{registration.notifier.__qualname__}.{registration.method} ({registration.model} {registration.trigger!r})"
    notifier = registration.notifier()
    found: list[Finding] = []
    misses: list[str] = []
    for party in registration.parties:
        event = _event(registration, misses)
        recipient = Recipient("recipient@example.com", "Recipient Name", party, ref="tidings-check")
        try:
            message = getattr(notifier, registration.method)(event, recipient)
            for locale in _locales(notifier.template_set(), message):
                notifier.compose(registration.method, event, dataclasses.replace(recipient, locale=locale))
        except NotifierError as error:
            folder, template = registration.notifier.template_folder(), getattr(error, "template", None)
            if folder is not None and template is not None:
                reported.add((folder, template))  # not listed again when its folder is compiled
            return [Finding(what, f"{type(error).__name__}: {error}", problem=True)]
        except Exception as error:  # the method needs a real record: not checked, not a problem
            found = [Finding(what, f"calling it with stand-ins raised {type(error).__name__}: {error}; "
                                   f"try tidings preview {registration.model} KEY {registration.trigger}",
                             problem=False)]
    return [Finding(what, miss, problem=True) for miss in dict.fromkeys(misses)] + found


def _event(registration: Registration, misses: list[str]) -> Event:
    """A stand-in event of the registration's trigger, from and to the states its workflow declares; the
    attributes its row is asked for that the model does not have are noted in ``misses``."""
    model = model_class(registration.model)
    declared = next(t for t in model.workflow.transitions if t["trigger"] == registration.trigger)
    source = declared["source"] if isinstance(declared["source"], str) else declared["source"][0]
    dest = declared["dest"] if declared["dest"] not in (None, "=") else source
    return Event(0, registration.model, "1", registration.trigger, source, dest, "tidings-check", _Context(),
                 utcnow(), _StandIn("subject", model, misses))


def _locales(templates: Templates | None, message: object) -> list[str | None]:
    """No locale, then each locale the message's templates have a variant for (``accepted.de.txt``)."""
    if templates is None or not isinstance(message, Email) or message.template is None:
        return [None]
    base = Path(templates.directory, message.template)
    named = (path.name[len(base.name) + 1:] for path in base.parent.glob(f"{base.name}.*.*"))  # "de.txt"...
    return [None, *sorted({name.split(".")[0] for name in named if name.endswith(_SUFFIXES)} - {"subject"})]


def _check_folder(folder: Path, reported: set[tuple[Path, str]]) -> list[Finding]:
    """Every template file of ``folder`` compiled (those reported for a registration already are skipped)."""
    templates = Templates(folder)
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = path.relative_to(folder).as_posix()
        if (folder, name) in reported:
            continue
        try:
            templates.compile(name)
        except NotifierError as error:
            found.append(Finding(str(path), str(error), problem=True))
    return found


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``check`` subcommand."""
    commands.add_parser("check", help="render every registration with stand-ins; list broken or missing templates",
                        description="Call each @on method with a stand-in for its record, render its message "
                                    "in each locale its templates have, and compile every template file; list "
                                    "each template missing, not compiling, or using a variable it does not get. "
                                    "Needs no database.",
                        epilog="Exit codes: 0 every template renders; 1 a template is missing or does not compile "
                               "or render; 2 no notifier is registered (pass --import).")


def run(args: argparse.Namespace) -> int:
    """``tidings check``: print the findings; 1 if one is a problem."""
    count, findings = check()
    for finding in findings:
        print(f"{'error' if finding.problem else 'not checked'}: {finding.what}: {finding.reason}")
    problems = sum(finding.problem for finding in findings)
    print(f"{count} registrations checked: " + (f"{problems} problem(s)." if problems else "every template renders."))
    return 1 if problems else 0
