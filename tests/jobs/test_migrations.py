"""Tidings' Alembic revisions on SQLite: beside an application's, from nothing or from 0.1.0, matching the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from jobs.migrations import BRANCH, FIRST, include_object
from sqlalchemy import MetaData, Table

from tests.alembic_app import config, differences
from tests.migrations.checks import OLD_ROWS_AT_HEAD, tables, upgrade_0_1_0, upgrade_empty


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def test_upgrade_heads_makes_tidings_tables_beside_the_application_s_and_matches_the_models(url: str) -> None:
    upgrade_empty(url)  # its failure message says to write a revision (make migration)


def test_a_0_1_0_database_made_by_create_all_is_stamped_and_upgraded_with_its_rows(url: str, tmp_path: Path) -> None:
    assert upgrade_0_1_0(url, tmp_path / "0.1.0") == OLD_ROWS_AT_HEAD


def test_the_application_s_autogenerate_after_upgrade_heads_finds_nothing(url: str) -> None:
    command.upgrade(config(url), "heads")
    command.check(config(url))  # raises when autogenerate would write something
    command.check(config(url, tidings_metadata=False))  # an application leaving Tidings' tables to include_object


def test_downgrade_to_0_1_0_and_upgrade_again(url: str) -> None:
    command.upgrade(config(url), "heads")
    command.downgrade(config(url), FIRST)
    assert "tidings_timers" not in tables(url)
    command.upgrade(config(url), "heads")
    assert differences(url) == []


def test_tidings_revisions_are_one_line_on_their_own_branch() -> None:
    scripts = ScriptDirectory.from_config(config("sqlite://"))
    [head] = scripts.get_revisions(f"{BRANCH}@head")
    assert head is not None
    line = [r.revision for r in scripts.iterate_revisions(head.revision, "base")]
    assert line[-1] == FIRST
    assert all(r.startswith("tidings_") for r in line)


def test_include_object_leaves_out_tidings_tables_and_their_indexes_only() -> None:
    ours, theirs = Table("tidings_deliveries", MetaData()), Table("app_parcels", MetaData())
    assert not include_object(ours, "tidings_deliveries", "table", True, None)
    assert include_object(theirs, "app_parcels", "table", True, None)
    index = type("Index", (), {"table": ours})()
    assert not include_object(index, "ix_tidings_deliveries_due", "index", True, None)
