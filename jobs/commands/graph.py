"""The declared workflows, with who is notified through which channel on each transition, and the timeouts."""

from __future__ import annotations

import datetime as dt

from notifiers import registry
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
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "No Stateful model is imported (pass --import myapp.models)."


def _notified(model: str, trigger: str) -> str:
    parts = []
    for registration in registry.for_transition(model, trigger):
        channels = ", ".join(registration.channels) + (", required" if registration.required else "")
        parts += [f"{party} ({channels})" for party in registration.parties]
    return "; ".join(dict.fromkeys(parts))


def _duration(delta: dt.timedelta) -> str:
    """A timeout as people say it: ``7 days``, ``36 hours``, ``90 minutes``, ``45 seconds``."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{delta.total_seconds():g} seconds"
