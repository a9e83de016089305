"""The RunPod handler in-process: a real :class:`RunPodWorker` on the tiny model (built as
``python -m f5serve.runpod`` builds it), without the SDK. What the subprocess tests of
test_runpod.py cannot reach: several jobs at once on one worker, an unexpected exception, the
messages of the answers."""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from f5serve.engine.asr import Transcript
from f5serve.engine.scheduler import Scheduler
from f5serve.runpod.__main__ import build_worker
from f5serve.runpod.handler import RunPodWorker
from f5serve.runpod.settings import RunPodSettings

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
from helpers import REF_TEXT, REF_WAV, assert_speech, make_deployment

GATE_TIMEOUT_S = 30.0  # how long the first flow step waits for the other jobs (never, if fine)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunPodWorker]:
    """The tiny model loaded, the narrator voice imported, results stored in a local folder.
    Batches as on a GPU (on a CPU the default budget is one chunk at a time)."""
    root = tmp_path_factory.mktemp("runpod-inprocess")
    fields = make_deployment(root) | {"max_batch_frames": 1 << 16}
    settings = RunPodSettings(_env_file=None, **fields)  # type: ignore[call-arg]
    built = build_worker(settings, None)
    yield built
    asyncio.run(built.services.close())


def handle(worker: RunPodWorker, job_input: dict[str, Any], job_id: str = "job") -> dict[str, Any]:
    return asyncio.run(worker.handle({"id": job_id, "input": job_input}))


def test_concurrent_jobs_on_one_worker_share_flow_steps(
    worker: RunPodWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three jobs handed to one worker at once (as the SDK does up to the concurrency) all
    complete, and the engine's scheduler runs them in the same batched flow step."""
    batch_sizes: list[int] = []  # jobs in each flow step
    gate_open = threading.Event()
    original = Scheduler._step

    def step(self: Scheduler) -> None:
        with self._wake:
            if not gate_open.is_set():
                # hold the first step until all three jobs are queued, whatever the timing;
                # a worker that ran its jobs one after another would never get there
                self._wake.wait_for(lambda: len(_requests(self)) >= 3, timeout=GATE_TIMEOUT_S)
                gate_open.set()
            batch_sizes.append(len({id(c.request) for c in self._active.values()}))
        original(self)

    monkeypatch.setattr(Scheduler, "_step", step)
    texts = ["The first job.", "A second job, a little longer.", "And the third one."]

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(
            *(
                worker.handle({"id": f"rp-{i}", "input": {"text": t, "voice": "narrator"}})
                for i, t in enumerate(texts)
            )
        )

    outputs = asyncio.run(main())
    assert [o.get("status") for o in outputs] == ["completed"] * 3, outputs
    assert [o["text"] for o in outputs] == texts
    assert len({o["job_id"] for o in outputs}) == 3
    for out in outputs:
        stored = worker.services.storage.get(f"output/{out['job_id']}.wav")
        assert base64.b64decode(out["audio_base64"]) == stored
        assert_speech(stored)
    assert max(batch_sizes) == 3, batch_sizes


def _requests(scheduler: Scheduler) -> set[int]:
    chunks = [*scheduler._pending, *scheduler._active.values()]
    return {id(c.request) for c in chunks}


def test_unexpected_exception_is_handler_exception_without_its_details(
    worker: RunPodWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(worker.services.synthesizer, "synthesize", broken)
    with caplog.at_level(logging.ERROR, logger="f5serve.runpod.handler"):
        out = handle(worker, {"text": "Hello.", "voice": "narrator"}, job_id="bug-1")
    assert out == {
        "error": "handler_exception",
        "message": "unexpected error in the worker (see the worker log)",
    }
    [record] = [r for r in caplog.records if r.name == "f5serve.runpod.handler"]
    assert record.levelno == logging.ERROR and "bug-1" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "secret detail"


def test_ref_audio_base64_without_ref_text_and_without_the_asr_extra_is_invalid_input(
    worker: RunPodWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # f5serve[asr] not installed
    clip = base64.b64encode(REF_WAV.read_bytes()).decode("ascii")
    out = handle(worker, {"text": "Hello.", "ref_audio_base64": clip, "job_id": "no-text"})
    assert out["error"] == "invalid_input", out
    assert out["message"].startswith("ref_text (the transcript of ref_audio) is required")
    assert not worker.services.storage.exists("output/no-text.wav")  # nothing was synthesised


def test_ref_audio_base64_without_ref_text_is_transcribed(
    worker: RunPodWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[int] = []

    class Recognizer:
        def transcribe(self, audio: Any, sample_rate: int, language: Any = None) -> Transcript:
            heard.append(len(audio))
            return Transcript(REF_TEXT)

    monkeypatch.setattr(worker.services.synthesizer, "recognizer", Recognizer())
    clip = base64.b64encode(REF_WAV.read_bytes()).decode("ascii")
    out = handle(worker, {"text": "Hello.", "ref_audio_base64": clip, "job_id": "heard"})
    assert "error" not in out and out["audio_base64"], out
    assert len(heard) == 1


def test_the_base64_reply_is_encoded_from_memory_not_read_back(
    worker: RunPodWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's WAV is stored, and the reply is encoded from the synthesised audio: the worker
    never reads its own output back (on S3 that would be a GET per job)."""
    storage = worker.services.storage
    read = storage.get
    keys: list[str] = []

    def get(key: str) -> bytes:
        keys.append(key)
        return read(key)

    monkeypatch.setattr(storage, "get", get)
    job = {"text": "Encoded from memory.", "voice": "narrator", "job_id": "mem-1"}
    out = handle(worker, job | {"response_format": "mp3", "return": "base64"})
    assert out["status"] == "completed", out
    assert out["content_type"] == "audio/mpeg" and out["filename"] == "mem-1.mp3"
    seconds = assert_speech(base64.b64decode(out["audio_base64"]), "mp3")
    assert seconds == pytest.approx(out["duration"], abs=0.12)
    assert storage.exists("output/mem-1.wav")
    assert not [k for k in keys if k.startswith("output/")], keys


def test_a_script_with_pronunciations_answers_its_segments(worker: RunPodWorker) -> None:
    job = {
        "text": "[narrator] nginx has 2 cats. [narrator] Yes.",
        "script": True,
        "pronunciations": {"nginx": "engine x"},
        "job_id": "words-1",
    }
    out = handle(worker, job)
    assert out["status"] == "completed", out
    assert [s["text"] for s in out["segments"]] == ["engine x has two cats.", "Yes."]
    assert out["segments"][-1]["end"] == pytest.approx(out["duration"], abs=2e-3)
    unknown = handle(worker, {"text": "[nobody] Hi.", "script": True}, "words-2")
    assert unknown["error"] == "not_found" and "nobody" in unknown["message"], unknown
    assert not worker.services.storage.exists("output/words-2.wav")  # nothing was synthesised
