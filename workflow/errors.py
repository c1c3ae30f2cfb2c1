"""Errors raised by ``workflow``.

The tree::

    WorkflowError
     +-- DefinitionError          a bad declaration, raised when the model class is created
     +-- InvalidTransition        firing failed; state and transition log are unchanged
     |    +-- UnknownTrigger          the model has no such trigger
     |    +-- TransitionNotAllowed    not allowed from the current state
     |    +-- ConditionFailed         a condition (or ``unless``) refused
     |    +-- ConcurrentTransition    another transaction changed the row's state first
     +-- ContextNotSerializable   the context given to a trigger is not JSON
     +-- NotInSession             the row is not in a session, so nothing can be recorded
     +-- TransitionLogMissing     the database has no transition log table to record in
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class WorkflowError(Exception):
    """Base class for every error raised by ``workflow``."""


class DefinitionError(WorkflowError):
    """A workflow declaration is invalid (unknown state, bad transition or party spec)."""


class InvalidTransition(WorkflowError):
    """Firing a trigger failed; the row's state and the transition log are unchanged.

    Attributes:
        model: the model's name, e.g. ``"Loan"``.
        key: the row's primary key as a string (``None`` before its first flush).
        trigger: the trigger that was fired.
        state: the row's state when it was fired.
    """

    def __init__(self, message: str, *, model: str, key: str | None, trigger: str, state: str) -> None:
        super().__init__(message)
        self.model = model
        self.key = key
        self.trigger = trigger
        self.state = state


class UnknownTrigger(InvalidTransition):
    """The model declares no such trigger."""


class TransitionNotAllowed(InvalidTransition):
    """The trigger exists but is not allowed from the row's current state.

    Attributes:
        allowed: the triggers allowed from the current state.
    """

    def __init__(
        self, message: str, *, model: str, key: str | None, trigger: str, state: str, allowed: Iterable[str]
    ) -> None:
        super().__init__(message, model=model, key=key, trigger=trigger, state=state)
        self.allowed = tuple(allowed)


class ConditionFailed(InvalidTransition):
    """A condition (or an ``unless``) of the transition refused it.

    Attributes:
        condition: the name of the refusing condition.
    """

    def __init__(
        self, message: str, *, model: str, key: str | None, trigger: str, state: str, condition: str
    ) -> None:
        super().__init__(message, model=model, key=key, trigger=trigger, state=state)
        self.condition = condition


class ConcurrentTransition(InvalidTransition):
    """Another transaction changed the row's state first; this transition was not applied."""


class ContextNotSerializable(WorkflowError):
    """A context value given to a trigger cannot be stored as JSON.

    Attributes:
        field: the offending context key.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class NotInSession(WorkflowError):
    """A trigger was fired on a row that belongs to no session, so its transition cannot be recorded."""


class NotAwaited(WorkflowError):
    """A trigger was called directly on a row of an ``AsyncSession``: ``await row.fire_async(...)`` runs it."""


class TransitionLogMissing(WorkflowError):
    """The database has no ``tidings_transitions`` table: Tidings' tables were never created there."""


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` Did you mean 'accept'?`` when ``word`` is close to one of ``known``, else ``""``.

    The one copy: workflow's and notifiers' errors both end with it.
    """
    close = difflib.get_close_matches(word, known, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
