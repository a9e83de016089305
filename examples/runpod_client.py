"""Submit a TTS job to an f5serve RunPod endpoint, wait for it, save the audio.

    export RUNPOD_API_KEY=...
    python examples/runpod_client.py --endpoint-id abc123 "Hello there." -o hello.wav
    python examples/runpod_client.py --url http://127.0.0.1:8000 "Hello." -o hello.wav  # local

``--url`` is the base of the RunPod API for one endpoint (``https://api.runpod.ai/v2/<id>``),
or a worker started locally with ``python -m f5serve.runpod --rp_serve_api``. Needs httpx,
which f5serve does not install: ``pip install httpx``.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PENDING = ("IN_QUEUE", "IN_PROGRESS")


def submit(client: httpx.Client, job_input: dict[str, Any]) -> str:
    """POST /run; returns the RunPod job id."""
    response = client.post("/run", json={"input": job_input})
    response.raise_for_status()
    job_id: str = response.json()["id"]
    return job_id


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """/status/<id>: GET on RunPod; the SDK's local API answers POST only."""
    response = client.get(f"/status/{job_id}")
    if response.status_code == 405:
        response = client.post(f"/status/{job_id}")
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


def wait(client: httpx.Client, job_id: str, timeout: float, poll: float = 1.0) -> dict[str, Any]:
    """Poll until the job leaves the queue; prints progress updates as they change."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        status = job_status(client, job_id)
        if status.get("status") not in PENDING:
            return status
        progress = status.get("output")
        if progress and progress != last:
            print(f"progress: {progress}", file=sys.stderr)
            last = progress
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status.get('status')} after {timeout:g} s")
        time.sleep(poll)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("text")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--endpoint-id", help="RunPod endpoint id")
    where.add_argument("--url", help="base URL of the endpoint's API")
    parser.add_argument("--ref-name", default="sample/narrator.wav", help="voice file")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--format", default="wav", help="wav, mp3, flac, opus, ...")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    base = args.url or f"https://api.runpod.ai/v2/{args.endpoint_id}"
    key = os.environ.get("RUNPOD_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    job_input = {
        "text": args.text,
        "ref_name": args.ref_name,
        "speed": args.speed,
        "response_format": args.format,
    }
    with httpx.Client(base_url=base, headers=headers, timeout=args.timeout) as client:
        job_id = submit(client, job_input)
        print(f"submitted {job_id}", file=sys.stderr)
        status = wait(client, job_id, args.timeout)
    if status.get("status") != "COMPLETED":
        output = status.get("output") or {}
        message = output.get("message", "") if isinstance(output, dict) else ""
        print(f"job {status.get('status')}: {status.get('error')} {message}", file=sys.stderr)
        return 1
    output = status["output"]
    args.output.write_bytes(base64.b64decode(output["audio_base64"]))
    print(
        f"{args.output}: {output['duration']} s of audio in "
        f"{output['processing_time_seconds']} s (job_id {output['job_id']})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
