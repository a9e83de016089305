"""Scale-out with real processes on the machine's PostgreSQL: one stateless API replica
(``f5serve serve --no-worker``) and two workers (``f5serve worker``, tiny model, CPU) sharing
the database and a storage folder.

Submitted jobs run on a worker and download from the API (restarted mid-job); sync and
streamed requests are forwarded; a worker killed with SIGKILL mid-jobs loses none (each
completes exactly once, on the other worker); a worker killed mid-stream ends the client's
response with an error, not a hang; with no live worker a sync request is 503 with Retry-After.
Skipped (reason printed) without a PostgreSQL server.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fresh_databases import fresh_postgres
from server_process import Server
from sqlalchemy import create_engine, text

from f5serve.core.db import database_url, upgrade_database

pytest.importorskip("procrastinate")
pytestmark = pytest.mark.slow

TEXT = "Each worker takes its share of the queue."
LEASE = 3  # seconds: how soon the jobs of a dead worker run elsewhere
WAIT = 60  # seconds an HTTP call may take on a busy 2-core machine


@dataclass
class Cluster:
    api: Server
    workers: list[Server]
    database: str

    def sql(self, query: str) -> list[Any]:
        engine = create_engine(database_url(self.database))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query)))
        finally:
            engine.dispose()

    def job(self, job_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.api.url}/v1/jobs/{job_id}", timeout=WAIT).json()  # type: ignore[no-any-return]


def until(condition: Callable[[], Any], timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_postgres() as url:
        upgrade_database(url)
        root = tmp_path_factory.mktemp("scale")
        shared = {
            "database_url": url,
            "storage_url": str(root / "storage"),  # the storage every process shares
            "job_lease_seconds": LEASE,
        }
        workers = []
        for name in ("worker-a", "worker-b"):
            (root / name).mkdir()
            workers.append(
                Server(root / name, "worker", worker_models="tiny", job_workers=2, **shared)
            )
        (root / "api").mkdir()
        api = Server(root / "api", run_worker=False, **shared)  # preload: warms the detector
        running = []
        try:
            for server in [*workers, api]:
                running.append(server.start())
            yield Cluster(api, workers, url)
        finally:
            for server in running:
                if server.process is not None and server.process.poll() is None:
                    server.kill(signal.SIGTERM)


def test_a_job_runs_on_a_worker_and_downloads_from_the_api(cluster: Cluster) -> None:
    body = {"text": TEXT, "voice": "narrator"}
    r = httpx.post(f"{cluster.api.url}/v1/jobs", json=body, timeout=WAIT)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert cluster.sql(f"SELECT queue FROM jobs WHERE id = '{job_id}'") == [("tts.tiny",)]
    cluster.api.kill()  # the API replica restarts mid-job: nothing changes for the job
    cluster.api.start()
    until(lambda: cluster.job(job_id)["status"] == "succeeded", what="the job to succeed")
    audio = httpx.get(
        f"{cluster.api.url}/v1/jobs/{job_id}/audio", params={"format": "flac"}, timeout=WAIT
    )
    assert audio.status_code == 200 and audio.content[:4] == b"fLaC"
    metrics = httpx.get(f"{cluster.api.url}/metrics", timeout=WAIT).text
    assert 'f5serve_queue_depth{queue="jobs"}' in metrics


def test_sync_and_streamed_requests_are_forwarded_to_a_worker(cluster: Cluster) -> None:
    body = {"text": TEXT, "voice": "narrator", "response_format": "wav"}
    r = httpx.post(f"{cluster.api.url}/v1/tts", json=body, timeout=WAIT)
    assert r.status_code == 200, r.text
    assert r.content[:4] == b"RIFF" and "x-processing-time" in r.headers
    speech = {"model": "tts-1", "voice": "narrator", "input": TEXT, "response_format": "pcm"}
    url = f"{cluster.api.url}/v1/audio/speech"
    with httpx.stream("POST", url, json=speech, timeout=WAIT) as streamed:
        assert streamed.status_code == 200
        pcm = b"".join(streamed.iter_bytes())
    assert len(pcm) > 24000  # more than half a second of 16-bit audio at 24 kHz
    unknown = {"text": TEXT, "voice": "nobody"}
    bad = httpx.post(f"{cluster.api.url}/v1/tts", json=unknown, timeout=WAIT)
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "not_found"


def stream_while_killing(url: str, body: dict[str, Any], worker: Server) -> None:
    """Read a streamed answer; once its first bytes came, SIGKILL ``worker``; read on."""
    with httpx.stream("POST", url, json=body, timeout=WAIT) as streamed:
        assert streamed.status_code == 200
        pieces = streamed.iter_raw()
        next(pieces)
        worker.kill()
        for _ in pieces:
            pass


def test_nothing_is_lost_when_workers_die(cluster: Cluster) -> None:
    a, b = cluster.workers
    body = {"text": " ".join([TEXT] * 4), "voice": "narrator", "nfe_steps": 16}
    ids = []
    for seed in range(6):
        r = httpx.post(f"{cluster.api.url}/v1/jobs", json={**body, "seed": seed}, timeout=WAIT)
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
    assert b.process is not None
    on_b = f"SELECT id FROM jobs WHERE status = 'running' AND worker_id LIKE '%:{b.process.pid}:%'"
    until(lambda: cluster.sql(on_b), what="worker B to run a job")
    b.kill()  # SIGKILL: no shutdown code runs, its jobs stay claimed
    until(
        lambda: all(cluster.job(i)["status"] == "succeeded" for i in ids),
        what="every job to succeed on worker A",
    )
    assert {cluster.job(i)["attempts"] for i in ids} <= {1, 2}
    assert any(cluster.job(i)["attempts"] == 2 for i in ids)  # B's jobs ran again on A
    outputs = Path(cluster.api.fields["storage_url"]) / "output"
    assert {f"{i}.wav" for i in ids} <= {p.name for p in outputs.iterdir()}
    # every queue entry is finished (B's stalled ones closed): none waits to run a job again
    count = "SELECT count(*) FROM procrastinate_jobs"
    until(lambda: cluster.sql(count)[0][0] == 0, what="the queue to empty")
    # A completed exactly the jobs that ended on A, each once: no attempt ran to an end twice
    assert a.process is not None
    on_a = f"status = 'succeeded' AND worker_id LIKE '%:{a.process.pid}:%'"
    ended_on_a = cluster.sql(f"SELECT count(*) FROM jobs WHERE {on_a}")[0][0]
    metrics = httpx.get(f"{a.url}/metrics", timeout=WAIT).text
    assert f'f5serve_jobs_total{{outcome="succeeded"}} {float(ended_on_a)}' in metrics
    assert "outcome dropped" not in (a.root / "server.log").read_text()

    # worker A dies mid-stream: the client's response ends in an error, not a hang
    url = f"{cluster.api.url}/v1/audio/speech"
    long = {"voice": "narrator", "input": " ".join([TEXT] * 60), "response_format": "pcm"}
    with pytest.raises(httpx.TransportError):
        stream_while_killing(url, {"model": "tts-1", **long}, a)
    # no live worker: 503 with Retry-After, at once
    r = httpx.post(
        f"{cluster.api.url}/v1/tts", json={"text": TEXT, "voice": "narrator"}, timeout=WAIT
    )
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "overloaded"
