"""The lending API end to end on the embedded default: SQLite (aiosqlite), the StubBroker, .eml files.

Run it with ``make demo-api`` (or ``python -m examples.fastapi.demo``). It drives the FastAPI
app in this process through httpx (no server to start): creates two members, an item and a
loan, then fires each step of the loan by HTTP, as a client would. Each request commits on its
AsyncSession; the in-process worker delivers the mail, and the mailboxes are printed, as
``make demo`` does for the sync example. A step the loan cannot take answers 422, naming its state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import jobs
from jobs.testing import drain, stop_workers

from examples.lending.demo import pass_time, show_mailboxes

from .app import create_app, create_tables


async def walk_through(client: httpx.AsyncClient) -> None:
    """Each step of a loan, as HTTP requests."""

    async def post(path: str, **body: Any) -> dict[str, Any]:
        response = await client.post(path, json=body)
        if response.status_code >= 400:
            print(f"POST {path} -> {response.status_code}: {response.json()['detail']}")
        answer: dict[str, Any] = response.json()
        return answer

    ann = await post("/users", name="Ann", email="ann@example.com")
    bob = await post("/users", name="Bob", email="bob@example.com")
    ladder = await post("/items", title="ladder", owner_id=ann["id"])
    loan = await post("/loans", item_id=ladder["id"], borrower_id=bob["id"])
    steps: list[dt.timedelta | tuple[str, dict[str, Any], dict[str, str]]] = [("request", bob, {"note": "for the gutters on Saturday"}), dt.timedelta(days=2),
             ("accept", ann, {"note": "see you Friday"}), dt.timedelta(minutes=20), ("hand_over", ann, {}),
             dt.timedelta(hours=1), ("give_back", bob, {})]
    for step in steps:
        if isinstance(step, dt.timedelta):
            pass_time(step)
            continue
        trigger, actor, context = step
        answer = await post(f"/loans/{loan['id']}/{trigger}", actor_id=actor["id"], context=context)
        print(f"{actor['name']} POSTed {trigger!r}: loan is now {answer['state']!r}")
        drain()
    await post(f"/loans/{loan['id']}/accept", actor_id=ann["id"])  # refused: 422, nothing recorded or sent


async def main(folder: Path) -> int:
    database_url = f"sqlite:///{folder / 'lending.db'}"
    mail = folder / "mail"
    jobs.configure(broker_url="stub", email_channel="files", mail_dir=str(mail), database_url=database_url,
                   sender="Lending <loans@lending.example>")
    app = create_app(database_url)
    await create_tables(app.state.engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lending") as client:
        await walk_through(client)
    await app.state.engine.dispose()
    stop_workers()
    show_mailboxes(mail)
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="tidings-demo-api-") as tmp:
        sys.exit(asyncio.run(main(Path(tmp))))
