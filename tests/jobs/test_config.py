from __future__ import annotations

import pytest
from jobs import ConfigurationError, Settings


def test_settings_are_read_from_tidings_variables() -> None:
    settings = Settings.from_env({"TIDINGS_BROKER_URL": "redis://localhost:6379/1", "TIDINGS_SMTP_PORT": "2525",
                                  "TIDINGS_SMTP_STARTTLS": "yes", "TIDINGS_LEASE_SECONDS": "2.5"})
    assert (settings.broker_url, settings.smtp_port, settings.smtp_starttls, settings.lease_seconds) == (
        "redis://localhost:6379/1", 2525, True, 2.5)


def test_an_unknown_broker_scheme_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"broker_url \(environment variable TIDINGS_BROKER_URL\): 'kafka://x'"):
        Settings.from_env({"TIDINGS_BROKER_URL": "kafka://x"})


def test_a_value_that_does_not_parse_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"TIDINGS_SMTP_PORT='twenty' does not parse"):
        Settings.from_env({"TIDINGS_SMTP_PORT": "twenty"})


def test_an_unknown_setting_in_code_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown settings \['brocker_url'\]"):
        Settings().replace(brocker_url="stub")


def test_the_password_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(Settings(smtp_password="hunter2"))
