"""The directory of workers: each process that serves synthesis over HTTP on a shared database
announces where it is, what it serves and how busy it is, every few seconds; API replicas that
run no models forward sync requests to the least loaded live worker of the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import WorkerRow, utcnow
from f5serve.core.storage.base import log_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    """What a worker says about itself."""

    worker_id: str
    url: str
    models: list[str]  # empty: every model
    capacity: int


class WorkerDirectory:
    """Workers as rows; one that has not announced itself for ``stale_after`` seconds is dead."""

    def __init__(self, sessions: sessionmaker[Session], stale_after: float) -> None:
        self.sessions = sessions
        self.stale_after = stale_after

    def announce(self, me: Announcement, in_flight: int) -> None:
        row = WorkerRow(
            id=me.worker_id,
            url=me.url,
            models=me.models,
            capacity=me.capacity,
            in_flight=in_flight,
            heartbeat_at=utcnow(),
        )
        with self.sessions() as session:
            session.merge(row)
            session.commit()

    def remove(self, worker_id: str) -> None:
        with self.sessions() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))
            session.commit()

    def live(self, model: str) -> list[WorkerRow]:
        """Live workers that serve ``model``, least loaded (in flight / capacity) first."""
        since = utcnow() - timedelta(seconds=self.stale_after)
        with self.sessions() as session:
            rows = session.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at >= since))
            serving = [r for r in rows if not r.models or model in r.models]
        return sorted(serving, key=lambda r: (r.in_flight / max(r.capacity, 1), r.in_flight))


class Presence:
    """Keeps one worker's row fresh while it runs, and removes it when it stops."""

    def __init__(
        self,
        directory: WorkerDirectory,
        me: Announcement,
        in_flight: Callable[[], int],
        interval: float,
    ) -> None:
        self.directory = directory
        self.me = me
        self.in_flight = in_flight
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.announce, self.me, self.in_flight())
        self._task = asyncio.create_task(self._loop())
        log.info("announced as worker %s at %s", self.me.worker_id, self.me.url)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        try:
            await asyncio.to_thread(self.directory.remove, self.me.worker_id)
        except Exception:  # its row goes stale instead
            log_failure(log, "could not remove this worker from the directory")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.directory.announce, self.me, self.in_flight())
            except Exception:
                log_failure(log, "worker heartbeat failed")
