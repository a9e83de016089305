"""The RunPod handler: one asynchronous function that turns a job's ``input`` into its output.

Synthesis goes through the service's :class:`~f5serve.core.synthesis.Synthesizer` and
:func:`~f5serve.core.jobs.runner.execute_job`, so the audio is stored as
``output/<job_id>.wav`` exactly as the HTTP service's jobs are, and concurrent jobs of this
worker share the engine's batched flow steps. Errors are returned, never raised.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from f5serve import __version__
from f5serve.core import listing
from f5serve.core.formats import OUTPUT_FORMAT, encode_speech, read_output
from f5serve.core.jobs.runner import JobServices, execute_job, output_key
from f5serve.core.params import parse
from f5serve.core.services import Services
from f5serve.core.synthesis import check_text
from f5serve.engine.audio import output_format
from f5serve.engine.devices import default_device
from f5serve.engine.pipeline import Progress
from f5serve.errors import F5ServeError, InvalidInput, Timeout
from f5serve.runpod.inputs import (
    ENDPOINTS,
    DownloadInput,
    InfoInput,
    TTSInput,
    error_output,
)

log = logging.getLogger(__name__)

Job = dict[str, Any]  # what the RunPod SDK hands the handler: {"id", "input", ...}
Output = dict[str, Any]
SendProgress = Callable[[Job, dict[str, Any]], None]  # runpod.serverless.progress_update


class ProgressReporter:
    """Forwards a job's flow-step progress to RunPod: the first step at once, then at most one
    update per ``interval`` seconds (each update is an HTTP request of the SDK)."""

    def __init__(self, job: Job, job_id: str, send: SendProgress, interval: float) -> None:
        self.job = job
        self.job_id = job_id
        self.send = send
        self.interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()  # called from the scheduler's thread

    def __call__(self, _job_id: str, p: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                return
            self._last = now
        update = {
            "job_id": self.job_id,
            "chunk": p.chunk,
            "chunks": p.chunks,
            "step": p.step,
            "steps": p.steps,
            "fraction": round(p.fraction, 4),
        }
        try:
            self.send(self.job, update)
        except Exception:  # progress is best effort; the job goes on
            log.exception("could not send the progress of job %s", self.job_id)


class RunPodWorker:
    """The handler's state: the services (model, voices, storage) loaded once per process."""

    def __init__(
        self,
        services: Services,
        *,
        send_progress: SendProgress | None = None,
        progress_interval: float = 1.0,
    ) -> None:
        self.services = services
        self.send_progress = send_progress
        self.progress_interval = progress_interval
        self._routes: dict[str, Callable[[dict[str, Any], Job], Awaitable[Output]]] = {
            "tts": self._tts,
            "download": self._download,
            "health": self._health,
            "voices": self._voices,
        }

    async def handle(self, job: Job) -> Output:
        """The RunPod handler (``runpod.serverless.start({"handler": worker.handle})``)."""
        try:
            raw = job.get("input")
            if not isinstance(raw, dict):
                raise InvalidInput("input must be a JSON object")
            endpoint = raw.get("endpoint", "tts")
            route = self._routes.get(endpoint) if isinstance(endpoint, str) else None
            if route is None:
                raise InvalidInput(f"endpoint must be one of {', '.join(ENDPOINTS)}")
            return await route(raw, job)
        except F5ServeError as exc:
            out = error_output(exc)
            log.warning("job %s: %s: %s", job.get("id"), out["error"], exc.message)
            return out
        except Exception:
            log.exception("job %s failed unexpectedly", job.get("id"))
            return {
                "error": "handler_exception",
                "message": "unexpected error in the worker (see the worker log)",
            }

    # ------------------------------------------------------------------------------ endpoints

    async def _tts(self, raw: dict[str, Any], job: Job) -> Output:
        started = time.perf_counter()
        params = parse(TTSInput, raw)
        settings = self.services.settings
        check_text(params.text, settings.max_job_text_chars)
        body = params.speech_request_body()
        job_id = params.job_id or uuid.uuid4().hex
        wants_url = params.return_ in ("url", "both")
        if wants_url and params.response_format != OUTPUT_FORMAT:
            raise InvalidInput("audio_url is the stored WAV: use response_format 'wav' with it")
        url = await self._presigned_url(job_id) if wants_url else None
        progress = None
        if self.send_progress is not None:
            progress = ProgressReporter(job, job_id, self.send_progress, self.progress_interval)
        services = JobServices(self.services.synthesizer, self.services.storage, progress)
        try:
            output = await asyncio.wait_for(
                execute_job(job_id, body, services), settings.job_timeout
            )
        except asyncio.TimeoutError:
            raise Timeout(f"the job took longer than {settings.job_timeout:g} s") from None
        out: Output = {"status": "completed", "job_id": job_id}
        fmt = output_format(params.response_format)
        if params.return_ in ("base64", "both"):  # from the audio in memory, not read back
            audio = await encode_speech(output.speech, fmt.name)
            out["audio_base64"] = base64.b64encode(audio).decode("ascii")
        if url is not None:
            out["audio_url"] = url
        wall = time.perf_counter() - started
        self.services.metrics.observe_synthesis("runpod", wall, output.speech.duration)
        result = output.result
        return out | {
            "content_type": fmt.content_type,
            "filename": fmt.file_name(job_id),
            "duration": result["duration"],
            "sample_rate": result["sample_rate"],
            "processing_time_seconds": round(wall, 3),
            "sample_used": params.ref_name or result["voice"],
            "text": params.text,
            "model": result["model"],
            "language": result["language"],
            "seed": result["seed"],
            "segments": result["segments"],
        }

    async def _download(self, raw: dict[str, Any], job: Job) -> Output:
        params = parse(DownloadInput, raw)
        fmt = output_format(params.response_format)
        key = output_key(params.job_id)
        audio = await asyncio.to_thread(read_output, self.services.storage, key, fmt.name)
        return {
            "job_id": params.job_id,
            "audio_data": base64.b64encode(audio).decode("ascii"),
            "content_type": fmt.content_type,
            "filename": fmt.file_name(params.job_id),
        }

    async def _health(self, raw: dict[str, Any], job: Job) -> Output:
        parse(InfoInput, raw)
        checks = await asyncio.to_thread(self.services.check_ready)
        models = listing.models(self.services.registry)
        default = next(m for m in models if m.default)
        return {
            "status": "ok" if all(v == "ok" for v in checks.values()) else "degraded",
            "checks": checks,
            "version": __version__,
            "device": default.device or self.services.settings.device or default_device(),
            "default_model": default.name,
            "models": [
                {"name": m.name, "languages": m.languages, "loaded": m.loaded} for m in models
            ],
        }

    async def _voices(self, raw: dict[str, Any], job: Job) -> Output:
        parse(InfoInput, raw)
        voices = await asyncio.to_thread(listing.voices, self.services.voices)
        return {
            "voices": [
                {
                    "id": v.id,
                    "name": v.name,
                    "ref_name": v.ref_name,
                    "ref_text": v.ref_text,
                    "language": v.language,
                    "duration": v.duration,
                    "source": v.source,
                }
                for v in voices
            ]
        }

    # ------------------------------------------------------------------------------ helpers

    async def _presigned_url(self, job_id: str) -> str:
        """The download URL of the job's output (signed before synthesis: signing makes no
        request, and a worker without URLs fails before spending GPU time)."""
        storage = self.services.storage
        expires = self.services.settings.storage_url_expires
        url = await asyncio.to_thread(storage.url, output_key(job_id), expires)
        if url is None:
            raise InvalidInput(
                "return 'url' needs storage with download URLs (F5SERVE_STORAGE_URL=s3://...); "
                "this worker stores results locally: use return 'base64'"
            )
        return url
