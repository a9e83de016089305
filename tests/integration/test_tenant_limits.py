"""Per-key limits and usage counted in the database, on SQLite and PostgreSQL: two ``Tenancy``
objects on one database stand for two processes, which share one count; requests at once never
pass the limit; windows start again on the (injected) clock."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_job_ownership import LONG, FakeSynthesizer, until

from f5serve.core.db import open_database, upgrade_database
from f5serve.core.jobs import InProcessQueue, JobServices, JobStore, JobWorker
from f5serve.core.jobs.store import FAILED, SUCCEEDED
from f5serve.core.metrics import Metrics
from f5serve.core.storage.local import LocalStorage
from f5serve.core.tenants import Limits, Tenancy
from f5serve.errors import TooManyRequests, Unauthorized

NOON = 1_790_000_000 - 1_790_000_000 % 86_400 + 43_200.5  # 12:00:00.5 UTC on some day


@pytest.fixture
def url(empty_database: str) -> str:
    upgrade_database(empty_database)
    return empty_database


def processes(url: str, now: list[float]) -> tuple[Tenancy, Tenancy]:
    def clock() -> float:
        return now[0]

    return Tenancy(open_database(url), clock=clock), Tenancy(open_database(url), clock=clock)


def test_requests_per_minute_are_shared_by_every_process(url: str) -> None:
    now = [NOON]
    one, two = processes(url, now)
    _, key = one.create("alice", requests_per_minute=3)
    assert two.enabled() and one.authenticate(key) == two.authenticate(key)
    one.admit(key)
    two.admit(key)
    one.admit(key)
    with pytest.raises(TooManyRequests) as refused:
        two.admit(key)
    assert refused.value.retry_after == 60  # 12:00:00.5 → the minute ends in 59.5 s
    now[0] += 59.5  # the next minute
    two.admit(key)
    tenant = one.authenticate(key)
    (used,) = one.usage(tenant)
    assert used.requests == 4  # the refused one is not counted


def test_requests_at_once_never_pass_the_limit(url: str) -> None:
    now = [NOON]
    one, two = processes(url, now)
    _, key = one.create("burst", requests_per_minute=5)
    tenant = one.authenticate(key)

    def attempt(i: int) -> bool:
        try:
            (one if i % 2 else two).count_request(tenant)
        except TooManyRequests:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(attempt, range(24)))
    assert accepted == 5


def test_audio_seconds_per_day_are_checked_then_charged(url: str) -> None:
    now = [NOON]
    one, two = processes(url, now)
    _, key = one.create("speaker", audio_seconds_per_day=10)
    tenant = one.authenticate(key)
    one.check_audio(tenant)
    one.charge(tenant, 6.0)
    two.check_audio(tenant)  # 6 of 10 s used: the next request may start
    two.charge(tenant, 6.0)  # and may end over the limit
    for process in (one, two):
        with pytest.raises(TooManyRequests) as refused:
            process.check_audio(tenant)
        assert refused.value.retry_after == 43_200  # until midnight UTC
    (used,) = two.usage(tenant)
    assert used.audio_seconds == pytest.approx(12.0) and used.requests == 0
    now[0] += 43_200  # a new day
    one.check_audio(tenant)
    assert one.usage(tenant)[0].audio_seconds == 0


def test_defaults_apply_to_keys_without_limits_of_their_own(url: str) -> None:
    sessions = open_database(url)
    tenancy = Tenancy(sessions, frozenset({"env-key"}), Limits(7, 60.0))
    _, own = tenancy.create("own", requests_per_minute=2)
    _, default = tenancy.create("default")
    assert tenancy.authenticate(own).limits == Limits(2, 60.0)  # type: ignore[union-attr]
    assert tenancy.authenticate(default).limits == Limits(7, 60.0)  # type: ignore[union-attr]
    env = tenancy.authenticate("env-key")
    assert env is not None and env.admin and env.limits == Limits(7, 60.0)


def test_a_server_is_open_until_a_key_exists_and_closed_after(url: str) -> None:
    one, two = processes(url, [NOON])
    assert one.authenticate(None) is None and two.authenticate("anything") is None
    row, key = one.create("first")
    with pytest.raises(Unauthorized):
        two.authenticate(None)  # the other process sees the new key at once
    two.revoke(row.id)
    for process in (one, two):
        with pytest.raises(Unauthorized):
            process.authenticate(key)  # revoked in every process
        with pytest.raises(Unauthorized):
            process.authenticate(None)  # and revoking the last key does not open the server


def test_queued_jobs_stop_at_the_audio_of_the_day(url: str, tmp_path: Path) -> None:
    """Jobs accepted while the key was under its limit: those that start once it is used up
    fail with ``too_many_requests`` instead of passing it."""
    now = [NOON]
    tenancy = Tenancy(open_database(url), clock=lambda: now[0])
    row, _ = tenancy.create("batch", audio_seconds_per_day=0.15)  # the fake makes 0.1 s a job
    store = JobStore(open_database(url))
    for job_id in ("first", "second", "third"):
        store.create(job_id, {"text": job_id}, owner=row.id)

    async def scenario() -> None:
        synthesizer = FakeSynthesizer()
        synthesizer.release.set()
        services = JobServices(synthesizer, LocalStorage(tmp_path / "storage"), tenancy=tenancy)  # type: ignore[arg-type]
        worker = JobWorker(
            store,
            InProcessQueue(),
            services,
            Metrics(),
            concurrency=1,  # one after the other, oldest first
            timeout=LONG,
            retention=LONG,
            cleanup_interval=LONG,
            lease_seconds=LONG,
        )
        await worker.start()
        await until(lambda: store.get("third").status in (SUCCEEDED, FAILED))
        await worker.stop()

    asyncio.run(scenario())
    statuses = [store.get(job_id).status for job_id in ("first", "second", "third")]
    assert statuses == [SUCCEEDED, SUCCEEDED, FAILED]  # 0.1 s, then 0.2 s (over), then refused
    assert store.get("third").error_code == "too_many_requests"
    assert tenancy.usage(tenancy.tenant(row.id))[0].audio_seconds == pytest.approx(0.2)
