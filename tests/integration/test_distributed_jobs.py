"""Jobs on procrastinate in the machine's PostgreSQL: a job and its queue entry are written in
one transaction, each model has its queue, workers run only the queues of their models, the jobs
of a dead worker run elsewhere exactly once, only transient failures are tried again, a cancel
from another process stops a running job, and a worker takes jobs again after a database outage.

Workers here run in this process (with a fake synthesiser); ``test_scale_out.py`` runs real
processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fresh_databases import database_outage, fresh_postgres
from sqlalchemy import text
from test_job_ownership import FakeSynthesizer, until

from f5serve.core.db import DatabaseUnavailable, JobRow, open_database, upgrade_database
from f5serve.core.jobs import JobServices, JobStore
from f5serve.core.jobs.store import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from f5serve.core.metrics import Metrics
from f5serve.core.storage import StorageError
from f5serve.core.storage.local import LocalStorage
from f5serve.core.synthesis import Speech, SpeechRequest
from f5serve.core.tenants import Tenancy
from f5serve.errors import InvalidInput

pytest.importorskip("procrastinate")
from f5serve.core.jobs.distributed import ProcrastinateQueue, QueueWorker

LONG = 30.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres() as url:
        upgrade_database(url)
        yield url


@pytest.fixture
def url(pg_url: str) -> str:
    """The module's database, emptied of jobs and queue entries."""
    with open_database(pg_url)() as session:
        session.execute(text("DELETE FROM jobs"))
        session.execute(text("DELETE FROM procrastinate_jobs"))
        session.commit()
    return pg_url


def queued_store(url: str) -> tuple[JobStore, ProcrastinateQueue]:
    sessions = open_database(url)
    queue = ProcrastinateQueue(sessions)
    return JobStore(sessions, queue.enqueue), queue


def entries(url: str) -> list[tuple[str, str, str]]:
    """procrastinate's queue entries: (job id, queue, status)."""
    query = text("SELECT args->>'job_id', queue_name, status::text FROM procrastinate_jobs")
    with open_database(url)() as session:
        return sorted(tuple(row) for row in session.execute(query))  # type: ignore[misc]


def make_worker(
    url: str,
    tmp_path: Path,
    synthesizer: Any,
    models: list[str] | None,
    lease: float = LONG,
    tenancy: Tenancy | None = None,
) -> QueueWorker:
    store, queue = queued_store(url)
    services = JobServices(synthesizer, LocalStorage(tmp_path / "storage"), tenancy=tenancy)
    queues = None if models is None else [f"tts.{m}" for m in models]
    return QueueWorker(
        store,
        queue,
        url,
        queues,
        services,
        Metrics(),
        concurrency=2,
        timeout=LONG,
        retention=LONG,
        cleanup_interval=LONG,
        lease_seconds=lease,
        max_attempts=3,
    )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_a_job_and_its_queue_entry_are_one_transaction(url: str) -> None:
    store, queue = queued_store(url)
    job, created = store.create("kept", {"text": "Hi."}, "tts.tiny-en")
    assert created and job.queue == "tts.tiny-en"
    assert entries(url) == [("kept", "tts.tiny-en", "todo")]
    # the same job again (an idempotent retry) queues nothing more
    assert store.create("kept", {"text": "Hi."}, "tts.tiny-en")[1] is False

    def defer_then_fail(session: Any, job_id: str, name: str | None) -> None:
        queue.enqueue(session, job_id, name)
        raise RuntimeError("the submission fails after its queue entry was written")

    failing = JobStore(open_database(url), defer_then_fail)
    with pytest.raises(RuntimeError):
        failing.create("rolled-back", {"text": "Hi."}, "tts.tiny-en")
    # the rollback took both: no row, no queue entry
    with open_database(url)() as session:
        assert session.get(JobRow, "rolled-back") is None
    assert entries(url) == [("kept", "tts.tiny-en", "todo")]


def test_a_job_runs_as_the_key_that_submitted_it_and_is_charged_to_it(
    url: str, tmp_path: Path
) -> None:
    replica = Tenancy(open_database(url))  # the API replica that took the job
    row, _ = replica.create("alice")
    store, _ = queued_store(url)
    store.create("owned", {"text": "owned"}, "tts.tiny-en", owner=row.id)

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        synthesizer.release.set()
        worker = make_worker(url, tmp_path, synthesizer, None, tenancy=Tenancy(open_database(url)))
        await worker.start()
        await until(lambda: store.get("owned").status == SUCCEEDED)
        # the charge is written just after the success, by the same thread
        await until(lambda: replica.usage(replica.tenant(row.id))[0].audio_seconds > 0)
        await worker.stop()
        tenant = synthesizer.tenants["owned"]  # the voices it may use are alice's
        assert tenant is not None and (tenant.id, tenant.name, tenant.admin) == (
            row.id,
            "alice",
            False,
        )

    run(scenario)
    alice = replica.tenant(row.id)
    (used,) = replica.usage(alice)
    assert used.audio_seconds == pytest.approx(0.1)  # the fake's 2400 samples at 24 kHz


def test_workers_run_only_the_queues_of_their_models(url: str, tmp_path: Path) -> None:
    store, _ = queued_store(url)
    store.create("english", {"text": "english"}, "tts.tiny-en")
    store.create("german", {"text": "german"}, "tts.tiny-de")
    store.create("withdrawn", {"text": "withdrawn"}, "tts.tiny-de")
    store.cancel("withdrawn")  # its entry stays, but it waits no more: not counted

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        synthesizer.release.set()
        english = make_worker(url, tmp_path, synthesizer, ["tiny-en"])
        await english.start()
        await until(lambda: store.get("english").status == SUCCEEDED)
        # the German job waits for a worker that serves German ...
        assert store.get("german").status == QUEUED
        assert ("german", "tts.tiny-de", "todo") in entries(url)
        assert english.depths() == {"jobs": 1.0, "tts.tiny-de": 1.0}
        german = make_worker(url, tmp_path, synthesizer, ["tiny-de"])
        await german.start()  # ... and runs once one starts
        await until(lambda: store.get("german").status == SUCCEEDED)
        await english.stop()
        await german.stop()

    run(scenario)
    assert (tmp_path / "storage" / "output" / "german.wav").is_file()
    assert entries(url) == []  # finished entries are deleted


def test_the_jobs_of_a_dead_worker_run_once_on_another(url: str, tmp_path: Path) -> None:
    store, _ = queued_store(url)
    for job_id in ("orphan-1", "orphan-2"):
        store.create(job_id, {"text": job_id}, "tts.tiny-en")
        # a worker claimed them, then died: their leases run out, their entries stay taken
        store.claim(job_id, "a-worker-that-dies", 0.5)
    with open_database(url)() as session:
        session.execute(text("UPDATE procrastinate_jobs SET status = 'doing'"))
        session.commit()
    completions: list[str] = []

    class Counting(FakeSynthesizer):
        async def synthesize(self, request: SpeechRequest, progress: Any = None) -> Speech:
            speech = await super().synthesize(request, progress)
            completions.append(request.text)
            return speech

    async def scenario() -> None:
        synthesizer = Counting()
        synthesizer.release.set()
        survivor = make_worker(url, tmp_path, synthesizer, ["tiny-en"], lease=0.6)
        await survivor.start()
        await until(lambda: all(store.get(j).status == SUCCEEDED for j in ("orphan-1", "orphan-2")))
        await until(lambda: entries(url) == [])  # the dead worker's stalled entries are closed
        await survivor.stop()

    run(scenario)
    assert sorted(completions) == ["orphan-1", "orphan-2"]
    assert {store.get(j).attempts for j in ("orphan-1", "orphan-2")} == {2}


class Failing(FakeSynthesizer):
    """Fails each job's first ``failures[text]`` attempts with the given error."""

    def __init__(self, failures: dict[str, tuple[int, Exception]]) -> None:
        super().__init__()
        self.failures = failures
        self.calls: dict[str, int] = {}
        self.release.set()

    async def synthesize(self, request: SpeechRequest, progress: Any = None) -> Speech:
        self.calls[request.text] = self.calls.get(request.text, 0) + 1
        times, error = self.failures.get(request.text, (0, None))
        if error is not None and self.calls[request.text] <= times:
            raise error
        return Speech(np.zeros(2400, dtype=np.float32), 24000, "fake", "en", None, 0)


def test_only_transient_failures_are_tried_again(url: str, tmp_path: Path) -> None:
    store, _ = queued_store(url)
    synthesizer = Failing(
        {
            "storage hiccup": (1, StorageError("the bucket did not answer")),
            "internal bug": (5, RuntimeError("boom")),
            "bad input": (5, InvalidInput("no such voice")),
        }
    )
    ids = [name.replace(" ", "-") for name in synthesizer.failures]
    for job_id, name in zip(ids, synthesizer.failures, strict=True):
        store.create(job_id, {"text": name}, "tts.tiny-en")

    async def scenario() -> None:
        worker = make_worker(url, tmp_path, synthesizer, None)
        await worker.start()
        done = (SUCCEEDED, FAILED)
        await until(
            lambda: all(store.get(j.replace(" ", "-")).status in done for j in synthesizer.failures)
        )
        await worker.stop()

    run(scenario)
    hiccup, bug, bad = (store.get(j) for j in ("storage-hiccup", "internal-bug", "bad-input"))
    assert (hiccup.status, hiccup.attempts) == (SUCCEEDED, 2)
    assert (bug.status, bug.attempts, bug.error_code) == (FAILED, 3, "internal_error")
    assert (bad.status, bad.attempts, bad.error_code) == (FAILED, 1, "invalid_input")
    assert synthesizer.calls == {"storage hiccup": 2, "internal bug": 3, "bad input": 1}


def test_a_cancel_from_another_process_stops_a_running_job(url: str, tmp_path: Path) -> None:
    store, _ = queued_store(url)
    other = JobStore(open_database(url))
    store.create("long", {"text": "cancel me"}, "tts.tiny-en")
    store.create("waiting", {"text": "never runs"}, "tts.tiny-de")

    synthesizer = FakeSynthesizer()

    async def scenario() -> None:
        worker = make_worker(url, tmp_path, synthesizer, ["tiny-en", "tiny-de"], lease=0.6)
        other.cancel("waiting")  # queued: its entry runs to nothing
        await worker.start()
        await until(lambda: "cancel me" in synthesizer.started)
        assert other.get("long").status == RUNNING
        other.cancel("long")
        await until(lambda: "cancel me" in synthesizer.cancelled)
        await until(lambda: entries(url) == [])
        await worker.stop()

    run(scenario)
    assert other.get("long").status == CANCELLED and other.get("waiting").status == CANCELLED
    assert synthesizer.started == {"cancel me"}


def test_a_worker_that_stops_hands_its_running_job_to_another(url: str, tmp_path: Path) -> None:
    store, _ = queued_store(url)
    store.create("handed-back", {"text": "long"}, "tts.tiny-en")

    async def scenario() -> None:
        stopping = FakeSynthesizer()  # never finishes on its own
        first = make_worker(url, tmp_path, stopping, None)
        await first.start()
        await until(lambda: "long" in stopping.started)
        await first.stop()  # a normal shutdown: the job goes back to its queue at once
        assert store.get("handed-back").status == QUEUED
        assert ("handed-back", "tts.tiny-en", "todo") in entries(url)
        finishing = FakeSynthesizer()
        finishing.release.set()
        second = make_worker(url, tmp_path, finishing, None)
        await second.start()
        await until(lambda: store.get("handed-back").status == SUCCEEDED)
        await second.stop()

    run(scenario)
    assert store.get("handed-back").attempts == 2


def test_a_job_whose_claim_fails_runs_once_the_database_answers(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database drops between procrastinate taking the queue entry and the worker's claim
    of the job row: the entry is spent, the row still queued. The job must still run."""
    store, _ = queued_store(url)
    store.create("unclaimed", {"text": "claim me"}, "tts.tiny-en")
    synthesizer = FakeSynthesizer()
    synthesizer.release.set()
    worker = make_worker(url, tmp_path, synthesizer, None, lease=0.6)
    claim = worker.store.claim
    faults: list[str] = []

    def fails_once(job_id: str, *args: Any) -> Any:
        if not faults:
            faults.append(job_id)
            raise DatabaseUnavailable("the database is unavailable: connection lost")
        return claim(job_id, *args)

    monkeypatch.setattr(worker.store, "claim", fails_once)
    monkeypatch.setattr("f5serve.core.jobs.worker.CLAIM_RETRY_SECONDS", 0.1)

    async def scenario() -> None:
        await worker.start()
        await until(lambda: store.get("unclaimed").status == SUCCEEDED, timeout=60)
        await until(lambda: entries(url) == [], timeout=60)
        await worker.stop()

    run(scenario)
    assert faults == ["unclaimed"] and synthesizer.started == {"claim me"}
    assert store.get("unclaimed").attempts == 1


def test_a_job_whose_worker_died_before_claiming_it_runs_elsewhere(
    url: str, tmp_path: Path
) -> None:
    """A worker took the queue entry, then died before its claim: the entry is closed as
    stalled, the row is still queued. The job must still run."""
    store, _ = queued_store(url)
    store.create("fetched", {"text": "fetched, never claimed"}, "tts.tiny-en")
    with open_database(url)() as session:  # taken by a worker with no heartbeat
        session.execute(text("UPDATE procrastinate_jobs SET status = 'doing'"))
        session.commit()
    synthesizer = FakeSynthesizer()
    synthesizer.release.set()

    async def scenario() -> None:
        survivor = make_worker(url, tmp_path, synthesizer, ["tiny-en"], lease=0.6)
        await survivor.start()
        await until(lambda: store.get("fetched").status == SUCCEEDED, timeout=60)
        await until(lambda: entries(url) == [], timeout=60)
        await survivor.stop()

    run(scenario)
    assert synthesizer.started == {"fetched, never claimed"}
    assert store.get("fetched").attempts == 1


@pytest.mark.slow  # procrastinate gives up on the database after its pool's 30 s
def test_a_worker_takes_jobs_again_after_a_database_outage(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database goes away under a worker (its connections cut, new ones refused) until
    procrastinate's worker stops, then comes back: the worker is started again (one line in the
    log), so a job submitted after the outage runs. Meanwhile it says that it takes no jobs."""
    store, _ = queued_store(url)
    synthesizer = FakeSynthesizer()
    synthesizer.release.set()

    async def scenario() -> None:
        worker = make_worker(url, tmp_path, synthesizer, None, lease=1.5)
        await worker.start()
        store.create("before", {"text": "before the outage"}, "tts.tiny-en")
        await until(lambda: store.get("before").status == SUCCEEDED, timeout=60)
        await until(lambda: entries(url) == [], timeout=60)  # procrastinate is done with it
        assert worker.check() == "ok"
        with database_outage(url):
            await until(lambda: worker.check() != "ok", timeout=120)
        store.create("after", {"text": "after the outage"}, "tts.tiny-en")
        await until(lambda: store.get("after").status == SUCCEEDED, timeout=120)
        await until(lambda: worker.check() == "ok", timeout=60)
        await worker.stop()

    run(scenario)
    assert synthesizer.started == {"before the outage", "after the outage"}
    assert store.get("after").attempts == 1
    restarts = [r for r in caplog.records if "starting it again" in r.getMessage()]
    assert restarts and all(r.exc_info is None for r in restarts), restarts
