"""Recipient preferences: opting out of (or back into) a notifier, a channel, or both.

Preferences live in the application's database (``tidings_preferences``, in
``workflow.metadata``), under the recipient's :attr:`~notifiers.Recipient.ref`. They are read
when a transition is fanned out, in the worker, so the request pays nothing for them. The most
specific preference wins: a notifier method over its notifier class, a notifier over "every
notifier", and, at the same level, one naming a channel over one that does not. A notifier
registered with ``@on(..., required=True)`` (security or legal mail) ignores opt-outs.

A recipient may also choose how often to be told (:func:`choose_every`): ``"instant"``,
``"hourly"`` or ``"daily"`` (docs/digests.md), for a notifier and/or a channel, the most
specific choice winning in the same way; it replaces the notifier's own digest or throttle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, String, UniqueConstraint, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import TidingsBase, did_you_mean, utcnow

from .digests import EVERY
from .errors import RegistrationError
from .recipients import ref_of
from .registry import Registration, registry

__all__ = ["Choices", "Preference", "choose_every", "opt_in", "opt_out", "preferences_of", "skip_reasons"]

_CHUNK = 500  # refs per IN (...) query, off PostgreSQL (one array there): well under every parameter limit


class Preference(TidingsBase):
    """One choice of one recipient: ``enabled`` or not, for a notifier and/or a channel ("" = any)."""

    __tablename__ = "tidings_preferences"
    __table_args__ = (
        UniqueConstraint("recipient", "notifier", "channel", name="uq_tidings_preferences_choice"),
        Index("ix_tidings_preferences_recipient", "recipient"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    recipient: Mapped[str] = mapped_column(String(255))
    notifier: Mapped[str] = mapped_column(String(255), default="")
    channel: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How often to be told (:data:`~notifiers.EVERY`: instant, hourly, daily), or ``None``: as the notifier says.
    every: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        what = " by ".join(part for part in (_short(self.notifier), self.channel) if part) or "everything"
        return f"<Preference {self.recipient}: {'in' if self.enabled else 'out'} of {what}>"


def opt_out(session: Session, recipient: object, *, notifier: object = None, channel: str | None = None) -> Preference:
    """Record that ``recipient`` does not want ``notifier`` (and/or ``channel``); in the caller's transaction.

    Args:
        recipient: a mapped row (e.g. a ``User``), a :class:`~notifiers.Recipient`, or its ref / address.
        notifier: a Notifier class, one of its ``@on`` methods, or its dotted name; ``None`` for all.
        channel: a channel kind such as ``"email"``; ``None`` for all.

    Raises:
        RegistrationError: ``notifier`` is not a notifier, or ``channel`` is not a channel name.
        RecipientError: ``recipient`` is of no known kind.
    """
    return _choose(session, recipient, notifier, channel, enabled=False)


def opt_in(session: Session, recipient: object, *, notifier: object = None, channel: str | None = None) -> Preference:
    """Record that ``recipient`` wants ``notifier`` (and/or ``channel``), overriding a broader opt-out.

    Raises:
        RegistrationError: ``notifier`` is not a notifier, or ``channel`` is not a channel name.
        RecipientError: ``recipient`` is of no known kind.
    """
    return _choose(session, recipient, notifier, channel, enabled=True)


def choose_every(session: Session, recipient: object, every: str, *, notifier: object = None,
                 channel: str | None = None) -> Preference:
    """Record how often ``recipient`` wants ``notifier`` (and/or ``channel``): ``"instant"``, ``"hourly"`` or ``"daily"``.

    It is a choice to be told (it opts in at that level too); honoured at the next fan-out.

    Raises:
        RegistrationError: ``every`` is none of those, ``notifier`` is not a notifier, or ``channel`` not a channel name.
        RecipientError: ``recipient`` is of no known kind.
    """
    if every not in EVERY:
        raise RegistrationError(f"every={every!r}: give one of {', '.join(map(repr, EVERY))}.")
    found = _choose(session, recipient, notifier, channel, enabled=True)
    found.every = every
    return found


def preferences_of(session: Session, recipient: object) -> list[Preference]:
    """Every preference ``recipient`` has recorded, broadest first."""
    rows = session.scalars(select(Preference).where(Preference.recipient == ref_of(recipient)))
    return sorted(rows, key=lambda p: _rank(p.notifier, p.channel))


class Choices:
    """The preferences of some recipients, loaded at once: why not to send (an opt-out), and how often."""

    def __init__(self, choices: dict[str, list[tuple[str, str, bool, str | None]]]) -> None:
        self._choices = choices

    def _matching(self, ref: str, registration: Registration, channel: str) -> list[tuple[str, str, bool, str | None]]:
        name = registration.name
        return sorted(((n, c, enabled, every) for n, c, enabled, every in self._choices.get(ref, ())
                       if (not n or name == n or name.startswith(n + ".")) and c in ("", channel)),
                      key=lambda m: _rank(m[0], m[1]))

    def __call__(self, ref: str, registration: Registration, channel: str) -> str | None:
        """Why ``ref`` must not get that notification through ``channel`` (``"Opted out of email."``), or ``None``."""
        if registration.required or ref not in self._choices:
            return None
        matching = self._matching(ref, registration, channel)
        if not matching or matching[-1][2]:
            return None
        notifier, chosen_channel = matching[-1][:2]
        what = " by ".join(part for part in (_short(notifier), chosen_channel) if part) or "all notifications"
        return f"Opted out of {what}."

    def every(self, ref: str, registration: Registration, channel: str) -> str | None:
        """How often ``ref`` chose to get that notification through ``channel``, or ``None`` (as the notifier says)."""
        if ref not in self._choices:
            return None
        chosen = [every for *_, every in self._matching(ref, registration, channel) if every is not None]
        return chosen[-1] if chosen else None


# Built once: a fan-out reads its recipients' preferences with it (building it each time cost more than the read).
_CHOSEN = select(Preference.recipient, Preference.notifier, Preference.channel, Preference.enabled, Preference.every)
_CHOICES = _CHOSEN.where(Preference.recipient.in_(bindparam("refs", expanding=True)))
#: On PostgreSQL: every ref in one array, one statement however many (an array of text of any length, not cut).
_CHOICES_PG = _CHOSEN.where(Preference.recipient == any_(bindparam("refs", type_=postgresql.ARRAY(String()))))


def skip_reasons(session: Session, refs: Iterable[str]) -> Choices:
    """Load the preferences of ``refs`` at once; return ``reason(ref, registration, channel)``.

    One query on PostgreSQL (the refs in one array), one per 500 refs elsewhere; none for none.

    ``reason`` gives why that recipient must not get that notification through that channel
    (e.g. ``"opted out of email"``), or ``None`` to send it; its ``every`` how often they chose
    to get it.
    """
    choices: dict[str, list[tuple[str, str, bool, str | None]]] = {}
    wanted = sorted(set(refs))
    if not wanted:
        return Choices(choices)
    if session.get_bind(Preference).dialect.name == "postgresql":
        chunks, query = [wanted], _CHOICES_PG
    else:
        chunks, query = [wanted[start:start + _CHUNK] for start in range(0, len(wanted), _CHUNK)], _CHOICES
    for chunk in chunks:
        for ref, notifier, channel, enabled, every in session.execute(query, {"refs": chunk}):
            choices.setdefault(ref, []).append((notifier, channel, enabled, every))
    return Choices(choices)


def _choose(session: Session, recipient: object, notifier: object, channel: str | None, *,
            enabled: bool) -> Preference:
    ref, name = ref_of(recipient), _notifier_name(notifier)
    if channel is not None and (not isinstance(channel, str) or not channel.isidentifier()):
        raise RegistrationError(f"Channel {channel!r} is not a channel name such as 'email' or 'inapp'.")
    found = session.scalar(select(Preference).where(Preference.recipient == ref, Preference.notifier == name,
                                                    Preference.channel == (channel or "")))
    if found is None:
        found = Preference(recipient=ref, notifier=name, channel=channel or "")
        session.add(found)
    found.enabled, found.updated_at = enabled, utcnow()
    return found


def _notifier_name(notifier: object) -> str:
    from .notifier import _MARK, Notifier

    if notifier is None:
        return ""
    if isinstance(notifier, str) and notifier.strip():
        name = notifier.strip()
        known = sorted(registry.names())
        if not any(n == name or n.startswith(name + ".") for n in known):
            raise RegistrationError(f"No notifier {name!r} is registered (import its module first); "
                                    f"known: {', '.join(known) or 'none'}.{did_you_mean(name, known)}")
        return name
    if isinstance(notifier, type) and issubclass(notifier, Notifier):
        return f"{notifier.__module__}.{notifier.__qualname__}"
    if callable(notifier) and hasattr(notifier, _MARK):
        function: Any = notifier
        return f"{function.__module__}.{function.__qualname__}"
    raise RegistrationError(f"{notifier!r} is not a notifier: give a Notifier class, one of its @on methods, "
                            f"or its dotted name.")


def _rank(notifier: str, channel: str) -> tuple[int, bool]:
    return notifier.count(".") + bool(notifier), bool(channel)


def _short(notifier: str) -> str:
    """``"myapp.notifications.LoanNotifier.accepted"`` -> ``"LoanNotifier.accepted"``."""
    parts = notifier.split(".")
    for index, part in enumerate(parts):
        if part[:1].isupper():
            return ".".join(parts[index:])
    return notifier

