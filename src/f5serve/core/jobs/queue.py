"""The job queue interface and its in-process implementation.

The database is the source of truth (a job is committed before it is queued, and queued jobs
are re-queued from the database at start-up), so the queue only carries job ids. A distributed
queue (Redis) implements the same three methods.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


@runtime_checkable
class JobQueue(Protocol):
    """A FIFO of job ids."""

    async def put(self, job_id: str) -> None:
        """Queue ``job_id`` (already committed as queued in the store)."""
        ...

    async def get(self) -> str:
        """The next job id (waits for one)."""
        ...

    def depth(self) -> int:
        """Job ids waiting."""
        ...


class InProcessQueue:
    """:class:`JobQueue` in this process's memory (the embedded default)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, job_id: str) -> None:
        self._queue.put_nowait(job_id)

    async def get(self) -> str:
        return await self._queue.get()

    def depth(self) -> int:
        return self._queue.qsize()
