"""``execute_job``: run one job and store its output. The in-process worker calls it, and so will
the distributed and RunPod workers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from f5serve.core.formats import OUTPUT_FORMAT
from f5serve.core.storage.base import Storage
from f5serve.core.subtitles import segment_dicts
from f5serve.core.synthesis import Speech, Synthesizer, speech_request_from_dict
from f5serve.core.tenants import Tenancy, Tenant
from f5serve.engine.audio import FORMATS, encode_audio
from f5serve.engine.pipeline import Progress
from f5serve.errors import Overloaded

log = logging.getLogger(__name__)

MAX_BUSY_WAIT = 5.0  # seconds between attempts while the scheduler is full


def output_key(job_id: str) -> str:
    """Storage key of a job's audio (the RunPod seed's layout)."""
    return f"output/{job_id}.{OUTPUT_FORMAT}"


@dataclass
class JobServices:
    """What a job needs to run."""

    synthesizer: Synthesizer
    storage: Storage
    on_progress: Callable[[str, Progress], None] | None = None
    tenancy: Tenancy | None = None  # who owns a job, and its usage (none: jobs have no owner)


@dataclass(frozen=True)
class JobOutput:
    """What a job produced: the metadata its row keeps, and the audio itself, still in memory
    (a caller that answers at once encodes it from here instead of reading the stored WAV)."""

    result: dict[str, Any]
    speech: Speech


async def execute_job(
    job_id: str, request: dict[str, Any], services: JobServices, tenant: Tenant | None = None
) -> JobOutput:
    """Synthesise ``request`` (a stored job request) as the key ``tenant`` that submitted it
    (the voices it may use), store the audio atomically under :func:`output_key` of
    ``job_id``, return what it produced.

    Waits (without failing) while the scheduler's backlog is full. Raises the synthesis errors.
    """
    started = time.perf_counter()
    speech_request = speech_request_from_dict(request, services.synthesizer.defaults, tenant)

    def progress(p: Progress) -> None:
        if services.on_progress is not None:
            services.on_progress(job_id, p)

    while True:
        try:
            speech = await services.synthesizer.synthesize(speech_request, progress)
            break
        except Overloaded as exc:
            await asyncio.sleep(min(exc.retry_after, MAX_BUSY_WAIT))
    result = await asyncio.to_thread(_store, job_id, speech, services.storage, started)
    return JobOutput(result, speech)


def _store(job_id: str, speech: Speech, storage: Storage, started: float) -> dict[str, Any]:
    data = encode_audio(speech.audio, speech.sample_rate, OUTPUT_FORMAT)
    info = storage.put(output_key(job_id), data, FORMATS[OUTPUT_FORMAT].content_type)
    return {
        "output_key": info.key,
        "content_type": info.content_type,
        "bytes": info.size,
        "sha256": info.sha256,
        "sample_rate": speech.sample_rate,
        "duration": round(speech.duration, 3),
        "model": speech.model,
        "language": speech.language,
        "voice": speech.voice,
        "seed": speech.seed,
        "segments": segment_dicts(speech.segments),
        "processing_time_seconds": round(time.perf_counter() - started, 3),
    }
