"""Held transitions: first fan-outs not marked done because their model has no notifier in the planning process.

Marking such a transition done would tell nobody for good, when the likely cause is a worker
started with the wrong modules. So it stays ``fanned_out_at`` empty, counted by ``tidings
status``, with its reason in ``held_reason``; the sweeper hands it out again, and a worker that
has the notifiers plans it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable

from notifiers import registry
from workflow import TransitionRecord, stateful_models

__all__ = ["reasons"]

_log = logging.getLogger("jobs.fanout")


def reasons(records: Iterable[TransitionRecord]) -> dict[int, str]:
    """The first fan-outs to hold back, each with why: their model has no notifier in this process.

    Marking them done would tell nobody for good, when the likely cause is a worker started
    with the wrong modules. A model whose workflow names no party notifies nobody by design:
    its transitions are done. One with notifiers, but none for this trigger, is done as well.
    """
    known, models = registry.models(), stateful_models()
    held: dict[str, list[int]] = {}
    for record in records:
        model = models.get(record.model)
        if record.fanned_out_at is None and record.model not in known and (model is None or model.workflow.parties):
            held.setdefault(record.model, []).append(record.id)
    reasons: dict[int, str] = {}
    if not held:
        return reasons
    modules = sorted({name.rsplit(".", 2)[0] for name in registry.names()}) or ["none"]
    for model_name, ids in held.items():
        reason = (f"No notifier for {model_name} is registered in the worker that planned it (pid {os.getpid()} on "
                  f"{socket.gethostname()}; notifier modules: {', '.join(modules)}): is TIDINGS_NOTIFIERS (or the "
                  f"worker's module list) the application's? A worker that has them plans it when the sweeper "
                  f"retries it.")[:500]
        _log.warning("Transitions %s held back: %s", ids, reason, extra={"transition_id": ids[0]})
        reasons.update(dict.fromkeys(ids, reason))
    return reasons
