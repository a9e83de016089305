"""Background loops log a storage or database fault on one line, and a bug with its traceback."""

from __future__ import annotations

import logging

import pytest

from f5serve.core.db import DatabaseUnavailable
from f5serve.core.storage.base import StorageError, log_failure

log = logging.getLogger("f5serve.test")


@pytest.mark.parametrize(
    "fault", [DatabaseUnavailable("the database cannot be reached"), StorageError("bucket gone")]
)
def test_a_fault_of_the_database_or_storage_is_one_line(
    fault: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise fault
    except Exception:
        log_failure(log, "lease renewal of %d job(s) failed", 3)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == f"lease renewal of 3 job(s) failed: {fault}"


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("a bug of ours")
    except Exception:
        log_failure(log, "worker heartbeat failed")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.getMessage() == "worker heartbeat failed"
