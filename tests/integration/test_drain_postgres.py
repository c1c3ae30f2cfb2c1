"""drain() on a PostgreSQL database without Tidings' tables names it with its password masked."""

from __future__ import annotations

import jobs
import pytest
from dramatiq.brokers.stub import StubBroker
from jobs import ConfigurationError
from jobs.testing import drain

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_jobs")]


def test_draining_a_postgresql_database_without_tables_masks_its_password(pg_url: str) -> None:
    url = pg_url.replace("root@", "root:s3cret@")  # the server trusts local connections: any password will do
    broker = StubBroker()
    broker.emit_after("process_boot")
    jobs.configure(jobs.Settings(), broker=broker, database_url=url)
    with pytest.raises(ConfigurationError) as refused:
        drain()
    message = str(refused.value)
    assert message.startswith(f"The database {url.replace('s3cret', '***')} has no table tidings_console_actions, tidings_deliveries, ")
    assert "s3cret" not in message
