"""The RunPod worker (``python -m f5serve.runpod``) run by the real RunPod SDK in subprocesses:
one job at a time with ``--test_input``, and the SDK's local API (``--rp_serve_api``) driven over
HTTP with the request shapes of the RunPod handlers f5serve replaces, results stored in a real
S3-compatible server (moto) with presigned URLs.

``--test_input`` prints the handler's output only through the SDK's log (truncated to 4 kB), so
those tests check the exit status, the log and the stored file; the API tests check the JSON.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("runpod")
pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from moto_s3 import REGION, Moto

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import (
    GOLDEN,
    MODELS_TOML,
    REF_TEXT,
    REF_WAV,
    assert_speech,
    make_deployment,
)

pytestmark = pytest.mark.slow
SEED_TEXT = "The narrator reads the first chapter aloud."
SEED_INPUT = {"text": SEED_TEXT, "ref_name": "sample/narrator.wav", "speed": 0.9}
BUCKET = "tts-results"  # a bucket of its own on the shared moto server
REF_B64 = base64.b64encode(REF_WAV.read_bytes()).decode("ascii")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(root: Path, **extra: Any) -> dict[str, str]:
    """The environment of a worker on the tiny model, with nothing of the machine's AWS or
    RunPod settings."""
    fields = make_deployment(root) | extra
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNPOD_", "F5SERVE_"))}
    env |= {f"F5SERVE_{k.upper()}": str(v) for k, v in fields.items()}
    env |= {
        "AWS_CONFIG_FILE": str(root / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
    }
    env["OMP_NUM_THREADS"] = "1"  # several workers share two cores in these tests
    return env


@dataclass
class Run:
    returncode: int
    log: str


def run_test_input(root: Path, job_input: dict[str, Any], **extra: Any) -> Run:
    """``python -m f5serve.runpod --test_input '{"input": ...}'`` in ``root``."""
    env = worker_env(root, **extra)
    env |= {k: str(v) for k, v in extra.items() if k.isupper()}  # raw variables, e.g. RUNPOD_*
    done = subprocess.run(
        [sys.executable, "-m", "f5serve.runpod", "--test_input", json.dumps({"input": job_input})],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout + done.stderr)


class ProgressSink:
    """An HTTP server standing in for RunPod's job-done URL: records what the SDK posts."""

    def __init__(self) -> None:
        posts: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append({"path": self.path, "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.posts = posts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@dataclass
class LocalRuns:
    root: Path  # the deployment of the seed job (and its download)
    seed: Run
    sink: ProgressSink
    cases: dict[str, Run]  # the error cases by name, and "download"


def broken_models_file(root: Path) -> Path:
    """A models file with the tiny model and ``broken``, whose checkpoint is garbage."""
    garbage = root / "broken.safetensors"
    garbage.write_bytes(b"\x00not a safetensors file\xff" * 64)
    path = root / "models-broken.toml"
    broken = MODELS_TOML.replace('"tiny"', '"broken"').replace("default = true", "")
    broken = broken.replace(str(GOLDEN / "dit_v1.safetensors"), str(garbage))
    path.write_text(MODELS_TOML + broken)
    return path


def closed_s3_endpoint(root: Path) -> str:
    """An S3 endpoint on loopback where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}"


UNREACHABLE_S3 = {
    "storage_url": f"s3://{BUCKET}",
    "storage_endpoint_url": closed_s3_endpoint,
    "storage_region": REGION,
    "storage_access_key_id": "worker",
    "storage_secret_access_key": "secret",
}

# name: (input, extra settings (a callable is given the deployment's folder), error code, a
# piece of the message the worker logs)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, str]] = {
    "missing_text": (
        {"ref_name": "sample/narrator.wav"},
        {},
        "invalid_input",
        "text: Field required",
    ),
    "traversal": (
        {"text": "Hi.", "ref_name": "../../etc/passwd"},
        {},
        "invalid_input",
        "must name a file in the voices directory",
    ),
    "unknown_voice": (
        {"text": "Hi.", "ref_name": "sample/nobody.wav"},
        {},
        "voice_not_found",
        "no voice file",
    ),
    "unknown_job": (
        {"endpoint": "download", "job_id": "never-ran"},
        {},
        "not_found",
        "'output/never-ran.wav' does not exist",
    ),
    "timeout": (
        {**SEED_INPUT, "language": "en"},
        {"job_timeout": 0.001},
        "timeout",
        "the job took longer than 0.001 s",
    ),
    # the voice file cannot be stored in S3 (its import at start-up failed the same way)
    "storage_unreachable": (
        SEED_INPUT,
        UNREACHABLE_S3,
        "storage_error",
        "is unreachable (EndpointConnectionError)",
    ),
    "broken_checkpoint": (
        {**SEED_INPUT, "model": "broken"},
        {"models_file": broken_models_file},
        "tts_failed",
        "cannot read checkpoint",
    ),
}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> LocalRuns:
    """--test_input workers, three at a time: the seed's request (progress posted to a local
    sink), then a download of its result; meanwhile the error cases, each in a deployment of
    its own (nothing shared, no races on the voice import)."""
    root = tmp_path_factory.mktemp("runpod-local")
    sink = ProgressSink()
    with ThreadPoolExecutor(3) as pool:
        seed = pool.submit(
            run_test_input,
            root,
            {**SEED_INPUT, "job_id": "seed-job-1"},
            runpod_progress_interval=0.01,
            RUNPOD_WEBHOOK_POST_OUTPUT=f"{sink.url}/done/$ID?gpu=test",
        )
        cases = {}
        for name, (job, extra, _, _) in CASES.items():
            case_root = tmp_path_factory.mktemp(name)
            settings = {k: v(case_root) if callable(v) else v for k, v in extra.items()}
            cases[name] = pool.submit(run_test_input, case_root, job, preload=False, **settings)
        seed_run = seed.result()
        sink.server.shutdown()
        download = {"endpoint": "download", "job_id": "seed-job-1"}
        cases["download"] = pool.submit(run_test_input, root, download, preload=False)
        return LocalRuns(root, seed_run, sink, {k: f.result() for k, f in cases.items()})


def test_test_input_synthesises_the_seed_request_and_stores_the_wav(local: LocalRuns) -> None:
    run = local.seed
    assert run.returncode == 0, run.log
    assert "Job local_test completed successfully" in run.log
    assert "'status': 'completed', 'job_id': 'seed-job-1', 'audio_base64': 'UklGR" in run.log
    stored = local.root / "data" / "storage" / "output" / "seed-job-1.wav"
    assert_speech(stored.read_bytes())


def test_progress_updates_reach_runpod_through_the_sdk(local: LocalRuns) -> None:
    run, sink = local.seed, local.sink
    assert sink.posts, run.log
    first = sink.posts[0]
    assert first["path"].startswith("/done/local_test?gpu=test")
    assert first["body"]["status"] == "IN_PROGRESS"
    update = first["body"]["output"]
    assert update["job_id"] == "seed-job-1"
    assert update["steps"] == 2 and 1 <= update["step"] <= 2
    assert 0 <= update["chunk"] < update["chunks"] and 0 < update["fraction"] <= 1


def test_test_input_downloads_the_stored_job(local: LocalRuns) -> None:
    run = local.cases["download"]
    assert run.returncode == 0, run.log
    assert "'job_id': 'seed-job-1', 'audio_data': 'UklGR" in run.log
    assert "'content_type': 'audio/wav'" in run.log


@pytest.mark.parametrize("case", list(CASES))
def test_test_input_errors_are_returned_with_their_code(case: str, local: LocalRuns) -> None:
    run = local.cases[case]
    _, _, code, message = CASES[case]
    assert run.returncode == 1, run.log
    assert f"Job local_test failed with error: {code}" in run.log
    logged = [line for line in run.log.splitlines() if f"job local_test: {code}: " in line]
    assert len(logged) == 1 and message in logged[0], run.log
    assert "Traceback" not in run.log


# ------------------------------------------------------------------------ the SDK's local API


@dataclass(frozen=True)
class Api:
    url: str
    s3: Any  # a boto3 client of the bucket the worker writes to


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, moto: Moto) -> Iterator[Api]:
    """``--rp_serve_api`` on loopback, storing results in a bucket of its own on the moto S3
    server."""
    s3 = moto.client()
    s3.create_bucket(Bucket=BUCKET)
    root = tmp_path_factory.mktemp("runpod-api")
    port = free_port()
    env = worker_env(
        root,
        storage_endpoint_url=moto.endpoint,
        storage_region=REGION,
        storage_access_key_id=moto.key_id,
        storage_secret_access_key=moto.secret,
    )
    del env["F5SERVE_STORAGE_URL"]
    env["F5SERVE_STORAGE"] = f"s3://{BUCKET}"  # the name docs/storage.md uses
    command = [sys.executable, "-m", "f5serve.runpod", "--rp_serve_api"]
    command += ["--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"]
    with (root / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url, root / "worker.log")
        yield Api(url, s3)
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(f"{url}/openapi.json", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the worker API did not come up: " + log.read_text())


def runsync(api: Api, job_input: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{api.url}/runsync", json={"input": job_input}, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_runsync_answers_the_seed_shape_with_base64_audio(api: Api) -> None:
    body = runsync(api, {**SEED_INPUT, "job_id": "sync-1"})
    assert body["status"] == "COMPLETED", body
    out = body["output"]
    assert out["status"] == "completed" and out["job_id"] == "sync-1"
    assert out["content_type"] == "audio/wav" and out["filename"] == "sync-1.wav"
    assert out["sample_rate"] == 24000 and out["sample_used"] == "sample/narrator.wav"
    assert out["text"] == SEED_TEXT and out["processing_time_seconds"] > 0
    audio = base64.b64decode(out["audio_base64"])
    assert abs(assert_speech(audio) - out["duration"]) < 0.01
    stored = api.s3.get_object(Bucket=BUCKET, Key="output/sync-1.wav")["Body"].read()
    assert stored == audio


def test_run_then_status_returns_the_result(api: Api) -> None:
    submitted = httpx.post(f"{api.url}/run", json={"input": SEED_INPUT}, timeout=10).json()
    assert submitted["status"] in ("IN_QUEUE", "IN_PROGRESS"), submitted
    deadline = time.monotonic() + 60
    while True:
        status = httpx.post(f"{api.url}/status/{submitted['id']}", timeout=60).json()
        if status["status"] not in ("IN_QUEUE", "IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status["status"] == "COMPLETED", status
    out = status["output"]
    assert len(out["job_id"]) == 32  # generated: a uuid4 in hex
    assert_speech(base64.b64decode(out["audio_base64"]))


def test_return_url_gives_a_presigned_url_of_the_stored_bytes(api: Api) -> None:
    out = runsync(api, {**SEED_INPUT, "job_id": "url-1", "return": "url"})["output"]
    assert "audio_base64" not in out
    fetched = httpx.get(out["audio_url"], timeout=10)
    assert fetched.status_code == 200
    assert "X-Amz-Signature=" in out["audio_url"] and "X-Amz-Expires=3600" in out["audio_url"]
    assert_speech(fetched.content)
    downloaded = runsync(api, {"endpoint": "download", "job_id": "url-1"})["output"]
    assert base64.b64decode(downloaded["audio_data"]) == fetched.content
    assert downloaded["content_type"] == "audio/wav"


def test_return_both_gives_base64_and_a_url_of_the_same_bytes(api: Api) -> None:
    out = runsync(api, {**SEED_INPUT, "job_id": "both-1", "return": "both"})["output"]
    audio = base64.b64decode(out["audio_base64"])
    assert_speech(audio)
    fetched = httpx.get(out["audio_url"], timeout=10)
    assert fetched.status_code == 200 and "X-Amz-Signature=" in out["audio_url"]
    assert fetched.content == audio


def test_ref_audio_base64_with_its_transcript_is_the_voice(api: Api) -> None:
    job_input = {"text": SEED_TEXT, "ref_audio_base64": REF_B64, "ref_text": REF_TEXT}
    body = runsync(api, {**job_input, "job_id": "inline-1"})
    assert body["status"] == "COMPLETED", body
    out = body["output"]
    assert out["job_id"] == "inline-1" and out["sample_used"] is None  # no voice of the library
    audio = base64.b64decode(out["audio_base64"])
    assert abs(assert_speech(audio) - out["duration"]) < 0.01


def test_other_formats_voices_and_health(api: Api) -> None:
    out = runsync(api, {"text": "Short.", "voice": "narrator", "response_format": "flac"})
    assert out["output"]["content_type"] == "audio/flac"
    assert_speech(base64.b64decode(out["output"]["audio_base64"]), "flac", min_seconds=0.1)
    voices = runsync(api, {"endpoint": "voices"})["output"]["voices"]
    assert [(v["name"], v["ref_name"]) for v in voices] == [("narrator", "sample/narrator.wav")]
    health = runsync(api, {"endpoint": "health"})["output"]
    assert health["status"] == "ok" and health["checks"]["storage"] == "ok"
    assert health["device"] == "cpu" and health["default_model"] == "tiny"


@pytest.mark.parametrize(
    ("job_input", "code"),
    [
        ({"text": "Hi.", "ref_name": "/etc/passwd"}, "invalid_input"),
        ({"text": "Hi.", "voice": "nobody"}, "voice_not_found"),
        ({"text": "Hi.", "voice": "narrator", "speed": 9}, "invalid_input"),
        (
            {"text": "Hi.", "voice": "narrator", "return": "url", "response_format": "mp3"},
            "invalid_input",
        ),
        ({"endpoint": "download", "job_id": "../../etc/passwd"}, "invalid_input"),
        ({"endpoint": "transcribe"}, "invalid_input"),
    ],
)
def test_api_errors_fail_the_job_with_their_code(
    api: Api, job_input: dict[str, Any], code: str
) -> None:
    body = runsync(api, job_input)
    assert body["status"] == "FAILED" and body["error"] == code, body
