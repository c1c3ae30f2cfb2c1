from __future__ import annotations

import datetime as dt

import pytest
from notifiers import Email, Event, Notifier, Recipient, RegistrationError, on, registry

from tests.app import Order, OrderNotifier, Person


def test_unknown_trigger_fails_at_declaration_with_a_suggestion() -> None:
    with pytest.raises(RegistrationError, match=r"@on\(Order, 'shipp'\): Order has no trigger 'shipp'.*Did you mean 'ship'"):
        on(Order, "shipp", to="buyer")


def test_unknown_party_fails_at_declaration_naming_the_parties() -> None:
    with pytest.raises(RegistrationError, match=r"Order has no party 'byer'; its parties: buyer, seller, watchers, nobody. Did you mean 'buyer'"):
        on(Order, "pay", to=["seller", "byer"])


def test_a_model_without_a_workflow_is_refused() -> None:
    with pytest.raises(RegistrationError, match=r"is not a Stateful model"):
        on(Person, "pay", to="buyer")  # type: ignore[arg-type]


def test_a_missing_templates_folder_is_refused_at_class_creation() -> None:
    with pytest.raises(RegistrationError, match=r"templates: folder .*no-such-folder does not exist"):
        type("Lost", (Notifier,), {"templates": "no-such-folder"})


@pytest.mark.usefixtures("restore_registry")
def test_several_notifiers_and_parties_per_transition_are_kept_in_order() -> None:
    class AuditNotifier(Notifier):
        @on(Order, "pay", to="seller")
        @on(Order, "cancel", to="seller")
        def audit(self, event: object, recipient: object) -> Email:
            return Email(subject="audit", text="x")

    pay = registry.for_transition("Order", "pay")
    assert [(r.notifier, r.parties) for r in pay][:1] == [(OrderNotifier, ("buyer", "seller"))]
    assert any(r.notifier is AuditNotifier for r in pay)
    assert any(r.notifier is AuditNotifier for r in registry.for_transition("Order", "cancel"))


def _event(trigger: str, subject: object) -> Event:
    return Event(1, "Order", "7", trigger, "new", "paid", None, {}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), subject)


def test_compose_for_renders_the_message_of_the_notifier_registered_under_that_name() -> None:
    name = f"{OrderNotifier.__module__}.OrderNotifier.paid"
    message = Notifier.compose_for(name, _event("pay", Order(id=7)), Recipient("ann@example.com"))
    assert isinstance(message, Email) and message.subject


def test_compose_for_a_name_no_notifier_answers_says_to_import_its_module() -> None:
    with pytest.raises(RegistrationError, match=r"No notifier 'myapp.Gone.paid' is registered for Order.pay"):
        Notifier.compose_for("myapp.Gone.paid", _event("pay", Order(id=7)), Recipient("ann@example.com"))
