"""The FastAPI example run as its README says: ``uvicorn`` serving the app, ``tidings worker`` delivering."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from tests.integration.conftest import require
from tests.processes import ROOT, WorkerCommand, stop_group, wait_for, worker_env
from tests.servers import SMTPServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database (asyncpg takes no search_path in the URL, so not a schema), dropped afterwards."""
    require("PostgreSQL", "127.0.0.1", 5432)
    name = f"it_{uuid.uuid4().hex[:12]}"
    admin = create_engine("postgresql+psycopg://root@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    yield f"postgresql+psycopg://root@127.0.0.1:5432/{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture
def uvicorn(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """Start ``uvicorn examples.fastapi.app:app`` in its own process group; its base URL once it answers."""
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "uvicorn.log"

    def start(env: dict[str, str]) -> str:
        port = free_port()
        with log.open("wb") as output:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "examples.fastapi.app:app", "--port", str(port)], cwd=ROOT,
                env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT, start_new_session=True))
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: answers(url), timeout=30), log.read_text()[-2000:]
        return url

    yield start
    for process in started:
        stop_group(process)
    sys.stderr.write("\n--- uvicorn.log (last lines) ---\n" + "\n".join(log.read_text().splitlines()[-15:]))


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/loans/0", timeout=1).status_code == 404
    except httpx.TransportError:
        return False


def test_the_api_under_uvicorn_with_a_tidings_worker_mails_the_lender(
        database_url: str, redis_url: str, queue_name: str, smtp_server: SMTPServer,
        uvicorn: Callable[[dict[str, str]], str], tidings_worker: Callable[..., WorkerCommand]) -> None:
    # Given the app under uvicorn (asyncpg) and a worker (psycopg), sharing the TIDINGS_* settings
    env = worker_env(database_url, redis_url, queue_name, smtp_server)
    base = uvicorn(env)  # its start-up creates the tables
    tidings_worker("examples.lending.notifications", "--processes", "1", "--threads", "2", env=env)

    # When Bob asks Ann for her ladder over HTTP
    with httpx.Client(base_url=base, timeout=10) as client:
        ann = client.post("/users", json={"name": "Ann", "email": "ann@example.com"}).json()
        bob = client.post("/users", json={"name": "Bob", "email": "bob@example.com"}).json()
        ladder = client.post("/items", json={"title": "ladder", "owner_id": ann["id"]}).json()
        loan = client.post("/loans", json={"item_id": ladder["id"], "borrower_id": bob["id"]}).json()
        answer = client.post(f"/loans/{loan['id']}/request", json={"actor_id": bob["id"]})

    # Then the request answered with the new state, and the worker mailed the lender, once
    assert (answer.status_code, answer.json()["state"]) == (200, "requested")
    [mail] = smtp_server.wait_for(1, timeout=60)
    assert (mail["To"], mail["Subject"]) == ("Ann <ann@example.com>", "Bob would like to borrow your ladder")


def test_the_api_demo_drives_the_app_in_process_and_prints_each_partys_mailbox() -> None:
    done = subprocess.run([sys.executable, "-m", "examples.fastapi.demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")})
    assert done.returncode == 0, done.stderr
    assert "Ann POSTed 'hand_over': loan is now 'handed_over'" in done.stdout
    assert "POST /loans/1/accept -> 422: Loan 1 cannot 'accept' from state 'returned'" in done.stdout
    assert "=== Mailbox of Ann <ann@example.com>: 4 message(s)" in done.stdout
    assert "=== Mailbox of Bob <bob@example.com>: 2 message(s)" in done.stdout
    assert "Subject: Bob is still waiting for your answer" in done.stdout  # the reminder, two days on
