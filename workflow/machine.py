"""The one ``transitions.Machine`` per model class, fired against rows without registering them.

A machine per row costs 15-30 KiB and up to 0.7 ms, and ``add_model`` leaks and overwrites the
stored state. So each model class builds one machine with no models at all, and a trigger is
run with ``Event.trigger(row)``, which reads and writes the row's state attribute directly.

The ``transitions`` library logs two INFO lines per trigger ("Finished processing state ... exit
callbacks"); Tidings records each transition itself, and those lines cost a worker firing timeouts
a quarter of its CPU (docs/PERFORMANCE.md, "Time"). So its logger is set to WARNING at import,
unless the application gave it a level of its own first.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transitions import Machine as _Machine
from transitions.core import Condition, EventData, Transition

__all__ = ["StateMachine", "call_with_accepted"]

_firing = threading.local()

_library_log = logging.getLogger("transitions")
if _library_log.level == logging.NOTSET:
    _library_log.setLevel(logging.WARNING)


@functools.lru_cache(maxsize=1024)
def _accepted(func: Callable[..., Any]) -> tuple[bool, frozenset[str]]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True, frozenset()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return True, frozenset()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return False, frozenset(p.name for p in params if p.kind in kinds)


def call_with_accepted(func: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call ``func`` with the keyword arguments it accepts: all of them, some, or none.

    So a condition can be ``def item_available(self)`` or ``def item_available(self, actor, **context)``.
    """
    target = getattr(func, "__func__", func)
    try:
        takes_all, names = _accepted(target)
    except TypeError:  # unhashable callable
        takes_all, names = True, frozenset()
    if takes_all:
        return func(**kwargs)
    return func(**{k: v for k, v in kwargs.items() if k in names})


class _Condition(Condition):
    def check(self, event_data: EventData) -> bool:
        predicate = event_data.machine.resolve_callable(self.func, event_data)
        passed = bool(call_with_accepted(predicate, event_data.kwargs) == self.target)
        if not passed:
            name = self.func if isinstance(self.func, str) else getattr(self.func, "__name__", repr(self.func))
            _firing.name = name if self.target else f"unless {name}"
        return passed


class _Transition(Transition):
    condition_cls = _Condition


class StateMachine(_Machine):
    """A ``transitions.Machine`` holding no models, shared by every row of one model class."""

    transition_cls = _Transition

    def __init__(self, states: Sequence[Any], transitions: Sequence[Any], initial: str, name: str) -> None:
        super().__init__(
            model=None,
            states=list(states),
            transitions=list(transitions),
            initial=initial,
            auto_transitions=False,
            send_event=False,
            name=name,
        )

    def callback(self, func: Any, event_data: EventData) -> None:
        """Call a callback with the trigger's keyword arguments it accepts."""
        call_with_accepted(self.resolve_callable(func, event_data), event_data.kwargs)

    def fire(self, row: object, trigger: str, kwargs: Mapping[str, Any],
             on_change: Callable[[str], None]) -> tuple[bool, str | None]:
        """Run ``trigger`` on ``row``; return whether it happened and, if refused, the refusing condition.

        ``on_change(dest)`` is called right after the state attribute is set, before the
        ``on_enter`` and ``after`` callbacks run; what it raises aborts the transition.
        """
        _firing.name = None
        outer = getattr(_firing, "on_change", None)
        _firing.on_change = on_change
        try:
            done = bool(self.events[trigger].trigger(row, **kwargs))
        finally:
            _firing.on_change = outer
        return done, None if done else _firing.name

    def set_state(self, state: Any, model: Any = None) -> None:
        """Set the row's state, then let the firing row write it (see :meth:`fire`)."""
        super().set_state(state, model)
        on_change = getattr(_firing, "on_change", None)
        if on_change is not None and model is not None:
            on_change(getattr(model, self.model_attribute))

    def allowed(self, state: str) -> list[str]:
        """The triggers that have a transition from ``state`` (conditions are not evaluated)."""
        return sorted(self.get_triggers(state))
