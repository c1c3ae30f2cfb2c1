"""On PostgreSQL a fan-out locks the digests and shared budgets it adds to in key order, and waits for a lock
another fan-out or the closing run holds: two fan-outs sharing digests take their locks in the same order, and
neither skips a digest another holds (it would then write its event into no digest)."""

from __future__ import annotations

import re

import pytest
from jobs import digesting
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select


def compiled(statement: Select[object]) -> str:
    return re.sub(r"\s+", " ", str(statement.compile(dialect=postgresql.dialect())))


@pytest.mark.parametrize("name, table", [("_DIGESTS_PG", "tidings_digests"), ("_BUDGETS_PG", "tidings_throttles")])
def test_on_postgresql_the_rows_a_fan_out_adds_to_are_locked_in_key_order_waiting_for_other_holders(
        name: str, table: str) -> None:
    sql = compiled(getattr(digesting, name))
    assert sql.endswith(f"WHERE {table}.key = ANY (%(keys)s::VARCHAR[]) ORDER BY {table}.key FOR UPDATE"), sql
