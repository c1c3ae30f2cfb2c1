"""Triggers on rows of an ``AsyncSession``: the sync trigger, run where the session may do its IO.

An ``AsyncSession`` wraps a sync ``Session`` (``sync_session``) and runs its work in a greenlet
that turns each database call into an ``await``. A trigger executes statements (the state's
compare-and-set, the log row) and runs conditions and callbacks that may load relationships
lazily (``self.item.available``): called straight from a coroutine, that IO would raise
``MissingGreenlet``. Run through ``AsyncSession.run_sync``, the very same sync code awaits it,
so both paths write, log and hand on transitions identically (the outbox's session events fire
on ``sync_session``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["outside_greenlet", "run_for"]

T = TypeVar("T")


async def run_for(row: object, call: Callable[[], T]) -> T:
    """``call()`` run through the ``AsyncSession`` that holds ``row``; called directly if none does.

    A row of a sync ``Session`` (or of none: the trigger then says ``NotInSession``) needs no
    greenlet, so code shared by sync and async callers may always await.
    """
    from sqlalchemy.ext.asyncio import async_object_session  # only for those who fire asynchronously

    session = async_object_session(row)
    if session is None:
        return call()

    def in_greenlet(_sync_session: Any) -> T:
        return call()

    return await session.run_sync(in_greenlet)


def outside_greenlet() -> bool:
    """Whether a sync call here cannot do an async session's IO (it would raise ``MissingGreenlet``)."""
    try:  # the greenlets in which SQLAlchemy turns IO into awaits
        from sqlalchemy.util.concurrency import in_greenlet
    except ImportError:  # SQLAlchemy 2.0 keeps it in its py3k module
        from sqlalchemy.util._concurrency_py3k import in_greenlet  # type: ignore[import-not-found, no-redef]

    return not in_greenlet()
