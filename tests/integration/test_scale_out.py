"""Scale-out with real processes on the machine's PostgreSQL and a moto S3 server: one stateless
API replica (``f5serve serve --no-worker``) and two workers (``f5serve worker``, tiny model,
CPU) sharing the database and the bucket.

Submitted jobs run on a worker, land in S3 and download from the API (restarted mid-job); a
queued and a running job are cancelled through the API; a job for a model no worker serves waits
until a worker of that model starts; sync and streamed requests are forwarded; a worker killed
with SIGKILL mid-jobs loses none (each completes exactly once, on the other worker); a worker
killed mid-stream ends the client's response with an error, not a hang; with no live worker a
sync request is 503 with Retry-After. Skipped (reason printed) without a PostgreSQL server or
moto.
"""

from __future__ import annotations

import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fresh_databases import fresh_postgres
from moto_s3 import BUCKET, REGION, Moto
from server_process import Server
from sqlalchemy import create_engine, text

from f5serve.core.db import database_url, upgrade_database

pytest.importorskip("procrastinate")
sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import MODELS_TOML

pytestmark = pytest.mark.slow

TEXT = "Each worker takes its share of the queue."
LEASE = 3  # seconds: how soon the jobs of a dead worker run elsewhere
WAIT = 60  # seconds an HTTP call may take on a busy 2-core machine


@dataclass
class Cluster:
    api: Server
    workers: list[Server]
    database: str
    shared: dict[str, Any]  # the settings every process has
    s3: Any  # a boto3 client of the bucket
    prefix: str  # where in the bucket the processes store

    def sql(self, query: str) -> list[Any]:
        engine = create_engine(database_url(self.database))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query)))
        finally:
            engine.dispose()

    def job(self, job_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.api.url}/v1/jobs/{job_id}", timeout=WAIT).json()  # type: ignore[no-any-return]

    def submit(self, body: dict[str, Any]) -> str:
        r = httpx.post(f"{self.api.url}/v1/jobs", json=body, timeout=WAIT)
        assert r.status_code == 202, r.text
        return r.json()["job_id"]  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        r = httpx.delete(f"{self.api.url}/v1/jobs/{job_id}", timeout=WAIT)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def entries(self, job_id: str) -> list[Any]:
        """procrastinate's queue entries of a job."""
        return self.sql(f"SELECT status FROM procrastinate_jobs WHERE args->>'job_id' = '{job_id}'")

    def stored(self) -> set[str]:
        """The names of the job outputs in the bucket."""
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{self.prefix}/output/")
        return {item["Key"].rsplit("/", 1)[1] for item in listing.get("Contents", [])}

    def worker_running(self, job_id: str) -> Server:
        """The worker whose process holds ``job_id`` (worker ids are host:pid:random)."""
        (worker_id,) = self.sql(f"SELECT worker_id FROM jobs WHERE id = '{job_id}'")[0]
        pid = int(worker_id.split(":")[1])
        return next(w for w in self.workers if w.process is not None and w.process.pid == pid)


def until(condition: Callable[[], Any], timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[Cluster]:
    with fresh_postgres() as url:
        upgrade_database(url)
        root = tmp_path_factory.mktemp("scale")
        # every process knows "tiny" and "tiny-b" (the same weights); workers serve "tiny"
        models = root / "models.toml"
        other = MODELS_TOML.replace('"tiny"', '"tiny-b"').replace("default = true", "")
        models.write_text(MODELS_TOML + other)
        prefix = f"scale-{uuid.uuid4().hex[:8]}"
        shared = {
            "database_url": url,
            "storage_url": f"s3://{BUCKET}/{prefix}",  # the storage every process shares
            "storage_endpoint_url": moto.endpoint,
            "storage_region": REGION,
            "storage_access_key_id": moto.key_id,
            "storage_secret_access_key": moto.secret,
            "models_file": models,
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
            yield Cluster(api, workers, url, shared, moto.client(), prefix)
        finally:
            for server in running:
                if server.process is not None and server.process.poll() is None:
                    server.kill(signal.SIGTERM)


def test_a_job_runs_on_a_worker_and_downloads_from_the_api(cluster: Cluster) -> None:
    job_id = cluster.submit({"text": TEXT, "voice": "narrator"})
    assert cluster.sql(f"SELECT queue FROM jobs WHERE id = '{job_id}'") == [("tts.tiny",)]
    cluster.api.kill()  # the API replica restarts mid-job: nothing changes for the job
    cluster.api.start()
    until(lambda: cluster.job(job_id)["status"] == "succeeded", what="the job to succeed")
    assert f"{job_id}.wav" in cluster.stored()  # the worker wrote it to S3
    audio = httpx.get(
        f"{cluster.api.url}/v1/jobs/{job_id}/audio", params={"format": "flac"}, timeout=WAIT
    )
    assert audio.status_code == 200 and audio.content[:4] == b"fLaC"
    metrics = httpx.get(f"{cluster.api.url}/metrics", timeout=WAIT).text
    assert 'f5serve_queue_depth{queue="jobs"}' in metrics


def test_a_queued_and_a_running_job_are_cancelled_from_the_api(cluster: Cluster) -> None:
    # queued: no worker serves "tiny-b", so the job waits, and is cancelled while it waits
    queued = cluster.submit({"text": TEXT, "voice": "narrator", "model": "tiny-b"})
    assert cluster.job(queued)["status"] == "queued"
    assert cluster.cancel(queued)["status"] == "cancelled"
    # running: long enough that it cannot end on its own before it is stopped
    long = {"text": " ".join([TEXT] * 40), "voice": "narrator", "nfe_steps": 64}
    running = cluster.submit(long)
    # its progress, written by the worker, is what the API replica answers
    until(lambda: cluster.job(running)["progress"]["step"] > 0, what="progress from the worker")
    worker = cluster.worker_running(running)
    log = worker.root / "server.log"
    assert cluster.cancel(running)["status"] == "cancelled"
    stopped = f"job {running} was cancelled or taken over: stopping it here"
    until(lambda: stopped in log.read_text(), what="the worker to stop the job")
    until(lambda: not cluster.entries(running), what="its queue entry to close")
    assert cluster.job(running)["status"] == "cancelled"
    assert cluster.job(queued)["status"] == "cancelled"
    assert not {f"{queued}.wav", f"{running}.wav"} & cluster.stored()


def test_a_job_for_a_model_no_worker_serves_waits_for_one(cluster: Cluster) -> None:
    waiting = cluster.submit({"text": TEXT, "voice": "narrator", "model": "tiny-b"})
    assert cluster.sql(f"SELECT queue FROM jobs WHERE id = '{waiting}'") == [("tts.tiny-b",)]
    served = cluster.submit({"text": TEXT, "voice": "narrator"})
    until(lambda: cluster.job(served)["status"] == "succeeded", what="the job of tiny to succeed")
    # the workers of "tiny" ran the later job, and left this one waiting in its queue
    assert cluster.job(waiting)["status"] == "queued"
    metrics = httpx.get(f"{cluster.api.url}/metrics", timeout=WAIT).text
    assert 'f5serve_queue_depth{queue="tts.tiny-b"} 1.0' in metrics
    root = cluster.api.root.parent / "worker-c"
    root.mkdir()
    worker_c = Server(root, "worker", worker_models="tiny-b", job_workers=1, **cluster.shared)
    worker_c.start()
    try:
        until(lambda: cluster.job(waiting)["status"] == "succeeded", what="worker C to run it")
        assert cluster.job(waiting)["attempts"] == 1
        assert f"{waiting}.wav" in cluster.stored()
    finally:
        worker_c.kill(signal.SIGTERM)


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
    ids = [cluster.submit({**body, "seed": seed}) for seed in range(6)]
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
    assert {f"{i}.wav" for i in ids} <= cluster.stored()
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
