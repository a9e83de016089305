"""The in-process job queue, and the names of the per-model queues.

The database is the source of truth (a job is committed before it is queued, and queued jobs
are re-queued from the database at start-up), so the in-process queue only carries job ids. On
PostgreSQL, jobs wait in procrastinate's queues instead (:mod:`f5serve.core.jobs.distributed`),
one per model, so a job waits for a worker that serves its model.
"""

from __future__ import annotations

import asyncio

QUEUE_PREFIX = "tts."


def queue_name(model: str) -> str:
    """The queue where the jobs of ``model`` wait (``tts.<model>``)."""
    return QUEUE_PREFIX + model


class InProcessQueue:
    """A FIFO of job ids in this process's memory (the embedded default)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, job_id: str) -> None:
        """Queue ``job_id`` (already committed as queued in the store)."""
        self._queue.put_nowait(job_id)

    async def get(self) -> str:
        """The next job id (waits for one)."""
        return await self._queue.get()

    def depth(self) -> int:
        """Job ids waiting."""
        return self._queue.qsize()
