"""The console in headless Chromium: every page against a database with failures, filtering, a timeline,
a re-send arriving at a loopback SMTP server, an action refused without authorisation.

Each page's screenshot is saved (into this test's folder; ``SCREENSHOTS=docs/console`` saves them
where docs/console.md shows them).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands.console import server as serve
from jobs.console import Console, Request
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order, Person
from tests.failing_channels import Down, Refusing
from tests.processes import ROOT, stop_group, wait_for
from tests.servers import SMTPServer

pytestmark = pytest.mark.integration
TOKEN = "console-token-for-the-browser-test"
PAGES = {"overview": "/", "deliveries": "/deliveries?status=dead", "failures": "/failures",
         "timeline": "/timeline?model=Order&key=4", "graph": "/graph", "actions": "/actions"}






def _orders(session: Session, count: int) -> list[Order]:
    made = [Order(buyer=Person(name=f"Bea {n}", email=f"bea{n}@example.com"),
                  seller=Person(name=f"Sam {n}", email=f"sam{n}@example.com"), watchers=[f"w{n}@example.com"])
            for n in range(count)]
    session.add_all(made)
    session.commit()
    return made


@pytest.fixture
def seeded(broker: StubBroker, engine: Engine, session: Session) -> Engine:
    """Orders 1-3 paid and told; 4-5 paid while the mail server was down (dead); 6 refused (failed); 1 shipped."""
    orders = _orders(session, 6)
    for channel, chosen in ((MemoryChannel(), orders[:3]), (Down(), orders[3:5]),
                           (Refusing("550 5.1.1 <sam@example.com>: mailbox unavailable"), orders[5:])):
        jobs.configure(broker=broker, engine=engine, channels={"email": channel})
        for order in chosen:
            order.pay(actor="shop", note="<script>alert('paid')</script>")
        session.commit()
        drain()
    jobs.configure(broker=broker, engine=engine, channels={"email": MemoryChannel()})
    orders[0].ship()
    session.commit()
    drain()
    return engine


@pytest.fixture
def mounted(seeded: Engine) -> Iterator[str]:
    """The console mounted by a host at /ops: the host names the operator from its own header, actions enabled."""
    console = Console(seeded, authorize=lambda request: request.headers.get("x-operator"), actions=True)

    def host(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/ops/") or path == "/ops":
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/ops", path[4:] or "/"
            return console.wsgi(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"the host's own pages"]

    server = serve(host, "127.0.0.1", 0)  # what `tidings console` serves with
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/ops"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ["SCREENSHOTS"]) if os.environ.get("SCREENSHOTS") else tmp_path
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_each_console_page_loads_in_chromium_against_a_database_with_failures(chromium: Any, mounted: str,
                                                                              tmp_path: Path) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, extra_http_headers={"X-Operator": "ada"})
    page = context.new_page()
    folder = _screenshots(tmp_path)
    page.goto(mounted + "/failures?status=failed")
    page.locator("input[name=delivery]").first.check()  # one re-sent first, so that the Actions page shows it
    page.click("#resend button[type=submit]")
    assert page.inner_text("#done") == "ada: re-sent 1 delivery" and "status=failed" in page.url
    seen = {}
    for name, path in PAGES.items():
        response = page.goto(mounted + path)
        assert response is not None and response.status == 200, name
        if name == "timeline":
            page.click("details summary")
        seen[name] = page.inner_text("main")
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert "dead\n4" in seen["overview"] and "failed\n1" in seen["overview"]  # the one re-sent is sent (the
    assert "sent\n8" in seen["overview"] and "ada\tresend\tdeliveries 12" in seen["actions"]  # test's worker)
    assert "Connection refused" in seen["overview"] and "mailbox unavailable" in seen["overview"]
    assert seen["deliveries"].count("dead") >= 4 and "sent\t" not in seen["deliveries"]
    assert "pay: new → paid by shop" in seen["timeline"]
    assert "Order (initial: new)" in seen["graph"]
    assert page.evaluate("() => window.alerted === undefined") and "<script>" not in page.content()
    context.close()


def test_filtering_the_deliveries_in_chromium_shows_only_those_matching(chromium: Any, mounted: str) -> None:
    page = chromium.new_page()
    page.goto(mounted + "/deliveries")
    page.select_option("select[name=status]", ["failed"])
    page.click("#filters button[type=submit]")
    page.wait_for_url("**status=failed**")
    rows = page.locator("#deliveries tr").all_inner_texts()[1:]
    assert len(rows) == 2 and all("failed" in row and "mailbox unavailable" in row for row in rows)
    page.fill("input[name=channel]", "sms")
    page.click("#filters button[type=submit]")
    assert "No delivery matches." in page.inner_text("#deliveries")
    page.close()


def test_a_timeline_opens_from_a_deliveries_transition_with_each_deliverys_preview(chromium: Any, mounted: str) -> None:
    page = chromium.new_page(extra_http_headers={"X-Operator": "ada"})
    page.goto(mounted + "/failures")
    page.locator("#deliveries a").first.click()
    page.wait_for_url("**/timeline?transition=*")
    assert page.inner_text("h1") == "Timeline of Order 6"
    page.locator("details summary").first.click()
    assert "Hello Bea 5, order 6 is paid." in page.inner_text("details")
    page.close()


def test_an_action_without_authorisation_is_refused_in_chromium(chromium: Any, mounted: str, seeded: Engine) -> None:
    context = chromium.new_context()  # no X-Operator: the host names nobody
    page = context.new_page()
    page.goto(mounted + "/failures")
    assert page.locator("#resend").count() == 0 and "not authorised you to act" in page.inner_text("main")
    [csrf] = [c["value"] for c in context.cookies() if c["name"] == "tidings_console_csrf"]
    with Session(seeded) as session:
        dead = session.scalar(select(Delivery.id).where(Delivery.status == "dead"))
    refused = context.request.post(mounted + "/resend", form={"csrf": csrf, "delivery": str(dead)})
    assert refused.status == 403 and "Not authorised" in refused.text()
    with Session(seeded) as session:
        assert session.get(Delivery, dead).status == "dead"  # type: ignore[union-attr]
    context.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def alone(seeded: Engine, smtp_server: SMTPServer, tmp_path: Path) -> Iterator[str]:
    """``tidings console --port`` as its own process on the seeded database, with a token, delivering to ``smtp_server``."""
    port = _free_port()
    env = {**os.environ, "TIDINGS_DATABASE_URL": str(seeded.url), "TIDINGS_NOTIFIERS": "tests.app",
           "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": smtp_server.host,
           "TIDINGS_SMTP_PORT": str(smtp_server.port), "TIDINGS_CONSOLE_TOKEN": TOKEN, "TIDINGS_CONSOLE_ACTIONS": "true"}
    log = tmp_path / "console.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(Path(sys.executable).with_name("tidings")), "console", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return process.poll() is not None

    assert wait_for(answers, 30) and process.poll() is None, log.read_text()
    yield f"http://127.0.0.1:{port}"
    stop_group(process)


def test_tidings_console_run_alone_re_sends_a_dead_delivery_that_arrives_at_the_smtp_server(
        chromium: Any, alone: str, seeded: Engine, smtp_server: SMTPServer) -> None:
    with Session(seeded) as session:
        dead = session.scalars(select(Delivery).where(Delivery.status == "dead").order_by(Delivery.id)).first()
        assert dead is not None
        dead_id, address = dead.id, dead.address
    page = chromium.new_page()
    page.goto(alone + "/failures")
    assert page.locator("#resend").count() == 0  # not logged in
    page.goto(alone + "/login")
    page.fill("input[name=name]", "ada")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.goto(alone + "/failures")
    page.check(f"input[name=delivery][value='{dead_id}']")
    page.click("#resend button[type=submit]")
    assert page.inner_text("#done") == "ada: re-sent 1 delivery"
    [message] = smtp_server.wait_for(1, timeout=30)
    assert f"<{address}>" in message["To"] and message["Subject"].startswith("Order ")
    page.goto(alone + "/actions")
    assert f"ada\tresend\tdeliveries {dead_id}\tre-sent 1 delivery" in page.inner_text("#recorded")
    page.close()


def test_the_console_mounted_answers_the_host_s_prefix_only(seeded: Engine) -> None:
    console = Console(seeded)
    assert console.answer(Request("GET", "/", root="/ops")).status == 200
