"""`tidings preview` renders what each recipient would get, writing nothing; `tidings check` finds broken templates."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import jobs
import pytest
import workflow
from jobs import Delivery
from jobs.commands.cli import main
from notifiers import opt_out, registry
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from workflow import TransitionRecord

from examples.lending.models import Base, Item, Loan, User
from examples.lending.notifications import LoanNotifier  # noqa: F401 - registers the notifier

ROOT = Path(__file__).parents[3]
TIDINGS = str(Path(sys.executable).with_name("tidings"))

pytestmark = pytest.mark.usefixtures("restore_jobs")


@pytest.fixture
def lending(tmp_path: Path) -> Iterator[Engine]:
    """The lending example's database, which the commands read through TIDINGS_DATABASE_URL (or configure)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'lending.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    jobs.configure(jobs.Settings(), database_url=str(engine.url))
    yield engine
    engine.dispose()


@pytest.fixture
def loan(lending: Engine) -> int:
    """Bob asked Ann for her ladder; the loan's id."""
    with Session(lending) as session:
        loan = Loan(item=Item(title="ladder", owner=User(name="Ann", email="ann@example.com")),
                    borrower=User(name="Bob", email="bob@example.com"))
        session.add(loan)
        session.commit()
        loan.request()
        session.commit()
        return loan.id


def written(engine: Engine) -> tuple[int, int, str]:
    """Transitions and deliveries recorded, and the loan's state."""
    with Session(engine) as session:
        return (session.scalar(select(func.count()).select_from(TransitionRecord)) or 0,
                session.scalar(select(func.count()).select_from(Delivery)) or 0, session.scalars(select(Loan.state)).one())


def test_preview_renders_what_the_borrower_would_read(loan: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preview", "Loan", str(loan), "accept", "--context", "note=see you Friday"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"Loan {loan} 'accept' (requested -> accepted): a preview; nothing is sent or written.", "",
        "LoanNotifier.accepted -> borrower Bob <bob@example.com> by email", "Subject: Ann said yes",
        "--- text", "Hello Bob,", "", "Ann accepted to lend you the ladder.", 'They wrote: "see you Friday"',
        "--- html", "<p>Hello Bob,</p>", "<p>Ann accepted to lend you the <b>ladder</b>.</p>",
        "<blockquote>see you Friday</blockquote>", "",
        "LoanNotifier.pick_up -> borrower Bob <bob@example.com> by email", "Subject: Have you picked up the ladder?",
        "--- text", "Ann said yes an hour ago. Arrange the hand-over with them."]


def test_preview_fires_writes_and_sends_nothing(lending: Engine, loan: int) -> None:
    before = written(lending)
    assert main(["preview", "Loan", str(loan), "accept"]) == 0
    assert written(lending) == before == (1, 0, "requested")


def test_preview_shows_one_party_and_who_opted_out(lending: Engine, loan: int,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with Session(lending) as session:
        opt_out(session, session.scalars(select(User).where(User.name == "Bob")).one(), channel="email")
        session.commit()
    assert main(["preview", "Loan", str(loan), "hand_over", "--party", "borrower"]) == 0
    out = capsys.readouterr().out
    assert "LoanNotifier.handed_over -> borrower Bob <bob@example.com> by email: skipped: Opted out of email." in out
    assert "lender" not in out and "('requested' now: 'hand_over' is not allowed" not in out
    assert f"(Loan {loan} is 'requested' now: 'hand_over' is not allowed from it; previewed as from 'accepted'.)" in out


@pytest.mark.parametrize(("argv", "error"), [
    (["preview", "Loan", "999", "accept"], (1, "error: Loan 999 does not exist.")),
    (["preview", "Lone", "1", "accept"], (2, "error: No Stateful model named 'Lone' is imported;")),
    (["preview", "Loan", "1", "acept"], (2, "error: Loan has no trigger 'acept'; its triggers: request, accept,")),
    (["preview", "Loan", "1", "accept", "--party", "owner"], (2, "error: Loan has no party 'owner'; its parties:")),
])
def test_preview_of_something_that_is_not_there_says_what_is(loan: int, argv: list[str], error: tuple[int, str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, line = error
    assert main(argv) == code
    assert capsys.readouterr().err.startswith(line)


def test_preview_and_check_run_as_commands_on_the_lending_example(lending: Engine, loan: int) -> None:
    env = {**os.environ, "TIDINGS_DATABASE_URL": str(lending.url)}
    app = ["--path", str(ROOT), "--import", "examples.lending.notifications"]
    shown = subprocess.run([TIDINGS, *app, "preview", "Loan", str(loan), "give_back"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert "LoanNotifier.returned -> lender Ann <ann@example.com> by email\nSubject: Your ladder is back" in shown.stdout
    checked = subprocess.run([TIDINGS, *app, "check"], env=env, capture_output=True, text=True, timeout=120)
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0, "8 registrations checked: every template renders.\n", "")


# --- A deliberately broken notifier --------------------------------------------------------------------------

BROKEN = '''
    from notifiers import Email, Event, Notifier, Recipient, on
    from sqlalchemy import String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
    from workflow import Stateful, Workflow


    class Base(DeclarativeBase):
        pass


    class Ticket(Stateful, Base):
        __tablename__ = "check_tickets"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(320))
        workflow = Workflow(states=["open", "closed"], initial="open", name="CheckTicket",
                            transitions=[["close", "open", "closed"], ["reopen", "closed", "open"],
                                         ["escalate", "open", "open"], ["nudge", "open", "open"],
                                         ["archive", "closed", "closed"]],
                            parties={"reporter": "email"})


    class TicketNotifier(Notifier):
        templates = "templates"

        @on(Ticket, "close", to="reporter")
        def closed(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="Closed", template="tickets/closed")

        @on(Ticket, "reopen", to="reporter")
        def reopened(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="Reopened", template="tickets/reopened")

        @on(Ticket, "escalate", to="reporter")
        def escalated(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"Ticket {event.subject.id} escalated", template="tickets/escalated")

        @on(Ticket, "nudge", to="reporter")
        def nudged(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject=f"Open for {event.subject.id * 2} days", text="Still open.")

        @on(Ticket, "archive", to="reporter")
        def archived(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="Archived", template="tickets/archived")
'''


@pytest.fixture
def broken(tmp_path: Path, restore_registry: None) -> Iterator[ModuleType]:
    """A notifier module whose templates are missing, broken, or use a variable that is not there; alone registered."""
    folder = tmp_path / "app"
    (folder / "templates" / "tickets").mkdir(parents=True)
    (folder / "broken_notifiers.py").write_text(textwrap.dedent(BROKEN))
    (folder / "templates" / "tickets" / "reopened.txt").write_text("Hello,\n{{ recipient.name }\n")
    (folder / "templates" / "tickets" / "escalated.txt").write_text("Hello,\n\n{{ recipient.nmae }}, see the ticket.\n")
    (folder / "templates" / "tickets" / "old.de.txt").write_text("{% if %}\n")
    (folder / "templates" / "tickets" / "archived.txt").write_text("Hello {{ recipient.name }}, it is archived.\n")
    (folder / "templates" / "tickets" / "archived.de.txt").write_text("Hallo {{ recipient.nmae }}, archiviert.\n")
    registry._by_name.clear()  # only this module's notifiers, as in the command's own process
    registry._by_transition.clear()
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("broken_notifiers")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("broken_notifiers", None)


def test_check_lists_each_missing_or_broken_template_and_exits_1(broken: ModuleType, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 1
    folder = tmp_path / "app" / "templates"
    assert capsys.readouterr().out.splitlines() == [
        "error: TicketNotifier.closed (CheckTicket 'close'): TemplateError: Template 'tickets/closed' not found: "
        f"neither tickets/closed.txt nor tickets/closed.html is in {folder}.",
        "error: TicketNotifier.reopened (CheckTicket 'reopen'): TemplateError: Template 'tickets/reopened.txt' does "
        "not compile, line 2: unexpected '}'.",
        "error: TicketNotifier.escalated (CheckTicket 'escalate'): TemplateError: Template 'tickets/escalated.txt' "
        "failed to render, line 3: 'notifiers.recipients.Recipient object' has no attribute 'nmae'.",
        "not checked: TicketNotifier.nudged (CheckTicket 'nudge'): calling it with stand-ins raised TypeError: "
        "unsupported operand type(s) for *: '_StandIn' and 'int'; try tidings preview CheckTicket KEY nudge",
        "error: TicketNotifier.archived (CheckTicket 'archive'): TemplateError: Template 'tickets/archived.de.txt' "
        "failed to render, line 1: 'notifiers.recipients.Recipient object' has no attribute 'nmae'.",
        f"error: {folder / 'tickets' / 'old.de.txt'}: Template 'tickets/old.de.txt' does not compile, line 1: "
        "Expected an expression, got 'end of statement block'.",
        "5 registrations checked: 5 problem(s)."]


def test_check_with_no_notifier_registered_says_what_to_pass(restore_registry: None,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    registry._by_name.clear()
    registry._by_transition.clear()
    assert main(["check"]) == 2
    assert capsys.readouterr().err == ("error: No notifier is registered: pass the modules that declare them "
                                       "(tidings --import myapp.notifications check).\n")


def test_preview_of_a_broken_template_shows_the_error_and_exits_1(broken: ModuleType, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'tickets.db'}")
    broken.Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(broken.Ticket(email="rita@example.com"))
        session.commit()
    jobs.configure(jobs.Settings(), engine=engine)
    assert main(["preview", "CheckTicket", "1", "escalate"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "TicketNotifier.escalated -> reporter rita@example.com by email: error: TemplateError: Template "
        "'tickets/escalated.txt' failed to render, line 3: 'notifiers.recipients.Recipient object' has no attribute "
        "'nmae'.")
    engine.dispose()


def test_check_runs_as_a_command_for_ci(broken: ModuleType, tmp_path: Path) -> None:
    result = subprocess.run([TIDINGS, "--path", str(tmp_path / "app"), "--import", "broken_notifiers", "check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "5 registrations checked: 5 problem(s)."
