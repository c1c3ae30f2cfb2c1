"""On the default StubBroker (no broker configured), ``tidings sweep``, ``refan`` and ``resend`` deliver before they
exit, and say so: a real CLI process on SQLite, whose mail lands in TIDINGS_MAIL_DIR."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import jobs
import pytest
import workflow
from dramatiq.brokers.stub import StubBroker
from jobs import Delivery, Status
from jobs.fanout import plan
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier the test plans with

ROOT = Path(__file__).parents[3]
TIDINGS = str(Path(sys.executable).with_name("tidings"))
NOTE = ("delivered in this process: broker_url=stub has no workers to take the messages (set TIDINGS_BROKER_URL to "
        "hand them to workers).")

pytestmark = pytest.mark.usefixtures("restore_jobs")


@pytest.fixture
def requested(tmp_path: Path) -> Engine:
    """The lending example's SQLite database with one loan requested, its transition not fanned out (the test's
    own StubBroker keeps the message)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'lending.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    jobs.configure(jobs.Settings(), broker=StubBroker(), engine=engine)
    with Session(engine) as session:
        loan = Loan(item=Item(title="ladder", owner=User(name="Ann", email="ann@example.com")),
                    borrower=User(name="Bob", email="bob@example.com"))
        session.add(loan)
        session.commit()
        loan.request()
        session.commit()
    return engine


def tidings(*args: str, engine: Engine, mail: Path) -> subprocess.CompletedProcess[str]:
    """``tidings <args>`` with no broker configured (the stub default), the lending notifiers, mail to ``mail``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env = {**clean, "TIDINGS_DATABASE_URL": str(engine.url), "TIDINGS_MAIL_DIR": str(mail),
           "TIDINGS_NOTIFIERS": "examples.lending.notifications"}
    return subprocess.run([TIDINGS, "--path", str(ROOT), *args], env=env, cwd=mail.parent, capture_output=True,
                          text=True, timeout=120)


def mails(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("*.eml")) if folder.exists() else []


def test_refan_on_the_stub_broker_delivers_before_it_exits(requested: Engine, tmp_path: Path) -> None:
    done = tidings("refan", "1", engine=requested, mail=tmp_path / "mail")
    assert (done.returncode, done.stdout.splitlines(), done.stderr) == (
        0, ["re-planned 1 transitions: 2 new deliveries", NOTE], "")
    assert len(mails(tmp_path / "mail")) == 1  # the lender's mail now; the second, a reminder, is due in 2 days


def test_resend_on_the_stub_broker_delivers_before_it_exits(requested: Engine, tmp_path: Path) -> None:
    with Session(requested) as session:
        plan(session, 1)
        session.execute(update(Delivery).values(status=Status.FAILED, last_error="550 mailbox full"))
        session.commit()
    done = tidings("resend", "1", engine=requested, mail=tmp_path / "mail")
    assert (done.returncode, done.stdout.splitlines(), done.stderr) == (0, ["re-sent 1 deliveries", NOTE], "")
    assert len(mails(tmp_path / "mail")) == 1


def test_sweep_on_the_stub_broker_delivers_before_it_exits(requested: Engine, tmp_path: Path) -> None:
    with Session(requested) as session:  # committed an hour ago and never fanned out
        session.execute(update(TransitionRecord).values(created_at=workflow.utcnow() - dt.timedelta(hours=1)))
        session.commit()
    done = tidings("sweep", engine=requested, mail=tmp_path / "mail")
    assert (done.returncode, done.stdout.splitlines()) == (0, ["re-enqueued 1 transitions and 0 deliveries", NOTE])
    assert len(mails(tmp_path / "mail")) == 1


def test_a_dry_run_on_the_stub_broker_sends_nothing_and_says_nothing_of_it(requested: Engine, tmp_path: Path) -> None:
    done = tidings("refan", "1", "--dry-run", engine=requested, mail=tmp_path / "mail")
    assert (done.returncode, NOTE in done.stdout, mails(tmp_path / "mail")) == (0, False, [])
