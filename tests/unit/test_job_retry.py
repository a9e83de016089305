"""Which failures a job worker tries again: only those that another attempt may cure."""

from __future__ import annotations

import asyncio

import pytest

from f5serve.core.jobs.worker import is_transient
from f5serve.core.storage.base import StorageError
from f5serve.errors import (
    DeviceError,
    DownloadError,
    InvalidInput,
    ModelAccessDenied,
    ModelUnavailable,
    Timeout,
)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (StorageError("bucket unreachable"), True),
        (DeviceError("CUDA error"), True),
        (ModelUnavailable("still loading"), True),
        (DownloadError("connection reset"), True),
        (RuntimeError("a fault of ours"), True),
        (ModelAccessDenied("gated: accept the terms and set HF_TOKEN"), False),
        (InvalidInput("text is empty"), False),
        (Timeout("over the job's time limit"), False),
        (asyncio.TimeoutError(), False),
    ],
)
def test_only_failures_another_attempt_may_cure_are_retried(
    exc: BaseException, transient: bool
) -> None:
    assert is_transient(exc) is transient
