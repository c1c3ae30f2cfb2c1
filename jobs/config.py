"""``Settings``: every knob of Tidings' runtime, from code or ``TIDINGS_*`` environment variables.

This module is the only reader of ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigurationError

__all__ = ["Settings"]

_PREFIX = "TIDINGS_"
_BROKER_SCHEMES = ("stub", "redis://", "rediss://", "amqp://", "amqps://")
_EMAIL_CHANNELS = ("files", "smtp", "console")


@dataclass(frozen=True)
class Settings:
    """Tidings' configuration; each field ``x`` is read from ``TIDINGS_X`` by :meth:`from_env`.

    Raises:
        ConfigurationError: a value is out of range or of an unknown kind.
    """

    database_url: str = "sqlite:///tidings.db"
    broker_url: str = "stub"
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
    max_retries: int = 8
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 600_000
    lease_seconds: float = 60.0
    sweep_interval: float = 15.0
    sweep_after_seconds: float = 60.0
    broker_timeout: float = 5.0

    def __post_init__(self) -> None:
        self._check(self.broker_url.startswith(_BROKER_SCHEMES), "broker_url",
                    f"{self.broker_url!r} is not stub, redis://, rediss://, amqp:// or amqps://")
        self._check(self.email_channel in _EMAIL_CHANNELS, "email_channel",
                    f"{self.email_channel!r} is not one of {', '.join(_EMAIL_CHANNELS)}")
        self._check(bool(self.queue) and self.queue.replace("-", "_").replace(".", "_").isidentifier(),
                    "queue", f"{self.queue!r} is not a valid queue name")
        for name in ("smtp_port", "max_retries", "min_backoff_ms", "max_backoff_ms", "sweep_interval"):
            self._check(getattr(self, name) >= 0, name, "must not be negative")
        for name in ("lease_seconds", "smtp_timeout", "broker_timeout", "sweep_after_seconds"):
            self._check(getattr(self, name) > 0, name, "must be positive")

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
        raise ConfigurationError(f"Environment variable {variable}={text!r} does not parse: {error}.") from None
    return text
