"""Jobs: submit (202 once committed), status with progress, download in any format, cancel,
list with paging and a status filter."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from f5serve.core.db import JobRow
from f5serve.core.jobs.store import EXPIRED, SUCCEEDED, as_utc
from f5serve.core.services import Services
from f5serve.core.synthesis import check_text, speech_request_from_dict
from f5serve.engine.audio import encode_audio, load_audio
from f5serve.errors import Conflict, Expired, TooManyRequests
from f5serve.http.deps import ServicesDep, audio_response
from f5serve.http.schemas import (
    AudioFormat,
    ErrorEnvelope,
    JobList,
    JobProgress,
    JobRequest,
    JobStatus,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (401, 404, 409, 410, 413, 422, 429)
}


@router.post("", status_code=202, summary="Submit a job", responses=ERRORS)
async def submit(body: JobRequest, services: ServicesDep) -> JSONResponse:
    check_text(body.text, services.settings.max_job_text_chars)
    speech = body.speech_body()
    # bad base64 fails now, not in the worker
    speech_request_from_dict(speech, services.synthesizer.defaults)
    queued = services.worker.queued()
    if queued >= services.settings.max_queued_jobs:
        raise TooManyRequests(f"{queued} jobs are queued; try again later", retry_after=30)
    job, created = await asyncio.to_thread(
        services.jobs.create, body.job_id or uuid.uuid4().hex, speech
    )
    if created:
        await services.queue.put(job.id)
    status = job_status(services, job)
    return JSONResponse(
        {"job_id": job.id, "status": status.status, "links": status.links},
        status_code=202 if created else 200,
    )


@router.get("", summary="List jobs, newest first")
async def list_jobs(
    services: ServicesDep,
    status: Annotated[str | None, Query(description="Only jobs with this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    page = await asyncio.to_thread(services.jobs.page, status, limit, offset)
    jobs = [job_status(services, row) for row in page.jobs]
    return JobList(jobs=jobs, total=page.total, limit=limit, offset=offset)


@router.get("/{job_id}", summary="Status, progress and result of a job", responses=ERRORS)
async def get_job(job_id: str, services: ServicesDep) -> JobStatus:
    return job_status(services, await asyncio.to_thread(services.jobs.get, job_id))


@router.delete("/{job_id}", summary="Cancel a queued or running job", responses=ERRORS)
async def cancel_job(job_id: str, services: ServicesDep) -> JobStatus:
    before = (await asyncio.to_thread(services.jobs.get, job_id)).status
    row = await asyncio.to_thread(services.jobs.cancel, job_id)
    if row.status == "cancelled" and before != "cancelled":
        services.worker.cancel(job_id)
        services.metrics.jobs.labels("cancelled").inc()
    return job_status(services, row)


@router.get(
    "/{job_id}/audio",
    summary="Download a finished job's audio in any format",
    response_class=Response,
    responses=ERRORS,
)
async def job_audio(
    services: ServicesDep,
    job_id: str,
    format: AudioFormat = "wav",
) -> Response:
    job = await asyncio.to_thread(services.jobs.get, job_id)
    if job.status == EXPIRED:
        raise Expired(f"the audio of job {job_id!r} has expired and was deleted")
    if job.status != SUCCEEDED or not job.result:
        raise Conflict(
            f"job {job_id!r} is {job.status}; audio exists once it has succeeded",
            details={"status": job.status},
        )
    data = await asyncio.to_thread(services.storage.get, job.result["output_key"])
    if format != "wav":
        data = await asyncio.to_thread(_transcode, data, format)
    headers = {"Content-Disposition": f'attachment; filename="{job_id}.{format}"'}
    return audio_response(data, format, headers)


def _transcode(data: bytes, fmt: str) -> bytes:
    audio, sr = load_audio(data)
    return encode_audio(np.asarray(audio, dtype=np.float32), sr, fmt)


def job_status(services: Services, row: JobRow) -> JobStatus:
    """The API view of a job (live progress of a job running in this process)."""
    live = services.worker.live.get(row.id)
    progress = JobProgress(
        fraction=round(live.fraction if live else row.progress, 4),
        chunk=live.chunk if live else row.chunk,
        chunks=live.chunks if live else row.chunks,
        step=live.step if live else row.step,
        steps=live.steps if live else row.steps,
    )
    links = {"self": f"/v1/jobs/{row.id}"}
    if row.status == SUCCEEDED:
        links["audio"] = f"/v1/jobs/{row.id}/audio"
    error = {"code": row.error_code, "message": row.error_message or ""} if row.error_code else None
    created = as_utc(row.created_at)
    assert created is not None
    return JobStatus(
        job_id=row.id,
        status=row.status,  # type: ignore[arg-type]
        progress=progress,
        created_at=created,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at),
        attempts=row.attempts,
        result=row.result,
        error=error,  # type: ignore[arg-type]
        links=links,
    )
