"""The job store: jobs as rows in the database; every state change is one committed update."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from f5serve.core.db import JobRow, utcnow
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


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing."""

    jobs: list[JobRow]
    total: int


class JobStore:
    """Create, read and update jobs (thread-safe: one session per call)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, job_id: str, request: dict[str, Any]) -> tuple[JobRow, bool]:
        """Insert a queued job and commit; ``(job, created)``. The same ``job_id`` with the same
        request returns the first job (``created`` False); with another request it is a conflict.
        """
        row = JobRow(id=job_id, status=QUEUED, request=request, created_at=utcnow(), attempts=0)
        with self.sessions() as session:
            session.add(row)
            try:
                session.commit()
                return row, True
            except IntegrityError:
                session.rollback()
        existing = self.get(job_id)
        if existing.request != request:
            raise Conflict(
                f"job {job_id!r} already exists with a different request",
                details={"job_id": job_id},
            )
        return existing, False

    def get(self, job_id: str) -> JobRow:
        with self.sessions() as session:
            row = session.get(JobRow, job_id)
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist", details={"job_id": job_id})
        return row

    def page(self, status: str | None, limit: int, offset: int) -> JobPage:
        """Newest first, optionally only one status."""
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
        query = select(JobRow)
        count = select(func.count()).select_from(JobRow)
        if status is not None:
            query = query.where(JobRow.status == status)
            count = count.where(JobRow.status == status)
        query = query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
        with self.sessions() as session:
            return JobPage(list(session.scalars(query)), session.scalar(count) or 0)

    def count(self, status: str) -> int:
        with self.sessions() as session:
            query = select(func.count()).select_from(JobRow).where(JobRow.status == status)
            return session.scalar(query) or 0

    def claim(self, job_id: str) -> JobRow | None:
        """Move a queued job to running (None if it is not queued any more: cancelled)."""
        return self._transition(
            job_id, (QUEUED,), status=RUNNING, started_at=utcnow(), attempts=JobRow.attempts + 1
        )

    def progress(
        self, job_id: str, fraction: float, chunk: int, chunks: int, step: int, steps: int
    ) -> None:
        with self.sessions() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == RUNNING)
                .values(progress=fraction, chunk=chunk, chunks=chunks, step=step, steps=steps)
            )
            session.commit()

    def succeed(self, job_id: str, result: dict[str, Any]) -> JobRow | None:
        return self._transition(
            job_id,
            (RUNNING,),
            status=SUCCEEDED,
            result=result,
            progress=1.0,
            finished_at=utcnow(),
        )

    def fail(self, job_id: str, code: str, message: str) -> JobRow | None:
        return self._transition(
            job_id,
            (RUNNING,),
            status=FAILED,
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
        )

    def cancel(self, job_id: str) -> JobRow:
        """Cancel a queued or running job; a finished job is returned unchanged."""
        self.get(job_id)
        self._transition(job_id, (QUEUED, RUNNING), status=CANCELLED, finished_at=utcnow())
        return self.get(job_id)

    def requeue_interrupted(self) -> int:
        """At start-up: jobs left running by a dead process go back to the queue."""
        with self.sessions() as session:
            result = session.execute(
                update(JobRow).where(JobRow.status == RUNNING).values(status=QUEUED, progress=0.0)
            )
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

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

    def _transition(self, job_id: str, allowed: tuple[str, ...], **values: Any) -> JobRow | None:
        with self.sessions() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(allowed))
                .values(**values)
            )
            session.commit()
            changed = int(getattr(result, "rowcount", 0) or 0)
        return self.get(job_id) if changed else None


def retention_cutoff(seconds: float) -> datetime:
    """The finish time before which a job's output has expired."""
    return utcnow() - timedelta(seconds=seconds)
