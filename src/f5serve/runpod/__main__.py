"""``python -m f5serve.runpod``: load the model once, then hand the handler to the RunPod SDK.

The SDK's own flags work unchanged: ``--test_input '<json>'`` runs one job and exits (status 1
if it returned an error), ``--rp_serve_api --rp_api_port 8000`` serves RunPod's ``/run``,
``/runsync`` and ``/status`` locally, ``--rp_log_level DEBUG`` sets the SDK's log level.
Configuration: the ``F5SERVE_*`` variables of the HTTP service (see docs/deploy-runpod.md).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from f5serve.core.services import build_services
from f5serve.errors import F5ServeError
from f5serve.runpod.handler import RunPodWorker, SendProgress
from f5serve.runpod.settings import RunPodSettings

log = logging.getLogger("f5serve.runpod")

# Set by RunPod on a deployed worker: where the SDK posts results and progress updates. Without
# it (local runs) progress_update would only log failed requests, so progress is not sent.
POST_OUTPUT_VARIABLE = "RUNPOD_WEBHOOK_POST_OUTPUT"


def build_worker(settings: RunPodSettings, send_progress: SendProgress | None) -> RunPodWorker:
    """Open storage and database, import the voices directory, load the default model."""
    services = build_services(settings)
    imported = services.voices.import_dir()
    if imported:
        log.info("imported %d voice(s) from %s", imported, settings.voices_dir)
    if settings.preload:
        services.preload()
    return RunPodWorker(
        services,
        send_progress=send_progress if os.environ.get(POST_OUTPUT_VARIABLE) else None,
        progress_interval=settings.runpod_progress_interval,
    )


def main() -> None:
    settings = RunPodSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        # Importing the SDK reads RUNPOD_* variables and ~/.runpod/config.toml (nothing is
        # written, no request is made); it takes about two seconds, hence only here.
        import runpod
    except ImportError:
        sys.exit("error: the RunPod worker needs the runpod SDK: pip install 'f5serve[runpod]'")
    try:
        concurrency = settings.concurrency()
        worker = build_worker(settings, runpod.serverless.progress_update)
    except F5ServeError as exc:
        sys.exit(f"error: {exc.message}")
    log.info("RunPod worker ready: up to %d job(s) at once", concurrency)

    def concurrency_modifier(current: int) -> int:
        return concurrency

    config: dict[str, Any] = {
        "handler": worker.handle,
        "concurrency_modifier": concurrency_modifier,
    }
    runpod.serverless.start(config)


if __name__ == "__main__":
    main()
