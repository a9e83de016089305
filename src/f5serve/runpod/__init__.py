"""The RunPod serverless worker: ``python -m f5serve.runpod`` (docs/deploy-runpod.md).

The ``runpod`` SDK is an optional dependency (``pip install 'f5serve[runpod]'``); only
``__main__`` imports it, so the handler can be used and tested without starting the SDK.
"""

from f5serve.runpod.handler import ProgressReporter, RunPodWorker
from f5serve.runpod.settings import RunPodSettings

__all__ = ["ProgressReporter", "RunPodSettings", "RunPodWorker"]
