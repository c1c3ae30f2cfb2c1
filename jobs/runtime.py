"""The worker runtime: settings, the database engine, a session per message, and the channels."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from notifiers import (
    Channel,
    ChannelConfigurationError,
    ConsoleChannel,
    DKIMSigner,
    Email,
    FailoverChannel,
    FileChannel,
    InAppChannel,
    MessageError,
    SMSChannel,
    SMTPChannel,
    UnsubscribeLinks,
    registry,
    use_links,
)
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .errors import ConfigurationError
from .retries import RetryPolicy

__all__ = ["Runtime", "current", "install"]


class Runtime:
    """What the actors need, built lazily in the worker process (after any fork).

    Args:
        settings: the configuration.
        engine: an engine to use instead of one built from ``settings.database_url``, or a
            connection (sessions then join its transaction through SAVEPOINTs, as tests do).
        channels: channels by kind (``"email"``...) to use instead of those built from settings.

    Raises:
        ConfigurationError: the DKIM key does not sign, or the unsubscribe links cannot be made.
    """

    def __init__(self, settings: Settings, *, engine: Engine | Connection | None = None,
                 channels: Mapping[str, Channel] | None = None) -> None:
        self.settings = settings
        self.retry = RetryPolicy.of(settings)  # how deliveries are retried: the actors' options and the backoff
        self.dkim, self.unsubscribe = _deliverability(settings)  # checked now: a bad key stops the start
        self._engine = engine
        self._owns_engine = engine is None
        self._given: dict[str, Channel] = dict(channels or {})
        self._channels: dict[str, Channel] = dict(self._given)
        self._sessions: sessionmaker[Session] | None = None
        self._attached: set[str] = set()  # the kinds whose channel was given the database (Channel.attach)
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine | Connection:
        """The database engine (or test connection), created on first use."""
        with self._lock:
            return self._engine_held()

    def _engine_held(self) -> Engine | Connection:
        """The engine, built if needed; the caller holds ``_lock``."""
        if self._engine is None:
            # No pool_pre_ping: it costs a round trip at every checkout, that is after every
            # commit; a connection lost to a database restart fails one message, which is retried.
            self._engine = create_engine(self.settings.database_url, pool_size=10, max_overflow=20)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A new session for one message, closed whatever happens (even on a worker interrupt)."""
        if self._sessions is None:
            bind = self.engine
            if isinstance(bind, Connection):
                self._sessions = sessionmaker(bind, expire_on_commit=False, join_transaction_mode="create_savepoint")
            else:
                self._sessions = sessionmaker(bind, expire_on_commit=False)
        session = self._sessions()
        try:
            yield session
        finally:
            session.close()

    def channel(self, kind: str) -> Channel:
        """The channel for ``kind``, built from settings on first use (``email``, ``inapp``, ``sms``).

        Raises:
            ConfigurationError: no channel of that kind is configured.
        """
        with self._lock:
            channel = self._channels.get(kind)
            if channel is None:
                channel = self._channels[kind] = self._build(kind)
            if kind not in self._attached:
                if type(channel).attach is not Channel.attach:  # only a channel keeping state needs the engine
                    channel.attach(self._engine_held())
                self._attached.add(kind)
            return channel

    def check_channels(self) -> None:
        """Tell the registry which kinds of message each channel accepts, and so check the notifiers against them.

        Raises:
            RegistrationError: a notifier returns a kind of message its channel does not accept.
        """
        accepts: dict[str, tuple[type, ...]] = {"email": (Email,), InAppChannel.kind: InAppChannel.accepts}
        if self.settings.sms_url is not None:
            accepts[SMSChannel.kind] = SMSChannel.accepts
        accepts.update({name: channel.accepts for name, channel in self._given.items()})
        registry.expect_channels(accepts)

    def address_kinds(self, names: Iterable[str]) -> dict[str, str]:
        """The kind of address each channel of ``names`` sends to.

        A channel not given nor built yet sends to emails, but ``sms`` (by its name) to phones.
        """
        with self._lock:
            return {name: self._channels[name].address_kind if name in self._channels else
                    SMSChannel.address_kind if name == SMSChannel.kind else
                    "email" for name in names}

    def _build(self, kind: str) -> Channel:
        s = self.settings
        if kind == InAppChannel.kind:
            return InAppChannel(self._engine_held())
        if kind == SMSChannel.kind and s.sms_url is not None:
            return SMSChannel(s.sms_url, sender=s.sms_sender, username=s.sms_username, password=s.sms_password,
                              token=s.sms_token, body=s.sms_body)
        if kind != "email":
            raise ConfigurationError(
                f"No channel {kind!r} is configured; pass it with configure(channels={{{kind!r}: ...}})"
                f"{' or set TIDINGS_SMS_URL' if kind == SMSChannel.kind else ''}."
            )
        if s.email_channel == "smtp":
            relays = [SMTPChannel(host, port, sender=s.sender, starttls=s.smtp_starttls, ssl=s.smtp_ssl,
                                  username=s.smtp_username, password=s.smtp_password, timeout=s.smtp_timeout,
                                  reply_to=s.reply_to, dkim=self.dkim) for host, port in s.smtp_relays()]
            return relays[0] if len(relays) == 1 else FailoverChannel(
                relays, names=[f"{host}:{port}" for host, port in s.smtp_relays()])
        if s.email_channel == "console":
            return ConsoleChannel()
        return FileChannel(s.mail_dir, sender=s.sender, reply_to=s.reply_to, dkim=self.dkim)

    def close(self) -> None:
        """Close the channels and dispose of the engine this runtime created (not those it was given)."""
        with self._lock:
            channels = [c for kind, c in self._channels.items() if self._given.get(kind) is not c]
            self._channels = dict(self._given)
            self._attached.clear()
            engine = self._engine
            if self._owns_engine:  # an engine given by the caller stays theirs, and in use
                self._engine, self._sessions = None, None
        for channel in channels:
            channel.close()
        if self._owns_engine and isinstance(engine, Engine):
            engine.dispose()


def _deliverability(settings: Settings) -> tuple[DKIMSigner | None, UnsubscribeLinks | None]:
    """The DKIM signer and the unsubscribe links the settings ask for, each checked.

    Raises:
        ConfigurationError: naming the setting (a key that does not sign, a bad Reply-To or URL).
    """
    s = settings
    try:
        if s.reply_to is not None:  # parsed as the mail will parse it, so a bad one stops the start too
            Email(subject="Reply-To", text="", headers={"Reply-To": s.reply_to})
    except MessageError as error:
        raise ConfigurationError(f"Setting reply_to (environment variable TIDINGS_REPLY_TO): {error}") from None
    try:
        dkim = None if s.dkim_selector is None or s.dkim_domain is None else DKIMSigner(
            s.dkim_selector, s.dkim_domain, key_path=s.dkim_key_path)
        links = None if s.unsubscribe_url is None or s.unsubscribe_secret is None else UnsubscribeLinks(
            s.unsubscribe_url, s.unsubscribe_secret.encode(), s.unsubscribe_days)
    except ChannelConfigurationError as error:
        raise ConfigurationError(f"Deliverability settings: {error}") from None
    return dkim, links


def _runtime_from_env() -> Runtime:
    """The runtime of the ``TIDINGS_*`` settings (in the ``tidings`` command, a bad one exits 2: see below)."""
    try:
        return Runtime(_settings_from_env())
    except ConfigurationError as error:
        if not _in_command():
            raise
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None


def _settings_from_env() -> Settings:
    """The ``TIDINGS_*`` settings; in the ``tidings`` command a bad one ends it at once, in one line, with exit 2.

    The command reads them as ``jobs`` is imported, before any of its own code runs: a traceback
    there would bury the variable's name. Anywhere else the error is raised as usual.
    """
    try:
        return Settings.from_env()
    except ConfigurationError as error:
        if not _in_command():
            raise
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None


def _in_command() -> bool:
    """Whether this process is the ``tidings`` command (the console script or ``python -m jobs``)."""
    argv = getattr(sys, "orig_argv", sys.argv)
    return os.path.basename(sys.argv[0]) == "tidings" or any(
        a == "-m" and b in ("jobs", "jobs.commands.cli") for a, b in zip(argv, argv[1:]))


_current = _runtime_from_env()
_current.check_channels()
use_links(_current.unsubscribe)


def current() -> Runtime:
    """The process-wide runtime: what the actors, commands and the kit use now."""
    return _current


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the process-wide one and return the one it replaces (not closed: the caller's to close).

    :func:`jobs.configure` is the usual writer; the test kit installs one on the test's connection
    and puts the previous one back on exit. Its unsubscribe links become those messages carry.
    """
    global _current
    previous, _current = _current, runtime
    use_links(runtime.unsubscribe)  # composed messages carry this runtime's unsubscribe links
    return previous
