"""Operator commands on digests: status counts the open ones, explain says which digest an event went out in."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import digest_sending
from jobs.commands.cli import main
from jobs.testing import drain
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from workflow import clock

from tests.digest_app import Base, Member, Watched


@pytest.fixture
def issue(broker: StubBroker, engine: Engine) -> Iterator[Watched]:
    """An issue with two watchers and 20 comments, five minutes into a window."""
    Base.metadata.create_all(engine)
    now = clock.utcnow()
    clock.advance((now.replace(minute=5, second=0, microsecond=0) - now) % dt.timedelta(hours=1))
    with Session(engine) as session:
        issue = Watched(title="Crash", author=Member(name="Ann", email="ann@example.com"),
                        watchers=[Member(name="Bo", email="bo@example.com"), Member(name="Cy", email="cy@example.com")])
        session.add(issue)
        session.commit()
        for n in range(20):
            issue.fire("comment", text=f"comment {n}")
            session.commit()
        drain()
        yield issue
    clock.reset()


def test_status_counts_open_digests_and_the_events_they_hold(issue: Watched, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["digests"] == {"open": 2, "due": 0, "overdue": 0, "events": 40}


def test_explain_says_an_event_waits_for_its_digest(issue: Watched, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "Watched", str(issue.id)]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"watchers <bo@example.com> by email: held for digest #\d \(with 19 others so far\)", out)) == 20


def test_explain_says_which_digest_an_event_was_sent_in_and_with_how_many(
        issue: Watched, capsys: pytest.CaptureFixture[str]) -> None:
    clock.advance(dt.timedelta(hours=1))
    digest_sending.run()
    assert main(["explain", "Watched", str(issue.id)]) == 0
    out = capsys.readouterr().out
    assert len(set(re.findall(r"watchers <cy@example.com> by email: sent in digest #\d with 19 others\n", out))) == 1
    assert len(re.findall(r"watchers <cy@example.com> by email: sent in digest #\d with 19 others\n", out)) == 20
