"""``tidings console --port 8025``: the operators' web console, run alone (a host application mounts ``Console``).

Pages are read-only. With ``TIDINGS_CONSOLE_TOKEN`` set, operators log in with their name and
the token; with ``TIDINGS_CONSOLE_ACTIONS=true`` too, they may re-send and refan. It serves on
``127.0.0.1`` unless ``--host`` says otherwise (put it behind TLS to serve it further).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dramatiq.brokers.stub import StubBroker

from .. import actors, inprocess
from ..console import Console
from ..runtime import current

__all__ = ["add_parser", "run", "server"]

_log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow page does not hold the others."""

    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        _log.debug("console: " + format, *args)


def server(app: Callable[..., Iterable[bytes]], host: str, port: int) -> WSGIServer:
    """A threaded WSGI server of ``app`` on ``host``:``port`` (0: a free port), logging requests at debug level."""
    return make_server(host, port, app, server_class=_Server, handler_class=_Quiet)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``console`` to the commands."""
    serving = commands.add_parser("console", help="serve the operators' web console (read-only unless enabled)",
                                  description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    serving.add_argument("--port", type=int, default=8025, help="TCP port (default: 8025)")
    serving.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")


def run(args: argparse.Namespace) -> int:
    """Serve the console until interrupted; 2 for actions enabled without a token."""
    settings = current().settings
    if settings.console_actions and not settings.console_token:
        print("error: Setting console_actions (TIDINGS_CONSOLE_ACTIONS) needs console_token (TIDINGS_CONSOLE_TOKEN): "
              "nobody could log in to act.", file=sys.stderr)
        return 2
    broker = actors.deliver.broker
    if isinstance(broker, StubBroker) and broker in sys.modules["jobs"]._built:
        inprocess.start(broker, finish_at_exit=True)  # broker_url=stub: what an action enqueues is delivered here
    console = Console(token=settings.console_token, actions=settings.console_actions)
    with server(console.wsgi, args.host, args.port) as served:
        mode = ("actions enabled" if settings.console_actions else "read-only") + (
            "" if settings.console_token else ", no login (TIDINGS_CONSOLE_TOKEN unset)")
        print(f"Tidings console on http://{args.host}:{served.server_port}/ ({mode}); Ctrl-C to stop", flush=True)
        try:
            served.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
