"""An asynchronous front to one :class:`Engine`: concurrent requests share batched flow steps.

Callers (API handlers, queue workers) ``await scheduler.synthesize(...)`` or iterate
``scheduler.stream(...)``. One worker thread owns the device: between any two flow steps it
admits waiting chunks within a frame budget, drops cancelled ones, and vocodes the chunks that
finished. Results equal serving each request alone.

Admission is first come, first served, with two exceptions, both bounded:

- *Stream openers first.* The first chunk of a streamed request (:meth:`Scheduler.stream`,
  :meth:`Scheduler.stream_chunks`) is what its listener waits for, so it joins before waiting
  chunks that are not openers: later chunks of streams already playing, and chunks of
  whole-file requests (whose first audio waits for their last chunk anyway). A chunk is passed
  by at most :data:`MAX_OPENERS_AHEAD` openers that came after it; then no opener may pass it.
- *Least padding.* Among the first :data:`ADMIT_WINDOW` waiting chunks (and among the openers)
  the one that adds the least padding to the running batch joins first (equal lengths keep
  arrival order; a request's chunks keep their order); a chunk is passed over this way by at
  most :data:`MAX_OVERTAKES` later ones, then nothing but an opener (within its own bound) may
  pass it.

So a waiting chunk is admitted after at most ``MAX_OPENERS_AHEAD + MAX_OVERTAKES`` chunks that
arrived after it: nothing starves. ``Scheduler(openers=...)`` chooses how openers are treated:
``"first"`` (the default) as above; ``"off"``: like any other chunk; ``"alone"``: first, and
while an opener runs or waits, a non-empty batch takes no other chunk that has not yet been
passed by :data:`MAX_OPENERS_AHEAD` openers (so openers are not slowed by long later chunks;
those wait at most until the running openers finish or that many openers passed them).

``Scheduler(opener_frames=N)`` runs openers in waves: a batch that holds openers takes another
only while their frames (rows × frames) stay within ``N``. When many streams start at once,
the first listeners then hear audio after one short wave instead of after one batch of all
first chunks (with ``openers="alone"`` nothing else slows a wave down; with ``"first"`` other
chunks fill the rest of the frame budget).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

from f5serve.engine import asr
from f5serve.engine.asr import Attempt, Recognizer, Word
from f5serve.engine.batching import FlowItem, padded_frames
from f5serve.engine.mel import SAMPLE_RATE
from f5serve.engine.options import SynthesisOptions, resolve
from f5serve.engine.pipeline import (
    AudioSource,
    CrossFader,
    Engine,
    PreparedRequest,
    Progress,
    ProgressCallback,
    Reference,
    SynthesisResult,
    check_request,
    chunk_segments,
    chunk_starts,
    shifted_word,
)
from f5serve.engine.pronounce import Lexicon
from f5serve.errors import F5ServeError, Overloaded

log = logging.getLogger(__name__)

ADMIT_WINDOW = 8  # waiting chunks compared for the next place in the batch
MAX_OVERTAKES = 4  # later arrivals that may join before a waiting chunk for less padding
MAX_OPENERS_AHEAD = 32  # later stream openers that may join before a waiting chunk
OPENER_MODES = ("off", "first", "alone")  # how a stream's first chunk is admitted


@dataclass(frozen=True)
class StreamedChunk:
    """One chunk of the text as :meth:`Scheduler.stream_chunks` hands it over."""

    audio: np.ndarray  # the joined audio that became final with this chunk (the last: the rest)
    index: int
    text: str
    start: float  # seconds into the whole output where this chunk's segment begins
    end: float  # where its audio ends (the next segment starts mid-fade, before that)
    attempts: tuple[Attempt, ...] = ()  # the quality check's tries of the chunk
    words: tuple[Word, ...] = ()  # its words with their times (word_timestamps)

    def placed(self, index: int, seconds: float) -> StreamedChunk:
        """This chunk as chunk ``index`` of a longer output, ``seconds`` later in it."""
        return dataclasses.replace(
            self,
            index=index,
            start=self.start + seconds,
            end=self.end + seconds,
            words=tuple(shifted_word(w, seconds) for w in self.words),
        )


@dataclass(eq=False)
class _Request:
    """A request in flight: its prepared chunks and where to deliver their audio."""

    loop: asyncio.AbstractEventLoop
    prepared: PreparedRequest
    delivered: asyncio.Queue[tuple[int, np.ndarray] | BaseException] = field(
        default_factory=asyncio.Queue
    )
    cancelled: bool = False
    lengths: list[int] = field(default_factory=list)  # samples of each chunk joined so far

    def deliver(self, item: tuple[int, np.ndarray] | BaseException) -> None:
        """Hand a finished chunk (or a failure) to the waiting coroutine (from any thread)."""
        self.loop.call_soon_threadsafe(self.delivered.put_nowait, item)


@dataclass(eq=False)
class _Chunk:
    """One chunk waiting for, or in, the batch."""

    request: _Request
    index: int
    item: FlowItem
    opener: bool = False  # the first chunk of a streamed request
    overtaken: int = 0  # later chunks admitted before this one for less padding
    openers_ahead: int = 0  # later stream openers admitted before this one (not an opener)

    @property
    def work(self) -> int:
        """Frame-steps still to do (rows × frames × remaining steps)."""
        return self.item.rows * self.item.frames * (self.item.steps - self.item.step)


class Scheduler:
    """Batches the chunks of all pending requests for one engine on its device."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch_frames: int | None = None,
        max_queued_requests: int = 64,
        openers: str = "first",
        opener_frames: int | None = None,
    ) -> None:
        if openers not in OPENER_MODES:
            raise ValueError(f"openers must be one of {', '.join(OPENER_MODES)}, not {openers!r}")
        if opener_frames is not None and opener_frames < 1:
            raise ValueError(f"opener_frames must be at least 1, not {opener_frames}")
        self.engine = engine
        self.openers = openers  # how streams' first chunks are admitted (module docstring)
        self.opener_frames = opener_frames  # frames of openers in one wave (None: no limit)
        self.max_batch_frames = max_batch_frames or engine.max_batch_frames
        self.max_queued_requests = max_queued_requests
        self._batcher = engine.new_batcher()
        self._active: dict[FlowItem, _Chunk] = {}
        self._pending: deque[_Chunk] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._rate = 0.0  # frame-steps per second, exponential moving average

    # ------------------------------------------------------------------ public

    def start(self) -> None:
        """Start the worker thread (also done on first use)."""
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                self._closing = False
                self._thread = threading.Thread(
                    target=self._run, name="f5serve-batcher", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the worker after the current step; waiting requests fail."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stats(self) -> dict[str, float]:
        """Queue depth, batch size and measured throughput (for metrics)."""
        with self._wake:
            return {
                "queued_requests": float(self._queued_requests()),
                "queued_chunks": float(len(self._pending)),
                "active_chunks": float(len(self._active)),
                "frame_steps_per_second": self._rate,
            }

    async def synthesize(
        self,
        text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str = "",
        *,
        options: SynthesisOptions | None = None,
        progress: ProgressCallback | None = None,
        language: str | None = None,
        lexicon: Lexicon | None = None,
        recognizer: Recognizer | None = None,
        **overrides: Any,
    ) -> SynthesisResult:
        """Like :meth:`Engine.synthesize`, sharing the device with every other caller.

        ``ref_audio`` may be a :class:`Reference` prepared earlier (a cached voice); then
        ``ref_text`` is unused. Cancelling the awaiting task frees the request's batch slots
        at the next flow step. Under ``options.quality_check`` a chunk tried again joins the
        back of the queue.
        """
        opts = resolve(options, overrides)
        request = await self._submit(
            text, ref_audio, ref_text, opts, progress, language, lexicon, recognizer, streamed=False
        )
        parts = [chunk.audio async for chunk in self._audio(request)]
        return request.prepared.result(np.concatenate(parts), request.lengths)

    async def stream(
        self,
        text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str = "",
        *,
        options: SynthesisOptions | None = None,
        progress: ProgressCallback | None = None,
        language: str | None = None,
        lexicon: Lexicon | None = None,
        recognizer: Recognizer | None = None,
        **overrides: Any,
    ) -> AsyncIterator[np.ndarray]:
        """Yield the audio in order as chunks finish (chunk 1 plays while later ones run).

        The pieces concatenate to exactly what :meth:`synthesize` returns.
        """
        async for chunk in self.stream_chunks(
            text,
            ref_audio,
            ref_text,
            options=options,
            progress=progress,
            language=language,
            lexicon=lexicon,
            recognizer=recognizer,
            **overrides,
        ):
            if len(chunk.audio):
                yield chunk.audio

    async def stream_chunks(
        self,
        text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str = "",
        *,
        options: SynthesisOptions | None = None,
        progress: ProgressCallback | None = None,
        language: str | None = None,
        lexicon: Lexicon | None = None,
        recognizer: Recognizer | None = None,
        **overrides: Any,
    ) -> AsyncIterator[StreamedChunk]:
        """Like :meth:`stream`, one :class:`StreamedChunk` per chunk of the text, with its text
        and where it lies in the whole output."""
        opts = resolve(options, overrides)
        request = await self._submit(
            text, ref_audio, ref_text, opts, progress, language, lexicon, recognizer, streamed=True
        )
        async for chunk in self._audio(request):
            yield chunk

    async def _audio(self, request: _Request) -> AsyncIterator[StreamedChunk]:
        fader = CrossFader(request.prepared.options.cross_fade, SAMPLE_RATE)
        arrived: dict[int, np.ndarray] = {}
        texts = request.prepared.chunks
        try:
            for index in range(len(texts)):
                wave = await _arrival(request, arrived, index)
                if request.prepared.options.quality_check:
                    wave = await self._checked(request, arrived, index, wave)
                await asyncio.to_thread(request.prepared.listen, index, wave)
                request.lengths.append(len(wave))
                piece = fader.push(wave)
                if index == len(texts) - 1:
                    piece = np.concatenate([piece, fader.finish()])
                # as SynthesisResult.segments counts it; the end is where this chunk's audio
                # ends (the next one's segment starts in the middle of the fade before that)
                cross_fade = request.prepared.options.cross_fade
                segment = request.prepared.segment(
                    index,
                    chunk_segments(texts[: index + 1], request.lengths, cross_fade, SAMPLE_RATE)[
                        -1
                    ],
                    chunk_starts(request.lengths, cross_fade, SAMPLE_RATE)[-1],
                    len(wave),
                )
                yield StreamedChunk(
                    piece,
                    index,
                    segment.text,
                    segment.start,
                    segment.end,
                    segment.attempts,
                    segment.words,
                )
        finally:
            self._cancel(request)

    async def _checked(
        self, request: _Request, arrived: dict[int, np.ndarray], index: int, wave: np.ndarray
    ) -> np.ndarray:
        """The quality check of chunk ``index`` (whose first audio is ``wave``): transcribed
        in a thread and, while it reads badly, queued again with the next seed; the audio
        kept, the tries recorded (:meth:`PreparedRequest.keep`)."""
        prepared = request.prepared
        tries = [await asyncio.to_thread(prepared.judge, index, wave, prepared.seed + index)]
        kept = [wave]
        while (seed := asr.next_seed([a for a, _ in tries], prepared.options)) is not None:
            chunk = prepared.chunks[index]
            item = self.engine.make_item(prepared.ref, chunk, seed, prepared.options)
            with self._wake:
                self._pending.append(_Chunk(request, index, item))
                self._wake.notify_all()
            kept.append(await _arrival(request, arrived, index))
            tries.append(await asyncio.to_thread(prepared.judge, index, kept[-1], seed))
        return kept[prepared.keep(index, tries)]

    # ------------------------------------------------------------------ submission

    async def _submit(
        self,
        text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str,
        options: SynthesisOptions,
        progress: ProgressCallback | None,
        language: str | None,
        lexicon: Lexicon | None,
        recognizer: Recognizer | None,
        *,
        streamed: bool,
    ) -> _Request:
        """Prepare a request and queue its chunks; a ``streamed`` one's first chunk is an
        opener (see the module's admission rule)."""
        check_request(text, options)  # a bad request is 422 even when the queue is full
        self._check_capacity()  # before the (costly) reference preparation
        loop = asyncio.get_running_loop()
        on_progress = None if progress is None else _on_loop(loop, progress)
        prepared = await asyncio.to_thread(
            self.engine.prepare_request,
            text,
            ref_audio,
            ref_text,
            options,
            on_progress,
            language,
            lexicon,
            recognizer,
        )
        request = _Request(loop, prepared)
        queued = [
            _Chunk(request, i, item, opener=streamed and i == 0 and self.openers != "off")
            for i, item in enumerate(prepared.items)
        ]
        self.start()
        with self._wake:
            self._check_capacity()
            self._pending.extend(queued)
            self._wake.notify_all()
        return request

    def _queued_requests(self) -> int:
        return len({id(c.request) for c in self._pending})

    def _check_capacity(self) -> None:
        with self._wake:
            if self._queued_requests() < self.max_queued_requests:
                return
            backlog = sum(c.work for c in self._pending) + sum(
                c.work for c in self._active.values()
            )
        retry = math.ceil(backlog / self._rate) if self._rate > 0 else 1
        raise Overloaded(
            f"the server is busy ({self.max_queued_requests} requests waiting); "
            f"retry in about {retry} s",
            retry_after=retry,
        )

    def _cancel(self, request: _Request) -> None:
        with self._wake:
            request.cancelled = True
            self._wake.notify_all()

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closing and not self._pending and not self._active:
                    self._wake.wait()
                if self._closing:
                    self._fail_all(F5ServeError("the scheduler was shut down"))
                    return
                self._drop_cancelled()
                self._admit()
            if self._active:
                self._step()

    def _drop_cancelled(self) -> None:
        self._pending = deque(c for c in self._pending if not c.request.cancelled)
        for item, chunk in list(self._active.items()):
            if chunk.request.cancelled:
                self._batcher.remove(item)
                del self._active[item]

    def _admit(self) -> None:
        while (
            index := next_admission(
                self._batcher.items,
                self._pending,
                self.max_batch_frames,
                self._hold_others(),
                self._opener_room(),
            )
        ) is not None:
            chunk = take(self._pending, index)
            self._batcher.add(chunk.item)
            self._active[chunk.item] = chunk

    def _hold_others(self) -> bool:
        """Whether chunks that are not openers wait for the openers (``openers="alone"``)."""
        return self.openers == "alone" and any(
            c.opener for c in [*self._active.values(), *self._pending]
        )

    def _opener_room(self) -> int | None:
        """Frames that openers may still add to the running wave (None: no limit, or no wave
        runs: the first opener of a wave always fits it)."""
        load = sum(c.item.rows * c.item.frames for c in self._active.values() if c.opener)
        if self.opener_frames is None or load == 0:
            return None
        return self.opener_frames - load

    def _step(self) -> None:
        work = self._batcher.padded_frames()
        requests = {id(c.request): c.request for c in self._active.values()}
        started = time.perf_counter()
        try:
            finished = self._batcher.step()
            elapsed = time.perf_counter() - started
            self._rate = (
                work / elapsed if self._rate == 0 else 0.8 * self._rate + 0.2 * work / elapsed
            )
            for request in requests.values():
                request.prepared.timings.sampling += elapsed
            with self._wake:  # callers read _active to estimate the backlog
                done = [self._active.pop(item) for item in finished]
            if done:
                self._vocode(done)
        except Exception as exc:  # a failed step fails the requests in the batch, not the server
            log.exception("batch step failed")
            self._fail_active(exc)

    def _vocode(self, done: list[_Chunk]) -> None:
        started = time.perf_counter()
        waves = self.engine.vocode_items([(c.request.prepared.ref, c.item.result()) for c in done])
        elapsed = time.perf_counter() - started
        for chunk, wave in zip(done, waves, strict=True):
            chunk.request.prepared.timings.vocoder += elapsed
            chunk.request.deliver((chunk.index, wave))

    def _fail_active(self, exc: BaseException) -> None:
        with self._wake:
            for item, chunk in list(self._active.items()):
                self._batcher.remove(item)
                chunk.request.deliver(exc)
            self._active.clear()

    def _fail_all(self, exc: BaseException) -> None:
        for chunk in [*self._pending, *self._active.values()]:
            chunk.request.deliver(exc)
        self._pending.clear()
        for item in list(self._active):
            self._batcher.remove(item)
        self._active.clear()


def next_admission(
    active: list[FlowItem],
    waiting: Sequence[_Chunk],
    budget: int,
    hold_others: bool = False,
    opener_room: int | None = None,
) -> int | None:
    """Index in ``waiting`` of the chunk to add to a batch of ``active`` items, or None.

    The candidates are the first waiting chunk of each request that fits the budget (any chunk
    fits an empty batch): every stream opener up to the first chunk that no opener may pass
    (one passed by :data:`MAX_OPENERS_AHEAD` openers, or an opener passed
    :data:`MAX_OVERTAKES` times), and the other chunks among the first :data:`ADMIT_WINDOW` up
    to the first chunk passed :data:`MAX_OVERTAKES` times. An opener wins over any other
    chunk; then the least padding added; then the earliest. With ``hold_others``, a non-empty
    batch takes no chunk but openers and chunks passed by :data:`MAX_OPENERS_AHEAD` openers.
    With ``opener_room``, an opener of more frames (rows × frames) than that waits.
    """
    base = padded_frames(active)
    best, best_key = None, (True, 0, 0)
    seen: set[int] = set()
    ordinary_open, openers_open = True, True  # whether such chunks may still be taken
    for i, chunk in enumerate(waiting):
        if not openers_open and not (ordinary_open and i < ADMIT_WINDOW):
            break
        first = id(chunk.request) not in seen
        seen.add(id(chunk.request))
        if chunk.opener:
            size = chunk.item.rows * chunk.item.frames
            allowed = openers_open and (opener_room is None or size <= opener_room)
        else:
            held = hold_others and bool(active) and chunk.openers_ahead < MAX_OPENERS_AHEAD
            allowed = ordinary_open and i < ADMIT_WINDOW and not held
        if first and allowed:
            total = padded_frames([*active, chunk.item])
            padding = total - base - chunk.item.rows * chunk.item.frames
            key = (not chunk.opener, padding, i)
            if (not active or total <= budget) and (best is None or key < best_key):
                best, best_key = i, key
        if chunk.overtaken >= MAX_OVERTAKES:
            ordinary_open = False
            openers_open = openers_open and not chunk.opener
        if chunk.openers_ahead >= MAX_OPENERS_AHEAD:
            openers_open = False
    return best


def take(waiting: deque[_Chunk], index: int) -> _Chunk:
    """Remove and return ``waiting[index]``; each chunk before it was passed once more (by an
    opener, or for less padding)."""
    chunk = waiting[index]
    del waiting[index]
    for earlier in islice(waiting, index):
        if chunk.opener and not earlier.opener:
            earlier.openers_ahead += 1
        else:
            earlier.overtaken += 1
    return chunk


async def _arrival(request: _Request, arrived: dict[int, np.ndarray], index: int) -> np.ndarray:
    """The audio of chunk ``index`` once delivered (chunks delivered before it are kept in
    ``arrived``); a delivered failure is raised."""
    while index not in arrived:
        got = await request.delivered.get()
        if isinstance(got, BaseException):
            raise got
        arrived[got[0]] = got[1]
    return arrived.pop(index)


def _on_loop(loop: asyncio.AbstractEventLoop, progress: ProgressCallback) -> ProgressCallback:
    """``progress`` called on ``loop``'s thread (flow steps run on the worker thread)."""

    def report(p: Progress) -> None:
        loop.call_soon_threadsafe(progress, p)

    return report
