"""The disabled webhook endpoints on a real PostgreSQL: a 410 seen by workers racing records one row, and enabling removes it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import workflow
from notifiers import Email, EndpointDisabled, EndpointGone, Recipient, WebhookChannel, disabled_endpoints, enable_endpoint
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from tests.servers import HTTPReply, HTTPServer

pytestmark = pytest.mark.integration

CY = Recipient("cy@example.com", "Cy", ref="Person:1")
MESSAGE = Email(subject="Parcel 1 is ready", text="Pick it up.")


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    """Tidings' tables in the test's own schema."""
    engine = create_engine(pg_url)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def gone() -> Iterator[HTTPServer]:
    """An endpoint answering 410 Gone."""
    server = HTTPServer()
    server.answer(HTTPReply(410))
    yield server
    server.stop()


def test_threads_racing_into_a_410_record_one_disabled_endpoint(pg: Engine, gone: HTTPServer) -> None:
    channel = WebhookChannel(gone.url, secret="s")
    channel.attach(pg)
    start = threading.Barrier(6, timeout=10)
    outcomes: list[type[BaseException]] = []

    def attempt(n: int) -> None:
        start.wait()
        try:
            channel.send(MESSAGE, CY, key=f"k-{n}")
        except (EndpointGone, EndpointDisabled) as error:
            outcomes.append(type(error))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    channel.close()
    assert len(outcomes) == 6 and EndpointGone in outcomes
    with Session(pg) as session:
        assert [(row.shown, row.status) for row in disabled_endpoints(session)] == [(gone.url, 410)]


def test_enabling_removes_the_row_and_the_next_send_goes_out(pg: Engine, gone: HTTPServer) -> None:
    with WebhookChannel(gone.url, secret="s") as channel:
        channel.attach(pg)
        with pytest.raises(EndpointGone):
            channel.send(MESSAGE, CY, key="k-1")
        with Session(pg) as session:
            assert len(enable_endpoint(session, gone.url)) == 1
            session.commit()
        gone.answer(HTTPReply(200))
        channel.send(MESSAGE, CY, key="k-2")
    assert len(gone.requests) == 2
