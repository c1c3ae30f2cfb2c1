"""TIDINGS_SMTP_FAILOVER: the relays tried after smtp_host, read and checked; the runtime builds a FailoverChannel."""

from __future__ import annotations

import pytest
from jobs import ConfigurationError, Settings
from jobs.runtime import Runtime
from notifiers import FailoverChannel, SMTPChannel


def test_the_relays_are_the_primary_then_the_failover_ones_in_order() -> None:
    settings = Settings.from_env({"TIDINGS_SMTP_HOST": "relay1.example.com", "TIDINGS_SMTP_PORT": "587",
                                  "TIDINGS_SMTP_FAILOVER": "relay2.example.com:587, 192.0.2.7:25"})
    assert settings.smtp_relays() == [("relay1.example.com", 587), ("relay2.example.com", 587), ("192.0.2.7", 25)]


def test_a_failover_relay_that_is_not_host_and_port_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"smtp_failover \(environment variable TIDINGS_SMTP_FAILOVER\): "
                                                 r"'relay2.example.com' is not a comma-separated list of host:port"):
        Settings(smtp_failover="relay2.example.com")


def test_a_failover_port_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="TIDINGS_SMTP_FAILOVER"):
        Settings(smtp_failover="relay2.example.com:70000")


def test_the_email_channel_of_several_relays_is_a_failover_channel_named_by_host_and_port() -> None:
    runtime = Runtime(Settings(email_channel="smtp", smtp_host="relay1.example.com", smtp_failover="relay2.example.com:2525"))
    channel = runtime.channel("email")
    try:
        assert isinstance(channel, FailoverChannel)
        assert channel.names == ["relay1.example.com:25", "relay2.example.com:2525"]
    finally:
        runtime.close()


def test_without_failover_relays_the_email_channel_is_one_smtp_channel() -> None:
    runtime = Runtime(Settings(email_channel="smtp"))
    try:
        assert type(runtime.channel("email")) is SMTPChannel
    finally:
        runtime.close()
