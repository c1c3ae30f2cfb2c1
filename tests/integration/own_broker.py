"""An application with its own Redis broker and actor; ``TIDINGS_APP_BROKER=tests.integration.own_broker:broker``.

Read by worker processes: the URL, the queue and the file the actor writes to come from ``OWN_*`` variables.
"""

from __future__ import annotations

import os
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["OWN_BROKER_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=os.environ["OWN_QUEUE"], actor_name="own.note")
def note(text: str) -> None:
    """The application's own job: append ``text`` to the notes file."""
    with Path(os.environ["OWN_NOTES"]).open("a") as notes:
        notes.write(text + "\n")
