"""Which model and row a transition log row names: the registry of Stateful models and loading rows back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Enum, Integer, String, any_, bindparam, inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, selectinload

from .errors import WorkflowError
from .transition_log import TransitionRecord

if TYPE_CHECKING:
    from .stateful import Stateful

__all__ = ["load_subject", "load_subjects", "model_class", "stateful_models"]

#: Every Stateful model declared so far, by the name its transitions are logged under (filled by stateful.py).
_models: dict[str, type[Stateful]] = {}


def stateful_models() -> dict[str, type[Stateful]]:
    """Every Stateful model imported so far, by the name the transition log records."""
    return dict(_models)


def model_class(name: str) -> type[Stateful]:
    """The Stateful model class recorded under ``name`` in the transition log.

    Raises:
        WorkflowError: no such model has been imported.
    """
    try:
        return _models[name]
    except KeyError:
        raise WorkflowError(
            f"No Stateful model named {name!r} is imported; known: {', '.join(sorted(_models)) or 'none'}. "
            f"Import the module that declares it."
        ) from None


def load_subject(session: Session, record: TransitionRecord, *, lock: bool = False) -> Stateful | None:
    """The row a transition was fired on, or ``None`` if it no longer exists; ``lock``: ``FOR UPDATE``."""
    cls = model_class(record.model)
    columns = inspect(cls).primary_key
    parts = record.key.split("/") if len(columns) > 1 else [record.key]
    values = tuple(_convert(column, part) for column, part in zip(columns, parts))
    return session.get(cls, values if len(values) > 1 else values[0], with_for_update=lock or None,
                       populate_existing=lock)


def load_subjects(session: Session, records: Iterable[TransitionRecord], *,
                  lock: bool = False, parties: bool = True) -> dict[int, Stateful | None]:
    """The rows many transitions were fired on, by transition id (``None`` for a row gone).

    One query per model (a composite key costs one per row), with each party declared by the
    name of a relationship loaded for all the rows at once (``selectinload``): planning the
    notifications of fifty transitions then reads their rows and their watchers in two queries,
    not a hundred. With ``lock``, the rows are locked ``FOR UPDATE`` (where the database has it)
    until the transaction ends, so no other transaction changes them meanwhile. Without
    ``parties``, the rows alone, as :func:`load_subject` reads one (their relationships load when
    touched): sending a chunk of four of a row's fifty watchers' mails needs the row, not the fifty.

    Raises:
        WorkflowError: a transition's model is not imported.
    """
    by_model: dict[str, list[TransitionRecord]] = {}
    for record in records:
        by_model.setdefault(record.model, []).append(record)
    found: dict[int, Stateful | None] = {}
    for name, group in by_model.items():
        cls = model_class(name)
        columns = inspect(cls).primary_key
        if len(columns) > 1:
            found.update((record.id, load_subject(session, record, lock=lock)) for record in group)
            continue
        keys = {record.id: _convert(columns[0], record.key) for record in group}
        array = session.get_bind(cls).dialect.name == "postgresql"
        rows = {inspect(row).identity[0]: row
                for row in session.scalars(_rows_query(cls, lock, parties, array), {"keys": list(set(keys.values()))})}
        found.update((record_id, rows.get(key)) for record_id, key in keys.items())
    return found


_queries: dict[tuple[type[Stateful], bool, bool, bool], Any] = {}


def _rows_query(cls: type[Stateful], lock: bool, parties: bool = True, array: bool = False) -> Any:
    """The query of ``cls``'s rows by key, with its parties' relationships if asked: built once per model.

    Built afresh for every fan-out, the statement and its cache key cost more Python than
    the round trip's own work. With ``array`` (PostgreSQL) an integer or text key is matched
    against one array (``= ANY``): one statement text however many keys, which neither
    SQLAlchemy nor the driver renders again per count.
    """
    query = _queries.get((cls, lock, parties, array))
    if query is None:
        key = inspect(cls).primary_key[0]
        query = select(cls).where(_matching(key, array))
        if parties:
            query = query.options(*_party_loads(cls))
        if lock:
            query = query.order_by(key).with_for_update(of=cls).execution_options(populate_existing=True)
        _queries[(cls, lock, parties, array)] = query
    return query


def _matching(key: Any, array: bool) -> Any:
    """``key IN :keys``; on PostgreSQL, for an integer or a text key, ``key = ANY(:keys)`` (text of any length)."""
    if array and isinstance(key.type, Integer):
        return key == any_(bindparam("keys", type_=postgresql.ARRAY(BigInteger)))
    if array and isinstance(key.type, String) and not isinstance(key.type, Enum):
        return key == any_(bindparam("keys", type_=postgresql.ARRAY(String())))
    return key.in_(bindparam("keys", expanding=True))


def _party_loads(cls: type[Stateful]) -> list[Any]:
    """A ``selectinload`` for each party declared by the name of a relationship of ``cls``."""
    relationships = inspect(cls).relationships
    return [selectinload(getattr(cls, spec)) for spec in cls.workflow.parties.values()
            if isinstance(spec, str) and spec in relationships]


def _convert(column: Any, text: str) -> Any:
    """The key part ``text`` as its column's Python type; as text when that type cannot take it (the database casts)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return text
    if python_type is str or python_type is object:  # object: a TypeDecorator that does not say
        return text
    try:
        return python_type(text)
    except (TypeError, ValueError):
        return text
