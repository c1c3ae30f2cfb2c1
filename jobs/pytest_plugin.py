"""The pytest plugin installed with Tidings: the ``tidings`` fixture.

Registered through the ``pytest11`` entry point, so it loads in every pytest run of an
environment that has Tidings; the fixture does the work, nothing happens at import beyond
importing ``jobs``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import Kit, kit

__all__ = ["tidings"]


@pytest.fixture
def tidings() -> Iterator[Kit]:
    """Capture this test's notifications; ``tidings.run()`` delivers them, ``assert_notified`` checks them."""
    with kit() as new:
        yield new
