"""Settings of the RunPod worker: the service's (``F5SERVE_*``) plus the worker's own."""

from __future__ import annotations

from pydantic import Field

from f5serve.core.settings import Settings
from f5serve.engine.devices import resolve_device

GPU_CONCURRENCY = 4  # jobs at once on a GPU: they share batched flow steps in the scheduler
CPU_CONCURRENCY = 1  # on a CPU batching does not pay (docs/performance.md)


class RunPodSettings(Settings):
    """Everything :class:`Settings` has, plus ``F5SERVE_RUNPOD_*``."""

    runpod_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Jobs this worker runs at once (default: 4 on a GPU, 1 on a CPU).",
    )
    runpod_progress_interval: float = Field(
        default=1.0, gt=0, description="Seconds between progress updates of one job."
    )

    def concurrency(self) -> int:
        """The configured concurrency, or the default for the device the worker uses."""
        if self.runpod_concurrency is not None:
            return self.runpod_concurrency
        device, _ = resolve_device(self.device, self.dtype)
        return GPU_CONCURRENCY if device.type == "cuda" else CPU_CONCURRENCY
