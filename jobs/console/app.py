"""The console application: routes a :class:`~jobs.console.http.Request` to a page or an action.

``Console(engine, authorize=..., actions=True)`` is the whole of it; ``console.wsgi`` and
``console.asgi`` are the two applications to mount. Pages are server-rendered by Jinja2 with
autoescape on, so every value a page shows (a subject, an address, an error) is escaped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .. import runtime
from .. import console_log as audit
from . import actions, diagram, listing, overview, timeline
from .guard import CSRF_COOKIE, Authorize, Guard, Refused, TokenLogin
from .http import Request, Response, asgi, wsgi

__all__ = ["Console"]

_log = logging.getLogger(__name__)
_FAILED = ("failed", "dead")
_SAFE_BACK = re.compile(r"^/[\w/\-.?=&%+]*$", re.ASCII)


class Console:
    """The operators' web console on ``bind``'s database (default: the runtime's, ``TIDINGS_DATABASE_URL``).

    Args:
        bind: an engine (or, in tests, a connection whose transaction it joins).
        authorize: the host's callback naming the operator allowed to act on a request, or ``None``
            to refuse; actions are refused without it (or ``token``).
        actions: offer and accept re-send and refan (off: read-only, whoever is authorised).
        token: run alone, operators log in with this token (``console_token``) instead of ``authorize``.
        page_size: deliveries a list shows per page.
    """

    def __init__(self, bind: Engine | Connection | None = None, *, authorize: Authorize | None = None,
                 actions: bool = False, token: str | None = None, page_size: int = listing.PAGE) -> None:
        self._login = TokenLogin(token) if token else None
        self.page_size = page_size
        self.guard = Guard(authorize or (self._login.authorize if self._login else None), actions=actions)
        self._sessions = (sessionmaker(bind, expire_on_commit=False, join_transaction_mode="create_savepoint")
                          if bind is not None else None)
        self._templates = Environment(loader=PackageLoader("jobs.console", "templates"), autoescape=True,
                                      trim_blocks=True, lstrip_blocks=True)
        self.wsgi = wsgi(self.answer)
        self.asgi = asgi(self.answer)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._sessions is None:
            with runtime.current().session() as session:
                yield session
        else:
            with self._sessions() as session:
                yield session

    def answer(self, request: Request) -> Response:
        """The response to one request: a page, a redirect after an action, or why not."""
        pages: dict[str, Callable[[Request, Session], Response]] = {
            "/": self._overview, "/deliveries": self._deliveries, "/failures": self._failures,
            "/timeline": self._timeline, "/preview": self._preview, "/graph": self._graph, "/actions": self._actions}
        posts: dict[str, Callable[[Session, Request, str], int]] = {"/resend": actions.resend, "/refan": actions.refan}
        try:
            if request.path == "/login":
                return self._log_in(request)
            if self._login is not None and self.guard.operator(request) is None:  # run alone: nothing before the login
                if request.method == "POST":
                    raise Refused(403, "Not authorised: log in with the console token first.")
                return Response.redirect(f"{request.root}/login")
            with self._session() as session:
                if request.path in pages and request.method in ("GET", "HEAD"):
                    return pages[request.path](request, session)
                if request.path in posts and request.method == "POST":
                    done = posts[request.path](session, request, self.guard.check(request))
                    return Response.redirect(f"{_back(request)}{'&' if '?' in _back(request) else '?'}done={done}")
                if request.path in pages or request.path in posts:
                    return self._message(request, 405, "Method not allowed",
                                         "Pages answer GET; actions answer POST from the console's forms.")
            return self._message(request, 404, "Not found", f"The console has no page {request.path}.")
        except Refused as refused:
            return self._message(request, refused.status, "Refused", str(refused))
        except SQLAlchemyError:
            _log.exception("Console: the database failed on %s %s", request.method, request.path)
            return self._message(request, 503, "The database did not answer",
                                 "See the application's log; the page can be loaded again.")

    def _render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        token, new = self.guard.csrf(request)
        values.setdefault("done", None)

        def url(path: str, *pairs: tuple[str, object], **params: object) -> str:
            query = urlencode([*pairs, *((k, v) for k, v in params.items() if v not in (None, ""))])
            return f"{request.root}{path}" + (f"?{query}" if query else "")

        here = _without_done(url(request.path, *((k, v) for k, vs in request.query.items() for v in vs)))
        page = self._templates.get_template(template).render(
            root=request.root, path=request.path, url=url, here=here, csrf=token, operator=self.guard.operator(request),
            may_act=self.guard.may_act(request), actions_enabled=self.guard.actions, login=self._login is not None,
            **values)
        response = Response.html(status, page)
        if new:
            response.headers.append(("Set-Cookie", f"{CSRF_COOKIE}={token}; Path={request.root or '/'}; HttpOnly; "
                                                   "SameSite=Strict"))
        return response

    def _message(self, request: Request, status: int, title: str, text: str) -> Response:
        return self._render(request, "message.html", status, title=title, text=text)

    def _done(self, request: Request, session: Session) -> audit.ConsoleAction | None:
        done = request.arg("done")
        return session.get(audit.ConsoleAction, int(done)) if done.isdigit() else None

    def _overview(self, request: Request, session: Session) -> Response:
        return self._render(request, "overview.html", **overview.context(session))

    def _deliveries(self, request: Request, session: Session) -> Response:
        return self._render(request, "deliveries.html", **listing.context(session, request, page=self.page_size))

    def _failures(self, request: Request, session: Session) -> Response:
        return self._render(request, "failures.html", done=self._done(request, session),
                            **listing.context(session, request, statuses=_FAILED, page=self.page_size))

    def _timeline(self, request: Request, session: Session) -> Response:
        found = timeline.context(session, request, previews=self.guard.operator(request) is not None)
        return self._render(request, "timeline.html", done=self._done(request, session), **found)

    def _preview(self, request: Request, session: Session) -> Response:
        """One delivery's message, rendered now: for an authorised operator only (it shows a body)."""
        if self.guard.operator(request) is None:
            raise Refused(403, "Message previews are shown to authorised operators only.")
        text = request.arg("delivery")
        if not text.isdigit():
            raise Refused(404, f"No delivery has id {text!r}.")
        return self._render(request, "preview.html", delivery=int(text), preview=timeline.preview(session, int(text)))

    def _graph(self, request: Request, session: Session) -> Response:
        return self._render(request, "graph.html", **diagram.context())

    def _actions(self, request: Request, session: Session) -> Response:
        return self._render(request, "actions.html", recorded=audit.recent(session))

    def _log_in(self, request: Request) -> Response:
        """Run alone with a token: the login form, and its POST setting the operator's cookie."""
        if self._login is None:
            return self._message(request, 404, "Not found", "This console has no login: the host application "
                                                            "authorises its operators.")
        if request.method == "POST":
            self.guard.check_form(request)
            done = self._login.login(request, request.field("name"), request.field("token"))
            if done is not None:
                return done
            return self._render(request, "login.html", 403, problem="Wrong token, or a name that is not 1 to 64 "
                                                                    "ASCII letters, digits or _.@+-")
        return self._render(request, "login.html", problem=None)


def _back(request: Request) -> str:
    """Where an action returns to: the page that posted it (a path of this console only), else the failures."""
    back = request.field("back")
    if back.startswith(f"{request.root}/") and _SAFE_BACK.match(back) and "//" not in back:
        return _without_done(back)
    return f"{request.root}/failures"


def _without_done(url: str) -> str:
    """``url`` without its ``done`` parameter: the previous action's notice is not carried on."""
    path, _, query = url.partition("?")
    kept = [(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "done"]
    return path + (f"?{urlencode(kept)}" if kept else "")
