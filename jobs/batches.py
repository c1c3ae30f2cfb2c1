"""How ids are split into messages: few messages for many ids, yet enough for a worker's threads to share."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SPREAD", "split"]

#: Many ids go in about this many messages (or more), so that a worker's threads share them.
SPREAD = 16


def split(ids: Sequence[int], most: int, least: int = 1) -> list[list[int]]:
    """``ids`` in order, in lists of ``least`` to ``most``: about ``SPREAD`` lists, fewer when the ids are few."""
    size = min(most, max(least, math.ceil(len(ids) / SPREAD)))
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]
