"""The operators' web console: backlog, deliveries, a record's timeline, failures with re-send and refan, the graph.

``Console(engine, authorize=callback, actions=True)`` gives ``.wsgi`` and ``.asgi``, to mount in
the host application; ``tidings console --port 8025`` runs it alone (docs/console.md). It reads
jobs' tables through the commands' own queries (:mod:`jobs.commands`), and writes only through
its actions, each recorded in ``tidings_console_actions`` (:mod:`jobs.console_log`).
"""

from __future__ import annotations

from .app import Console
from ..console_log import ConsoleAction
from .http import Request, Response

__all__ = ["Console", "ConsoleAction", "Request", "Response"]
