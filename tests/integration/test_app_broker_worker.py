"""One worker serves an application's own Redis broker: its actor and Tidings' deliveries.

Tidings is told by the ``app_broker`` setting (``tidings worker`` or ``dramatiq jobs``), or in code
by an application module calling ``jobs.configure(broker=...)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import jobs
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.app import Base, Order, Person

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]

ROOT = Path(__file__).parents[2]
# The command, the application modules the worker imports, and how Tidings is told. Told in code,
# `tidings worker` still needs a shared broker_url to start (it builds a broker, dropped at configure()).
SETTING = {"TIDINGS_APP_BROKER": "tests.integration.own_broker:broker"}
CASES = {"tidings worker, by the setting": ("tidings_worker", ["tests.app"], SETTING),
         "tidings worker, in code": ("tidings_worker", ["tests.app", "tests.integration.own_broker_configured"],
                                     {"TIDINGS_BROKER_URL": ""}),
         "dramatiq jobs, by the setting": ("worker_process", ["tests.app"], SETTING)}


@pytest.mark.parametrize("case", CASES)
def test_a_worker_on_the_applications_broker_runs_its_actor_and_delivers_notifications(
        case: str, request: pytest.FixtureRequest, tmp_path: Path, pg_url: str, pg_engine: Engine, redis_url: str,
        queue_name: str, smtp_server: Any) -> None:
    notes, own_queue = tmp_path / "notes.txt", f"{queue_name}_own"
    command, modules, told = CASES[case]
    env = {**{k: v or redis_url for k, v in told.items()}, "TIDINGS_DATABASE_URL": pg_url, "TIDINGS_QUEUE": queue_name,
           "TIDINGS_EMAIL_CHANNEL": "smtp", "TIDINGS_SMTP_HOST": smtp_server.host,
           "TIDINGS_SMTP_PORT": str(smtp_server.port), "PYTHONPATH": str(ROOT),
           "OWN_BROKER_URL": redis_url, "OWN_QUEUE": own_queue, "OWN_NOTES": str(notes)}
    start: Callable[..., Any] = request.getfixturevalue(command)
    if command == "tidings_worker":
        start(*modules, "--processes", "1", "--threads", "2", env=env)
    else:
        start(*modules, env=env, threads=2)
    jobs.configure(jobs.Settings(), broker_url=redis_url, queue=queue_name, database_url=pg_url)  # the web side
    Base.metadata.create_all(pg_engine)
    with Session(pg_engine) as session:
        order = Order(buyer=Person(name="Ann", email="ann@example.com"),
                      seller=Person(name="Sam", email="sam@example.com"))
        session.add(order)
        session.commit()
        order.fire("pay")
        session.commit()
    jobs.broker.enqueue(dramatiq.Message(queue_name=own_queue, actor_name="own.note", args=("hello",), kwargs={},
                                         options={}))

    mails = smtp_server.wait_for(2, timeout=60)
    assert sorted(str(m["To"]).rpartition("<")[2].rstrip(">") for m in mails) == ["ann@example.com", "sam@example.com"]
    deadline = time.monotonic() + 30
    while not (notes.exists() and notes.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert notes.exists() and notes.read_text() == "hello\n", "the application's actor did not run"
