"""The test application's env.py: its models and Tidings' in ``target_metadata``, as an application's would be."""

from __future__ import annotations

import jobs  # noqa: F401  (Tidings' tables: jobs and notifiers register theirs in workflow.metadata)
import notifiers  # noqa: F401
import workflow
from alembic import context
from jobs.migrations import include_object
from sqlalchemy import MetaData, create_engine

from tests.alembic_app.models import Base

config = context.config
target: list[MetaData] = []
if config.attributes.get("app_metadata", True):
    target.append(Base.metadata)
if config.attributes.get("tidings_metadata", True):
    target.append(workflow.metadata)
engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    options: dict[str, object] = {}
    if not config.attributes.get("tidings_metadata", True):
        options["include_object"] = include_object
    if not config.attributes.get("app_metadata", True):
        options["include_object"] = lambda obj, name, type_, *rest: not include_object(obj, name, type_, *rest)
    context.configure(connection=connection, target_metadata=target, render_as_batch=True, **options)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
