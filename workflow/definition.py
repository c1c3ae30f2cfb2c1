"""``Workflow``: the declaration of a model's states, transitions and parties."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import DefinitionError, did_you_mean
from .machine import StateMachine
from .parties import PartySpec, check_attributes, check_parties

_TRANSITION_KEYS = ("trigger", "source", "dest", "conditions", "unless", "before", "after", "prepare")
_DICT_KEYS = (*_TRANSITION_KEYS, "timeout")  # "after" is the transitions library's callback: a delay is "timeout"


class Workflow:
    """States, transitions and parties of a model, in the ``transitions`` library's own formats.

    Assign one to ``workflow`` in the body of a :class:`~workflow.Stateful` model. It is checked
    when the class is created, and then holds the model's single state machine.

    Args:
        states: the state names.
        initial: the state of a new row.
        transitions: ``[trigger, source, dest]`` lists or dicts with ``trigger``, ``source``
            (a state, a list of states or ``"*"``), ``dest`` and optional ``conditions``,
            ``unless``, ``before``, ``after`` and ``prepare``; and ``timeout``, a positive
            ``datetime.timedelta``: a row left that long in the transition's source state (one
            state or a list, not ``"*"`` nor the initial state) fires the trigger itself.
        parties: party name to an attribute name of the row or a callable taking the row; either
            gives one recipient, a list of recipients, or ``None``.
        name: the model's name in the transition log; defaults to the class name.

    Raises:
        DefinitionError: naming the model and the unknown state, trigger or party spec.
    """

    def __init__(
        self,
        *,
        states: Sequence[str],
        initial: str,
        transitions: Sequence[Sequence[Any] | Mapping[str, Any]] = (),
        parties: Mapping[str, PartySpec] | None = None,
        name: str | None = None,
    ) -> None:
        self.states: tuple[str, ...] = tuple(states)
        self.initial = initial
        normalised = [self._normalise(t) for t in transitions]
        self._timeouts_in = [(t["trigger"], t["source"], t["dest"], t.pop("timeout"))
                             for t in normalised if "timeout" in t]
        self.transitions: tuple[dict[str, Any], ...] = tuple(normalised)
        #: Per state, the (trigger, how long) of each timeout out of it; filled by :meth:`bind`.
        self.timeouts: dict[str, tuple[tuple[str, dt.timedelta], ...]] = {}
        self._parties_in = dict(parties or {})
        self.name = name
        self.parties: dict[str, PartySpec] = {}
        self.machine: StateMachine | None = None
        self.model: type | None = None

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger declared, in declaration order."""
        return tuple(dict.fromkeys(t["trigger"] for t in self.transitions))

    def bind(self, model_cls: type) -> None:
        """Check the declaration against ``model_cls`` and build its state machine.

        Raises:
            DefinitionError: a state, transition, callback or party does not fit the model.
        """
        name = self.name or model_cls.__name__
        self.name = name
        if self.model is not None and self.model is not model_cls:
            raise DefinitionError(f"{name}: a Workflow belongs to one model; it is already bound to "
                                  f"{self.model.__name__}.")
        self._check_states(name)
        for transition in self.transitions:
            self._check_transition(name, model_cls, transition)
        self.timeouts = self._check_timeouts(name)
        self.parties = check_parties(name, self._parties_in)
        check_attributes(model_cls, self.parties)
        self.machine = StateMachine(self.states, self.transitions, self.initial, name=name)
        self.model = model_cls

    def _normalise(self, transition: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(transition, Mapping):
            unknown = set(transition) - set(_DICT_KEYS)
            if unknown:
                raise DefinitionError(
                    f"transition {dict(transition)!r} has unknown keys {sorted(unknown)}; "
                    f"known: {', '.join(_DICT_KEYS)}."
                )
            if not {"trigger", "source", "dest"} <= set(transition):
                raise DefinitionError(f"transition {dict(transition)!r} needs 'trigger', 'source' and 'dest'.")
            return dict(transition)
        items = list(transition)
        if not 3 <= len(items) <= len(_TRANSITION_KEYS) or isinstance(transition, str):
            raise DefinitionError(f"transition {transition!r} must be [trigger, source, dest] or a dict.")
        return dict(zip(_TRANSITION_KEYS, items))

    def _check_states(self, name: str) -> None:
        if not self.states:
            raise DefinitionError(f"{name}: a workflow needs at least one state.")
        for state in self.states:
            if not isinstance(state, str) or not state:
                raise DefinitionError(f"{name}: states are non-empty strings, not {state!r}.")
        if len(set(self.states)) != len(self.states):
            raise DefinitionError(f"{name}: states are listed twice: {list(self.states)}.")
        if self.initial not in self.states:
            raise DefinitionError(
                f"{name}: initial state {self.initial!r} is not one of the states "
                f"{list(self.states)}.{did_you_mean(self.initial, self.states)}"
            )

    def _check_transition(self, name: str, model_cls: type, t: dict[str, Any]) -> None:
        trigger = t["trigger"]
        if not isinstance(trigger, str) or not trigger.isidentifier():
            raise DefinitionError(f"{name}: trigger {trigger!r} must be an identifier, like 'accept'.")
        sources = t["source"] if isinstance(t["source"], list | tuple) else [t["source"]]
        for state in sources:
            if state != "*" and state not in self.states:
                raise DefinitionError(
                    f"{name}: transition {trigger!r} starts from unknown state {state!r}; states: "
                    f"{', '.join(self.states)}.{did_you_mean(str(state), self.states)}"
                )
        if t["dest"] not in (None, "=") and t["dest"] not in self.states:
            raise DefinitionError(
                f"{name}: transition {trigger!r} goes to unknown state {t['dest']!r}; states: "
                f"{', '.join(self.states)}.{did_you_mean(str(t['dest']), self.states)}"
            )
        for kind in ("conditions", "unless", "before", "after", "prepare"):
            callbacks = t.get(kind) or []
            for callback in callbacks if isinstance(callbacks, list | tuple) else [callbacks]:
                if isinstance(callback, str) and "." not in callback and not hasattr(model_cls, callback):
                    raise DefinitionError(
                        f"{name}: transition {trigger!r} names {kind} {callback!r}, which {name} does not "
                        f"define."
                    )
                if not isinstance(callback, str) and not callable(callback):
                    raise DefinitionError(f"{name}: {kind} of {trigger!r} must be names or callables.")

    def _check_timeouts(self, name: str) -> dict[str, tuple[tuple[str, dt.timedelta], ...]]:
        """Each state's declared timeouts, (trigger, how long), checked; see the ``timeout`` key."""
        found: dict[str, list[tuple[str, dt.timedelta]]] = {}
        for trigger, source, dest, timeout in self._timeouts_in:
            where = f"{name}: the timeout of {trigger!r}"
            if not isinstance(timeout, dt.timedelta) or timeout <= dt.timedelta(0):
                raise DefinitionError(f"{where} must be a positive datetime.timedelta, like timedelta(days=7), "
                                      f"not {timeout!r}.")
            sources = list(source) if isinstance(source, list | tuple) else [source]
            for state in sources:
                if state == "*":
                    raise DefinitionError(f"{where} needs its source states named (a state or a list), not '*': a "
                                          f"timeout counts from the transition into one of them.")
                if state == self.initial:
                    raise DefinitionError(
                        f"{where} starts from {state!r}, the initial state: rows are created in it without any "
                        f"transition, so there is nothing to time it from. Give {name} a state before it (e.g. "
                        f"initial='new' and a transition ['create', 'new', {state!r}] fired when a row is made).")
                if dest in (None, "=", state):
                    raise DefinitionError(f"{where} would leave the row in {state!r}, which starts the same timeout "
                                          f"again, for ever; a timeout must lead to another state.")
                if any(known == trigger for known, _ in found.get(state, [])):
                    raise DefinitionError(f"{where} is declared twice from state {state!r}.")
                found.setdefault(state, []).append((trigger, timeout))
        return {state: tuple(pairs) for state, pairs in found.items()}
