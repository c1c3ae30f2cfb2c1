"""A webhook endpoint answering 410 Gone is disabled: later deliveries are skipped until `tidings webhooks enable`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import (
    Email,
    EndpointDisabled,
    EndpointGone,
    MemoryChannel,
    Recipient,
    TransientChannelError,
    WebhookChannel,
)
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from tests.app import Parcel, Person
from tests.servers import HTTPReply, HTTPServer

SECRET = "a shared secret"
MESSAGE = Email(subject="Parcel 1 is ready", text="Pick it up.")
CY = Recipient("cy@example.com", "Cy", "courier", ref="Person:1")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A real HTTP server on loopback."""
    running = HTTPServer()
    yield running
    running.stop()


@pytest.fixture
def hook(broker: StubBroker, engine: Engine, mailbox: MemoryChannel, server: HTTPServer) -> Iterator[WebhookChannel]:
    """The courier's webhook, configured in the workers that run on the test database."""
    with WebhookChannel(server.url, secret=SECRET) as channel:
        jobs.configure(broker=broker, engine=engine, channels={"email": mailbox, "webhook": channel})
        yield channel


def release_parcel(session: Session) -> None:
    parcel = Parcel(courier=Person(name="Cy", email="cy@example.com"))
    session.add(parcel)
    session.commit()
    parcel.release(actor="packer")
    session.commit()
    drain()


def statuses(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    return [(d.status, d.last_error or "") for d in session.scalars(select(Delivery).order_by(Delivery.id))]


def test_a_410_fails_that_delivery_and_later_ones_to_the_endpoint_are_skipped_naming_it_and_when(
        hook: WebhookChannel, server: HTTPServer, session: Session) -> None:
    server.answer(HTTPReply(410))
    release_parcel(session)
    release_parcel(session)
    (first, first_error), (second, second_error) = statuses(session)
    assert first == "failed" and "answered 410 Gone" in first_error and "disabled" in first_error
    assert second == "skipped"
    assert f"{hook!r} is disabled: it answered 410 Gone at 20" in second_error
    assert f"tidings webhooks enable {server.url}" in second_error
    assert len(server.requests) == 1


def test_tidings_webhooks_list_shows_the_disabled_endpoint(
        hook: WebhookChannel, server: HTTPServer, session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    server.answer(HTTPReply(410))
    release_parcel(session)
    assert main(["webhooks", "list"]) == 0
    assert f"{server.url}\twebhook\t410\t" in capsys.readouterr().out


def test_tidings_webhooks_enable_sends_to_the_endpoint_again(
        hook: WebhookChannel, server: HTTPServer, session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    server.answer(HTTPReply(410), HTTPReply(200))
    release_parcel(session)
    assert main(["webhooks", "enable", server.url]) == 0
    assert f"enabled {server.url} (webhook)" in capsys.readouterr().out
    release_parcel(session)
    assert [status for status, _ in statuses(session)] == ["failed", "sent"]
    assert len(server.requests) == 2


def test_enabling_an_endpoint_that_is_not_disabled_exits_1(hook: WebhookChannel,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "enable", "https://hooks.example.com/nowhere"]) == 1
    assert "no disabled endpoint 'https://hooks.example.com/nowhere'" in capsys.readouterr().out


def test_a_channel_without_a_database_stays_disabled_in_its_process(server: HTTPServer) -> None:
    server.answer(HTTPReply(410))
    with WebhookChannel(server.url, secret=SECRET) as channel:
        with pytest.raises(EndpointGone, match="answered 410 Gone"):
            channel.send(MESSAGE, CY, key="k-1")
        with pytest.raises(EndpointDisabled, match="is disabled: it answered 410 Gone at"):
            channel.send(MESSAGE, CY, key="k-2")
    assert len(server.requests) == 1


def test_a_database_without_the_disabled_endpoints_table_is_a_transient_error_naming_it(server: HTTPServer,
                                                                                       tmp_path: Path) -> None:
    bare = create_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with WebhookChannel(server.url, secret=SECRET) as channel:
        channel.attach(bare)
        with pytest.raises(TransientChannelError, match="tidings_disabled_endpoints failed: OperationalError"):
            channel.send(MESSAGE, CY, key="k-1")
    bare.dispose()
    assert server.requests == []
