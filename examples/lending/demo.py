"""The lending marketplace on the embedded default: SQLite, the StubBroker, .eml files.

Run it with ``make demo`` (or ``python -m examples.lending.demo``). It fires each step of a loan
in its own committed transaction, as request handlers would, lets the in-process worker deliver,
and prints the mailbox of each party. Time runs fast: the clock is moved forward
(``workflow.clock.advance``) to show a reminder (the lender has not answered for two days) and a
supersession (the "have you picked it up?" nudge, void once the item was handed over).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import jobs
import workflow
from jobs import actors
from jobs.testing import drain, stop_workers
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from .models import Base, Item, Loan, User
from .notifications import LoanNotifier  # noqa: F401 - importing registers the notifier


def main(folder: Path) -> int:
    engine = create_engine(f"sqlite:///{folder / 'lending.db'}")
    Base.metadata.create_all(engine)
    workflow.metadata.create_all(engine)
    mail = folder / "mail"
    jobs.configure(broker_url="stub", email_channel="files", mail_dir=str(mail), engine=engine,
                   sender="Lending <loans@lending.example>")

    with Session(engine) as session:
        ann = User(name="Ann", email="ann@example.com")
        bob = User(name="Bob", email="bob@example.com")
        loan = Loan(item=Item(title="ladder", owner=ann), borrower=bob)
        session.add(loan)
        steps = [("request", bob, {"note": "for the gutters on Saturday"}), dt.timedelta(days=2),
                 ("accept", ann, {"note": "see you Friday"}), dt.timedelta(minutes=20), ("hand_over", ann, {}),
                 dt.timedelta(hours=1), ("give_back", bob, {})]
        for step in steps:
            if isinstance(step, dt.timedelta):
                pass_time(step)
                continue
            trigger, actor, context = step
            loan.fire(trigger, actor=actor, **context)
            session.commit()  # the fan-out message is enqueued only now
            print(f"{actor.name} fired {trigger!r}: loan is now {loan.state!r}")
            drain()
        for notifier, reason in session.execute(select(jobs.Delivery.notifier, jobs.Delivery.last_error)
                                                .where(jobs.Delivery.status == jobs.Status.SKIPPED)):
            print(f"Not sent: {notifier.rsplit('.', 1)[1]} ({reason})")

        try:
            loan.fire("accept", actor=ann)
        except workflow.InvalidTransition as error:
            print(f"Refused, nothing recorded or sent: {error}")

    stop_workers()
    show_mailboxes(mail)
    return 0


def pass_time(span: dt.timedelta) -> None:
    """Move the clock forward, then send what became due, as a worker's ``due`` task would on its next turn."""
    workflow.clock.advance(span)
    print(f"... {span} later")
    actors.send_due()
    drain()


def show_mailboxes(mail: Path) -> None:
    """Print each recipient's mail, oldest first."""
    boxes: dict[str, list[email.message.EmailMessage]] = defaultdict(list)
    for path in sorted(mail.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        boxes[str(message["To"])].append(message)  # type: ignore[arg-type]
    for recipient, messages in sorted(boxes.items()):
        print(f"\n=== Mailbox of {recipient}: {len(messages)} message(s)")
        for message in messages:
            body = message.get_body(preferencelist=("plain", "html"))
            print(f"--- From: {message['From']}\n    Subject: {message['Subject']}")
            for line in (body.get_content().strip() if body else "").splitlines():
                print(f"    | {line}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="tidings-demo-") as tmp:
        sys.exit(main(Path(tmp)))
