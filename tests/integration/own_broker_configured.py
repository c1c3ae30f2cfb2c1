"""The application of :mod:`tests.integration.own_broker`, telling Tidings in code: ``jobs.configure(broker=...)``."""

from __future__ import annotations

import jobs

from tests.integration.own_broker import broker

jobs.configure(broker=broker)
