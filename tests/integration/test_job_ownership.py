"""Job ownership on SQLite and PostgreSQL: leases, attempt fencing, cancel requests seen by the
worker, the sweep that re-runs the jobs of dead workers, and progress read from the database.

Two stores opened on the same database stand for two processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from f5serve.core.db import open_database, upgrade_database
from f5serve.core.jobs import InProcessQueue, JobServices, JobStore, JobWorker
from f5serve.core.jobs.store import CANCELLED, QUEUED, RUNNING, SUCCEEDED, Claim
from f5serve.core.metrics import Metrics
from f5serve.core.storage.local import LocalStorage
from f5serve.core.synthesis import Speech, SpeechRequest
from f5serve.core.tenants import Tenancy, Tenant
from f5serve.engine.options import SynthesisOptions
from f5serve.engine.pipeline import Progress

LONG = 30.0  # seconds: a lease that does not run out during a test


@pytest.fixture
def url(empty_database: str) -> str:
    upgrade_database(empty_database)
    return empty_database


def stores(url: str) -> tuple[JobStore, JobStore]:
    """Two processes' views of one database."""
    return JobStore(open_database(url)), JobStore(open_database(url))


def claim(store: JobStore, job_id: str, worker_id: str, lease: float) -> Claim:
    row = store.claim(job_id, worker_id, lease)
    assert row is not None, f"{worker_id} could not claim {job_id}"
    return Claim.of(row)


def test_only_jobs_whose_lease_expired_are_requeued(url: str) -> None:
    store, other = stores(url)
    for job_id in ("alive", "dead"):
        store.create(job_id, {"text": job_id})
    alive = claim(store, "alive", "worker-a", LONG)
    claim(store, "dead", "worker-b", 0)
    assert other.requeue_expired() == ["dead"]
    assert other.get("alive").status == RUNNING and other.get("alive").worker_id == "worker-a"
    dead = other.get("dead")
    assert dead.status == QUEUED and dead.worker_id is None and dead.lease_expires_at is None
    assert store.renew([alive], LONG) == []  # still held: the lease moves on
    assert other.release("worker-a") == ["alive"]  # a worker that stops hands its jobs back
    assert other.get("alive").status == QUEUED


def test_a_zombie_workers_late_writes_never_overwrite_a_newer_attempt(url: str) -> None:
    store, other = stores(url)
    store.create("job", {"text": "Hi."})
    zombie = claim(store, "job", "worker-a", 0)  # stalls until its lease runs out
    assert other.requeue_expired() == ["job"]
    fresh = claim(other, "job", "worker-b", LONG)
    assert (zombie.attempt, fresh.attempt) == (1, 2)
    other.progress(fresh, 0.25, 1, 2, 4, 8)
    # the zombie wakes up: its progress, result and failure are all refused
    store.progress(zombie, 0.9, 2, 2, 7, 8)
    assert store.succeed(zombie, {"output_key": "stale"}) is None
    assert store.fail(zombie, "internal_error", "late") is None
    assert store.renew([zombie], LONG) == ["job"]  # and it learns to stop
    row = other.get("job")
    assert (row.status, row.worker_id, row.attempts, row.step) == (RUNNING, "worker-b", 2, 4)
    done = other.succeed(fresh, {"output_key": "output/job.wav"})
    assert done is not None and done.status == SUCCEEDED
    assert done.result == {"output_key": "output/job.wav"}


def test_a_cancelled_job_stays_cancelled(url: str) -> None:
    store, other = stores(url)
    store.create("job", {"text": "Hi."})
    running = claim(store, "job", "worker-a", LONG)
    assert other.cancel("job").status == CANCELLED  # from another process
    assert store.renew([running], LONG) == ["job"]
    assert store.succeed(running, {"output_key": "x"}) is None
    assert other.get("job").status == CANCELLED


class FakeSynthesizer:
    """Reports progress and then blocks until ``release`` (or until cancelled)."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.tenants: dict[str, Tenant | None] = {}  # the key each text was spoken for
        self.cancelled: set[str] = set()
        self.release = asyncio.Event()
        self.defaults = SynthesisOptions()  # what execute_job fills a stored request with

    async def synthesize(
        self, request: SpeechRequest, progress: Callable[[Progress], None] | None = None
    ) -> Speech:
        self.started.add(request.text)
        self.tenants[request.text] = request.tenant
        if progress is not None:
            progress(Progress(chunk=1, chunks=2, step=3, steps=8, done=3))
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.add(request.text)
            raise
        audio = np.full(2400, 0.1, dtype=np.float32)
        return Speech(audio, 24000, "fake", "en", None, 0)


def make_worker(
    url: str,
    tmp_path: Path,
    synthesizer: FakeSynthesizer,
    lease: float,
    tenancy: Tenancy | None = None,
) -> JobWorker:
    storage = LocalStorage(tmp_path / "storage")
    services = JobServices(synthesizer, storage, tenancy=tenancy)  # type: ignore[arg-type]
    return JobWorker(
        JobStore(open_database(url)),
        InProcessQueue(),
        services,
        Metrics(),
        concurrency=2,
        timeout=LONG,
        retention=LONG,
        cleanup_interval=LONG,
        lease_seconds=lease,
    )


async def until(condition: Callable[[], Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        await asyncio.sleep(0.02)


def test_a_worker_stops_a_job_cancelled_from_another_process(url: str, tmp_path: Path) -> None:
    other = JobStore(open_database(url))

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        worker = make_worker(url, tmp_path, synthesizer, lease=0.3)
        other.create("job", {"text": "cancel me"})
        await worker.start()
        await until(lambda: "cancel me" in synthesizer.started)
        # the progress the worker wrote is what any process reads
        await until(lambda: other.get("job").step == 3)
        assert other.get("job").chunks == 2
        other.cancel("job")
        await until(lambda: "cancel me" in synthesizer.cancelled)
        await worker.stop()

    asyncio.run(scenario())
    assert other.get("job").status == CANCELLED


def test_a_success_is_charged_when_its_worker_stops_between_writing_and_charging_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenancy = Tenancy(open_database(url))
    row, _ = tenancy.create("alice")
    store = JobStore(open_database(url))
    store.create("owned", {"text": "owned"}, owner=row.id)
    written, stopped = threading.Event(), threading.Event()
    succeed = JobStore.succeed

    def succeed_then_wait(self: JobStore, claim: Claim, result: dict[str, Any]) -> Any:
        recorded = succeed(self, claim, result)  # the success is written ...
        written.set()
        assert stopped.wait(60)  # ... and the worker stops before its owner is charged
        return recorded

    monkeypatch.setattr(JobStore, "succeed", succeed_then_wait)

    def charged() -> float:
        return sum(u.audio_seconds for u in tenancy.usage(tenancy.tenant(row.id)))

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        synthesizer.release.set()
        worker = make_worker(url, tmp_path, synthesizer, LONG, tenancy)
        await worker.start()
        await until(written.is_set)
        await worker.stop()  # cancels the job's task
        stopped.set()
        await until(lambda: charged() > 0)

    asyncio.run(scenario())
    assert store.get("owned").status == SUCCEEDED
    assert charged() == pytest.approx(0.1)  # the fake's 2400 samples at 24 kHz, once


def test_a_running_worker_reruns_the_jobs_of_a_dead_one(url: str, tmp_path: Path) -> None:
    other = JobStore(open_database(url))
    other.create("job", {"text": "orphan"})
    claim(other, "job", "a-worker-that-dies", 3)

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        synthesizer.release.set()
        worker = make_worker(url, tmp_path, synthesizer, lease=0.3)
        await worker.start()
        # a lease that has not run out is respected at start-up ...
        assert other.get("job").worker_id == "a-worker-that-dies"
        # ... and the periodic sweep re-queues the job once it has
        await until(lambda: other.get("job").status == SUCCEEDED)
        await worker.stop()

    asyncio.run(scenario())
    row = other.get("job")
    assert row.attempts == 2 and row.worker_id != "a-worker-that-dies"
    assert row.result is not None and row.result["model"] == "fake"
