"""Delivery rows as the fan-out plans them under a throttle shared by every notifier ("all"), for the budget tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobs import Status
from jobs.digest_log import digest_key
from jobs.rows import BATCH
from jobs.throttle_log import throttle_key
from notifiers import Batch, window_start

HOUR = dt.timedelta(hours=1)


def planned(notifier: str, channel: str, address: str, places: int, now: dt.datetime) -> dict[str, Any]:
    """A delivery row as the fan-out plans it for a ``Throttle(places, per=HOUR, scope="all")`` to Ann."""
    start = window_start(now, HOUR)
    batch = Batch("", start, start + HOUR, leads=places, throttled=True, window=HOUR, scope="all")
    return {BATCH: (batch, digest_key("test", address, channel, notifier, "", start),
                    throttle_key("test", "all", "Member:1", channel, HOUR, start)),
            "status": Status.PENDING, "notifier": notifier, "party": "owner", "channel": channel,
            "address": address, "name": "Ann", "recipient_ref": "Member:1", "locale": None}
