"""The in-app inbox in a web page: a tiny WSGI application on the standard library alone.

``inbox_app(engine)`` serves one user's inbox at ``/users/<id>/inbox`` (the unread count, the
newest items, a form to mark them read) and the list of users at ``/``; given an
``unsubscribe`` endpoint, it also answers the mails' one-click unsubscribe links at ``/unsubscribe``,
and given a ``console``, the operators' console at ``/console/`` (docs/console.md). A real application
takes the user from its login session; here the path stands in for it. Run it with
``python -m examples.issues.web``: it tells the demo's story in a temporary folder, then
serves it on http://127.0.0.1:8000/ until Ctrl-C.
"""

from __future__ import annotations

import html
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from jobs.console import Console
from jobs.runtime import current
from notifiers import Inbox, InboxItem, UnsubscribeEndpoint
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session, sessionmaker

from .models import User

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_INBOX = re.compile(r"^/users/(\d+)/inbox(/read)?$")
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:48em;margin:2em auto}} li{{margin:.5em 0}}
.unread{{font-weight:bold}} pre{{font-weight:normal;white-space:pre-wrap;margin:.2em 0 0 1.6em}}</style>
</head><body>{body}</body></html>"""


def inbox_app(bind: Engine | Connection, *, limit: int = 20,
              unsubscribe: UnsubscribeEndpoint | None = None, console: Console | None = None) -> WSGIApp:
    """The WSGI application serving the inboxes of the users in ``bind``'s database.

    Args:
        bind: the application's engine (or, in tests, a connection whose transaction it joins).
        limit: how many of the newest items a page shows.
        unsubscribe: the endpoint of the ``unsubscribe_url`` links, mounted at ``/unsubscribe``
            (``TIDINGS_UNSUBSCRIBE_URL=https://<this site>/unsubscribe``).
        console: the operators' console, mounted at ``/console/`` (its pages and forms below that prefix).
    """
    sessions = sessionmaker(bind, join_transaction_mode="create_savepoint")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        if path == "/unsubscribe" and unsubscribe is not None:
            return unsubscribe.wsgi(environ, start_response)
        if console is not None and (path == "/console" or path.startswith("/console/")):
            environ = {**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + "/console",
                       "PATH_INFO": path[len("/console"):] or "/"}
            return console.wsgi(environ, start_response)
        with sessions() as session:
            if path == "/" and method == "GET":
                return _respond(start_response, "200 OK", _users_page(session))
            match = _INBOX.match(path)
            user = session.get(User, int(match[1])) if match else None
            if match is None or user is None:
                return _respond(start_response, "404 Not Found", _message("Not found"))
            marking = bool(match[2])
            if marking and method == "POST":
                _mark_read(session, user, _form(environ))
                start_response("303 See Other", [("Location", f"/users/{user.id}/inbox")])
                return [b""]
            if not marking and method == "GET":
                return _respond(start_response, "200 OK", _inbox_page(Inbox(session, user), user, limit))
            return _respond(start_response, "405 Method Not Allowed", _message("Method not allowed"))

    return app


def _respond(start_response: StartResponse, status: str, page: str) -> list[bytes]:
    body = page.encode()
    start_response(status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def _message(title: str) -> str:
    return _PAGE.format(title=title, body=f"<h1>{title}</h1>")


def _form(environ: dict[str, Any]) -> dict[str, list[str]]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return parse_qs(environ["wsgi.input"].read(length).decode())


def _mark_read(session: Session, user: User, form: dict[str, list[str]]) -> None:
    """Mark the ticked items read, or every item when the form says ``all``; commit."""
    ids = None if form.get("all") else [int(i) for i in form.get("item", []) if i.isdigit()]
    Inbox(session, user).mark_read(ids)
    session.commit()


def _users_page(session: Session) -> str:
    rows = "".join(f'<li><a href="/users/{u.id}/inbox">{html.escape(u.name)}</a> '
                   f"({Inbox(session, u).unread_count()} unread)</li>"
                   for u in session.scalars(select(User).order_by(User.id).limit(10)))
    return _PAGE.format(title="Inboxes", body=f"<h1>Inboxes</h1><ul>{rows}</ul>")


def _inbox_page(inbox: Inbox, user: User, limit: int) -> str:
    name = html.escape(user.name)
    items = "".join(_item(item) for item in inbox.items(limit=limit)) or "<li>Nothing yet.</li>"
    body = (f"<h1>Inbox of {name}</h1><p><span id=unread>{inbox.unread_count()}</span> unread</p>"
            f'<form method="post" action="/users/{user.id}/inbox/read"><ul>{items}</ul>'
            f'<button type="submit">Mark ticked read</button> '
            f'<button type="submit" name="all" value="1">Mark all read</button></form>')
    return _PAGE.format(title=f"Inbox of {name}", body=body)


def _item(item: InboxItem) -> str:
    tick = f'<input type="checkbox" name="item" value="{item.id}">' if item.unread else ""
    return (f'<li class="{"unread" if item.unread else "read"}">{tick} {html.escape(item.subject)}'
            f"<pre>{html.escape(item.text or '')}</pre></li>")


def main(port: int = 8000) -> int:
    """Tell the demo's story in a temporary folder, then serve its inboxes until Ctrl-C."""
    from .demo import tell

    with tempfile.TemporaryDirectory(prefix="tidings-issues-web-") as tmp:
        story = tell(Path(tmp))
        secret = current().settings.unsubscribe_secret  # TIDINGS_UNSUBSCRIBE_SECRET: answer the mails' links too
        endpoint = UnsubscribeEndpoint(story.engine, secret) if secret else None
        console = Console(story.engine)  # read-only: this demo has no login to name an operator
        with make_server("127.0.0.1", port, inbox_app(story.engine, unsubscribe=endpoint, console=console)) as server:
            print(f"Serving the inboxes on http://127.0.0.1:{port}/ and the console on "
                  f"http://127.0.0.1:{port}/console/ (Ctrl-C to stop)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
