"""Job workers. :class:`JobRunner` is what every worker does: run a job (several at once, so they
batch in the scheduler), record its outcome, try a transient failure again, hold leases on its
running jobs, re-queue the jobs of dead workers and expire old outputs. :class:`JobWorker` takes
job ids from a queue in memory (SQLite); :mod:`f5serve.core.jobs.distributed` from procrastinate.

Every third of a lease the worker renews the leases of its running jobs (stopping those it no
longer holds: cancelled from any process, or taken over after its lease expired) and re-queues
running jobs whose lease has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from f5serve.core.jobs.queue import InProcessQueue
from f5serve.core.jobs.runner import JobOutput, JobServices, execute_job
from f5serve.core.jobs.store import QUEUED, Claim, JobStore, retention_cutoff
from f5serve.core.metrics import Metrics
from f5serve.core.storage.base import StorageError, log_failure
from f5serve.core.tenants import Tenant
from f5serve.engine.pipeline import Progress
from f5serve.errors import (
    DeviceError,
    F5ServeError,
    ModelAccessDenied,
    ModelUnavailable,
    Timeout,
)

log = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.5  # seconds between progress writes of one job to the database
CLAIM_RETRY_SECONDS = 5.0  # wait before a job that could not be claimed is queued again


def new_worker_id() -> str:
    """A name for one worker: host, process and a random part (unique across restarts)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_transient(exc: BaseException) -> bool:
    """Whether a failed attempt may succeed if tried again: storage, device, a model that could
    not be had, or a fault of ours. Invalid input, a job over its time limit and a model whose
    repository refuses us (gated or private: only a person can fix that) never are."""
    if isinstance(exc, F5ServeError):
        if isinstance(exc, ModelAccessDenied):
            return False
        return isinstance(exc, StorageError | DeviceError | ModelUnavailable)
    return not isinstance(exc, asyncio.TimeoutError)


class JobRunner:
    """What every job worker does: claim a job, run it, record its outcome (fenced by the
    claim), hold leases, re-queue the jobs of dead workers, expire old outputs. Subclasses say
    where job ids come from (:meth:`start`) and what a job back in the queue needs
    (:meth:`requeued`)."""

    def __init__(
        self,
        store: JobStore,
        services: JobServices,
        metrics: Metrics,
        *,
        concurrency: int,
        timeout: float,
        retention: float,
        cleanup_interval: float,
        lease_seconds: float,
        max_attempts: int = 1,
    ) -> None:
        self.store = store
        self.services = services
        self.metrics = metrics
        self.concurrency = concurrency
        self.timeout = timeout
        self.retention = retention
        self.cleanup_interval = cleanup_interval
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.worker_id = new_worker_id()
        self._claims: dict[str, Claim] = {}
        self._written: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        services.on_progress = self._progress

    async def start(self, run_jobs: bool = True) -> None:
        """Start the retention sweep (every process does it)."""
        self._tasks.append(asyncio.create_task(self._cleanup_loop()))

    async def stop(self) -> None:
        """Stop the loops and put this worker's running jobs back in the queue (a later start,
        here or in another process, runs them again)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await asyncio.to_thread(self.store.release, self.worker_id)
        except Exception:  # they run again once their leases expire
            log_failure(log, "could not hand the running jobs back to the queue")

    def cancel(self, job_id: str) -> None:
        """Stop a running job (its status is set by the caller)."""
        task = self._running.get(job_id)
        if task is not None:
            task.cancel()

    @property
    def running(self) -> int:
        """Jobs this process runs now."""
        return len(self._running)

    async def run(self, job_id: str) -> None:
        """Claim and run one job to its end (cancelling the job does not cancel the caller)."""
        task = asyncio.create_task(self._run(job_id))
        self._running[job_id] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            self._running.pop(job_id, None)
            self._claims.pop(job_id, None)
            self._written.pop(job_id, None)

    async def requeued(self, job_ids: list[str]) -> None:
        """Jobs committed as queued (new, or back in the queue): a queue in memory is told here;
        one in the database was written in the same transaction."""

    async def _run(self, job_id: str) -> None:
        try:
            job = await asyncio.to_thread(
                self.store.claim, job_id, self.worker_id, self.lease_seconds
            )
        except F5ServeError as exc:  # the database is unavailable: the job stays queued (an
            # in-memory queue gets it back below; procrastinate's sweep queues it again)
            log.warning("job %s not claimed: %s; trying again later", job_id, exc.message)
            await asyncio.sleep(CLAIM_RETRY_SECONDS)
            await self.requeued([job_id])
            return
        if job is None:  # cancelled (or taken by another worker) while queued
            return
        claim = self._claims[job_id] = Claim.of(job)
        started = time.perf_counter()
        tenancy = self.services.tenancy
        try:
            owner = None
            if job.owner is not None and tenancy is not None:
                owner = await asyncio.to_thread(tenancy.tenant, job.owner)
                # jobs queued while the key was under its audio of the day may start after it
                # is used up: they fail (too_many_requests) rather than pass the limit
                await asyncio.to_thread(tenancy.check_audio, owner)
            run = execute_job(job_id, job.request, self.services, owner)
            output = await asyncio.wait_for(run, self.timeout)
        except Exception as exc:
            await self._attempt_failed(claim, exc)
        else:
            await asyncio.to_thread(self._succeeded, claim, output, owner, started)

    def _succeeded(
        self, claim: Claim, output: JobOutput, owner: Tenant | None, started: float
    ) -> None:
        """Record a result and charge its audio to the job's owner. One thread does both: once
        the success is written, a worker stopped meanwhile (which cancels its job tasks) still
        charges it."""
        row = self.store.succeed(claim, output.result)
        if self._recorded(claim, "succeeded", row):
            wall = time.perf_counter() - started
            self.metrics.observe_synthesis("job", wall, output.speech.duration)
            if self.services.tenancy is not None:
                self.services.tenancy.charge(owner, output.speech.duration)

    async def _attempt_failed(self, claim: Claim, exc: Exception) -> None:
        """Try a transient failure again while attempts are left; record any other."""
        if is_transient(exc) and claim.attempt < self.max_attempts:
            log.warning(
                "job %s attempt %d failed (%s): trying again", claim.job_id, claim.attempt, exc
            )
            if await asyncio.to_thread(self.store.hand_back, claim):
                await self.requeued([claim.job_id])
            return
        if isinstance(exc, asyncio.TimeoutError):
            exc = Timeout(f"the job took longer than {self.timeout:g} s")
        if isinstance(exc, F5ServeError):
            await self._failed(claim, exc.code, exc.message)
            return
        log.error("job %s failed unexpectedly", claim.job_id, exc_info=exc)
        await self._failed(
            claim, "internal_error", "unexpected error while running the job (see the server log)"
        )

    async def _failed(self, claim: Claim, code: str, message: str) -> None:
        row = await asyncio.to_thread(self.store.fail, claim, code, message)
        self._recorded(claim, "failed", row)

    def _recorded(self, claim: Claim, outcome: str, row: object) -> bool:
        """Count an outcome the store accepted; a refused one (the job was cancelled, or another
        worker took it over) is logged and dropped."""
        if row is None:
            log.info(
                "job %s attempt %d is no longer held: outcome dropped", claim.job_id, claim.attempt
            )
            return False
        self.metrics.jobs.labels(outcome).inc()
        return True

    def _progress(self, job_id: str, p: Progress) -> None:
        """Write a job's progress, at most every PROGRESS_WRITE_INTERVAL (called from the
        scheduler's thread)."""
        claim = self._claims.get(job_id)
        now = time.monotonic()
        due = now - self._written.get(job_id, 0.0) >= PROGRESS_WRITE_INTERVAL or p.fraction >= 1
        if claim is None or not due:
            return
        self._written[job_id] = now
        try:
            self.store.progress(claim, p.fraction, p.chunk, p.chunks, p.step, p.steps)
        except Exception:  # progress is best effort; the job goes on
            log_failure(log, "could not record the progress of job %s", job_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.heartbeat()
            except Exception:
                log_failure(log, "job lease renewal failed")

    async def heartbeat(self) -> None:
        """Renew the leases of the running jobs, stop those no longer held, re-queue the jobs
        of dead workers."""
        claims = list(self._claims.values())
        for job_id in await asyncio.to_thread(self.store.renew, claims, self.lease_seconds):
            log.info("job %s was cancelled or taken over: stopping it here", job_id)
            self.cancel(job_id)
        await self._requeue_expired()

    async def _requeue_expired(self) -> None:
        requeued = await asyncio.to_thread(self.store.requeue_expired)
        if requeued:
            log.warning("re-running %d job(s) whose worker stopped", len(requeued))
            await self.requeued(requeued)

    async def _cleanup_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.cleanup)
            except Exception:
                log_failure(log, "retention cleanup failed")
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

    def check(self) -> str | None:
        """What ``/ready`` says of taking jobs: None where there is nothing to say (the loops on
        an in-memory queue run as long as the process)."""
        return None

    async def queued(self) -> int:
        """Jobs waiting in the database (read in a thread)."""
        return await asyncio.to_thread(self.store.count, QUEUED)

    def depths(self) -> dict[str, float]:
        """Jobs waiting (the ``/metrics`` queue depth; read when metrics are scraped)."""
        return {"jobs": float(self.store.count(QUEUED))}


class JobWorker(JobRunner):
    """Runs queued jobs in this process, from an in-memory queue (the embedded default)."""

    def __init__(self, store: JobStore, queue: InProcessQueue, *args: Any, **kwargs: Any) -> None:
        super().__init__(store, *args, **kwargs)
        self.queue = queue

    async def start(self, run_jobs: bool = True) -> None:
        """Re-queue the jobs of dead workers, queue what is queued, then start the loops."""
        if run_jobs:
            await self._requeue_expired()
            await self.requeued(await asyncio.to_thread(self.store.queued_ids))
            self._tasks += [asyncio.create_task(self._loop()) for _ in range(self.concurrency)]
            self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        await super().start(run_jobs)

    async def requeued(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            await self.queue.put(job_id)

    async def _loop(self) -> None:
        while True:
            await self.run(await self.queue.get())
