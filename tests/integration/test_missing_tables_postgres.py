"""A PostgreSQL database without Tidings' tables: the trigger says so, the password masked."""

from __future__ import annotations

import pytest

from tests.workflow.test_missing_tables import app_only, fire_on

pytestmark = pytest.mark.integration


def test_on_postgresql_the_missing_log_is_said_with_the_password_masked(pg_url: str) -> None:
    engine = app_only(pg_url.replace("root@", "root:secret@"))
    refused, _ = fire_on(engine)
    assert "has no table tidings_transitions" in str(refused.value)
    assert "secret" not in str(refused.value) and "root:***@" in str(refused.value)
    engine.dispose()
