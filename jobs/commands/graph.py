"""The declared workflows, with who is notified through which channel on each transition, and the timeouts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from notifiers import Timing, registry
from workflow import Stateful, stateful_models

__all__ = ["Edge", "edges", "graph", "reminders"]


@dataclass(frozen=True)
class Edge:
    """One arrow of a workflow: ``source`` to ``dest`` on ``trigger``, its timeout (`` after 7 days``) and who is told."""

    source: str
    dest: str
    trigger: str
    after: str
    told: str


def edges(name: str, model: type[Stateful]) -> list[Edge]:
    """The arrows of ``model``'s workflow, one per source state of each transition (``*`` spelled out)."""
    workflow = model.workflow
    found = []
    for transition in workflow.transitions:
        sources = transition["source"]
        sources = workflow.states if sources == "*" else sources if isinstance(sources, list | tuple) else [sources]
        for source in sources:
            dest = source if transition["dest"] in (None, "=") else transition["dest"]
            after = "".join(f" after {_duration(d)}" for t, d in workflow.timeouts.get(source, ())
                            if t == transition["trigger"])
            found.append(Edge(source, dest, transition["trigger"], after, _notified(name, transition["trigger"])))
    return found


def reminders(name: str, model: type[Stateful]) -> list[str]:
    """A line per reminder of ``model``: the state it waits in, who, when."""
    return _reminders(name, model.workflow.transitions, False)


def graph(mermaid: bool = False) -> str:
    """Every imported Stateful model's transitions and notified parties, as text or Mermaid."""
    blocks = []
    for name, model in sorted(stateful_models().items()):
        workflow = model.workflow
        lines = [f"stateDiagram-v2\n    %% {name}" if mermaid else f"{name} (initial: {workflow.initial})"]
        if mermaid:
            lines.append(f"    [*] --> {workflow.initial}")
        for e in edges(name, model):
            if mermaid:
                told = f" / {e.told}" if e.told else ""
                lines.append(f"    {e.source} --> {e.dest}: {e.trigger}{e.after}{told}")
            else:
                lines.append(f"  {e.source} -> {e.dest} on {e.trigger}{e.after}: {e.told or 'nobody is told'}")
        lines += _reminders(name, workflow.transitions, mermaid)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "No Stateful model is imported (pass --import myapp.models)."


def _notified(model: str, trigger: str) -> str:
    parts = []
    for registration in registry.for_transition(model, trigger):
        if registration.timing is not None and registration.timing.reminder is not None:
            continue  # shown under its state
        channels = ", ".join(registration.channels) + (", required" if registration.required else "")
        parts += [f"{party} ({channels}{_when(registration.timing)})" for party in registration.parties]
    return "; ".join(dict.fromkeys(parts))


def _reminders(model: str, transitions: tuple[dict[str, Any], ...], mermaid: bool) -> list[str]:
    """A line per reminder: the state it waits in, who, when."""
    found: dict[tuple[str, str], str] = {}
    for transition in transitions:
        for registration in registry.for_transition(model, transition["trigger"]):
            timing = registration.timing
            if timing is None or timing.reminder is None:
                continue
            after, every, times = timing.reminder
            repeat = f", every {_duration(every)}, {times} times" if times > 1 else ""
            found[(transition["dest"], registration.name)] = (
                f"still {transition['dest']} after {_duration(after)}{repeat}: remind "
                f"{', '.join(registration.parties)} ({', '.join(registration.channels)}{_when(timing, delay=False)})")
    prefix = "    %% " if mermaid else "  "
    return [prefix + line for line in found.values()]


def _when(timing: Timing | None, *, delay: bool = True) -> str:
    """What a registration's timing says, for a graph label: ``, after 10 minutes, void once left``."""
    if timing is None:
        return ""
    parts = [f"after {_duration(timing.delay)}"] if delay and timing.delay else []
    if timing.quiet_hours is not None:
        parts.append(f"not {timing.quiet_hours}")
    if timing.left and timing.reminder is None:
        parts.append("void once left")
    if timing.superseded_by:
        parts.append(f"void on {'/'.join(timing.superseded_by)}")
    return "".join(f", {part}" for part in parts)


def _duration(delta: dt.timedelta) -> str:
    """A time as people say it: ``7 days``, ``36 hours``, ``90 minutes``, ``45 seconds``."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{delta.total_seconds():g} seconds"
