"""The pytest plugin installed with Tidings: the ``tidings`` fixture, at no cost to runs that do not use it.

Registered through the ``pytest11`` entry point, so pytest loads it in every run of an
environment that has Tidings. It is a module of its own, outside ``jobs``: importing anything
in ``jobs`` runs ``jobs/__init__``, which builds the configured broker, makes it Dramatiq's
global broker and installs the outbox's SQLAlchemy listeners (what a web process or
``dramatiq jobs`` relies on). So loading this plugin imports nothing of Tidings; ``jobs`` is
imported once collection found a test that asks for ``tidings`` (before any fixture runs, so
a transition fired in a fixture set up before ``tidings`` is queued, as with ``import jobs``
in production), or when the fixture is first requested otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from jobs.testing import Kit

__all__ = ["pytest_collection_finish", "tidings"]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Import ``jobs`` now if a collected test asks for ``tidings``; else leave Dramatiq and SQLAlchemy alone."""
    if any("tidings" in getattr(item, "fixturenames", ()) for item in session.items):
        importlib.import_module("jobs")


@pytest.fixture
def tidings() -> Iterator[Kit]:
    """Capture this test's notifications; ``tidings.run()`` delivers them, ``assert_notified`` checks them."""
    from jobs.testing import kit

    with kit() as new:
        yield new
