"""The lending API, tested as its users would: httpx against the app, the ``tidings`` fixture for the mail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jobs
import pytest
from fastapi import FastAPI
from jobs import runtime
from jobs.testing import Kit

from examples.fastapi.app import Session as RequestSession
from examples.fastapi.app import create_app, create_tables, get_loan
from examples.lending.models import Loan

Client = httpx.AsyncClient


@pytest.fixture
def api(tmp_path: Path) -> Iterator[FastAPI]:
    """The app on a SQLite file; jobs read the same file through the sync driver (workers are sync)."""
    previous = runtime.current().settings
    database_url = f"sqlite:///{tmp_path / 'lending.db'}"
    jobs.configure(database_url=database_url)
    yield create_app(database_url)
    jobs.configure(previous)


def call(app: FastAPI, scenario: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run ``scenario`` with a client of ``app``, in one event loop from the tables to the engine's disposal."""

    async def main() -> Any:
        await create_tables(app.state.engine)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lending") as client:
                return await scenario(client)
        finally:
            await app.state.engine.dispose()

    return asyncio.run(main())


async def post(client: Client, path: str, status: int = 200, **body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def requested_loan(client: Client) -> tuple[int, int, int]:
    """Bob asks Ann for her ladder: (loan, Ann, Bob)."""
    ann = await post(client, "/users", 201, name="Ann", email="ann@example.com")
    bob = await post(client, "/users", 201, name="Bob", email="bob@example.com")
    ladder = await post(client, "/items", 201, title="ladder", owner_id=ann["id"])
    loan = await post(client, "/loans", 201, item_id=ladder["id"], borrower_id=bob["id"])
    await post(client, f"/loans/{loan['id']}/request", actor_id=bob["id"], context={"note": "for Saturday"})
    return loan["id"], ann["id"], bob["id"]


def test_a_loan_requested_over_http_tells_the_lender(api: FastAPI, tidings: Kit) -> None:
    call(api, requested_loan)
    tidings.assert_notified("ann@example.com", trigger="request", subject="Bob would like to borrow your ladder",
                            body='They wrote: "for Saturday"', count=1)
    tidings.assert_sent_count(1)


def test_a_hand_over_whose_condition_loads_the_item_tells_both_parties(api: FastAPI, tidings: Kit) -> None:
    async def hand_over(client: Client) -> dict[str, Any]:
        loan, ann, _ = await requested_loan(client)
        await post(client, f"/loans/{loan}/accept", actor_id=ann)
        return await post(client, f"/loans/{loan}/hand_over", actor_id=ann)

    answer = call(api, hand_over)
    assert (answer["state"], answer["allowed"]) == ("handed_over", ["give_back"])
    assert sorted(n.to for n in tidings.notifications(trigger="hand_over")) == ["ann@example.com", "bob@example.com"]


def test_a_trigger_not_allowed_answers_422_naming_the_state_and_sends_nothing(api: FastAPI, tidings: Kit) -> None:
    async def give_back_too_early(client: Client) -> dict[str, Any]:
        loan, _, bob = await requested_loan(client)
        return await post(client, f"/loans/{loan}/give_back", 422, actor_id=bob)

    refused = call(api, give_back_too_early)
    assert (refused["trigger"], refused["state"]) == ("give_back", "requested")
    assert "cannot 'give_back' from state 'requested'; allowed now: accept, decline, expire" in refused["detail"]
    assert tidings.notifications(trigger="give_back") == []


def test_an_unknown_loan_answers_404(api: FastAPI, tidings: Kit) -> None:
    async def accept_nothing(client: Client) -> dict[str, Any]:
        return await post(client, "/loans/99/accept", 404)

    assert call(api, accept_nothing) == {"detail": "No loan 99."}


def test_of_two_requests_racing_on_a_loan_one_wins_and_the_other_answers_409(api: FastAPI, tidings: Kit) -> None:
    loaded, winner_committed = asyncio.Event(), asyncio.Event()

    async def race(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        loan, ann, _ = await requested_loan(client)
        held: list[int] = []

        async def load_then_wait(loan_id: int, request_session: RequestSession) -> Loan:
            found = await get_loan(loan_id, request_session)
            if not held:  # the first request loads the loan, then waits until the other committed
                held.append(loan_id)
                loaded.set()
                await winner_committed.wait()
            return found

        api.dependency_overrides[get_loan] = load_then_wait
        slow = asyncio.create_task(post(client, f"/loans/{loan}/decline", 409, actor_id=ann))
        await loaded.wait()
        winner = await post(client, f"/loans/{loan}/accept", actor_id=ann)
        winner_committed.set()
        return winner, await slow

    winner, loser = call(api, race)
    assert winner["state"] == "accepted"
    assert (loser["trigger"], loser["state"]) == ("decline", "requested")
    assert "changed by another transaction while firing 'decline'" in loser["detail"]
    assert [n.to for n in tidings.notifications(trigger="accept")] == ["bob@example.com"]
    assert tidings.notifications(trigger="decline") == []


def test_with_an_unsubscribe_secret_the_api_answers_the_mails_one_click_links(tmp_path: Path) -> None:
    import datetime as dt
    from urllib.parse import quote

    import workflow
    from notifiers import make_token, preferences_of
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    previous = runtime.current().settings
    database_url = f"sqlite:///{tmp_path / 'lending.db'}"
    jobs.configure(database_url=database_url, unsubscribe_secret="lending-links-secret")
    try:
        app = create_app(database_url)
        accepted = "examples.lending.notifications.LoanNotifier.accepted"
        token = make_token(b"lending-links-secret", "User:2", accepted, "email",
                           expires=workflow.utcnow() + dt.timedelta(days=1))

        async def unsubscribe(client: Client) -> tuple[int, int]:
            forged = await client.post("/unsubscribe?token=forged", content=b"List-Unsubscribe=One-Click")
            done = await client.post(f"/unsubscribe?token={quote(token)}", content=b"List-Unsubscribe=One-Click")
            return forged.status_code, done.status_code

        assert call(app, unsubscribe) == (400, 200)
        with Session(create_engine(database_url)) as session:
            assert [(p.notifier, p.channel, p.enabled) for p in preferences_of(session, "User:2")] == [
                (accepted, "email", False)]
    finally:
        jobs.configure(previous)


CONSOLE_PAGES = ["/console/", "/console/deliveries", "/console/failures", "/console/timeline", "/console/graph",
                 "/console/actions"]


def test_the_console_mounted_at_console_answers_every_page(api: FastAPI) -> None:
    async def scenario(client: Client) -> list[tuple[int, bool]]:
        answers = []
        for path in CONSOLE_PAGES:
            response = await client.get(path)
            answers.append((response.status_code, 'href="/console/failures"' in response.text))
        return answers

    assert call(api, scenario) == [(200, True)] * len(CONSOLE_PAGES)


def test_a_bare_console_path_redirects_below_the_mount(api: FastAPI) -> None:
    async def scenario(client: Client) -> tuple[int, str]:
        response = await client.get("/console")
        return response.status_code, response.headers["location"]

    status, location = call(api, scenario)
    assert status == 307 and location.endswith("/console/")


def test_a_form_posted_to_the_mounted_console_reaches_its_action(api: FastAPI, tmp_path: Path) -> None:
    jobs.configure(console_actions=True)
    app = create_app(f"sqlite:///{tmp_path / 'lending.db'}")

    async def scenario(client: Client) -> tuple[int, str, int]:
        page = await client.get("/console/failures", headers={"X-Forwarded-User": "ada"})
        csrf = page.cookies["tidings_console_csrf"]
        response = await client.post("/console/resend", data={"csrf": csrf, "delivery": "1"},
                                     headers={"X-Forwarded-User": "ada"})
        anonymous = await client.post("/console/resend", data={"csrf": csrf, "delivery": "1"})
        return response.status_code, response.headers["location"], anonymous.status_code

    status, location, anonymous = call(app, scenario)
    assert status == 303 and location.startswith("/console/failures?done=")  # done, and back under the mount
    assert anonymous == 403  # no operator named by the proxy: refused
