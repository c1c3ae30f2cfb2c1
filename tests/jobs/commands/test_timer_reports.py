"""What the operator commands say of timeouts: status counts them, explain tells each one's fate, graph draws them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import workflow
from jobs.commands.cli import main
from jobs.testing import Kit
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier (graph)
from tests.timed import LAPSE_AFTER, Base, Offer


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'timed.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def offers(session: Session, count: int) -> list[Offer]:
    rows = [Offer() for _ in range(count)]
    session.add_all(rows)
    session.commit()
    for row in rows:
        row.publish()
    session.commit()
    return rows


def test_status_counts_timers_scheduled_due_and_overdue(session: Session, tidings: Kit,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    offers(session, 3)
    tidings.run()
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["timers"] == {"scheduled": 3, "due": 0, "overdue": 0}
    workflow.clock.advance(LAPSE_AFTER)  # due now, not yet fired: the workers have not run
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["timers"] == {"scheduled": 0, "due": 3, "overdue": 0}
    workflow.clock.advance(LAPSE_AFTER)
    assert main(["status"]) == 0
    assert "timers: scheduled 0, due 3, overdue 3" in capsys.readouterr().out.splitlines()


def test_explain_tells_each_timer_scheduled_fired_or_void_and_why(session: Session, tidings: Kit,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    [offer] = offers(session, 1)
    offer.withdraw()
    offer.reopen()
    session.commit()
    tidings.advance(LAPSE_AFTER)
    offer.reopen()
    session.commit()
    tidings.run()
    assert main(["explain", "Offer", str(offer.id)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "timeout 'lapse'" in line]
    assert len(lines) == 3
    assert lines[0].endswith(f"void: Offer {offer.id} left the state by transition 2 ('withdraw' to 'withdrawn') "
                             f"before the timeout.")
    assert lines[1].endswith(": fired: transition 4")
    assert lines[2].endswith(": scheduled")


def test_explain_says_a_pending_timer_whose_row_moved_on_will_be_void(session: Session, tidings: Kit,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    [offer] = offers(session, 1)
    offer.take()
    session.commit()
    tidings.run()
    assert main(["explain", "Offer", str(offer.id)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if "timeout 'lapse'" in line]
    assert line.endswith(": scheduled, to be void when due (transition 2 came after)")


def test_graph_draws_a_timeout_edge_with_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph"]) == 0
    assert "  requested -> expired on expire after 7 days: borrower (email)" in capsys.readouterr().out.splitlines()
    assert main(["graph", "--mermaid"]) == 0
    assert "    requested --> expired: expire after 7 days / borrower (email)" in capsys.readouterr().out
