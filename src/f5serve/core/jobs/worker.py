"""The in-process job worker: takes job ids from the queue, runs them (several at once, so they
batch in the scheduler), records outcomes, re-queues interrupted jobs at start-up and expires
old outputs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from f5serve.core.jobs.queue import JobQueue
from f5serve.core.jobs.runner import JobServices, execute_job
from f5serve.core.jobs.store import QUEUED, JobStore, retention_cutoff
from f5serve.core.metrics import Metrics
from f5serve.engine.pipeline import Progress
from f5serve.errors import F5ServeError, Timeout

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes of one job to the database


class JobWorker:
    """Runs queued jobs in this process."""

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        services: JobServices,
        metrics: Metrics,
        *,
        concurrency: int,
        timeout: float,
        retention: float,
        cleanup_interval: float,
    ) -> None:
        self.store = store
        self.queue = queue
        self.services = services
        self.metrics = metrics
        self.concurrency = concurrency
        self.timeout = timeout
        self.retention = retention
        self.cleanup_interval = cleanup_interval
        self.live: dict[str, Progress] = {}
        self._written: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        services.on_progress = self._progress

    async def start(self, run_jobs: bool = True) -> None:
        """Re-queue what a previous process left, then start the loops."""
        if run_jobs:
            requeued = self.store.requeue_interrupted()
            if requeued:
                log.warning("re-running %d job(s) interrupted by a restart", requeued)
            for job_id in self.store.queued_ids():
                await self.queue.put(job_id)
            self._tasks += [asyncio.create_task(self._loop()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._cleanup_loop()))

    async def stop(self) -> None:
        """Stop the loops; running jobs stay 'running' in the store and re-run at next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def cancel(self, job_id: str) -> None:
        """Stop a running job (its status is set by the caller)."""
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()

    async def _loop(self) -> None:
        while True:
            job_id = await self.queue.get()
            task = asyncio.create_task(self._run(job_id))
            self._running[job_id] = task
            try:
                await asyncio.wait({task})  # a cancelled job must not end the loop
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                self._running.pop(job_id, None)
                self.live.pop(job_id, None)
                self._written.pop(job_id, None)

    async def _run(self, job_id: str) -> None:
        job = self.store.claim(job_id)
        if job is None:  # cancelled (or already taken) while queued
            return
        started = time.perf_counter()
        try:
            output = await asyncio.wait_for(execute_job(job, self.services), self.timeout)
        except asyncio.TimeoutError:
            error = Timeout(f"the job took longer than {self.timeout:g} s")
            self._finish(job_id, "failed", self.store.fail(job_id, error.code, error.message))
        except F5ServeError as exc:
            self._finish(job_id, "failed", self.store.fail(job_id, exc.code, exc.message))
        except Exception:
            log.exception("job %s failed unexpectedly", job_id)
            message = "unexpected error while running the job (see the server log)"
            self._finish(job_id, "failed", self.store.fail(job_id, "internal_error", message))
        else:
            done = self.store.succeed(job_id, output.result)
            self._finish(job_id, "succeeded", done)
            if done is not None:
                wall = time.perf_counter() - started
                self.metrics.observe_synthesis("job", wall, output.speech.duration)

    def _finish(self, job_id: str, outcome: str, row: object) -> None:
        self.metrics.jobs.labels(outcome if row is not None else "cancelled").inc()

    def _progress(self, job_id: str, p: Progress) -> None:
        self.live[job_id] = p
        now = time.monotonic()
        if now - self._written.get(job_id, 0.0) >= PROGRESS_WRITE_INTERVAL or p.fraction >= 1:
            self._written[job_id] = now
            try:
                self.store.progress(job_id, p.fraction, p.chunk, p.chunks, p.step, p.steps)
            except Exception:  # progress is best effort; the job goes on
                log.exception("could not record the progress of job %s", job_id)

    async def _cleanup_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.cleanup)
            except Exception:
                log.exception("retention cleanup failed")
            await asyncio.sleep(self.cleanup_interval)

    def cleanup(self) -> int:
        """Expire finished jobs past the retention time and delete their outputs."""
        expired = self.store.expire_before(retention_cutoff(self.retention))
        for row in expired:
            key = (row.result or {}).get("output_key")
            if key:
                self.services.storage.delete(key)
        if expired:
            log.info("expired %d job(s)", len(expired))
        return len(expired)

    def queued(self) -> int:
        return self.store.count(QUEUED)
