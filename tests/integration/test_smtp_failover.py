"""Failover: two real SMTP relays on loopback; the second sends when the first refuses for now or is down."""

from __future__ import annotations

from collections.abc import Iterator

import jobs
import pytest
from aiosmtpd.controller import Controller
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery
from jobs.commands.cli import main
from jobs.testing import drain
from notifiers import (
    ChannelConfigurationError,
    Email,
    FailoverChannel,
    PermanentChannelError,
    Recipient,
    SMTPChannel,
    TransientChannelError,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.app import Order
from tests.servers import SMTPServer, free_port

pytestmark = pytest.mark.integration

MAIL = Email(subject="Paid", text="Thank you.")
ANN = Recipient("ann@example.com")


@pytest.fixture
def relays() -> Iterator[tuple[SMTPServer, SMTPServer]]:
    """Two SMTP servers on loopback: the primary relay and the second one."""
    servers, controllers = [], []
    for _ in range(2):
        server = SMTPServer("127.0.0.1", free_port())
        controller = Controller(server, hostname=server.host, port=server.port)
        controller.start()
        servers.append(server)
        controllers.append(controller)
    yield servers[0], servers[1]
    for controller in controllers:
        controller.stop()


def smtp(port: int) -> SMTPChannel:
    return SMTPChannel("127.0.0.1", port, sender="Shop <shop@example.com>", timeout=5)


def failover(*ports: int) -> FailoverChannel:
    return FailoverChannel([smtp(port) for port in ports], names=[f"relay{n}" for n in range(1, len(ports) + 1)])


def test_a_4xx_refusal_of_the_first_relay_sends_through_the_second(relays: tuple[SMTPServer, SMTPServer]) -> None:
    first, second = relays
    first.reply = "451 4.3.0 try again later"
    with failover(first.port, second.port) as channel:
        channel.send(MAIL, ANN, key="k1")
        assert channel.last_provider == "relay2"
    assert (first.refused, len(second.wait_for(1))) == (1, 1)


def test_a_first_relay_that_is_down_sends_through_the_second(relays: tuple[SMTPServer, SMTPServer]) -> None:
    _, second = relays
    with failover(free_port(), second.port) as channel:
        channel.send(MAIL, ANN, key="k1")
        assert channel.last_provider == "relay2"
    assert len(second.wait_for(1)) == 1


def test_a_first_relay_that_accepts_sends_alone(relays: tuple[SMTPServer, SMTPServer]) -> None:
    first, second = relays
    with failover(first.port, second.port) as channel:
        channel.send(MAIL, ANN, key="k1")
        assert channel.last_provider == "relay1"
    assert (len(first.wait_for(1)), second.received) == (1, [])


def test_every_relay_failing_for_now_is_transient_naming_each(relays: tuple[SMTPServer, SMTPServer]) -> None:
    first, second = relays
    first.reply = second.reply = "421 4.7.0 too busy"
    with failover(first.port, free_port()) as channel, pytest.raises(TransientChannelError) as failed:
        channel.send(MAIL, ANN, key="k1")
    assert "All 2 providers failed for now: relay1: " in str(failed.value) and "; relay2: " in str(failed.value)


def test_a_permanent_refusal_is_not_tried_on_the_next_relay(relays: tuple[SMTPServer, SMTPServer]) -> None:
    first, second = relays
    first.reply = "550 5.1.1 user unknown"
    with failover(first.port, second.port) as channel, pytest.raises(PermanentChannelError, match="550 5.1.1"):
        channel.send(MAIL, ANN, key="k1")
    assert second.received == []


def test_providers_of_different_address_kinds_are_refused() -> None:
    class Phones(SMTPChannel):
        address_kind = "phone"

    with pytest.raises(ChannelConfigurationError, match="send to different addresses"):
        FailoverChannel([smtp(25), Phones("127.0.0.1", 25, sender="shop@example.com")])


@pytest.fixture
def configured(broker: StubBroker, engine: Engine, relays: tuple[SMTPServer, SMTPServer]) -> Iterator[None]:
    """Workers whose email goes to a primary relay that is down, then to the second, from the settings."""
    down, second = free_port(), relays[1].port
    jobs.configure(jobs.Settings(), broker=broker, engine=engine, email_channel="smtp", smtp_host="127.0.0.1",
                   smtp_port=down, smtp_failover=f"127.0.0.1:{second}", smtp_timeout=5.0)
    yield
    jobs.configure(jobs.Settings(), broker=broker, engine=engine)  # closes the relays' channels


def test_the_delivery_row_records_the_relay_that_sent_it(configured: None, session: Session, order: Order,
                                                         relays: tuple[SMTPServer, SMTPServer]) -> None:
    order.pay()
    session.commit()
    drain()
    second = f"127.0.0.1:{relays[1].port}"
    assert session.execute(select(Delivery.status, Delivery.provider)).all() == [("sent", second)] * 2
    assert len(relays[1].wait_for(2)) == 2


def test_tidings_status_shows_the_deliveries_by_provider(configured: None, session: Session, order: Order,
                                                         relays: tuple[SMTPServer, SMTPServer],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    relays[1].reply = "550 5.7.1 relaying denied"
    order.pay()
    session.commit()
    drain()
    capsys.readouterr()
    assert main(["status"]) == 0
    assert f"provider 127.0.0.1:{relays[1].port}: sent 0, failed 2, dead 0, retrying 0" in capsys.readouterr().out


def test_a_relay_failing_for_now_is_logged_naming_it(relays: tuple[SMTPServer, SMTPServer],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    first, second = relays
    first.reply = "451 4.3.0 try again later"
    with failover(first.port, second.port) as channel:
        channel.send(MAIL, ANN, key="k1")
    assert [r.getMessage() for r in caplog.records if r.name == "notifiers.channels.failover"] == [
        f"Provider relay1 of channel 'email' failed for now (SMTPChannel('127.0.0.1', {first.port}) answered 451 4.3.0 try again "
        "later); trying the next."]


def test_the_next_attempt_starts_again_from_the_first_relay(relays: tuple[SMTPServer, SMTPServer]) -> None:
    first, second = relays
    first.reply, second.reply = "451 4.3.0 try again later", "421 4.7.0 too busy"
    with failover(first.port, second.port) as channel:
        with pytest.raises(TransientChannelError):
            channel.send(MAIL, ANN, key="k1")
        first.reply = "250 OK"
        channel.send(MAIL, ANN, key="k1")
        assert channel.last_provider == "relay1"
    assert len(first.wait_for(1)) == 1
