"""Jobs: submit (202 once committed), status with progress, download in any format, cancel,
list with paging and a status filter. A key sees only its own jobs (an admin key every job);
another key's job is 404, as if it did not exist."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from f5serve.core.db import JobRow
from f5serve.core.formats import FormatName, read_output
from f5serve.core.jobs.store import EXPIRED, SUCCEEDED, as_utc
from f5serve.core.services import Services
from f5serve.core.subtitles import CONTENT_TYPES, SubtitleFormat, render_subtitles
from f5serve.core.synthesis import check_text
from f5serve.core.tenants import Tenant, sees_all
from f5serve.engine.audio import output_format
from f5serve.errors import Conflict, Expired
from f5serve.http.auth import TenantDep
from f5serve.http.deps import AUDIO_CONTENT, ServicesDep, audio_response
from f5serve.http.schemas import (
    JobList,
    JobProgress,
    JobRequest,
    JobStatus,
    JobSubmitted,
    error_responses,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ERRORS = error_responses(400, 404, 409, 410, 413, 422, 503)
SUBTITLES: dict[str, Any] = {t: {"schema": {"type": "string"}} for t in CONTENT_TYPES.values()}


@router.post(
    "",
    status_code=202,
    summary="Submit a job",
    response_model=JobSubmitted,
    responses={200: {"model": JobSubmitted, "description": "The job already existed"}, **ERRORS},
)
async def submit(body: JobRequest, services: ServicesDep, tenant: TenantDep) -> JSONResponse:
    check_text(body.text, services.settings.max_job_text_chars)
    speech = body.speech_body()
    job, created = await services.submit_job(body.job_id or uuid.uuid4().hex, speech, tenant)
    status = job_status(job, tenant)
    return JSONResponse(
        {"job_id": job.id, "status": status.status, "links": status.links},
        status_code=202 if created else 200,
    )


@router.get("", summary="List jobs, newest first", responses=ERRORS)
async def list_jobs(
    services: ServicesDep,
    tenant: TenantDep,
    status: Annotated[str | None, Query(description="Only jobs with this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    page = await asyncio.to_thread(services.jobs.page, status, limit, offset, tenant)
    jobs = [job_status(row, tenant) for row in page.jobs]
    return JobList(jobs=jobs, total=page.total, limit=limit, offset=offset)


@router.get("/{job_id}", summary="Status, progress and result of a job", responses=ERRORS)
async def get_job(job_id: str, services: ServicesDep, tenant: TenantDep) -> JobStatus:
    return job_status(await asyncio.to_thread(services.jobs.get, job_id, tenant), tenant)


@router.delete("/{job_id}", summary="Cancel a queued or running job", responses=ERRORS)
async def cancel_job(job_id: str, services: ServicesDep, tenant: TenantDep) -> JobStatus:
    before = (await asyncio.to_thread(services.jobs.get, job_id, tenant)).status
    row = await asyncio.to_thread(services.jobs.cancel, job_id, tenant)
    if row.status == "cancelled" and before != "cancelled":
        services.worker.cancel(job_id)
        services.metrics.jobs.labels("cancelled").inc()
    return job_status(row, tenant)


@router.get(
    "/{job_id}/audio",
    summary="Download a finished job's audio in any format",
    response_class=Response,
    responses={200: {"content": AUDIO_CONTENT}, **ERRORS},
)
async def job_audio(
    services: ServicesDep,
    tenant: TenantDep,
    job_id: str,
    format: FormatName = "wav",
) -> Response:
    result = await _finished_result(services, tenant, job_id, "audio")
    data = await asyncio.to_thread(read_output, services.storage, result["output_key"], format)
    filename = output_format(format).file_name(job_id)
    return audio_response(
        data, format, {"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    "/{job_id}/subtitles",
    summary="Subtitles of a finished job (one cue per chunk, or per word heard), SubRip or WebVTT",
    response_class=Response,
    responses={200: {"content": SUBTITLES}, **ERRORS},
)
async def job_subtitles(
    services: ServicesDep,
    tenant: TenantDep,
    job_id: str,
    format: SubtitleFormat = "srt",
    level: Annotated[
        Literal["chunk", "word"],
        Query(description="'word': a cue per word heard (a job run with word_timestamps)."),
    ] = "chunk",
) -> Response:
    result = await _finished_result(services, tenant, job_id, "subtitles")
    text = render_subtitles(result.get("segments", []), format, words=level == "word")
    filename = f"{job_id}.{format}"
    return Response(
        text,
        media_type=CONTENT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _finished_result(
    services: Services, tenant: Tenant | None, job_id: str, what: str
) -> dict[str, Any]:
    """The result of a job that has succeeded (410 once expired, 409 before it is done)."""
    job = await asyncio.to_thread(services.jobs.get, job_id, tenant)
    if job.status == EXPIRED:
        raise Expired(f"the {what} of job {job_id!r} has expired and was deleted")
    if job.status != SUCCEEDED or not job.result:
        raise Conflict(
            f"job {job_id!r} is {job.status}; its {what} can be fetched once it has succeeded",
            details={"status": job.status},
        )
    return job.result


def job_status(row: JobRow, tenant: Tenant | None) -> JobStatus:
    """The API view of a job (progress as its worker last wrote it, from any process); its
    owner is shown to admin keys only."""
    progress = JobProgress(
        fraction=round(row.progress, 4),
        chunk=row.chunk,
        chunks=row.chunks,
        step=row.step,
        steps=row.steps,
    )
    links = {"self": f"/v1/jobs/{row.id}"}
    if row.status == SUCCEEDED:
        links["audio"] = f"/v1/jobs/{row.id}/audio"
        links["subtitles"] = f"/v1/jobs/{row.id}/subtitles"
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
        owner=row.owner if sees_all(tenant) else None,
    )
