"""Recycling: a worker process is due for replacement past its message count or its memory."""

from __future__ import annotations

from typing import Any

from jobs.worker.recycling import MEMORY, MESSAGES, Recycler, rss_bytes


def processed(recycler: Recycler, count: int) -> None:
    for _ in range(count):
        recycler.after_process_message(None, None)  # type: ignore[arg-type]


def test_a_process_is_due_once_it_has_processed_its_maximum_of_messages() -> None:
    woken: list[Any] = []
    recycler = Recycler(max_messages=3, on_due=lambda: woken.append(True))
    processed(recycler, 2)
    assert not recycler.due.is_set()
    processed(recycler, 1)
    assert recycler.due.is_set() and recycler.reason == MESSAGES and woken == [True]
    processed(recycler, 5)
    assert woken == [True]  # told once


def test_a_process_is_due_once_its_memory_passes_the_limit() -> None:
    recycler = Recycler(max_memory_bytes=rss_bytes() // 2)
    processed(recycler, 1)
    assert recycler.due.is_set() and recycler.reason == MEMORY


def test_no_limit_means_never_due() -> None:
    recycler = Recycler()
    processed(recycler, 1000)
    assert not recycler.due.is_set() and recycler.processed == 1000


def test_the_resident_memory_of_this_process_is_read() -> None:
    assert 10 * 2**20 < rss_bytes() < 4 * 2**30


def test_the_messages_in_hand_are_counted_until_they_finish() -> None:
    recycler = Recycler()
    recycler.before_process_message(None, None)  # type: ignore[arg-type]
    recycler.before_process_message(None, None)  # type: ignore[arg-type]
    processed(recycler, 1)
    assert recycler.in_hand == 1
    recycler.after_skip_message(None, None)  # type: ignore[arg-type]
    assert recycler.in_hand == 0 and recycler.processed == 2
