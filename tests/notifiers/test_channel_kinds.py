"""A channel says which kinds of message it accepts; a notifier returning another kind is refused early."""

from __future__ import annotations

import pytest
from notifiers import (Channel, Email, Event, Message, Notifier, Recipient, RegistrationError, SMTPChannel, Text, on,
                       registry)

from tests.app import Order

pytestmark = pytest.mark.usefixtures("restore_registry")


def test_the_message_channels_say_what_they_accept() -> None:
    assert SMTPChannel.accepts == (Email,)
    assert Channel.accepts == (Message,)


def test_configuring_a_channel_that_refuses_what_a_notifier_returns_names_both() -> None:
    class ResetNotifier(Notifier):
        @on(Order, "pay", to="buyer", channels=["sms"])
        def code(self, event: Event, recipient: Recipient) -> Email:
            return Email(subject="code", text="1234")

    with pytest.raises(RegistrationError, match=r"ResetNotifier.code returns Email, but its channel 'sms' "
                                                 r"accepts Text: return one of those"):
        registry.expect_channels({"sms": (Text,)})


def test_declaring_a_notifier_for_a_channel_that_refuses_its_kind_fails_at_import() -> None:
    registry.expect_channels({"sms": (Text,)})
    with pytest.raises(RegistrationError, match=r"returns Email, but its channel 'sms' accepts Text"):
        class ResetNotifier(Notifier):
            @on(Order, "pay", to="buyer", channels=["sms"])
            def code(self, event: Event, recipient: Recipient) -> Email | None:
                return None


def test_the_message_argument_says_the_kind_when_the_annotation_does_not() -> None:
    registry.expect_channels({"sms": (Text,)})
    with pytest.raises(RegistrationError, match=r"returns Email, but its channel 'sms'"):
        class ResetNotifier(Notifier):
            @on(Order, "pay", to="buyer", channels=["sms"], message=Email)
            def code(self, event, recipient):  # type: ignore[no-untyped-def]
                return None


def test_a_notifier_returning_a_text_is_accepted_by_a_text_channel() -> None:
    registry.expect_channels({"sms": (Text,)})

    class ResetNotifier(Notifier):
        @on(Order, "pay", to="buyer", channels=["sms"])
        def code(self, event: Event, recipient: Recipient) -> Text:
            return Text("1234")

    [found] = [r for r in registry.for_transition("Order", "pay") if r.notifier is ResetNotifier]
    assert found.messages == (Text,)


def test_a_message_argument_that_is_no_kind_of_message_is_refused() -> None:
    with pytest.raises(RegistrationError, match=r"is not a kind of message such as Email or Text"):
        on(Order, "pay", to="buyer", message=str)  # type: ignore[arg-type]
