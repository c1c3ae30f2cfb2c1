"""``Settings``: every knob of Tidings' runtime, from code or ``TIDINGS_*`` environment variables.

This module is the only reader of ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from workflow import did_you_mean

from .errors import ConfigurationError

__all__ = ["Settings", "mask_url"]

_PREFIX = "TIDINGS_"
_BROKER_SCHEMES = ("stub", "redis://", "rediss://", "amqp://", "amqps://")
_EMAIL_CHANNELS = ("files", "smtp", "console")
_LOG_FORMATS = ("text", "json")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_SECRETS = ("smtp_password", "sms_password", "sms_token", "unsubscribe_secret", "console_token")
_SMS_BODIES = ("form", "json")
_URLS = ("database_url", "broker_url")
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # module:attribute
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
# scheme://user:password@host -> scheme://user:***@host (also a password with no user).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]*)@")


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (for logs and printed settings)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)


@dataclass(frozen=True)
class Settings:
    """Tidings' configuration; each field ``x`` is read from ``TIDINGS_X`` by :meth:`from_env`.

    Raises:
        ConfigurationError: a value is out of range or of an unknown kind.
    """

    database_url: str = "sqlite:///tidings.db"
    broker_url: str = "stub"
    # With broker_url=stub: a worker in the process delivers each commit's notifications (development).
    in_process_worker: bool = True
    #: ``module:attribute`` of the application's own Dramatiq broker: Tidings uses it instead of building one.
    app_broker: str | None = None
    queue: str = "tidings"
    email_channel: str = "files"
    mail_dir: str = "outbox"
    sender: str = "Tidings <tidings@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = dataclasses.field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 10.0
    #: Relays tried in order after smtp_host when it fails for now: ``"relay2.example.com:587,..."`` (same options).
    smtp_failover: str = ""
    # The "sms" channel, an HTTP SMS gateway (notifiers.SMSChannel), when sms_url is set.
    sms_url: str | None = None
    sms_sender: str = ""
    sms_username: str | None = None
    sms_password: str | None = dataclasses.field(default=None, repr=False)
    sms_token: str | None = dataclasses.field(default=None, repr=False)
    sms_body: str = "form"
    # Deliverability (docs/deliverability.md): one-click unsubscribe links, Reply-To, DKIM signing.
    unsubscribe_url: str | None = None
    unsubscribe_secret: str | None = dataclasses.field(default=None, repr=False)
    unsubscribe_days: int = 60
    reply_to: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_path: str | None = None
    max_retries: int = 8
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 600_000
    lease_seconds: float = 60.0
    sweep_interval: float = 15.0
    sweep_after_seconds: float = 60.0
    due_interval: float = 5.0
    broker_timeout: float = 5.0
    # Retention (jobs/retention.py): days to keep what is done; 0 keeps it for ever.
    keep_deliveries_days: float = 90.0
    keep_transitions_days: float = 0.0
    keep_read_inbox_days: float = 90.0
    prune_interval: float = 3600.0
    prune_batch: int = 1000
    prune_pause: float = 1.0
    # `tidings worker`: the process supervisor, recycling, metrics and logs.
    worker_processes: int = 0
    worker_threads: int = 8
    shutdown_timeout: float = 30.0
    max_memory_mb: int = 0
    max_messages: int = 0
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    log_level: str = "INFO"
    # `tidings console` run alone (docs/console.md): operators log in with the token; actions only when enabled.
    console_token: str | None = dataclasses.field(default=None, repr=False)
    console_actions: bool = False
    # Where the notifiers live: comma-separated modules, imported by workers and commands when first needed.
    notifiers: str = ""

    def __post_init__(self) -> None:
        for field in fields(self):  # the type first: the checks below may assume it
            value, hint = getattr(self, field.name), _hints()[field.name]
            shown = "" if field.name in _SECRETS else f" {_shown(value)}"
            self._check(_fits(value, hint), field.name, f"must be {_kind(hint)}, not {type(value).__name__}{shown}")
        self._check(self.broker_url.startswith(_BROKER_SCHEMES), "broker_url",
                    f"{self.broker_url!r} is not stub, redis://, rediss://, amqp:// or amqps://")
        if self.app_broker is not None:
            self._check(_REFERENCE.fullmatch(self.app_broker) is not None, "app_broker",
                        f"{self.app_broker!r} is not module:attribute, e.g. myapp.tasks:broker")
            self._check(self.broker_url == "stub", "app_broker", "Tidings uses the application's broker instead "
                        f"of building one, so leave broker_url (TIDINGS_BROKER_URL={mask_url(self.broker_url)!r}) unset")
        self._check(self.email_channel in _EMAIL_CHANNELS, "email_channel",
                    f"{self.email_channel!r} is not one of {', '.join(_EMAIL_CHANNELS)}")
        self._check(self.sms_body in _SMS_BODIES, "sms_body", f"{self.sms_body!r} is not one of {', '.join(_SMS_BODIES)}")
        self._check(self.sms_url is None or bool(self.sms_sender.strip()), "sms_sender",
                    "the SMS gateway needs the sender number or name to show (TIDINGS_SMS_URL is set)")
        self._check(bool(self.queue) and self.queue.replace("-", "_").replace(".", "_").isidentifier(),
                    "queue", f"{self.queue!r} is not a valid queue name")
        self._check(self.log_format in _LOG_FORMATS, "log_format",
                    f"{self.log_format!r} is not one of {', '.join(_LOG_FORMATS)}")
        self._check(self.log_level.upper() in _LOG_LEVELS, "log_level",
                    f"{self.log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
        self._check(isinstance(self.notifiers, str) and all(_MODULE.fullmatch(m) for m in self.notifier_modules()),
                    "notifiers",
                    f"{self.notifiers!r} is not a comma-separated list of module names")
        self._check_deliverability()
        self._check(self.console_token is None or len(self.console_token) >= 16, "console_token",
                    "must be at least 16 characters (e.g. the output of `python -c \"import secrets; "
                    "print(secrets.token_urlsafe())\"`)")
        self._check(0 <= self.metrics_port <= 65535, "metrics_port", "must be a TCP port, or 0 for no metrics")
        self._check(1 <= self.smtp_port <= 65535, "smtp_port", f"{self.smtp_port} is not a TCP port (1 to 65535)")
        self._check(all(_relay(r) for r in self.smtp_failover.split(",") if r.strip()), "smtp_failover",
                    f"{self.smtp_failover!r} is not a comma-separated list of host:port (port 1 to 65535)")
        for name in ("max_retries", "min_backoff_ms", "max_backoff_ms", "sweep_interval", "due_interval",
                     "worker_processes", "max_memory_mb", "max_messages", "keep_deliveries_days",
                     "keep_transitions_days", "keep_read_inbox_days", "prune_interval", "prune_pause"):
            self._check(getattr(self, name) >= 0, name, "must not be negative")
        for name in ("lease_seconds", "smtp_timeout", "broker_timeout", "sweep_after_seconds", "worker_threads",
                     "shutdown_timeout"):
            self._check(getattr(self, name) > 0, name, "must be positive")
        self._check(1 <= self.prune_batch <= 100_000, "prune_batch", "must be 1 to 100000 rows per transaction")

    def _check_deliverability(self) -> None:
        """The unsubscribe, Reply-To and DKIM settings: each complete, and of the right shape."""
        url = self.unsubscribe_url
        self._check(url is None or url.startswith("https://"), "unsubscribe_url",
                    f"{url!r} is not an https:// URL (RFC 8058 one-click links are HTTPS)")
        self._check(url is None or bool(self.unsubscribe_secret), "unsubscribe_secret",
                    "the unsubscribe links need a secret to sign their tokens (TIDINGS_UNSUBSCRIBE_URL is set)")
        self._check(1 <= self.unsubscribe_days <= 3650, "unsubscribe_days", "must be 1 to 3650 days")
        self._check(self.reply_to is None or "@" in self.reply_to, "reply_to",
                    f"{self.reply_to!r} is not an address such as 'Support <support@example.com>'")
        dkim = {"dkim_selector": self.dkim_selector, "dkim_domain": self.dkim_domain,
                "dkim_key_path": self.dkim_key_path}
        given = [name for name, value in dkim.items() if value]
        for name in dkim:
            self._check(not given or name in given, name,
                        f"DKIM signing needs dkim_selector, dkim_domain and dkim_key_path; only "
                        f"{', '.join(_PREFIX + n.upper() for n in given)} given")

    def smtp_relays(self) -> list[tuple[str, int]]:
        """Every SMTP relay, in the order they are tried: ``smtp_host:smtp_port``, then those of :attr:`smtp_failover`."""
        return [(self.smtp_host, self.smtp_port)] + [_relay(r) or ("", 0) for r in self.smtp_failover.split(",")
                                                     if r.strip()]

    def notifier_modules(self) -> list[str]:
        """The modules of :attr:`notifiers`, in order."""
        return [name.strip() for name in self.notifiers.split(",") if name.strip()]

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self.masked().items())})"

    def masked(self) -> dict[str, Any]:
        """Every setting by name, with passwords replaced by ``***``: safe to log or print."""
        values = dataclasses.asdict(self)
        for name in _SECRETS:
            if values[name] is not None:
                values[name] = "***"
        for name in _URLS:
            values[name] = mask_url(values[name])
        return values

    def _check(self, ok: bool, name: str, problem: str) -> None:
        if not ok:
            raise ConfigurationError(f"Setting {name} (environment variable {_PREFIX}{name.upper()}): {problem}.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``TIDINGS_*`` variables, then ``overrides``.

        Raises:
            ConfigurationError: a variable does not parse, naming it.
        """
        environ = os.environ if environ is None else environ
        _refuse_unknown(environ)
        values: dict[str, Any] = {}
        for field in fields(cls):
            variable = _PREFIX + field.name.upper()
            if variable in environ:
                values[field.name] = _parse(variable, environ[variable], field.default)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and checked)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigurationError(f"Unknown settings {sorted(unknown)}; known: {[f.name for f in fields(self)]}.")
        return dataclasses.replace(self, **changes)


def _relay(text: str) -> tuple[str, int] | None:
    """``" relay2.example.com:587"`` -> ``("relay2.example.com", 587)``; ``None`` when it is not host:port."""
    host, _, port = text.strip().rpartition(":")
    return (host, int(port)) if host and port.isdigit() and 1 <= int(port) <= 65535 else None


def _refuse_unknown(environ: Mapping[str, str]) -> None:
    """Refuse a ``TIDINGS_*`` variable no setting reads: a typo would otherwise leave its default in force."""
    known = [_PREFIX + field.name.upper() for field in fields(Settings)]
    for variable in sorted(environ):
        if variable.startswith(_PREFIX) and variable not in known:
            hint = did_you_mean(variable, known) or f" The variables are {', '.join(known)}."
            raise ConfigurationError(f"Environment variable {variable} is no setting of Tidings.{hint}")


@functools.cache
def _hints() -> dict[str, Any]:
    """The type of each setting, from the annotations of :class:`Settings`."""
    return typing.get_type_hints(Settings)


def _fits(value: object, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type: ``int`` refuses a bool, ``float`` takes an int too."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(hint) or hint
    if not isinstance(value, origin):
        return False
    items = typing.get_args(hint)  # tuple[str, ...], list[str]: each element checked too
    return not items or all(_fits(item, items[0]) for item in value)


def _kind(hint: Any) -> str:
    """How a type reads in a message: ``int``, ``str or None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_kind(option) for option in typing.get_args(hint))
    return "None" if hint is type(None) else str(getattr(hint, "__name__", hint))


def _shown(value: object) -> str:
    """``value`` as a message shows it: a short repr (``reprlib`` cuts long ones; a huge int has none)."""
    try:
        return reprlib.repr(value)
    except ValueError:
        return "(too long to show)"


def _parse(variable: str, text: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return lowered in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError as error:
        raise ConfigurationError(f"Setting {variable.removeprefix(_PREFIX).lower()}: environment variable "
                                 f"{variable}={text!r} does not parse: {error}.") from None
    return text
