"""procrastinate's worker started again whenever it stops: a pause doubling up to a ceiling, back
to the first pause after a run that lasted, one log line per restart, and ``/ready``'s queue
check saying meanwhile that no job is taken. No database: the worker's run is replaced."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("procrastinate")
from f5serve.core.jobs import distributed
from f5serve.core.jobs.distributed import Fetcher, QueueWorker, one_line
from f5serve.core.jobs.store import JobStore
from f5serve.core.metrics import Metrics


def test_a_stopped_worker_is_started_again_with_a_growing_pause(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(distributed, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(distributed, "RESTART_MAX", 0.2)
    worker = QueueWorker(
        JobStore(None),  # type: ignore[arg-type]  # never used: run() is replaced
        None,  # type: ignore[arg-type]
        "postgresql://nobody@127.0.0.1:1/none",
        None,
        SimpleNamespace(),  # type: ignore[arg-type]
        Metrics(),
        concurrency=1,
        timeout=1,
        retention=1,
        cleanup_interval=1,
        lease_seconds=1,
    )
    runs: list[float] = []
    checks: list[str | None] = []
    done = asyncio.Event()

    async def run(self: Fetcher) -> None:
        checks.append(worker.check())  # not registered yet
        runs.append(time.monotonic())
        if len(runs) == 4:  # up longer than the ceiling: the next pause is the first again
            await asyncio.sleep(0.25)
        if len(runs) == 7:
            done.set()
            await asyncio.Event().wait()  # runs until cancelled
        raise RuntimeError("side task failed\nwith details")

    monkeypatch.setattr(Fetcher, "run", run)

    async def scenario() -> None:
        worker._fetcher = asyncio.create_task(worker._fetch())
        await asyncio.wait_for(done.wait(), 60)
        worker._fetcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker._fetcher

    with caplog.at_level(logging.WARNING, logger=distributed.__name__):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == distributed.__name__]
    pauses = [float(line.split(" again in ")[1].split(" s")[0]) for line in lines]
    assert pauses == [0.05, 0.1, 0.2, 0.05, 0.1, 0.2]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)
    assert "(RuntimeError: side task failed with details)" in lines[0]
    assert lines[-1].endswith("(restart 6)")
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert all(gap >= pause for gap, pause in zip(gaps, pauses, strict=True))
    assert set(checks) == {"not taking jobs: the queue's worker is stopped or starting"}


def test_a_wrapped_database_error_is_shown_by_its_cause() -> None:
    class Wrapped(Exception):
        """Database error."""

    try:
        try:
            raise OSError("connection refused")
        except OSError as cause:
            raise Wrapped("\n    Database error.\n    ") from cause
    except Wrapped as exc:
        assert one_line(exc) == "OSError: connection refused"
    assert one_line(ValueError()) == "ValueError"
