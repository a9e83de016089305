"""The job store: jobs as rows in the database; every state change is one committed update.

A worker that claims a job holds a lease on it (``worker_id``, ``lease_expires_at``) and renews
it while the job runs. A job whose lease has expired (its worker died) goes back to the queue.
What a worker writes about a job (progress, result, failure) is fenced by its :class:`Claim`: it
applies only while the job is still running as that worker's attempt, so the late result of a
worker presumed dead never overwrites a newer attempt, and a cancelled job stays cancelled.

A store given an ``enqueue`` function (a queue that lives in the same database) calls it inside
the transaction that makes a job queued (its creation, or its return to the queue), so a job is
queued exactly when its row says so: a rolled-back submission leaves no queue entry.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import JobRow, utcnow
from f5serve.core.tenants import Tenant, may_see, restricted_to
from f5serve.core.validation import MAX_INT64, storable
from f5serve.errors import Conflict, InvalidInput, NotFound

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)

Enqueue = Callable[[Session, str, str | None], None]
"""Queue ``(session, job id, queue name)`` inside the session's open transaction."""


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Claim:
    """One attempt of one worker at a job (what fences its writes)."""

    job_id: str
    worker_id: str
    attempt: int

    @classmethod
    def of(cls, row: JobRow) -> Claim:
        """The claim of a job row that :meth:`JobStore.claim` returned."""
        assert row.worker_id is not None, "a claimed job has a worker"
        return cls(row.id, row.worker_id, row.attempts)

    def held(self) -> ColumnElement[bool]:
        """SQL: the job is still running as this attempt of this worker."""
        return and_(
            JobRow.id == self.job_id,
            JobRow.status == RUNNING,
            JobRow.worker_id == self.worker_id,
            JobRow.attempts == self.attempt,
        )


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing."""

    jobs: list[JobRow]
    total: int


class JobStore:
    """Create, read and update jobs (thread-safe: one session per call)."""

    def __init__(self, sessions: sessionmaker[Session], enqueue: Enqueue | None = None) -> None:
        self.sessions = sessions
        self.enqueue = enqueue

    def create(
        self,
        job_id: str,
        request: dict[str, Any],
        queue: str | None = None,
        same: Callable[[dict[str, Any], dict[str, Any]], bool] = operator.eq,
        owner: str | None = None,
    ) -> tuple[JobRow, bool]:
        """Insert a queued job (waiting in ``queue``, belonging to the key ``owner``) and
        commit; ``(job, created)``. The same ``job_id`` with the same request (by ``same``,
        given the stored request first) and owner returns the first job (``created`` False);
        with another request, or another owner's id, it is a conflict (that says nothing of
        the other job).
        """
        row = JobRow(
            id=job_id,
            status=QUEUED,
            request=request,
            queue=queue,
            created_at=utcnow(),
            attempts=0,
            owner=owner,
        )
        with self.sessions() as session:
            session.add(row)
            try:
                session.flush()
                if self.enqueue is not None:
                    self.enqueue(session, job_id, queue)
                session.commit()
                return row, True
            except IntegrityError:
                session.rollback()
        existing = self.get(job_id)
        if existing.owner != owner:
            raise Conflict(
                f"job id {job_id!r} is taken: choose another", details={"job_id": job_id}
            )
        if not same(existing.request, request):
            raise Conflict(
                f"job {job_id!r} already exists with a different request",
                details={"job_id": job_id},
            )
        return existing, False

    def get(self, job_id: str, tenant: Tenant | None = None) -> JobRow:
        """A job (one that ``tenant`` may not see does not exist for it)."""
        row = None
        if storable(job_id):
            with self.sessions() as session:
                row = session.get(JobRow, job_id)
        if row is None or not may_see(tenant, row.owner):
            raise NotFound(f"job {job_id!r} does not exist", details={"job_id": job_id})
        return row

    def page(
        self, status: str | None, limit: int, offset: int, tenant: Tenant | None = None
    ) -> JobPage:
        """Newest first, optionally only one status; only ``tenant``'s own jobs unless it sees
        all."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        if offset > MAX_INT64:
            raise InvalidInput(f"offset must be at most {MAX_INT64}")
        query = select(JobRow)
        count = select(func.count()).select_from(JobRow)
        if status is not None:
            query = query.where(JobRow.status == status)
            count = count.where(JobRow.status == status)
        own = restricted_to(tenant)
        if own is not None:
            query = query.where(JobRow.owner == own)
            count = count.where(JobRow.owner == own)
        query = query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
        with self.sessions() as session:
            return JobPage(list(session.scalars(query)), session.scalar(count) or 0)

    def count(self, status: str) -> int:
        with self.sessions() as session:
            query = select(func.count()).select_from(JobRow).where(JobRow.status == status)
            return session.scalar(query) or 0

    def claim(self, job_id: str, worker_id: str, lease_seconds: float) -> JobRow | None:
        """Move a queued job to running as the next attempt of ``worker_id`` (None if it is not
        queued any more: cancelled, or claimed by another worker)."""
        values = {
            "status": RUNNING,
            "started_at": utcnow(),
            "attempts": JobRow.attempts + 1,
            "worker_id": worker_id,
            "lease_expires_at": lease_end(lease_seconds),
        }
        if not self._update(and_(JobRow.id == job_id, JobRow.status == QUEUED), values):
            return None
        return self.get(job_id)

    def progress(
        self, claim: Claim, fraction: float, chunk: int, chunks: int, step: int, steps: int
    ) -> None:
        values = {"progress": fraction, "chunk": chunk, "chunks": chunks, "step": step}
        self._update(claim.held(), values | {"steps": steps})

    def succeed(self, claim: Claim, result: dict[str, Any]) -> JobRow | None:
        """Record the result (None when the claim is no longer held)."""
        values = {"status": SUCCEEDED, "result": result, "progress": 1.0}
        return self._finish(claim, values)

    def fail(self, claim: Claim, code: str, message: str) -> JobRow | None:
        """Record the failure (None when the claim is no longer held)."""
        values = {"status": FAILED, "error_code": code, "error_message": message}
        return self._finish(claim, values)

    def cancel(self, job_id: str, tenant: Tenant | None = None) -> JobRow:
        """Cancel a queued or running job; a finished job is returned unchanged. The worker
        running it notices at its next lease renewal (or at once in its own process)."""
        self.get(job_id, tenant)
        running = and_(JobRow.id == job_id, JobRow.status.in_((QUEUED, RUNNING)))
        self._update(running, {"status": CANCELLED, "finished_at": utcnow()})
        return self.get(job_id)

    def renew(self, claims: list[Claim], lease_seconds: float) -> list[str]:
        """Extend the leases of ``claims``; the ids of those no longer held (cancelled, or
        re-queued after their lease expired), which their worker must stop."""
        if not claims:
            return []
        end = lease_end(lease_seconds)
        with self.sessions() as session:
            held = set(
                session.scalars(
                    update(JobRow)
                    .where(or_(*(claim.held() for claim in claims)))
                    .values(lease_expires_at=end)
                    .returning(JobRow.id)
                )
            )
            session.commit()
        return [claim.job_id for claim in claims if claim.job_id not in held]

    def requeue_expired(self) -> list[str]:
        """Running jobs whose lease has expired (their worker died) go back to the queue; their
        ids. A job running before leases existed has none, and counts as expired."""
        expired = or_(JobRow.lease_expires_at.is_(None), JobRow.lease_expires_at < utcnow())
        return self._requeue(and_(JobRow.status == RUNNING, expired))

    def release(self, worker_id: str) -> list[str]:
        """A worker that stops puts its running jobs back in the queue at once; their ids."""
        return self._requeue(and_(JobRow.status == RUNNING, JobRow.worker_id == worker_id))

    def hand_back(self, claim: Claim) -> bool:
        """Put a job back in the queue to be tried again (a transient failure); whether the
        claim was still held."""
        return bool(self._requeue(claim.held()))

    def queued_per_queue(self) -> dict[str, int]:
        """Queued jobs per queue (of the jobs that have one: on PostgreSQL, all)."""
        query = select(JobRow.queue, func.count()).where(JobRow.status == QUEUED)
        with self.sessions() as session:
            rows = session.execute(query.group_by(JobRow.queue))
            return {queue: count for queue, count in rows if queue is not None}

    def queued_ids(self) -> list[str]:
        """Queued jobs, oldest first."""
        query = select(JobRow.id).where(JobRow.status == QUEUED).order_by(JobRow.created_at)
        with self.sessions() as session:
            return list(session.scalars(query))

    def expire_before(self, cutoff: datetime, limit: int = 500) -> list[JobRow]:
        """Finished jobs older than ``cutoff``, marked expired (their outputs are the caller's
        to delete)."""
        query = (
            select(JobRow)
            .where(JobRow.status.in_(FINISHED), JobRow.finished_at < cutoff)
            .limit(limit)
        )
        with self.sessions() as session:
            rows = list(session.scalars(query))
            for row in rows:
                row.status = EXPIRED
            session.commit()
        return rows

    def _requeue(self, where: ColumnElement[bool]) -> list[str]:
        values = {"status": QUEUED, "progress": 0.0, "worker_id": None, "lease_expires_at": None}
        with self.sessions() as session:
            requeued = session.execute(
                update(JobRow).where(where).values(values).returning(JobRow.id, JobRow.queue)
            ).all()
            if self.enqueue is not None:
                for job_id, queue in requeued:
                    self.enqueue(session, job_id, queue)
            session.commit()
        return [job_id for job_id, _ in requeued]

    def _finish(self, claim: Claim, values: dict[str, Any]) -> JobRow | None:
        if not self._update(claim.held(), values | {"finished_at": utcnow()}):
            return None
        return self.get(claim.job_id)

    def _update(self, where: ColumnElement[bool], values: dict[str, Any]) -> bool:
        """Apply ``values`` to the rows ``where`` selects; whether any changed."""
        with self.sessions() as session:
            result = session.execute(update(JobRow).where(where).values(values))
            session.commit()
            return bool(getattr(result, "rowcount", 0))


def lease_end(seconds: float) -> datetime:
    """When a lease taken (or renewed) now expires."""
    return utcnow() + timedelta(seconds=seconds)


def retention_cutoff(seconds: float) -> datetime:
    """The finish time before which a job's output has expired."""
    return utcnow() - timedelta(seconds=seconds)
