"""The in-app channel on a real PostgreSQL: one item per delivery under races, and an outage is transient."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import workflow
from notifiers import Email, Inbox, InAppChannel, Recipient, TransientChannelError
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from tests.servers import TCPProxy

pytestmark = pytest.mark.integration

ANN = Recipient("ann@example.com", "Ann", ref="User:1")


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    """Tidings' tables (the inbox among them) in the test's own schema."""
    engine = create_engine(pg_url)
    workflow.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_racing_attempts_of_one_delivery_leave_one_item(pg: Engine) -> None:
    channel = InAppChannel(pg)
    start = threading.Barrier(8, timeout=10)
    errors: list[BaseException] = []

    def attempt() -> None:
        start.wait()
        try:
            channel.send(Email(subject="Assigned", text="Issue 7 is yours."), ANN, key="same-delivery")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    with Session(pg) as session:
        assert Inbox(session, ANN).unread_count() == 1


def test_an_unreachable_database_is_a_transient_error(pg_url: str, pg: Engine,
                                                      tcp_proxy: Callable[[int], TCPProxy]) -> None:
    proxy = tcp_proxy(5432)
    through_proxy = create_engine(pg_url.replace(":5432/", f":{proxy.port}/"), connect_args={"connect_timeout": 3})
    channel = InAppChannel(through_proxy)
    channel.send(Email(subject="first", text="."), ANN, key="k1")
    proxy.cut()
    through_proxy.dispose()
    with pytest.raises(TransientChannelError, match="In-app inbox write failed: OperationalError"):
        channel.send(Email(subject="second", text="."), ANN, key="k2")
    through_proxy.dispose()
    with Session(pg) as session:
        assert [item.subject for item in Inbox(session, ANN).items()] == ["first"]
