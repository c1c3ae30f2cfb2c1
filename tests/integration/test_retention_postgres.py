"""Retention on PostgreSQL: batches skip the rows someone holds instead of waiting for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import workflow
from jobs import Delivery, DigestRow, DigestStatus, Settings, Status
from jobs.retention import FINAL, Pruned, prune
from sqlalchemy import Engine, create_engine, select
from workflow import TransitionRecord

from tests.retention_rows import count, delivery, digest, throttle_window, transition

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(pg_url: str) -> Iterator[Engine]:
    """Tidings' tables, and an engine that gives up on any lock it would wait for (so waiting is an error)."""
    engine = create_engine(pg_url)
    workflow.metadata.create_all(engine)
    impatient = create_engine(pg_url + "%20-clock_timeout%3D1000")  # the URL's options set the search_path
    yield impatient
    impatient.dispose()
    engine.dispose()


def test_a_prune_on_postgresql_skips_a_delivery_a_worker_holds_and_deletes_the_rest(tables: Engine) -> None:
    transition_id = transition(tables)
    held, *rest = [delivery(tables, transition_id, status) for status in FINAL]
    with tables.connect() as worker, worker.begin():
        worker.execute(select(Delivery.id).where(Delivery.id == held).with_for_update())
        assert prune(tables, Settings(keep_deliveries_days=30, prune_batch=2)) == Pruned(deliveries=len(rest))
    assert count(tables, Delivery) == 1


def test_a_prune_on_postgresql_deletes_a_fully_delivered_transition_and_keeps_one_still_sending(
        tables: Engine) -> None:
    done, sending = transition(tables, key="1"), transition(tables, key="2")
    delivery(tables, done, Status.SENT)
    delivery(tables, sending, Status.SENDING)
    assert prune(tables, Settings(keep_deliveries_days=0, keep_transitions_days=30)) == Pruned(transitions=1)
    with tables.connect() as connection:
        assert connection.scalars(select(TransitionRecord.id)).all() == [sending]


def test_a_prune_on_postgresql_deletes_done_digests_after_their_deliveries_and_keeps_one_collecting(
        tables: Engine) -> None:
    done, collecting = digest(tables, DigestStatus.SENT), digest(tables, DigestStatus.OPEN)
    transition_id = transition(tables)
    for _ in range(3):  # the foreign key digest_id: the digest can go only once its members went
        delivery(tables, transition_id, Status.SENT, digest_id=done)
    delivery(tables, transition_id, Status.DIGEST, digest_id=collecting)
    throttle_window(tables)
    assert prune(tables, Settings(keep_deliveries_days=30, prune_batch=2)) == Pruned(deliveries=3, digests=1,
                                                                                      throttles=1)
    with tables.connect() as connection:
        assert connection.scalars(select(DigestRow.id)).all() == [collecting]
    assert count(tables, Delivery) == 1


def test_a_prune_on_postgresql_skips_a_digest_a_worker_holds(tables: Engine) -> None:
    held = digest(tables, DigestStatus.SENT)
    digest(tables, DigestStatus.EMPTY)
    with tables.connect() as worker, worker.begin():
        worker.execute(select(DigestRow.id).where(DigestRow.id == held).with_for_update())
        assert prune(tables, Settings(keep_deliveries_days=30)) == Pruned(digests=1)
    with tables.connect() as connection:
        assert connection.scalars(select(DigestRow.id)).all() == [held]
