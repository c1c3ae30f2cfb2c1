"""Tidings' tables as an Alembic version location, on a branch of their own (``tidings``).

An application adds :data:`LOCATION` to its ``version_locations`` and runs ``alembic upgrade
heads``: Tidings' revisions create and upgrade its tables next to the application's own (see
docs/operations.md, "Schema changes"). The revision files beside this one are frozen: they import
Alembic and SQLAlchemy only, never the models, so a later model cannot change an old revision.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BRANCH", "FIRST", "LOCATION", "PREFIX", "include_object"]

#: The ``version_locations`` entry of Tidings' revisions (a package resource, so it works from a wheel).
LOCATION = "jobs:migrations"
#: The branch label of Tidings' revisions: ``alembic upgrade tidings@head`` upgrades them alone.
BRANCH = "tidings"
#: The revision of the 0.1.0 schema: ``alembic stamp tidings_0001`` on a database ``create_all`` made then.
FIRST = "tidings_0001"
#: Every table of Tidings is named with this prefix.
PREFIX = "tidings_"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """An ``include_object`` hook for an application's autogenerate that leaves Tidings' tables out.

    For an application whose ``target_metadata`` does not list ``workflow.metadata``: without it,
    autogenerate would propose dropping Tidings' tables, which Tidings' own revisions own.
    """
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not (isinstance(table, str) and table.startswith(PREFIX))
