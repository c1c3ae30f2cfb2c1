"""The console mounted: its WSGI and ASGI applications under a prefix, every page and a posted action; its settings."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import jobs
import pytest
from jobs import ConfigurationError, Settings
from jobs.console import Console
from sqlalchemy import Engine

PAGES = ["/", "/deliveries", "/failures", "/timeline", "/graph", "/actions"]


def wsgi_get(console: Console, path: str, script_name: str = "") -> tuple[str, bytes]:
    seen: dict[str, Any] = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": script_name, "QUERY_STRING": "",
               "wsgi.input": io.BytesIO(b"")}
    body = b"".join(console.wsgi(environ, lambda status, headers: seen.update(status=status)))
    return seen["status"], body


@pytest.mark.parametrize("path", PAGES)
def test_each_page_answers_through_wsgi_under_a_prefix(engine: Engine, path: str) -> None:
    status, body = wsgi_get(Console(engine), path, "/console")
    assert status == "200 OK" and b'href="/console/failures"' in body


def test_a_form_posted_through_wsgi_reaches_the_action(engine: Engine) -> None:
    form = b"csrf=0123456789abcdef0123456789abcdef&delivery=1"
    seen: dict[str, Any] = {}
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/resend", "SCRIPT_NAME": "/console", "QUERY_STRING": "",
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(form)),
               "HTTP_COOKIE": "tidings_console_csrf=0123456789abcdef0123456789abcdef", "wsgi.input": io.BytesIO(form)}
    b"".join(Console(engine, authorize=lambda r: "ada", actions=True).wsgi(
        environ, lambda status, headers: seen.update(status=status, headers=dict(headers))))
    assert seen["status"] == "303 See Other"  # done (delivery 1 is no failure: nothing re-sent), back under the prefix
    assert seen["headers"]["Location"].startswith("/console/failures?done=")


def asgi_call(console: Console, method: str, path: str, root: str, body: bytes = b"",
              headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": method, "path": path, "root_path": root, "query_string": b"",
             "headers": headers or []}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(console.asgi(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


@pytest.mark.parametrize("path", PAGES)
def test_each_page_answers_through_asgi_under_a_mount_that_keeps_the_prefix_in_the_path(engine: Engine,
                                                                                        path: str) -> None:
    status, body = asgi_call(Console(engine), "GET", "/console" + path, "/console")
    assert status == 200 and b'href="/console/graph"' in body


def test_a_form_posted_through_asgi_reaches_the_action(engine: Engine) -> None:
    status, body = asgi_call(Console(engine, authorize=lambda r: "ada"), "POST", "/console/resend", "/console",
                             b"csrf=x", [(b"content-type", b"application/x-www-form-urlencoded")])
    assert status == 403 and b"Actions are disabled" in body


def test_the_console_token_is_a_secret_of_at_least_16_characters() -> None:
    with pytest.raises(ConfigurationError, match="console_token .*TIDINGS_CONSOLE_TOKEN.*at least 16"):
        Settings(console_token="short")
    assert "tok-en-of-sixteen-chars" not in repr(Settings(console_token="tok-en-of-sixteen-chars"))
    assert Settings.from_env({"TIDINGS_CONSOLE_ACTIONS": "true"}).console_actions is True


def test_tidings_console_refuses_actions_without_a_token(capsys: pytest.CaptureFixture[str],
                                                          restore_jobs: None) -> None:
    from jobs.commands.cli import main

    jobs.configure(console_actions=True)
    assert main(["console", "--port", "0"]) == 2
    assert "console_actions (TIDINGS_CONSOLE_ACTIONS) needs console_token" in capsys.readouterr().err
