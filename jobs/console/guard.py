"""Who may act, and that a form was posted by the console's own page: authorisation and CSRF.

Pages are read-only and shown to whoever reaches the mount (the host protects it as it
protects its other admin pages). An action (re-send, refan) needs three things: actions
enabled, an operator named by the host's ``authorize`` callback (or, run alone, logged in with
the console token), and the form's CSRF field equal to the console's cookie (double submit),
from a page of the same origin when the browser says where it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

from .http import Request, Response

__all__ = ["CSRF_COOKIE", "Guard", "Refused", "TokenLogin"]

CSRF_COOKIE = "tidings_console_csrf"
OPERATOR_COOKIE = "tidings_console_operator"
_NAME = re.compile(r"^[\w.@+-]{1,64}$", re.ASCII)  # as it is written in the cookie: no space, no quoting

Authorize = Callable[[Request], "str | None"]


class Refused(Exception):
    """An action refused: ``status`` (403) and why, shown to the operator."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class TokenLogin:
    """The console run alone: an operator logs in with their name and the console token (``console_token``).

    The cookie holds the name and an HMAC of it keyed by the token, never the token itself.
    """

    def __init__(self, token: str) -> None:
        self._key = token.encode()

    def _signature(self, name: str) -> str:
        return hmac.new(self._key, name.encode(), hashlib.sha256).hexdigest()

    def authorize(self, request: Request) -> str | None:
        """The operator of the request's cookie, or ``None`` without a valid one."""
        name, _, signature = request.cookies.get(OPERATOR_COOKIE, "").rpartition("|")
        if name and _NAME.match(name) and hmac.compare_digest(signature, self._signature(name)):
            return name
        return None

    def login(self, request: Request, name: str, token: str) -> Response | None:
        """A redirect setting the operator's cookie; ``None`` when the name or the token is refused."""
        name = name.strip()
        if not _NAME.match(name) or not hmac.compare_digest(token.encode(), self._key):
            return None
        response = Response.redirect(f"{request.root}/")
        response.headers.append(("Set-Cookie", f"{OPERATOR_COOKIE}={name}|{self._signature(name)}; Path={request.root or '/'}; "
                                               "HttpOnly; SameSite=Strict"))
        return response


class Guard:
    """Decides, for one request, who the operator is and whether an action may go ahead."""

    def __init__(self, authorize: Authorize | None, *, actions: bool) -> None:
        self.authorize = authorize
        self.actions = actions

    def operator(self, request: Request) -> str | None:
        """The operator the host's callback names for this request (``None``: nobody, or no callback)."""
        return self.authorize(request) if self.authorize is not None else None

    def may_act(self, request: Request) -> bool:
        """Whether the pages offer actions to this request."""
        return self.actions and self.operator(request) is not None

    @staticmethod
    def csrf(request: Request) -> tuple[str, bool]:
        """The request's CSRF token, and whether it is new (then the response sets its cookie)."""
        token = request.cookies.get(CSRF_COOKIE, "")
        if re.fullmatch(r"[0-9a-f]{32}", token):
            return token, False
        return secrets.token_hex(16), True

    def check(self, request: Request) -> str:
        """The operator allowed to run the action ``request`` posts.

        Raises:
            Refused: actions disabled, no authorised operator, or a form that is not the console's own.
        """
        if not self.actions:
            raise Refused(403, "Actions are disabled in this console (enable them with actions=True, or "
                               "TIDINGS_CONSOLE_ACTIONS=true when run alone).")
        operator = self.operator(request)
        if operator is None:
            raise Refused(403, "Not authorised: the host application's authorize callback named no operator "
                               "(run alone: log in with the console token).")
        self.check_form(request)
        return operator

    @staticmethod
    def check_form(request: Request) -> None:
        """Refuse a form that is not the console's own: its CSRF field must match the cookie, its origin this one.

        Raises:
            Refused: the CSRF token is missing or wrong, or the browser says the form came from elsewhere.
        """
        cookie, posted = request.cookies.get(CSRF_COOKIE, ""), request.field("csrf")
        if not cookie or not hmac.compare_digest(cookie.encode(), posted.encode()):
            raise Refused(403, "Refused: the form's CSRF token does not match (reload the page and try again).")
        origin, host = request.headers.get("origin"), request.headers.get("host")
        if origin and host and origin.split("://", 1)[-1] != host:
            raise Refused(403, f"Refused: the form was posted from {origin}, not from this console ({host}).")
