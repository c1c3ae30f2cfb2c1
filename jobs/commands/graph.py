"""The declared workflows, with who is notified through which channel on each transition, and the timeouts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from notifiers import Timing, registry
from workflow import stateful_models

__all__ = ["graph"]


def graph(mermaid: bool = False) -> str:
    """Every imported Stateful model's transitions and notified parties, as text or Mermaid."""
    blocks = []
    for name, model in sorted(stateful_models().items()):
        workflow = model.workflow
        lines = [f"stateDiagram-v2\n    %% {name}" if mermaid else f"{name} (initial: {workflow.initial})"]
        if mermaid:
            lines.append(f"    [*] --> {workflow.initial}")
        for transition in workflow.transitions:
            sources = transition["source"]
            sources = workflow.states if sources == "*" else sources if isinstance(sources, list | tuple) else [sources]
            for source in sources:
                dest = source if transition["dest"] in (None, "=") else transition["dest"]
                told = _notified(name, transition["trigger"])
                after = "".join(f" after {_duration(d)}" for t, d in workflow.timeouts.get(source, ())
                                if t == transition["trigger"])
                if mermaid:
                    told = f" / {told}" if told else ""
                    lines.append(f"    {source} --> {dest}: {transition['trigger']}{after}{told}")
                else:
                    lines.append(f"  {source} -> {dest} on {transition['trigger']}{after}: {told or 'nobody is told'}")
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
