"""Who is told: a transition's registrations x parties x channels, as delivery intents.

The one answer to "who gets told?". :func:`parties_of` resolves each party of a transition's
row into recipients (or what is wrong with one of them); :func:`plan` turns registrations,
those parties and the recipients' preferences into one :class:`Intent` per (registration,
recipient, channel). Planning is pure: ``jobs`` loads the row and the preferences, and writes
the intents as delivery rows.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from workflow import resolve_party

from .digests import Batch, Digest, Throttle, batch_of, chosen
from .errors import RecipientError
from .event import Event
from .recipients import Recipient, recipients_of
from .registry import Registration
from .timing import Timing, zone

__all__ = ["Found", "Intent", "SkipReason", "parties_of", "plan"]

#: What a party resolved to: each recipient, or what is wrong with one of them.
Found = list[Recipient | RecipientError]
#: ``reason(ref, registration, channel)``: why not to send (an opt-out), or ``None``.
SkipReason = Callable[[str, Registration, str], "str | None"]


@dataclass(frozen=True)
class Intent:
    """One delivery to make, or the reason it cannot be made.

    Attributes:
        registration: the ``@on`` it answers.
        party: the party the recipient was resolved from.
        channel: the channel name.
        recipient: who, or ``None`` when the party gave no usable recipient (see ``failure``).
        address: the recipient's address for the channel (``""`` when there is none).
        target: names the delivery within its transition, stably: ``address``; else
            ``"!party"`` (``"!party/n"`` for the n-th element) for a bad recipient, and
            ``"!ref"`` for a recipient without an address for the channel.
        skip_reason: why it is not sent (the recipient opted out), or ``None``.
        failure: why it cannot be sent (a bad recipient), or ``None``.
        due_at: when it is due (UTC), or ``None`` for at once (see :class:`~notifiers.Timing`).
        repetition: which of a reminder's deliveries it is (1, 2...), or ``None`` for a notification.
        batch: the digest it belongs to (a ``digest=`` or ``throttle=`` registration), or ``None``.
    """

    registration: Registration
    party: str
    channel: str
    recipient: Recipient | None
    target: str
    address: str = ""
    skip_reason: str | None = None
    failure: str | None = None
    due_at: dt.datetime | None = None
    repetition: int | None = None
    batch: Batch | None = None


def parties_of(subject: Any, registrations: Iterable[Registration], *, model: str, key: str) -> dict[str, Found]:
    """Who each party the registrations name is, on ``subject`` as it is now; one bad element fails alone.

    Raises:
        SQLAlchemyError: the database failed while resolving (the caller retries), not the party.
    """
    found: dict[str, Found] = {}
    for registration in registrations:
        for party in registration.parties:
            if party not in found:
                found[party] = _resolved(subject, party, model, key)
    return found


def plan(registrations: Sequence[Registration], parties: Mapping[str, Found], skip: SkipReason | None = None,
         address_kinds: Mapping[str, str] | None = None, *, at: dt.datetime | None = None,
         self_loop: bool = False, event: Event | None = None, every: SkipReason | None = None) -> list[Intent]:
    """The intents of one transition: each registration's parties x recipients x channels.

    A recipient met twice for the same registration and channel (two parties naming the same
    person) is told once, as the first party. ``skip`` gives the recipients' opt-outs
    (:func:`~notifiers.skip_reasons`); a ``required`` registration is sent whatever they chose.
    ``address_kinds`` names the kind of address each channel sends to (``{"sms": "phone"}``;
    ``"email"`` for a channel it does not name): a recipient without one is skipped on that
    channel, with the reason. Skipped, not failed: the recipient is valid and reached on the
    channels they have an address for; nothing is wrong that someone must fix.

    ``at`` is the transition's time: a registration with a :class:`~notifiers.Timing` gets its
    intents' due times from it (a reminder, one intent per repetition), moved out of the
    recipient's quiet hours. A ``self_loop`` (the row stayed in its state) plans no reminder:
    the row did not enter the state again.

    A registration with a digest or a throttle gives each intent that is to be sent its
    :class:`~notifiers.Batch`: the group of ``event`` (the transition), its window, and when the
    digest closes (its end, moved out of the recipient's quiet hours as a whole). ``every`` gives
    a recipient's choice of ``"instant"``, ``"hourly"`` or ``"daily"`` (:func:`~notifiers.choose_every`),
    which replaces the registration's own; ``required`` ones are sent at once whatever was chosen.
    """
    kinds = address_kinds or {}
    intents: dict[tuple[str, str, str, int | None], Intent] = {}
    for registration in registrations:
        timing = registration.timing
        if self_loop and timing is not None and timing.reminder is not None:
            continue
        for party in registration.parties:
            found = parties.get(party, [])
            for channel in registration.channels:
                for n, recipient in enumerate(found):
                    intent = _intent(registration, party, channel, kinds.get(channel, "email"), recipient,
                                     n if len(found) > 1 else None, skip)
                    for timed in _timed(intent, at, event, every):
                        intents.setdefault((registration.name, channel, intent.target, timed.repetition), timed)
    return list(intents.values())


def _timed(intent: Intent, at: dt.datetime | None, event: Event | None, every: SkipReason | None) -> list[Intent]:
    """``intent`` with its due time, or one per repetition of a reminder, and its digest; as it is without a timing."""
    timing, batching = intent.registration.timing, intent.registration.batching
    if every is not None and intent.recipient is not None and not intent.registration.required:
        batching = chosen(batching, every(intent.recipient.ref, intent.registration, intent.channel))
    if (timing is None and batching is None) or at is None:
        return [intent]
    recipient = intent.recipient
    tz = zone(recipient.timezone) if recipient is not None and recipient.timezone else None
    if timing is None:
        timed = [intent]
    else:
        timed = [replace(intent, repetition=k, due_at=timing.due(due_at, at, tz, intent.registration.required))
                 for k, due_at in timing.due_times(at)]
    if batching is None or intent.skip_reason or intent.failure or event is None or timing and timing.reminder:
        return timed
    when = at + timing.delay if timing is not None else at  # the event's time, not moved out of the quiet hours
    return [replace(one, batch=_batch(batching, timing, when, at, tz, event)) for one in timed]


def _batch(batching: Digest | Throttle, timing: Timing | None, when: dt.datetime, at: dt.datetime,
           tz: dt.tzinfo | None, event: Event) -> Batch:
    """The digest an event due at ``when`` goes into: its window's, closing at its end (out of the quiet hours)."""
    group, start, end = batch_of(batching, when, event.model, event.key, event)
    due = timing.due(end, at, tz, False) if timing is not None else end
    scope = batching.scope if isinstance(batching, Throttle) else "notifier"
    return Batch(group, start, due or end, batching.leads, isinstance(batching, Throttle), end - start, scope)


def _intent(registration: Registration, party: str, channel: str, kind: str,
            recipient: Recipient | RecipientError, position: int | None, skip: SkipReason | None) -> Intent:
    if isinstance(recipient, RecipientError):
        target = f"!{party}" if position is None else f"!{party}/{position}"
        return Intent(registration, party, channel, None, target, failure=f"Party {party!r}: {recipient}")
    address = recipient.address_for(kind)
    if address is None:
        return Intent(registration, party, channel, recipient, f"!{recipient.ref}",
                      skip_reason=f"Party {party!r}: {recipient} has no {kind} address for channel {channel!r}.")
    reason = skip(recipient.ref, registration, channel) if skip is not None and not registration.required else None
    return Intent(registration, party, channel, recipient, address, address, skip_reason=reason)


def _resolved(subject: Any, party: str, model: str, key: str) -> Found:
    try:
        value = resolve_party(subject, type(subject).workflow.parties[party])
    except SQLAlchemyError:
        raise
    except Exception as error:  # a bug in a party's callable: recorded on its deliveries, as a bad recipient is
        return [RecipientError(f"resolving party {party!r} of {model} {key} raised {type(error).__name__}: {error}")]
    found: Found = []
    for item in value if isinstance(value, list | tuple | set | frozenset) else [value]:
        try:
            found += recipients_of(item, party)
        except SQLAlchemyError:
            raise
        except RecipientError as error:
            found.append(error)
        except Exception as error:  # e.g. a name that is not a string
            found.append(RecipientError(f"{_shown(item)} is not a recipient: {type(error).__name__}: {error}",
                                        recipient=item))
    return found


def _shown(value: object) -> str:
    """A short repr of ``value`` for a reason: ``reprlib`` cuts long ones; a broken repr has none."""
    try:
        return reprlib.repr(value)
    except Exception:
        return f"a {type(value).__name__}"
