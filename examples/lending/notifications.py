"""Who hears about each step of a loan, and what they read."""

from __future__ import annotations

import datetime as dt

from notifiers import LEFT, Email, Event, Notifier, Recipient, on, remind

from .models import Loan


class LoanNotifier(Notifier):
    """Tells the lender and the borrower what they need to know, each in their own words."""

    templates = "templates"

    @on(Loan, "request", to="lender")
    def requested(self, event: Event, recipient: Recipient) -> Email:
        loan = event.subject
        return Email(subject=f"{loan.borrower.name} would like to borrow your {loan.item.title}",
                     template="loans/requested")

    @on(Loan, "accept", to="borrower")
    def accepted(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"{event.subject.item.owner.name} said yes", template="loans/accepted")

    # Still waiting for an answer two days later: the lender is reminded once (not if they
    # answered meanwhile: the reminder is void once the loan has left "requested").
    @remind(Loan, "requested", after=dt.timedelta(days=2), to="lender")
    def still_requested(self, event: Event, recipient: Recipient) -> Email:
        loan = event.subject
        return Email(subject=f"{loan.borrower.name} is still waiting for your answer",
                     text=f"{loan.borrower.name} asked to borrow your {loan.item.title}. Accept or decline?")

    # An hour after the yes, a nudge to fetch the item; void once the loan moved on (handed over, or any other move).
    @on(Loan, "accept", to="borrower", delay=dt.timedelta(hours=1), superseded_by=LEFT)
    def pick_up(self, event: Event, recipient: Recipient) -> Email:
        loan = event.subject
        return Email(subject=f"Have you picked up the {loan.item.title}?",
                     text=f"{loan.item.owner.name} said yes an hour ago. Arrange the hand-over with them.")

    @on(Loan, "decline", to="borrower")
    def declined(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Your request for {event.subject.item.title} was declined",
                     text=f"Sorry, {recipient.name}: {event.subject.item.owner.name} cannot lend it this time.")

    @on(Loan, "expire", to="borrower")
    def expired(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Your request for {event.subject.item.title} expired", template="loans/expired")

    @on(Loan, "hand_over", to=["borrower", "lender"])
    def handed_over(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"{event.subject.item.title} changed hands", template="loans/handed_over")

    @on(Loan, "give_back", to="lender")
    def returned(self, event: Event, recipient: Recipient) -> Email:
        return Email(subject=f"Your {event.subject.item.title} is back",
                     text=f"{event.subject.borrower.name} returned your {event.subject.item.title}. Thank you!")
