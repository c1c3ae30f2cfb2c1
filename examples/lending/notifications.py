"""Who hears about each step of a loan, and what they read."""

from __future__ import annotations

from notifiers import Email, Event, Notifier, Recipient, on

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
