"""The retry policy: how often a delivery is tried, how long it waits between tries, and the cap on Retry-After.

One object, built from :class:`~jobs.config.Settings`, answers every retry question. A transient
failure of a delivery waits :meth:`RetryPolicy.backoff_ms` before its next try, whichever message
sent it: a fan-out or a chunk enqueues a ``tidings.deliver`` message with that delay, and a
``tidings.deliver`` message raises ``dramatiq.Retry(delay=...)`` with it, so Dramatiq's
``Retries`` middleware waits the policy's backoff rather than its own, and its worker logs no
traceback (Tidings logs one warning per retry). The wait is also in the delivery's lease, so the
sweeper leaves it alone meanwhile; the delivery is ``dead`` once :meth:`RetryPolicy.gives_up`.
The middleware's own options on the actors (:meth:`RetryPolicy.actor_options`; it counts a
``Retry`` as a retry too) are a backstop for a message that fails outside a recorded outcome,
such as the database down before the claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Settings

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How deliveries are retried.

    Attributes:
        max_retries: tries after the first; a delivery is ``dead`` once ``max_retries + 1`` are used.
        min_backoff_ms: the first wait; it doubles with each try.
        max_backoff_ms: the longest wait, also the cap on what a channel asks for (Retry-After).
    """

    max_retries: int
    min_backoff_ms: int = 1_000
    max_backoff_ms: int = 600_000

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings describe (``max_retries``, ``min_backoff_ms``, ``max_backoff_ms``)."""
        return cls(settings.max_retries, settings.min_backoff_ms, settings.max_backoff_ms)

    @property
    def max_attempts(self) -> int:
        """Tries in all, the first included."""
        return self.max_retries + 1

    def gives_up(self, attempts: int) -> bool:
        """Whether a delivery tried ``attempts`` times is not tried again."""
        return attempts >= self.max_attempts

    def backoff_ms(self, attempts: int, retry_after: float | None = None) -> int:
        """The wait before the next try of a delivery tried ``attempts`` times.

        Args:
            attempts: tries so far.
            retry_after: seconds the other side asked for (Retry-After), if it did; then that,
                within ``[0, max_backoff_ms]``, instead of the doubling backoff.
        """
        if retry_after is not None:
            return min(max(int(retry_after * 1000), 0), self.max_backoff_ms)
        return min(self.min_backoff_ms * int(2 ** (attempts + 1)), self.max_backoff_ms)

    def actor_options(self) -> dict[str, Any]:
        """The options of Dramatiq's ``Retries`` middleware, for the actors."""
        return {"max_retries": self.max_retries, "min_backoff": self.min_backoff_ms, "max_backoff": self.max_backoff_ms}
