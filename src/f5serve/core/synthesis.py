"""Synthesis as the service does it: pick the model, resolve the voice, share the device through
one batching :class:`~f5serve.engine.scheduler.Scheduler` per loaded model.

Used by the sync API, the OpenAI-compatible API and the job runner alike.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from f5serve.core.db import VoiceRow
from f5serve.core.tenants import Tenant
from f5serve.core.validation import check_string
from f5serve.core.voices.library import VoiceLibrary, decode_reference
from f5serve.engine import asr, silence
from f5serve.engine.asr import Recognizer
from f5serve.engine.audio import SAMPLE_RATE
from f5serve.engine.options import SynthesisOptions
from f5serve.engine.pipeline import (
    Engine,
    Progress,
    ProgressCallback,
    Reference,
    Segment,
)
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.scheduler import Scheduler, StreamedChunk
from f5serve.engine.script import Line, Take, join_takes, parse_script, pause_audio, speakers
from f5serve.errors import AsrUnavailable, InvalidInput, NotFound, PayloadTooLarge
from f5serve.registry import AUTO, ModelRegistry


def needs_asr(options: SynthesisOptions) -> str | None:
    """Why synthesis with ``options`` needs speech recognition, as the error without it says
    (None: it does not)."""
    name = asr.transcribing(options)
    return None if name is None else f"{name} needs speech recognition: {asr.INSTALL_HINT}"


@dataclass(frozen=True)
class SpeechRequest:
    """What to say, in which voice, with which model and options."""

    text: str
    voice: str | None = None  # id or name of a library voice
    ref_name: str | None = None  # a file of the voices directory ("sample/narrator.wav")
    ref_audio: bytes | None = None  # an ad-hoc reference clip (decoded from base64 or upload)
    ref_text: str | None = None  # its transcript (None: heard by speech recognition)
    language: str = AUTO
    model: str | None = None
    remove_silence: bool = False
    script: bool = False  # text is "[voice] line [voice] line ..."
    options: SynthesisOptions = field(default_factory=SynthesisOptions)
    pronunciations: Lexicon = field(default_factory=Lexicon)  # the request's own entries
    tenant: Tenant | None = None  # the API key it came with: the voices it may use, its usage


@dataclass(frozen=True)
class Speech:
    """Synthesised audio and what produced it."""

    audio: np.ndarray  # float32 mono at sample_rate
    sample_rate: int
    model: str
    language: str | None
    voice: str | None
    seed: int
    segments: tuple[Segment, ...] = ()  # when each chunk is spoken (none after remove_silence)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class Plan:
    """A request resolved: the model and scheduler to use and the prepared reference."""

    model: str
    language: str | None
    voice: str | None
    scheduler: Scheduler
    reference: Reference
    lexicon: Lexicon  # the server's pronunciations, then the voice's, then the request's
    recognizer: Recognizer | None  # loaded when the options transcribe chunks (needs_asr)


class Models:
    """The registry plus one scheduler per loaded engine."""

    def __init__(
        self,
        registry: ModelRegistry,
        max_queued_requests: int,
        *,
        openers: str = "first",
        opener_frames: int | None = None,
    ) -> None:
        self.registry = registry
        self.max_queued_requests = max_queued_requests
        self.openers = openers  # admission of streams' first chunks (Scheduler)
        self.opener_frames = opener_frames
        self._schedulers: dict[str, tuple[Engine, Scheduler]] = {}
        self._lock = threading.Lock()
        registry.on_unload(self.forget)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[tuple[Engine, Scheduler]]:
        """The engine of ``name`` (loaded in a thread on first use) and its scheduler, held
        so that the registry cannot evict the model while the request runs."""
        use = self.registry.use(name)
        engine = await asyncio.to_thread(use.__enter__)
        try:
            yield engine, self._scheduler(name, engine)
        finally:
            use.__exit__(None, None, None)

    def _scheduler(self, name: str, engine: Engine) -> Scheduler:
        with self._lock:
            current = self._schedulers.get(name)
            if current is not None and current[0] is engine:
                return current[1]
            if current is not None:  # the model was evicted and reloaded
                current[1].close()
            scheduler = Scheduler(
                engine,
                max_queued_requests=self.max_queued_requests,
                openers=self.openers,
                opener_frames=self.opener_frames,
            )
            self._schedulers[name] = (engine, scheduler)
            return scheduler

    def forget(self, name: str, engine: Engine) -> None:
        """Stop and drop the scheduler of ``engine`` once the registry unloaded it (the
        scheduler holds the engine: without this an evicted model's memory is never freed)."""
        with self._lock:
            current = self._schedulers.get(name)
            if current is None or current[0] is not engine:  # already replaced by a reload
                return
            del self._schedulers[name]
        current[1].close()

    def queue_depth(self) -> float:
        with self._lock:
            return sum(s.stats()["queued_requests"] for _, s in self._schedulers.values())

    def close(self) -> None:
        with self._lock:
            for _, scheduler in self._schedulers.values():
                scheduler.close()
            self._schedulers.clear()


class Synthesizer:
    """Turns a :class:`SpeechRequest` into :class:`Speech` (or a stream of audio pieces)."""

    def __init__(
        self,
        models: Models,
        voices: VoiceLibrary,
        default_voice: str | None,
        defaults: SynthesisOptions,
        lexicon: Lexicon | None = None,
        recognizer: Recognizer | None = None,
    ) -> None:
        self.models = models
        self.voices = voices
        self.default_voice = default_voice
        self.defaults = defaults  # the service's options, that a request's fields override
        self.lexicon = lexicon or Lexicon()  # the server-wide pronunciations
        self.recognizer = recognizer  # transcribes references and quality-checked chunks

    async def synthesize(
        self, request: SpeechRequest, progress: ProgressCallback | None = None
    ) -> Speech:
        """The speech of ``request`` (a script: each line in its voice, joined by pauses)."""
        if not request.script:
            return await self._synthesize(request, progress)
        lines = await asyncio.to_thread(self.script_lines, request)
        speeches = []
        for i, line in enumerate(lines):
            speeches.append(await self._synthesize(line, _line_progress(progress, i, len(lines))))
        return join_speeches(speeches, request.options.speaker_pause)

    async def _synthesize(
        self, request: SpeechRequest, progress: ProgressCallback | None
    ) -> Speech:
        async with self.plan(request) as plan:
            result = await plan.scheduler.synthesize(
                request.text,
                plan.reference,
                options=request.options,
                progress=progress,
                language=plan.language,
                lexicon=plan.lexicon,
                recognizer=plan.recognizer,
            )
        audio, segments = result.audio, tuple(result.segments)
        if request.remove_silence:  # cutting pauses moves every later chunk: no timestamps
            audio, segments = remove_long_silences(audio, result.sample_rate), ()
        return Speech(
            audio, result.sample_rate, plan.model, plan.language, plan.voice, result.seed, segments
        )

    async def stream(self, request: SpeechRequest) -> AsyncGenerator[StreamedChunk, None]:
        """The chunks in order as they finish (``remove_silence`` does not apply). A script's
        lines follow one another: the pause before a line leads the audio of its first chunk,
        and times count over the whole output."""
        if not request.script:
            async for chunk in self._stream(request):
                yield chunk
            return
        lines = await asyncio.to_thread(self.script_lines, request)
        pause = pause_audio(request.options.speaker_pause, SAMPLE_RATE)
        offset, index = 0.0, 0
        for i, line in enumerate(lines):
            lead = pause if i else pause[:0]
            offset += len(lead) / SAMPLE_RATE
            end = offset
            async for chunk in self._stream(line):
                audio = np.concatenate([lead, chunk.audio])
                yield dataclasses.replace(chunk.placed(index, offset), audio=audio)
                lead, index, end = pause[:0], index + 1, offset + chunk.end
            offset = end

    def script_lines(self, request: SpeechRequest) -> list[SpeechRequest]:
        """One request per line of a script (text before the first tag: the request's own
        voice); a voice the library does not have is :class:`NotFound`, naming every such
        voice, before any work starts."""
        lines = parse_script(request.text)
        names = [name for name in speakers(lines) if name is not None]
        missing = [name for name in names if not self.voices.exists(name, request.tenant)]
        if missing:
            raise NotFound(
                f"the script names voices the library does not have: {', '.join(missing)}",
                details={"voices": missing},
            )
        return [_line_request(request, line) for line in lines]

    async def _stream(self, request: SpeechRequest) -> AsyncGenerator[StreamedChunk, None]:
        async with self.plan(request) as plan:
            async for chunk in plan.scheduler.stream_chunks(
                request.text,
                plan.reference,
                options=request.options,
                language=plan.language,
                lexicon=plan.lexicon,
                recognizer=plan.recognizer,
            ):
                yield chunk

    async def check(self, request: SpeechRequest) -> None:
        """What synthesis would refuse at once, checked without synthesising (a job at its
        submission): the language and model, a ``ref_name``, the reference clip, speech
        recognition where the request needs it and the extra is not installed."""
        registry = self.models.registry
        await asyncio.to_thread(registry.route, request.text, request.language, request.model)
        if request.ref_name is not None:
            self.voices.ref_name_stem(request.ref_name)
        if request.ref_audio is not None:
            await asyncio.to_thread(decode_reference, request.ref_audio, self.voices.limits)
        if not await asyncio.to_thread(asr.can_transcribe, self.recognizer):  # an import
            if (need := needs_asr(request.options)) is not None:
                raise AsrUnavailable(need)
            if request.ref_audio is not None and not (request.ref_text or "").strip():
                raise AsrUnavailable(asr.missing_ref_text("ref_audio"))

    @asynccontextmanager
    async def plan(self, request: SpeechRequest) -> AsyncIterator[Plan]:
        """Route the text to a model (held while in use) and prepare the reference."""
        model = self.models.registry.route(request.text, request.language, request.model)
        language: str | None = request.language
        if language == AUTO:
            language = self.models.registry.detect_language(request.text).language
        recognizer = None
        if (need := needs_asr(request.options)) is not None:  # refused before any work
            recognizer = await asyncio.to_thread(asr.require, self.recognizer, need)
        async with self.models.hold(model) as (engine, scheduler):
            reference, voice = await self._reference(request, model, engine)
            lexicon = self.lexicon.then(voice_lexicon(voice)).then(request.pronunciations)
            name = voice.name if voice is not None else None
            yield Plan(model, language, name, scheduler, reference, lexicon, recognizer)

    async def _reference(
        self, request: SpeechRequest, model: str, engine: Engine
    ) -> tuple[Reference, VoiceRow | None]:
        given = [x is not None for x in (request.voice, request.ref_name, request.ref_audio)]
        if sum(given) > 1:
            raise InvalidInput("give one of voice, ref_name or ref_audio")
        if request.ref_audio is not None:
            ref_text, recognizer = request.ref_text or "", None
            if not ref_text.strip():  # heard in the clip as the engine uses it
                message = asr.missing_ref_text("ref_audio")
                recognizer = await asyncio.to_thread(asr.require, self.recognizer, message)
            clip = await asyncio.to_thread(decode_reference, request.ref_audio, self.voices.limits)
            ref = await asyncio.to_thread(
                engine.prepare_reference, clip, ref_text, request.options, recognizer
            )
            return ref, None
        if request.ref_name is not None:
            row = await asyncio.to_thread(self.voices.resolve_ref_name, request.ref_name)
        else:
            name = request.voice or self.default_voice
            if name is None:
                raise InvalidInput("name a voice: voice, ref_name, or ref_audio with ref_text")
            row = await asyncio.to_thread(self.voices.get, name, request.tenant)
        return await self.voices.reference(row, model, engine, request.options), row


def voice_lexicon(voice: VoiceRow | None) -> Lexicon:
    """The pronunciations stored with a library voice (none for an ad-hoc clip)."""
    if voice is None:
        return Lexicon()
    return Lexicon.parse(voice.pronunciations, f"pronunciations of voice {voice.name!r}")


def _line_request(request: SpeechRequest, line: Line) -> SpeechRequest:
    if line.speaker is None:
        return dataclasses.replace(request, text=line.text, script=False)
    return dataclasses.replace(
        request,
        text=line.text,
        script=False,
        voice=line.speaker,
        ref_name=None,
        ref_audio=None,
        ref_text=None,
    )


def _line_progress(
    progress: ProgressCallback | None, line: int, lines: int
) -> ProgressCallback | None:
    """Progress of line ``line`` of ``lines`` as a share of the whole script's (each line
    counts as much as any other)."""
    if progress is None:
        return None

    def report(p: Progress) -> None:
        per_line = p.chunks * p.steps
        progress(Progress(p.chunk, p.chunks * lines, p.step, p.steps, p.done + line * per_line))

    return report


def join_speeches(speeches: list[Speech], pause: float) -> Speech:
    """The speeches of a script's lines as one: ``pause`` seconds between lines, segment
    times moved along, the voices named in order."""
    first = speeches[0]
    takes = [Take(s.audio, list(s.segments)) for s in speeches]
    joined = join_takes(takes, pause, first.sample_rate)
    voices = ", ".join(dict.fromkeys(s.voice for s in speeches if s.voice))
    has_times = all(s.segments for s in speeches)  # none after remove_silence
    return Speech(
        joined.audio,
        first.sample_rate,
        first.model,
        first.language,
        voices or None,
        first.seed,
        tuple(joined.segments) if has_times else (),
    )


def check_text(text: str, limit: int, advice: str = "") -> None:
    """Refuse text over ``limit`` characters (413, ending with the caller's ``advice``) or
    without content (422)."""
    if len(text) > limit:
        raise PayloadTooLarge(
            f"text is {len(text)} characters long (at most {limit})"
            + (f"; {advice}" if advice else ""),
            details={"chars": len(text), "max_chars": limit},
        )
    if not text.strip():
        raise InvalidInput("text is empty")


def remove_long_silences(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The reference's ``remove_silence_for_generated_wav``: pauses over 1 s at -50 dBFS are cut
    to 0.5 s on each side."""
    ranges = silence.split_on_silence(audio, sr, 1000, -50.0, 500, seek_step=10)
    if not ranges:
        return audio
    return np.concatenate([silence.slice_ms(audio, sr, a, b) for a, b in ranges]).astype(np.float32)


TEXT_FIELDS = ("text", "voice", "ref_name", "ref_text", "language", "model")


def speech_request_from_dict(
    body: dict[str, Any], defaults: SynthesisOptions, tenant: Tenant | None = None
) -> SpeechRequest:
    """A :class:`SpeechRequest` of ``tenant`` from a stored or parsed TTS request body
    (``ref_audio`` is base64 there); the options it leaves out are the service's ``defaults``.
    Text fields that cannot be stored (NUL, lone surrogates) are refused."""
    for name in TEXT_FIELDS:
        check_string(body.get(name), name)
    ref_audio = body.get("ref_audio")
    return SpeechRequest(
        text=body["text"],
        voice=body.get("voice"),
        ref_name=body.get("ref_name"),
        ref_audio=decode_base64_audio(ref_audio) if ref_audio else None,
        ref_text=body.get("ref_text"),
        language=body.get("language") or AUTO,
        model=body.get("model"),
        remove_silence=bool(body.get("remove_silence", False)),
        script=bool(body.get("script", False)),
        options=defaults.updated_from(body),
        pronunciations=Lexicon.parse(body.get("pronunciations")),
        tenant=tenant,
    )


def decode_base64_audio(value: str) -> bytes:
    """Decode base64 (plain or a ``data:audio/...;base64,`` URL) strictly."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("ref_audio is not valid base64") from None
