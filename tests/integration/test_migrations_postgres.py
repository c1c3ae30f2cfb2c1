"""Tidings' Alembic revisions on PostgreSQL: beside an application's, from nothing or from 0.1.0, matching the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from tests.alembic_app import config
from tests.migrations.checks import OLD_ROWS_AT_HEAD, upgrade_0_1_0, upgrade_empty

pytestmark = pytest.mark.integration


def test_upgrade_heads_on_postgresql_makes_the_tables_and_matches_the_models(pg_url: str) -> None:
    upgrade_empty(pg_url)


def test_a_0_1_0_postgresql_database_is_stamped_and_upgraded_with_its_rows(pg_url: str, tmp_path: Path) -> None:
    assert upgrade_0_1_0(pg_url, tmp_path) == OLD_ROWS_AT_HEAD


def test_the_application_s_autogenerate_on_postgresql_finds_nothing_after_upgrade_heads(pg_url: str) -> None:
    command.upgrade(config(pg_url), "heads")
    command.check(config(pg_url))
    command.check(config(pg_url, tidings_metadata=False))
