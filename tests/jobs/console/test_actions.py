"""The console's actions: refused unless enabled, authorised and posted by its own form; done and recorded when they are."""

from __future__ import annotations

from typing import Any

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import ConsoleAction, Delivery
from jobs.console import Console, Request
from jobs.testing import drain
from notifiers import MemoryChannel
from sqlalchemy import Engine, delete, event, select, update
from sqlalchemy.orm import Session

from tests.app import Order
from tests.failing_channels import Refusing

CSRF = "0123456789abcdef0123456789abcdef"




@pytest.fixture
def failed(broker: StubBroker, engine: Engine, session: Session, order: Order, mailbox: MemoryChannel) -> list[int]:
    """Two failed deliveries; the mail server accepts mail again afterwards (``mailbox``)."""
    jobs.configure(broker=broker, engine=engine, channels={"email": Refusing("550 mailbox unavailable")})
    order.pay()
    session.commit()
    drain()
    jobs.configure(broker=broker, engine=engine, channels={"email": mailbox})
    return list(session.scalars(select(Delivery.id).where(Delivery.status == "failed").order_by(Delivery.id)))


def post(console: Console, path: str, form: dict[str, list[str]], *, csrf: str | None = CSRF,
         headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    sent = {"csrf": [csrf]} if csrf is not None else {}
    cookie = {"cookie": f"tidings_console_csrf={CSRF}"}
    response = console.answer(Request("POST", path, form={**form, **sent}, headers={**cookie, **(headers or {})}))
    return response.status, response.body.decode(), dict(response.headers)


def operator(request: Request) -> str:
    return "ada"


def test_a_re_send_is_refused_while_actions_are_disabled(engine: Engine, failed: list[int]) -> None:
    status, page, _ = post(Console(engine, authorize=operator), "/resend", {"delivery": [str(failed[0])]})
    assert status == 403 and "Actions are disabled" in page


def test_a_re_send_is_refused_without_an_authorisation_callback(engine: Engine, failed: list[int]) -> None:
    status, page, _ = post(Console(engine, actions=True), "/resend", {"delivery": [str(failed[0])]})
    assert status == 403 and "Not authorised" in page


def test_a_re_send_is_refused_when_the_callback_names_nobody(engine: Engine, failed: list[int],
                                                             session: Session) -> None:
    console = Console(engine, authorize=lambda request: None, actions=True)
    assert post(console, "/resend", {"delivery": [str(failed[0])]})[0] == 403
    assert session.get(Delivery, failed[0]).status == "failed"  # type: ignore[union-attr]


def test_a_re_send_without_the_csrf_token_is_refused(engine: Engine, failed: list[int], session: Session) -> None:
    console = Console(engine, authorize=operator, actions=True)
    for csrf in (None, "f" * 32):
        status, page, _ = post(console, "/resend", {"delivery": [str(failed[0])]}, csrf=csrf)
        assert status == 403 and "CSRF token does not match" in page
    assert session.scalar(select(ConsoleAction.id)) is None


def test_a_re_send_posted_from_another_origin_is_refused(engine: Engine, failed: list[int]) -> None:
    status, page, _ = post(Console(engine, authorize=operator, actions=True), "/resend",
                           {"delivery": [str(failed[0])]}, headers={"origin": "https://evil.example", "host": "ops.example"})
    assert status == 403 and "posted from https://evil.example" in page


def test_an_authorised_re_send_sends_the_delivery_again_and_records_who_did_it(
        engine: Engine, failed: list[int], session: Session, mailbox: MemoryChannel) -> None:
    status, _, headers = post(Console(engine, authorize=operator, actions=True), "/resend",
                              {"delivery": [str(failed[0])], "back": ["/failures"]})
    assert status == 303 and headers["Location"].startswith("/failures?done=")
    drain()
    assert [sent.to.address for sent in mailbox.outbox] == ["bea@example.com"]
    assert session.get(Delivery, failed[0]).status == "sent"  # type: ignore[union-attr]
    [recorded] = session.scalars(select(ConsoleAction))
    assert (recorded.operator, recorded.action, recorded.target, recorded.outcome) == (
        "ada", "resend", f"deliveries {failed[0]}", "re-sent 1 delivery")


def test_the_page_after_an_action_says_what_was_done(engine: Engine, failed: list[int]) -> None:
    console = Console(engine, authorize=operator, actions=True)
    location = post(console, "/resend", {"delivery": [str(failed[0])]})[2]["Location"]
    done = location.split("done=")[1]
    page = console.answer(Request("GET", "/failures", query={"done": [done]})).body.decode()
    assert '<p class="notice" id="done">ada: re-sent 1 delivery</p>' in page


def test_re_sending_a_delivery_that_is_not_failed_any_more_says_so(engine: Engine, failed: list[int],
                                                                   session: Session) -> None:
    console = Console(engine, authorize=operator, actions=True)
    post(console, "/resend", {"delivery": [str(failed[0])]})
    drain()
    post(console, "/resend", {"delivery": [str(failed[0])]})
    latest = session.scalars(select(ConsoleAction).order_by(ConsoleAction.id.desc())).first()
    assert latest is not None and latest.outcome == f"re-sent 0 deliveries; not failed or dead (any more): {failed[0]}"


def test_a_re_send_racing_another_re_sends_the_rest_and_says_which_were_gone(
        engine: Engine, failed: list[int], session: Session) -> None:
    raced: list[str] = []

    select_statements: list[str] = []

    def another_re_send_between_selection_and_reset(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("SELECT tidings_deliveries.id") and not raced:
            select_statements.append(statement)
            if len(select_statements) == 2:  # the reset's own read, after the selection
                raced.append(statement)
                with engine.begin() as other:
                    other.execute(update(Delivery).where(Delivery.id == failed[0]).values(status="pending"))

    event.listen(engine, "before_cursor_execute", another_re_send_between_selection_and_reset)
    try:
        status, _, _ = post(Console(engine, authorize=operator, actions=True), "/resend",
                         {"delivery": [str(i) for i in failed]})
    finally:
        event.remove(engine, "before_cursor_execute", another_re_send_between_selection_and_reset)
    assert raced and status == 303
    latest = session.scalars(select(ConsoleAction).order_by(ConsoleAction.id.desc())).first()
    assert latest is not None
    assert latest.outcome == f"re-sent 1 delivery; not failed or dead (any more): {failed[0]}"


def test_a_re_send_with_nothing_ticked_is_refused(engine: Engine, failed: list[int]) -> None:
    assert post(Console(engine, authorize=operator, actions=True), "/resend", {})[0] == 400


def test_an_authorised_refan_writes_and_sends_only_the_missing_deliveries(
        engine: Engine, failed: list[int], session: Session, mailbox: MemoryChannel) -> None:
    transition = session.scalar(select(Delivery.transition_id).where(Delivery.id == failed[0]))
    session.execute(delete(Delivery).where(Delivery.id == failed[0]))
    session.commit()
    status, _, _ = post(Console(engine, authorize=operator, actions=True), "/refan", {"transition": [str(transition)]})
    assert status == 303
    drain()
    assert [sent.to.address for sent in mailbox.outbox] == ["bea@example.com"]
    [recorded] = session.scalars(select(ConsoleAction))
    assert recorded.action == "refan" and recorded.target == f"transition {transition}"
    assert recorded.outcome.endswith(": 1 new delivery")


def test_a_refan_of_a_transition_that_does_not_exist_is_404(engine: Engine, failed: list[int]) -> None:
    status, page, _ = post(Console(engine, authorize=operator, actions=True), "/refan", {"transition": ["999"]})
    assert status == 404 and "No transition has id &#39;999&#39;" in page


def test_an_action_returns_only_to_a_page_of_the_console(engine: Engine, failed: list[int]) -> None:
    console = Console(engine, authorize=operator, actions=True)
    for back in ("https://evil.example/", "//evil.example/x", "/\\evil"):
        location = post(console, "/resend", {"delivery": [str(failed[0])], "back": [back]})[2]["Location"]
        assert location.startswith("/failures?done=")


def test_run_alone_an_operator_logs_in_with_the_token_and_may_then_act(engine: Engine, failed: list[int],
                                                                       session: Session) -> None:
    console = Console(engine, token="a-token-of-sixteen-chars", actions=True)
    assert post(console, "/resend", {"delivery": [str(failed[0])]})[0] == 403
    assert post(console, "/login", {"name": ["ada"], "token": ["wrong"]})[0] == 403
    status, _, headers = post(console, "/login", {"name": ["ada"], "token": ["a-token-of-sixteen-chars"]})
    assert status == 303 and "a-token-of-sixteen-chars" not in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    response = console.answer(Request("POST", "/resend", form={"delivery": [str(failed[0])], "csrf": [CSRF]},
                                      headers={"cookie": f"tidings_console_csrf={CSRF}; {cookie}"}))
    assert response.status == 303
    assert session.scalars(select(ConsoleAction.operator)).all() == ["ada"]


def test_run_alone_with_a_token_every_page_asks_for_the_login_first(engine: Engine, failed: list[int]) -> None:
    console = Console(engine, token="a-token-of-sixteen-chars")
    for path in ("/", "/deliveries", "/failures", "/timeline", "/graph", "/actions"):
        response = console.answer(Request("GET", path))
        assert (response.status, dict(response.headers)["Location"]) == (303, "/login"), path
    assert console.answer(Request("GET", "/login")).status == 200


def test_an_operator_name_the_login_cookie_could_not_carry_is_refused_at_the_login(engine: Engine,
                                                                                     failed: list[int]) -> None:
    console = Console(engine, token="a-token-of-sixteen-chars", actions=True)
    for name in ("Ann Lee", "Zoë", 'ann"x', "a" * 65):
        status, page, _ = post(console, "/login", {"name": [name], "token": ["a-token-of-sixteen-chars"]})
        assert status == 403 and "ASCII letters, digits or _.@+-" in page, name


def test_a_forged_login_cookie_is_no_operator(engine: Engine, failed: list[int]) -> None:
    console = Console(engine, token="a-token-of-sixteen-chars", actions=True)
    response = console.answer(Request("POST", "/resend", form={"delivery": [str(failed[0])], "csrf": [CSRF]},
                                      headers={"cookie": f"tidings_console_csrf={CSRF}; tidings_console_operator=ada|00"}))
    assert response.status == 403


def test_the_actions_page_lists_what_was_done_by_whom(engine: Engine, failed: list[int]) -> None:
    console = Console(engine, authorize=operator, actions=True)
    post(console, "/resend", {"delivery": [str(failed[1])]})
    page = console.answer(Request("GET", "/actions")).body.decode()
    assert f"<td>ada</td><td>resend</td><td>deliveries {failed[1]}</td><td>re-sent 1 delivery</td>" in page


def test_the_failures_page_offers_re_send_and_refan_to_an_authorised_operator_only(engine: Engine,
                                                                                   failed: list[int]) -> None:
    allowed = Console(engine, authorize=operator, actions=True).answer(Request("GET", "/failures")).body.decode()
    assert 'id="resend"' in allowed and 'name="delivery"' in allowed and ">refan</button>" in allowed
    refused = Console(engine, authorize=lambda r: None, actions=True).answer(Request("GET", "/failures")).body.decode()
    assert 'id="resend"' not in refused and ">refan</button>" not in refused


def test_an_action_returns_to_the_page_that_posted_it_without_the_previous_notice(engine: Engine,
                                                                                   failed: list[int]) -> None:
    console = Console(engine, authorize=operator, actions=True)
    back = "/failures?status=failed&done=7"
    location = post(console, "/resend", {"delivery": [str(failed[0])], "back": [back]})[2]["Location"]
    assert location.startswith("/failures?status=failed&done=") and location.count("done=") == 1
