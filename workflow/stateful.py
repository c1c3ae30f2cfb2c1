"""``Stateful``: the mixin that gives a SQLAlchemy model a state column and trigger methods."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from sqlalchemy import String, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, object_session

from .awaiting import outside_greenlet, run_for
from .concurrency import undo_state, write_transition
from .definition import Workflow
from .errors import (
    ConcurrentTransition,
    ConditionFailed,
    ContextNotSerializable,
    DefinitionError,
    NotAwaited,
    NotInSession,
    TransitionNotAllowed,
    UnknownTrigger,
    WorkflowError,
    did_you_mean,
)
from .clock import utcnow
from .parties import resolve_party
from .subjects import _models
from .transition_log import TransitionRecord, attach_record, delete_records, insert_record
from .tracing import traceparent


class Trigger(Protocol):
    """The shape of a generated trigger method, e.g. ``loan.accept(actor=user, note="Friday")``."""

    def __call__(self, *, actor: object = None, **context: Any) -> TransitionRecord: ...


class Stateful:
    """Mixin for declarative models: a ``state`` column and one method per declared trigger.

    Put it before the declarative base and assign a :class:`Workflow` to ``workflow``::

        class Loan(Stateful, Base):
            __tablename__ = "loans"
            workflow = Workflow(states=[...], initial="requested", transitions=[...])

    A new row starts in the initial state; a loaded row keeps its stored state. One state
    machine serves every row of the class.
    """

    workflow: ClassVar[Workflow]

    @declared_attr
    def state(cls) -> Mapped[str]:
        """The row's current state, one of the workflow's states."""
        return mapped_column(String(64), nullable=False, index=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        workflow = cls.__dict__.get("workflow")
        if workflow is None:  # a subclass (single or joined table) shares the workflow it inherits
            inherited = getattr(cls, "workflow", None)
            if isinstance(inherited, Workflow) and inspect(cls, raiseerr=False) is not None:
                _start_in(cls, inherited.initial)
            return
        if not isinstance(workflow, Workflow):
            raise DefinitionError(f"{cls.__name__}.workflow must be a Workflow, not {type(workflow).__name__}.")
        workflow.bind(cls)
        _register(cls, workflow)
        _start_in(cls, workflow.initial)

    def allowed_triggers(self) -> list[str]:
        """The triggers that have a transition from the current state (conditions not evaluated)."""
        allowed: list[str] = _machine(self).allowed(self.state)
        return allowed

    def fire(self, trigger: str, *, actor: object = None, **context: Any) -> TransitionRecord:
        """Fire ``trigger`` by name; the generated methods (``loan.accept(...)``) call this.

        Checks the trigger, the current state and the conditions, then writes the new state and
        a :class:`TransitionRecord` in the caller's transaction (one statement on PostgreSQL), and
        returns the record, persistent in the row's session.

        Args:
            trigger: the trigger's name.
            actor: who fired it (a mapped row, a string or ``None``); stored as a reference.
            context: JSON-serialisable values stored with the transition and passed to callbacks.

        Raises:
            UnknownTrigger, TransitionNotAllowed, ConditionFailed: the state is unchanged.
            ContextNotSerializable: a context value is not JSON.
            NotInSession: the row was not added to a session.
            ConcurrentTransition: another transaction changed the row's state first.
        """
        workflow, machine, source = type(self).workflow, _machine(self), self.state
        session = _check_firing(self, trigger, context)
        log = {"model": workflow.name, "key": _key(self), "trigger": trigger, "source": source,
               "actor": actor_reference(actor), "context": dict(context), "created_at": utcnow(),
               "traceparent": traceparent()}
        written: list[int] = []

        def write_state(dest: str) -> None:
            log["dest"] = dest
            record_id = write_transition(session, self, log)
            if record_id is None:
                raise ConcurrentTransition(
                    f"{_describe(self)} was changed by another transaction while firing {trigger!r} from "
                    f"{source!r}; roll back, reload it and decide again.",
                    model=workflow.name or "", key=_key(self), trigger=trigger, state=source,
                )
            written.append(record_id)

        try:
            done, condition = machine.fire(self, trigger, {"actor": actor, **context}, write_state)
        except BaseException:
            self.state = source
            if written:  # the state and the log row were written: take both back at once
                _take_back(session, self, str(log["dest"]), source, written)
            raise
        if not done:
            self.state = source
            raise ConditionFailed(
                f"{_describe(self)} cannot {trigger!r}: condition {condition!r} refused it "
                f"(state stays {source!r}).",
                model=workflow.name or "", key=_key(self), trigger=trigger, state=source,
                condition=condition or "?",
            )
        if not written:  # an internal transition (dest None) sets no state: only the log row is written
            log["dest"] = self.state
            with session.no_autoflush:
                written.append(insert_record(session.connection(), log))
        return attach_record(session, written[-1], log)

    async def fire_async(self, trigger: str, *, actor: object = None, **context: Any) -> TransitionRecord:
        """:meth:`fire` for a row of an ``AsyncSession``: ``await loan.fire_async("accept", actor=ann)``.

        The same trigger, run through ``AsyncSession.run_sync``: its statements, and what its
        conditions and callbacks load lazily, are awaited (a direct ``loan.accept()`` would raise
        ``MissingGreenlet`` there). On a row of a sync ``Session`` it is :meth:`fire`.
        """
        return await run_for(self, lambda: self.fire(trigger, actor=actor, **context))

    def parties(self) -> dict[str, Any]:
        """Each declared party resolved for this row: one recipient, a list of them, or ``None``."""
        return {name: resolve_party(self, spec) for name, spec in type(self).workflow.parties.items()}


def _check_firing(row: Stateful, trigger: str, context: dict[str, Any]) -> Session:
    """Refuse what cannot fire (unknown trigger, not from this state, context not JSON, no session); the session.

    A new row is flushed first, so that its key is known to the log row.
    """
    workflow, machine, source = type(row).workflow, _machine(row), row.state
    if trigger not in machine.events:
        raise UnknownTrigger(
            f"{_describe(row)} has no trigger {trigger!r}; its triggers: "
            f"{', '.join(workflow.triggers)}.{did_you_mean(trigger, workflow.triggers)}",
            model=workflow.name or "", key=_key(row), trigger=trigger, state=source,
        )
    if source not in machine.events[trigger].transitions:
        allowed = machine.allowed(source)
        raise TransitionNotAllowed(
            f"{_describe(row)} cannot {trigger!r} from state {source!r}; allowed now: "
            f"{', '.join(allowed) or 'nothing (a final state)'}.",
            model=workflow.name or "", key=_key(row), trigger=trigger, state=source, allowed=allowed,
        )
    _check_json(row, trigger, context)
    session = object_session(row)
    if session is None:
        raise NotInSession(
            f"{_describe(row)}: add it to a session before firing {trigger!r}, so that the "
            f"transition is recorded in the same transaction."
        )
    if getattr(getattr(session.bind, "dialect", None), "is_async", False) and outside_greenlet():
        raise NotAwaited(f"{_describe(row)} belongs to an AsyncSession: fire it with "
                         f"`await row.fire_async({trigger!r}, ...)`, which awaits its statements and lazy loads.")
    if inspect(row).key is None:
        session.flush()
    return session


def _take_back(session: Session, row: Stateful, written_state: str, source: str, records: list[int]) -> None:
    """Undo a written state and its log rows at once, after a callback failed."""
    try:
        with session.no_autoflush:
            undo_state(session, row, written_state, source)
            delete_records(session.connection(), records)
    except SQLAlchemyError:  # the transaction itself failed: it can only be rolled back
        pass


def _start_in(cls: type[Stateful], initial: str) -> None:
    """Give each new row of ``cls`` the initial state.

    Listened to on each mapped class itself, subclasses included: a listener that propagates is
    copied to a subclass before SQLAlchemy has instrumented it, and fails there.
    """

    def set_initial(target: Stateful, args: Any, kwargs: Any) -> None:
        target.state = initial

    event.listen(cls, "init", set_initial)


def _register(cls: type[Stateful], workflow: Workflow) -> None:
    name = workflow.name or cls.__name__
    known = _models.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise DefinitionError(
            f"Two Stateful models are named {name!r} ({known.__module__}.{known.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}); give one Workflow(name=...)."
        )
    _models[name] = cls  # the registry of subjects.py, which loads rows back by this name
    for trigger in workflow.triggers:
        if trigger in cls.__dict__ or hasattr(Stateful, trigger):
            raise DefinitionError(f"{name}: trigger {trigger!r} clashes with an attribute of the model.")
        setattr(cls, trigger, _trigger_method(trigger))


def _trigger_method(trigger: str) -> Callable[..., TransitionRecord]:
    def fire_trigger(self: Stateful, *, actor: object = None, **context: Any) -> TransitionRecord:
        return self.fire(trigger, actor=actor, **context)

    fire_trigger.__name__ = fire_trigger.__qualname__ = trigger
    fire_trigger.__doc__ = f"Fire {trigger!r}: see :meth:`Stateful.fire`."
    return fire_trigger


def _machine(row: Stateful) -> Any:
    machine = type(row).workflow.machine
    if machine is None:  # pragma: no cover - bind() always builds it
        raise WorkflowError(f"{type(row).__name__}.workflow was never bound to its model.")
    return machine


def _key(row: object) -> str | None:
    identity = inspect(row).identity
    if identity is None:
        return None
    return "/".join(str(part) for part in identity)


def _describe(row: Stateful) -> str:
    key = _key(row)
    name = type(row).workflow.name or type(row).__name__
    return f"{name} {key}" if key is not None else f"{name} (not yet flushed)"


def _check_json(row: Stateful, trigger: str, context: dict[str, Any]) -> None:
    try:
        json.dumps(context, allow_nan=False)  # NaN and Infinity are not JSON: databases refuse them
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deep (or a cycle of lists)
        for field, value in context.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as error:
                what = "nested too deep to store" if isinstance(error, RecursionError) else "not JSON"
                raise ContextNotSerializable(
                    f"{_describe(row)}: context {field!r} of {trigger!r} is a {type(value).__name__}, "
                    f"which is {what}; pass ids, strings or numbers.",
                    field=field,
                ) from None
        raise


def actor_reference(actor: object) -> str | None:
    """How an actor is stored: a string as is, a mapped row as ``"Model:key"``, else ``str()``."""
    if actor is None:
        return None
    if isinstance(actor, str):
        return actor[:255]
    try:
        identity = inspect(actor).identity
    except Exception:  # not a mapped object
        return str(actor)[:255]
    key = "/".join(str(part) for part in identity) if identity else "?"
    return f"{type(actor).__name__}:{key}"[:255]
