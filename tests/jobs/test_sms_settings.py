"""The ``sms`` channel from settings or in code, and a notifier returning the wrong kind for it refused at configure()."""

from __future__ import annotations

import jobs
import pytest
from jobs import ConfigurationError, Settings
from jobs.runtime import Runtime
from notifiers import Email, Notifier, RegistrationError, SMSChannel, on

from tests.app import Order

pytestmark = pytest.mark.usefixtures("restore_jobs", "restore_registry")


def test_the_sms_channel_is_built_from_tidings_sms_variables() -> None:
    settings = Settings.from_env({"TIDINGS_SMS_URL": "https://sms.example.com/send", "TIDINGS_SMS_SENDER": "Acme",
                                  "TIDINGS_SMS_USERNAME": "acct", "TIDINGS_SMS_PASSWORD": "s3cret",
                                  "TIDINGS_SMS_BODY": "json"})
    channel = Runtime(settings).channel("sms")
    assert isinstance(channel, SMSChannel) and (channel.sender, channel.body) == ("Acme", "json")
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(channel)


def test_an_sms_url_without_a_sender_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"TIDINGS_SMS_SENDER\): the SMS gateway needs the sender"):
        Settings.from_env({"TIDINGS_SMS_URL": "https://sms.example.com/send"})


def test_an_unknown_sms_body_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"TIDINGS_SMS_BODY\): 'xml' is not one of form, json"):
        Settings(sms_body="xml")


def test_without_an_sms_url_the_sms_channel_says_how_to_configure_one() -> None:
    with pytest.raises(ConfigurationError, match=r"No channel 'sms' is configured.*or set TIDINGS_SMS_URL"):
        Runtime(Settings()).channel("sms")


def test_an_sms_channel_sends_to_phones_by_its_name_even_before_it_is_built() -> None:
    assert Runtime(Settings()).address_kinds(["email", "sms", "inapp"]) == {
        "email": "email", "sms": "phone", "inapp": "email"}


def test_configuring_an_sms_channel_for_a_notifier_returning_an_email_fails_naming_both() -> None:
    notice = on(Order, "pay", to="buyer", channels=["sms"], message=Email)(lambda self, event, recipient: None)
    type("PaidNotifier", (Notifier,), {"notice": notice})
    sms = SMSChannel("https://sms.example.com/send", sender="Acme")
    with pytest.raises(RegistrationError, match=r"PaidNotifier.notice returns Email, but its channel 'sms' accepts Text"):
        jobs.configure(channels={"sms": sms})
