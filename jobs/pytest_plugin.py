"""The ``tidings`` fixture under its former name, for a ``-p jobs.pytest_plugin`` or ``pytest_plugins`` line.

Tidings registers :mod:`tidings_pytest` through the ``pytest11`` entry point instead: loading
a module inside ``jobs`` configures ``jobs`` (see that module's docstring).
"""

from __future__ import annotations

from tidings_pytest import pytest_collection_finish, tidings

__all__ = ["pytest_collection_finish", "tidings"]
