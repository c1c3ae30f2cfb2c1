"""The registry: which notifier methods answer which (model, trigger), for which parties and channels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import RegistrationError
from .digests import Digest, Throttle
from .timing import Timing

if TYPE_CHECKING:
    from .notifier import Notifier

__all__ = ["Registration", "Registry", "registry"]


@dataclass(frozen=True)
class Registration:
    """One ``@on(...)``: a notifier method, the transition it answers, its parties and channels."""

    notifier: type[Notifier]
    method: str
    model: str
    trigger: str
    parties: tuple[str, ...]
    channels: tuple[str, ...]
    required: bool = False
    #: The kinds of message the method is declared to return (``message=`` or its return
    #: annotation); empty when it does not say.
    messages: tuple[type, ...] = ()
    #: When its deliveries are due and what voids them (``delay=``, ``@remind``, quiet hours), if anything.
    timing: Timing | None = None
    #: Its events told in digests (``digest=``), or at most n a window (``throttle=``), if so.
    batching: Digest | Throttle | None = None

    @property
    def name(self) -> str:
        """A stable name for the delivery log, e.g. ``"myapp.notifications.LoanNotifier.accepted"``."""
        return f"{self.notifier.__module__}.{self.notifier.__qualname__}.{self.method}"


class Registry:
    """Index of registrations by transition and by name."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str, str], Registration] = {}
        self._by_transition: dict[tuple[str, str], list[Registration]] = defaultdict(list)
        self._accepts: dict[str, tuple[type, ...]] = {}

    def add(self, registration: Registration) -> None:
        """Add ``registration``; one with the same notifier, method and trigger is replaced (re-import).

        Raises:
            RegistrationError: it returns a kind of message one of its channels does not accept.
        """
        for channel in registration.channels:
            _check_accepts(registration, channel, self._accepts.get(channel))
        key = (registration.name, registration.model, registration.trigger)
        old = self._by_name.pop(key, None)
        bucket = self._by_transition[(registration.model, registration.trigger)]
        if old is not None:
            bucket.remove(old)
        self._by_name[key] = registration
        bucket.append(registration)

    def expect_channels(self, accepts: Mapping[str, tuple[type, ...]]) -> None:
        """Say which kinds of message each channel accepts, by channel name; check every registration.

        Registrations added later are checked as they are added, so a mismatch is found at
        whichever comes second: the notifier's import or the channels' configuration.

        Raises:
            RegistrationError: a registration returns a kind of message its channel does not accept.
        """
        for registration in self._by_name.values():
            for channel in registration.channels:
                _check_accepts(registration, channel, accepts.get(channel))
        self._accepts = dict(accepts)

    def for_transition(self, model: str, trigger: str) -> list[Registration]:
        """The registrations answering ``trigger`` on ``model``, in declaration order."""
        return list(self._by_transition.get((model, trigger), ()))

    def models(self) -> set[str]:
        """The names of the models some notifier answers (whatever the trigger)."""
        return {model for (model, _), registrations in self._by_transition.items() if registrations}

    def names(self) -> set[str]:
        """The names of every registered notifier method."""
        return {registration.name for registration in self._by_name.values()}

    def channel_kinds(self) -> set[str]:
        """Every channel kind some registration sends through."""
        return {kind for registration in self._by_name.values() for kind in registration.channels}

    def named(self, name: str, model: str, trigger: str) -> Registration:
        """The registration recorded under ``name`` for this transition.

        Raises:
            RegistrationError: it is not registered (its module was not imported by the worker?).
        """
        try:
            return self._by_name[(name, model, trigger)]
        except KeyError:
            raise RegistrationError(
                f"No notifier {name!r} is registered for {model}.{trigger}; import the module that "
                f"declares it in the worker (tidings worker myapp.notifications, or TIDINGS_NOTIFIERS)."
            ) from None


#: The process-wide registry that ``@on`` fills.
registry = Registry()


def _check_accepts(registration: Registration, channel: str, accepts: tuple[type, ...] | None) -> None:
    if accepts is None or not registration.messages:
        return
    if not any(issubclass(kind, accepts) for kind in registration.messages):
        raise RegistrationError(
            f"{registration.notifier.__qualname__}.{registration.method} returns "
            f"{' or '.join(k.__name__ for k in registration.messages)}, but its channel {channel!r} accepts "
            f"{' or '.join(k.__name__ for k in accepts)}: return one of those (e.g. a Text for SMS), or send "
            f"through another channel."
        )
