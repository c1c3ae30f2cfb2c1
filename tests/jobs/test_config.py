from __future__ import annotations

from dataclasses import fields

import jobs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


def test_a_value_that_does_not_parse_names_its_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"^Setting max_retries: environment variable TIDINGS_MAX_RETRIES="):
        Settings.from_env({"TIDINGS_MAX_RETRIES": "3.5"})


def test_an_unknown_setting_in_code_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"Unknown settings \['brocker_url'\]"):
        Settings().replace(brocker_url="stub")


def test_the_password_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(Settings(smtp_password="hunter2"))


def test_worker_settings_are_read_from_tidings_variables() -> None:
    settings = Settings.from_env({"TIDINGS_WORKER_PROCESSES": "3", "TIDINGS_WORKER_THREADS": "4",
                                  "TIDINGS_SHUTDOWN_TIMEOUT": "45", "TIDINGS_MAX_MEMORY_MB": "512",
                                  "TIDINGS_MAX_MESSAGES": "10000", "TIDINGS_METRICS_PORT": "9191",
                                  "TIDINGS_LOG_FORMAT": "json"})
    assert (settings.worker_processes, settings.worker_threads, settings.shutdown_timeout, settings.max_memory_mb,
            settings.max_messages, settings.metrics_port, settings.log_format) == (3, 4, 45.0, 512, 10000, 9191, "json")


@pytest.mark.parametrize("variable, value, problem", [
    ("TIDINGS_LOG_FORMAT", "xml", "'xml' is not one of text, json"),
    ("TIDINGS_WORKER_THREADS", "0", "must be positive"),
    ("TIDINGS_MAX_MEMORY_MB", "-1", "must not be negative"),
    ("TIDINGS_METRICS_PORT", "70000", "must be a TCP port"),
])
def test_a_bad_worker_setting_names_its_variable(variable: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"\(environment variable {variable}\): {problem}"):
        Settings.from_env({variable: value})


def test_printed_settings_mask_every_password() -> None:
    settings = Settings(database_url="postgresql+psycopg://app:db-pass@db/app", smtp_password="smtp-pass",
                        broker_url="redis://:redis-pass@redis:6379/0")
    shown = repr(settings) + str(settings.masked())
    assert "db-pass" not in shown and "smtp-pass" not in shown and "redis-pass" not in shown
    assert settings.masked()["database_url"] == "postgresql+psycopg://app:***@db/app"
    assert settings.masked()["broker_url"] == "redis://:***@redis:6379/0"
    assert settings.database_url.endswith("app:db-pass@db/app")  # the setting itself is intact


def test_a_url_without_a_password_is_left_alone() -> None:
    from jobs.config import mask_url

    assert mask_url("redis://127.0.0.1:6379/13 and bob@example.com") == "redis://127.0.0.1:6379/13 and bob@example.com"


@pytest.mark.parametrize("change", [{"smtp_port": "x"}, {"max_retries": "3"}, {"smtp_starttls": "no"},
                                    {"lease_seconds": True}, {"smtp_username": 7}])
def test_a_setting_of_the_wrong_type_in_code_names_the_setting_and_its_variable(change: dict[str, object]) -> None:
    (name, value), = change.items()
    with pytest.raises(ConfigurationError, match=rf"Setting {name} \(environment variable TIDINGS_{name.upper()}\): "
                                                 rf"must be \w+.*, not {type(value).__name__}"):
        jobs.configure(**change)


def test_a_password_of_the_wrong_type_is_named_but_not_shown() -> None:
    with pytest.raises(ConfigurationError, match=r"smtp_password .*: must be str or None, not int\.$") as caught:
        Settings(smtp_password=123456)  # type: ignore[arg-type]
    assert "123456" not in str(caught.value)


def test_an_int_is_taken_where_a_float_is_expected() -> None:
    assert Settings(lease_seconds=2).lease_seconds == 2


_ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
                       st.lists(st.integers(), max_size=3), st.tuples(st.text()))
_NAMES = [f.name for f in fields(Settings)]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_NAMES), _ANY_VALUE, max_size=4))
def test_any_values_for_any_settings_give_settings_or_a_configuration_error(changes: dict[str, object]) -> None:
    try:
        made = Settings().replace(**changes)
    except ConfigurationError:
        return
    assert all(getattr(made, name) == value or value != value for name, value in changes.items())  # NaN != NaN


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([f"TIDINGS_{name.upper()}" for name in _NAMES]), st.text(), max_size=4))
def test_any_text_in_any_variable_gives_settings_or_a_configuration_error(environ: dict[str, str]) -> None:
    try:
        Settings.from_env(environ)
    except ConfigurationError as error:
        assert any(variable in str(error) for variable in environ)


def test_a_mistyped_variable_is_refused_naming_the_setting_it_was_meant_for() -> None:
    with pytest.raises(ConfigurationError, match="TIDINGS_SMPT_HOST is no setting of Tidings. Did you mean "
                                                 "'TIDINGS_SMTP_HOST'"):
        Settings.from_env({"TIDINGS_SMPT_HOST": "mail.example"})


def test_an_smtp_port_outside_the_tcp_range_is_refused() -> None:
    for port in ("0", "99999"):
        with pytest.raises(ConfigurationError, match="TIDINGS_SMTP_PORT.*is not a TCP port"):
            Settings.from_env({"TIDINGS_SMTP_PORT": port})
