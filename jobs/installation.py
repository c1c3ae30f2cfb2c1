"""The installation id: a random id created with Tidings' tables, one per database.

Delivery keys, hence Message-IDs and webhook ``Idempotency-Key`` headers, include it. Transition
ids restart at 1 in every database, so without it staging and production sharing a sender
domain, or a database created again, would give different notifications the same Message-ID,
and a receiver that de-duplicates on it would drop real mail. The id is stable for as long as
the database lives: every attempt, worker and restart of one installation gives the same keys.

``metadata.create_all`` creates the one-row table and inserts the row. Tables created otherwise
(a migration tool) get their row on first use. Each process reads it once per engine.
"""

from __future__ import annotations

import uuid
import weakref
from typing import Any

from sqlalchemy import Engine, Integer, String, event, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from workflow import TidingsBase

from .config import mask_url
from .errors import ConfigurationError

__all__ = ["Installation", "installation_id"]

_ONE = 1  # the primary key of the only row, so that a second one cannot be inserted


class Installation(TidingsBase):
    """The one row naming this installation (this database of Tidings' tables)."""

    __tablename__ = "tidings_installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    installation_id: Mapped[str] = mapped_column(String(32))


_table: Any = Installation.__table__
_cached: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


@event.listens_for(_table, "after_create")
def _name_the_installation(target: Any, connection: Any, **kw: Any) -> None:
    connection.execute(insert(_table).values(id=_ONE, installation_id=uuid.uuid4().hex))


def installation_id(session: Session) -> str:
    """The id of the installation ``session`` works on: read once per engine, then remembered.

    Read in the session's own transaction (a test's outer transaction sees its own tables); a
    missing row is inserted in a transaction of its own, so the id is committed before any key
    made from it.

    Raises:
        ConfigurationError: the database has no ``tidings_installation`` table (Tidings' tables
            were created by an older version, or not at all), naming the database and what to run.
    """
    engine = session.get_bind().engine
    found = _cached.get(engine)
    if found is None:
        try:
            found = session.connection().scalar(select(_table.c.installation_id).where(_table.c.id == _ONE))
        except DBAPIError as error:
            if inspect(engine).has_table(_table.name):
                raise
            raise ConfigurationError(
                f"Database {mask_url(str(engine.url))} has no table {_table.name}: create Tidings' tables "
                f"(workflow.metadata.create_all(engine), or a migration with workflow.metadata as its target)."
            ) from error
        if found is None:
            found = _create(engine)
        _cached[engine] = found
    return found


def _create(engine: Engine) -> str:
    """Insert the row (tables made by a migration tool have none); the id, whoever inserted it."""
    try:
        with engine.begin() as connection:
            connection.execute(insert(_table).values(id=_ONE, installation_id=uuid.uuid4().hex))
    except IntegrityError:  # another process inserted it first
        pass
    with engine.connect() as connection:
        return str(connection.scalar(select(_table.c.installation_id).where(_table.c.id == _ONE)))
