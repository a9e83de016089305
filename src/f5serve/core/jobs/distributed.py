"""Jobs on procrastinate (PostgreSQL): a queue per model, shared by every process.

A job's queue entry is written in the transaction that makes its row queued (its submission, or
its return to the queue after a transient failure or a dead worker), on that transaction's own
connection, so the two never disagree. :class:`QueueWorker` runs procrastinate's worker on the
queues of the models this process serves, ``concurrency`` jobs at once in one event loop (so
they batch in the scheduler). Procrastinate keeps worker heartbeats; f5serve's job leases decide
which jobs go back to the queue, and attempt fencing keeps a zombie's late result out. A queued
job whose entry was spent without a claim (the database dropped at the claim, or the worker died
first) is queued again by the next sweep (:meth:`ProcrastinateQueue.restore_lost`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from procrastinate import App, PsycopgConnector, SyncPsycopgConnector
from procrastinate.jobs import Status
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import database_url
from f5serve.core.jobs.store import JobStore
from f5serve.core.jobs.worker import JobRunner

log = logging.getLogger(__name__)

TASK = "f5serve.run_job"
SWEEP_LOCK = 0x66357377  # the advisory lock one sweep for lost jobs holds at a time
SWEEP = text("SELECT pg_try_advisory_xact_lock(:key)")
LOST = text(
    """
    SELECT j.id, j.queue FROM jobs j
     WHERE j.status = 'queued' AND NOT EXISTS (
           SELECT 1 FROM procrastinate_jobs e
            WHERE e.task_name = :task AND e.args->>'job_id' = j.id
              AND (e.status = 'todo' OR (e.status = 'doing' AND EXISTS (
                   SELECT 1 FROM procrastinate_events ev
                    WHERE ev.job_id = e.id AND ev.type = 'started'
                      AND ev.at > now() - make_interval(secs => :grace)))))
       FOR UPDATE OF j SKIP LOCKED
    """
)


def libpq_url(url: str) -> str:
    """The ``postgresql://`` URL psycopg's own connections take (no SQLAlchemy driver name)."""
    return database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateQueue:
    """Writes queue entries on the caller's connection (the app is never opened: it needs no
    pool of its own), and restores lost ones."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._app = App(connector=SyncPsycopgConnector())

    def enqueue(self, session: Session, job_id: str, queue: str | None) -> None:
        """:data:`~f5serve.core.jobs.store.Enqueue`: defer the job inside ``session``'s
        transaction."""
        assert queue is not None, "a job on PostgreSQL always has a queue"
        connection = session.connection().connection.driver_connection
        self._app.configure_task(TASK, queue=queue, connection=connection).defer(job_id=job_id)

    def restore_lost(self, grace: float) -> list[str]:
        """Queue again the queued jobs that have no live queue entry; their ids.

        A job row and its entry are written together, but an entry can be spent while its job
        stays queued: the worker that took it could not claim the job (the database dropped in
        between) or died before claiming it (its entry is closed as stalled). A live entry waits
        (``todo``), or was taken less than ``grace`` seconds ago (its worker is claiming the job
        now). One sweep runs at a time across processes; should a slow claim still get a second
        entry, the claim of the one that comes second finds the job taken and does nothing.
        """
        with self.sessions() as session:
            if not session.scalar(SWEEP, {"key": SWEEP_LOCK}):
                return []  # another process sweeps now
            lost = session.execute(LOST, {"task": TASK, "grace": grace}).all()
            for job_id, queue in lost:
                self.enqueue(session, job_id, queue)
            session.commit()
        return [job_id for job_id, _ in lost]


class QueueWorker(JobRunner):
    """Runs the jobs of ``queues`` (None: every queue) from procrastinate."""

    def __init__(
        self,
        store: JobStore,
        queue: ProcrastinateQueue,
        url: str,
        queues: Iterable[str] | None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(store, *args, **kwargs)
        self.queue = queue
        self.queues = None if queues is None else list(queues)
        self.app = App(connector=PsycopgConnector(conninfo=libpq_url(url)))
        self.app.task(name=TASK)(self._task)
        self._fetcher: asyncio.Task[None] | None = None

    async def start(self, run_jobs: bool = True) -> None:
        """Re-queue the jobs of dead workers, then run procrastinate's worker."""
        if run_jobs:
            await self._requeue_expired()
            await self.app.open_async()
            queues: dict[str, Any] = {} if self.queues is None else {"queues": self.queues}
            worker = self.app.run_worker_async(
                **queues,
                concurrency=self.concurrency,
                name=self.worker_id,
                install_signal_handlers=False,
                update_heartbeat_interval=self.lease_seconds / 3,
                stalled_worker_timeout=self.lease_seconds,
                delete_jobs="successful",
            )
            self._fetcher = asyncio.create_task(worker)
            self._tasks += [self._fetcher, asyncio.create_task(self._heartbeat_loop())]
        await super().start(run_jobs)

    async def stop(self) -> None:
        """Stop taking jobs, stop the running ones (they go back to the queue), close."""
        if self._fetcher is not None:
            self._fetcher.cancel()  # procrastinate stops fetching, then waits for its tasks
            await asyncio.sleep(0)
        for task in list(self._running.values()):
            task.cancel()
        await super().stop()
        await self.app.close_async()

    async def heartbeat(self) -> None:
        """Also close the queue entries that procrastinate holds stalled (their worker stopped
        sending heartbeats; the lease sweep has queued their jobs again), and queue again the
        queued jobs whose entry was spent without a claim."""
        await super().heartbeat()
        stalled = await self.app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.lease_seconds
        )
        for job in stalled:
            await self.app.job_manager.finish_job(job, Status.ABORTED, delete_job=True)
        restored = await asyncio.to_thread(self.queue.restore_lost, self.lease_seconds)
        if restored:
            log.warning("queued again %d job(s) whose queue entry was lost", len(restored))

    def depths(self) -> dict[str, float]:
        """Jobs waiting, in all and per queue: queued rows, not queue entries (the entry of a
        job cancelled while it waited stays until a worker of its model takes it, to no
        effect)."""
        by_queue = self.store.queued_per_queue()
        return {"jobs": float(sum(by_queue.values()))} | {k: float(v) for k, v in by_queue.items()}

    async def _task(self, job_id: str) -> None:
        await self.run(job_id)
