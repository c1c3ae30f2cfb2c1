"""Auto-Submitted (RFC 3834) on every notification mail, and the channel's Reply-To policy."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import jobs
import pytest
from jobs.runtime import Runtime
from notifiers import ChannelConfigurationError, Email, FileChannel, Recipient, SMTPChannel

ANN = Recipient("ann@example.com", "Ann")
SUPPORT = "Support <support@example.com>"


def headers(message: Email, reply_to: str | None = None) -> email.message.EmailMessage:
    data = message.to_bytes(ANN, sender="Shop <noreply@example.com>", key="k-1", reply_to=reply_to)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_every_notification_mail_says_auto_submitted_auto_generated() -> None:
    assert headers(Email(subject="Hi", text="body"))["Auto-Submitted"] == "auto-generated"


def test_the_mime_form_says_auto_submitted_too() -> None:
    mime = Email(subject="Hi", html="<p>body</p>").to_mime(ANN, sender="shop@example.com", key="k-1")
    assert mime["Auto-Submitted"] == "auto-generated"


def test_an_email_giving_its_own_auto_submitted_keeps_it_once() -> None:
    parsed = headers(Email(subject="Re: hi", text="body", headers={"Auto-Submitted": "auto-replied"}))
    assert parsed.get_all("Auto-Submitted") == ["auto-replied"]


def test_without_a_reply_to_policy_there_is_no_reply_to() -> None:
    assert headers(Email(subject="Hi", text="body"))["Reply-To"] is None


def test_the_channel_reply_to_is_on_every_mail_that_gives_none() -> None:
    assert headers(Email(subject="Hi", text="body"), reply_to=SUPPORT)["Reply-To"] == SUPPORT


def test_an_email_with_its_own_reply_to_keeps_it() -> None:
    parsed = headers(Email(subject="Hi", text="body", headers={"Reply-To": "sam@example.com"}), reply_to=SUPPORT)
    assert parsed.get_all("Reply-To") == ["sam@example.com"]


def test_the_files_channel_writes_the_reply_to_and_auto_submitted(tmp_path: Path) -> None:
    with FileChannel(tmp_path, reply_to=SUPPORT) as channel:
        channel.send(Email(subject="Hi", text="body"), ANN, key="k-1")
    parsed = email.message_from_bytes((tmp_path / "k-1.eml").read_bytes(), policy=email.policy.default)
    assert (parsed["Reply-To"], parsed["Auto-Submitted"]) == (SUPPORT, "auto-generated")


@pytest.mark.parametrize("make", [lambda: SMTPChannel(reply_to="not an address"),
                                  lambda: FileChannel("outbox", reply_to="not an address")])
def test_a_reply_to_that_is_not_an_address_is_refused_when_the_channel_is_built(make: object) -> None:
    with pytest.raises(ChannelConfigurationError, match="reply_to"):
        make()  # type: ignore[operator]


def test_the_reply_to_setting_reaches_the_email_channel(tmp_path: Path) -> None:
    settings = jobs.Settings(mail_dir=str(tmp_path), reply_to=SUPPORT)
    channel = Runtime(settings).channel("email")
    assert isinstance(channel, FileChannel) and channel.reply_to == SUPPORT


def test_a_reply_to_setting_without_an_address_is_refused() -> None:
    with pytest.raises(jobs.ConfigurationError, match="reply_to.*is not an address"):
        jobs.Settings(reply_to="nobody")


def test_a_reply_to_setting_that_does_not_parse_stops_the_runtime_at_start() -> None:
    with pytest.raises(jobs.ConfigurationError, match="TIDINGS_REPLY_TO.*missing trailing '>'"):
        Runtime(jobs.Settings(reply_to="Support <support@example.com"))
