"""The synthesis pipeline: reference preparation, chunking, per-chunk sampling, vocoding, joining.

:class:`Engine` is the public entry point (``from f5serve import Engine``).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from f5serve.engine import asr, graphs, packing, sampler, text
from f5serve.engine import audio as audio_io
from f5serve.engine import compile as compiling
from f5serve.engine.asr import Attempt, Recognizer, Transcript, Word
from f5serve.engine.batching import FlowBatcher, FlowItem
from f5serve.engine.checkpoint import dit_weights, load_into, read_state_dict, vocab_size_of
from f5serve.engine.config import DiTConfig, resolve_arch
from f5serve.engine.devices import resolve_device
from f5serve.engine.dit import DiT
from f5serve.engine.mel import HOP_LENGTH, SAMPLE_RATE, MelSpectrogram
from f5serve.engine.normalize import normalize_mapped
from f5serve.engine.options import SynthesisOptions, resolve
from f5serve.engine.pronounce import Lexicon
from f5serve.engine.textmap import MappedText
from f5serve.engine.vocoder import Vocos
from f5serve.engine.words import WordMap
from f5serve.errors import AsrUnavailable, CheckpointMismatch, InvalidInput

MAX_FRAMES = 4096  # upstream F5-TTS's cap on one chunk's total frames (reference + generated)
# Rows × padded frames one forward may take, by device type. On a CPU a forward's cost grows
# linearly with its rows (matrix products are already efficient for one item), so batching only
# adds padding: measured 0.53× the throughput of one-at-a-time at 8 mixed requests on 2 cores
# (docs/performance.md). There, the default admits one chunk at a time.
DEFAULT_BATCH_FRAMES = {"cuda": 65536, "mps": 16384, "cpu": 1}
# On CUDA the default budget grows with free memory: activations take about 32 KiB per
# row-frame (F5TTS_v1_Base, dim 1024, bfloat16; measured on an H200: 2.0 GB above the weights
# at 65 536), scaled by width and dtype; the budget may use a quarter of the memory free at load
# (CUDA graphs hold a second copy of a step's activations), between 65 536 and the cap.
CUDA_BYTES_PER_FRAME = 32 * 1024
CUDA_MEMORY_SHARE = 0.25
MAX_CUDA_BATCH_FRAMES = 262144

AudioSource = str | Path | bytes | tuple[np.ndarray, int]


@dataclass(frozen=True)
class Reference:
    """A prepared voice prompt: what every chunk of a request conditions on."""

    mel: torch.Tensor  # [frames, 100] log-mel of the loudness-normalised 24 kHz audio
    samples: int  # length of that audio at 24 kHz
    transcript: str  # transcript ending with ". " or "。" (text.normalize_ref_text)
    text: str  # what the model reads before the chunk (text.prepare_ref_text)
    seconds: float  # duration used for the chunk budget
    rms: float  # loudness before normalisation (the output is scaled back to it)
    target_rms: float  # loudness it was normalised to (options.target_rms)

    @property
    def frames(self) -> int:
        """Reference length in frames as the duration rule counts it (``samples // 256``)."""
        return self.samples // HOP_LENGTH


@dataclass
class Timings:
    """Wall-clock seconds spent in each stage of one synthesis."""

    reference: float = 0.0
    sampling: float = 0.0
    vocoder: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class Segment:
    """When the text of one chunk is spoken in the output, in seconds. Consecutive segments
    meet in the middle of their cross-fade. Under the quality check, ``attempts`` are the tries
    of the chunk in order; the audio kept is the one with the lowest error rate. With
    ``options.word_timestamps``, ``words`` are the chunk's words as written, with when speech
    recognition heard them (:mod:`~f5serve.engine.words`)."""

    text: str
    start: float
    end: float
    attempts: tuple[Attempt, ...] = ()
    words: tuple[Word, ...] = ()

    def shifted(self, seconds: float) -> Segment:
        """This segment ``seconds`` later (its place in a longer output)."""
        return dataclasses.replace(
            self,
            start=self.start + seconds,
            end=self.end + seconds,
            words=tuple(shifted_word(w, seconds) for w in self.words),
        )


def shifted_word(word: Word, seconds: float) -> Word:
    """``word`` ``seconds`` later (a word without times stays without)."""
    if word.start is None or word.end is None:
        return word
    return Word(word.word, round(word.start + seconds, 3), round(word.end + seconds, 3))


def chunk_starts(lengths: list[int], cross_fade: float, sample_rate: int) -> list[int]:
    """The sample of the joined output where the audio of each chunk begins (its fade-in),
    given each chunk's length and the cross-fade (shortened to fit, as :class:`CrossFader`
    does)."""
    overlap = int(cross_fade * sample_rate)
    starts: list[int] = []
    end = 0
    for i, length in enumerate(lengths):
        shared = min(overlap, end, length) if i else 0  # what :meth:`CrossFader.push` blends
        starts.append(end - shared)
        end += length - shared
    return starts


def chunk_segments(
    chunks: list[str], lengths: list[int], cross_fade: float, sample_rate: int
) -> list[Segment]:
    """The :class:`Segment` of each chunk, given the length in samples of each chunk's audio
    and the cross-fade that joined them: a segment starts in the middle of its fade-in."""
    starts = chunk_starts(lengths, cross_fade, sample_rate)
    ends = [start + length for start, length in zip(starts, lengths, strict=True)]
    middles = [0.0] + [(s + e) / 2 / sample_rate for s, e in zip(starts[1:], ends, strict=False)]
    bounds = [*middles[1:], ends[-1] / sample_rate] if ends else []
    return [
        Segment(chunk, round(start, 3), round(end, 3))
        for chunk, start, end in zip(chunks, middles, bounds, strict=True)
    ]


@dataclass
class SynthesisResult:
    """The output of :meth:`Engine.synthesize`."""

    audio: np.ndarray  # float32, mono
    sample_rate: int
    chunks: list[str]  # the text of each chunk, in order
    seed: int  # seed of chunk 0 (chunk i used seed + i)
    timings: Timings = field(default_factory=Timings)
    segments: list[Segment] = field(default_factory=list)  # when each chunk is spoken

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class Progress:
    """Progress of one synthesis, reported after every flow step of any of its chunks.

    Chunks of a request are sampled together, so their steps interleave.
    """

    chunk: int  # 0-based index of the chunk that just advanced
    chunks: int  # number of chunks
    step: int  # flow steps done in that chunk
    steps: int  # flow steps per chunk
    done: int  # flow steps done over all chunks

    @property
    def fraction(self) -> float:
        """Overall fraction done, 0–1."""
        return self.done / (self.chunks * self.steps)


ProgressCallback = Callable[[Progress], None]


@dataclass
class PreparedRequest:
    """A request set up by :meth:`Engine.prepare_request`: one flow item per chunk."""

    ref: Reference
    chunks: list[str]
    seed: int
    items: list[FlowItem]
    options: SynthesisOptions
    timings: Timings
    started: float  # time.perf_counter() when the set-up began
    language: str | None = None
    # transcribes the chunks under options.quality_check and options.word_timestamps
    recognizer: Recognizer | None = None
    attempts: dict[int, tuple[Attempt, ...]] = field(default_factory=dict)  # chunk → its tries
    words: WordMap | None = None  # the chunks' words traced to the text (word_timestamps)
    heard: dict[int, Transcript] = field(default_factory=dict)  # chunk → its kept audio heard

    def result(self, audio: np.ndarray, lengths: list[int]) -> SynthesisResult:
        """The :class:`SynthesisResult` of the joined ``audio``, whose chunks were ``lengths``
        samples long before the cross-fade (stamps the total time)."""
        self.timings.total = time.perf_counter() - self.started
        cross_fade = self.options.cross_fade
        segments = chunk_segments(self.chunks, lengths, cross_fade, SAMPLE_RATE)
        starts = chunk_starts(lengths, cross_fade, SAMPLE_RATE)
        segments = [self.segment(i, s, starts[i], lengths[i]) for i, s in enumerate(segments)]
        return SynthesisResult(audio, SAMPLE_RATE, self.chunks, self.seed, self.timings, segments)

    def segment(self, index: int, segment: Segment, start: int, length: int) -> Segment:
        """``segment`` of chunk ``index`` (whose audio begins at sample ``start`` of the
        output and is ``length`` samples long) with its tries and its timed words."""
        words: tuple[Word, ...] = ()
        if self.words is not None:
            heard = self.heard[index].words
            words = self.words.timed(index, heard, start / SAMPLE_RATE, length / SAMPLE_RATE)
        return dataclasses.replace(segment, attempts=self.attempts.get(index, ()), words=words)

    def hear(self, wave: np.ndarray) -> Transcript:
        """What the recogniser hears in a chunk's audio (with word times when they are
        asked for; a recogniser written before words existed is called as it was)."""
        assert self.recognizer is not None
        if self.options.word_timestamps:
            return self.recognizer.transcribe(wave, SAMPLE_RATE, self.language, words=True)
        return self.recognizer.transcribe(wave, SAMPLE_RATE, self.language)

    def judge(self, index: int, wave: np.ndarray, seed: int) -> tuple[Attempt, Transcript]:
        """Transcribe and rate the audio of chunk ``index`` sampled with ``seed``."""
        heard = self.hear(wave)
        return asr.judge(heard, self.chunks[index], seed, self.language), heard

    def keep(self, index: int, tries: list[tuple[Attempt, Transcript]]) -> int:
        """Record the ``tries`` of chunk ``index`` (and what was heard of the one kept); the
        index of the try kept (:func:`~f5serve.engine.asr.best`)."""
        kept = asr.best([attempt for attempt, _ in tries])
        self.attempts[index] = tuple(attempt for attempt, _ in tries)
        self.heard[index] = tries[kept][1]
        return kept

    def listen(self, index: int, wave: np.ndarray) -> None:
        """For word timestamps: hear the audio kept of chunk ``index``, unless the quality
        check already did."""
        if self.words is not None and index not in self.heard:
            self.heard[index] = self.hear(wave)


class CrossFader:
    """Joins chunks with a linear cross-fade, one chunk at a time (for streaming).

    :meth:`push` returns the audio that is final; the last ``seconds`` are held back to blend
    with the next chunk, and :meth:`finish` returns them. The overlap is shortened to fit short
    chunks, as upstream F5-TTS does.
    """

    def __init__(self, seconds: float, sample_rate: int) -> None:
        self.overlap = int(seconds * sample_rate)
        self.tail: np.ndarray | None = None
        self.length = 0  # samples of the joined audio so far (what was returned plus the tail)

    def push(self, wave: np.ndarray) -> np.ndarray:
        """Add the next chunk; return the audio that can be played now. The chunk starts at
        sample ``length - len(wave)`` of the joined audio (its fade-in blends from there)."""
        current = wave
        n = 0
        if self.tail is not None:
            n = min(self.overlap, len(self.tail), len(wave))
            if n <= 0:
                current = np.concatenate([self.tail, wave])
            else:
                blended = self.tail[-n:] * np.linspace(1, 0, n) + wave[:n] * np.linspace(0, 1, n)
                current = np.concatenate([self.tail[:-n], blended, wave[n:]])
        self.length += len(wave) - n
        keep = min(self.overlap, len(current))
        self.tail = current[len(current) - keep :]
        return current[: len(current) - keep].astype(np.float32)

    def finish(self) -> np.ndarray:
        """The held-back end of the last chunk."""
        tail = self.tail if self.tail is not None else np.zeros(0, dtype=np.float32)
        self.tail = None
        return tail.astype(np.float32)


def cross_fade_join(waves: list[np.ndarray], seconds: float, sample_rate: int) -> np.ndarray:
    """Join chunks with a linear cross-fade of ``seconds`` (shortened to fit short chunks)."""
    fader = CrossFader(seconds, sample_rate)
    parts = [fader.push(w) for w in waves]
    return np.concatenate([*parts, fader.finish()])


class Engine:
    """F5-TTS inference: a DiT, a vocabulary and a Vocos vocoder on one device."""

    def __init__(
        self,
        model: DiT,
        vocab: text.Vocab,
        vocoder: Vocos,
        device: torch.device,
        dtype: torch.dtype,
        max_batch_frames: int | None = None,
        text_form: text.TextForm | None = None,
    ) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.vocab = vocab
        # the Unicode form and case the model was trained on, applied to what it reads
        self.text_form = text_form or text.AS_WRITTEN
        self.vocoder = vocoder.to(device).eval()  # always float32: small, and sensitive
        self.mel = MelSpectrogram().to(device)
        self.device = device
        self.dtype = dtype
        # Memory bound of one batch: rows × padded frames (None: the device's default).
        self.max_batch_frames = max_batch_frames or default_batch_frames(model, device, dtype)
        self.compile_mode = "off"  # how the DiT runs: off (eager), on or max (see compile)
        # replay the steps of an unchanged batch from CUDA graphs (see use_cuda_graphs)
        self.cuda_graphs = graphs.resolve_mode("auto", device)
        self.packed = False  # run rows of different lengths without padding (see use_packing)

    @classmethod
    def from_files(
        cls,
        checkpoint: str | Path,
        vocab: str | Path,
        arch: str | Mapping[str, Any] | DiTConfig,
        vocoder: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        text_form: text.TextForm | None = None,
    ) -> Engine:
        """Load a checkpoint (.safetensors, .pt or a state dict), its vocab and a Vocos folder;
        ``text_form`` is the form of the text the model was trained on (default: as written)."""
        dev, dt = resolve_device(device, dtype)
        cfg = resolve_arch(arch)
        words = text.Vocab.from_file(vocab)
        state = dit_weights(read_state_dict(checkpoint))
        trained = vocab_size_of(state)
        if trained is not None and trained != len(words):
            raise CheckpointMismatch(
                f"vocab {vocab} has {len(words)} tokens but checkpoint {checkpoint} was trained "
                f"with {trained}: use the vocab.txt that ships with the checkpoint"
            )
        if cfg.text_num_embeds is not None and cfg.text_num_embeds != len(words):
            raise CheckpointMismatch(
                f"arch says text_num_embeds={cfg.text_num_embeds} but vocab {vocab} has "
                f"{len(words)} tokens"
            )
        model = DiT(cfg.with_vocab_size(len(words)))
        load_into(model, state, f"checkpoint {checkpoint}")
        return cls(model, words, Vocos.from_dir(vocoder), dev, dt, text_form=text_form)

    def compile(self, mode: str = "on") -> float:
        """Compile the DiT's blocks (``on``, ``max``, or ``auto``: on for CUDA only; ``off``
        returns to eager) and build the graphs serving needs now; the seconds that took.

        See ``engine/compile.py``; :func:`~f5serve.engine.compile.use_cache_dir` persists the
        compiled code for the next start.
        """
        self.compile_mode = compiling.resolve_mode(mode, self.device)
        compiling.set_mode(self.model, self.compile_mode)
        if self.compile_mode == "off":
            return 0.0
        return compiling.warm_up(self.model, self.device, self.dtype, self.packed)

    def use_cuda_graphs(self, mode: str) -> bool:
        """``auto`` (on for CUDA) or ``off``: whether batches made from now on replay their
        steps from CUDA graphs (``engine/graphs.py``); returns whether they do."""
        self.cuda_graphs = graphs.resolve_mode(mode, self.device)
        return self.cuda_graphs

    def use_packing(self, mode: str) -> bool:
        """``off``, ``on`` or ``auto`` (on where the variable-length attention kernel runs: CUDA
        in float16/bfloat16): whether batches made from now on run their rows packed, without
        padding (``engine/packing.py``); returns whether they do. Call it before :meth:`compile`,
        which then builds the packed graph too."""
        self.packed = packing.resolve_mode(mode, self.device, self.dtype)
        return self.packed

    def new_batcher(self) -> FlowBatcher:
        """An empty :class:`FlowBatcher` for this engine's model (with CUDA graphs and packing
        when on)."""
        step_graphs = graphs.StepGraphs(self.device) if self.cuda_graphs else None
        return FlowBatcher(self.model, step_graphs, packed=self.packed)

    def prepare_reference(
        self,
        ref_audio: AudioSource,
        ref_text: str,
        options: SynthesisOptions | None = None,
        recognizer: Recognizer | None = None,
        language: str | None = None,
    ) -> Reference:
        """Decode, clean up (``options.preprocess_ref``), normalise loudness and compute the mel
        of a prompt. An empty ``ref_text`` is what ``recognizer`` hears in the clip as used
        (after the clean-up; ``language`` a hint), when one is given."""
        opts = options or SynthesisOptions()
        prepared = audio_io.prepare_reference(
            ref_audio, clean=opts.preprocess_ref, target_rms=opts.target_rms
        )
        if not ref_text.strip() and recognizer is not None:
            ref_text = recognizer.transcribe(prepared.audio, SAMPLE_RATE, language).text
        samples = torch.from_numpy(np.ascontiguousarray(prepared.audio, dtype=np.float32))
        with torch.inference_mode():
            mel = self.mel(samples.to(self.device)[None])[0].transpose(0, 1)  # [frames, 100]
        return Reference(
            mel=mel,
            samples=len(prepared.audio),
            transcript=text.normalize_ref_text(ref_text),
            text=text.prepare_ref_text(ref_text),
            seconds=prepared.seconds,
            rms=prepared.original_rms,
            target_rms=opts.target_rms,
        )

    def plan_chunks(
        self, gen_text: str, ref: Reference, speed: float, first_chunk_seconds: float | None = None
    ) -> list[str]:
        """Split ``gen_text`` into chunks that fit the reference's speaking-rate budget (the
        first one, when ``first_chunk_seconds`` is given, about that many seconds of speech)."""
        budget = text.max_chunk_bytes(ref.transcript, ref.seconds, speed)
        first = None
        if first_chunk_seconds is not None:
            first = text.speech_bytes(ref.transcript, ref.seconds, first_chunk_seconds, speed)
            first = min(first, budget)
        chunks = text.chunk_text(gen_text, budget, first)
        if not chunks:
            raise InvalidInput("text has nothing to synthesise")
        return chunks

    def synthesize(
        self,
        text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str = "",
        *,
        options: SynthesisOptions | None = None,
        progress: ProgressCallback | None = None,
        language: str | None = None,
        pronunciations: Mapping[str, str] | Lexicon | None = None,
        recognizer: Recognizer | None = None,
        **overrides: Any,
    ) -> SynthesisResult:
        """Speak ``text`` in the voice of ``ref_audio`` (whose transcript is ``ref_text``).

        ``options`` (default: :class:`SynthesisOptions`'s defaults) with ``overrides``, its
        fields by name, applied: ``synthesize(text, clip, transcript, nfe_steps=16)``.
        ``ref_audio`` may be a :class:`Reference` prepared earlier (then ``ref_text`` is
        unused). The chunks of the text are sampled together in batches bounded by
        ``max_batch_frames``. ``pronunciations`` (``{word or /pattern/: replacement}``, see
        :mod:`~f5serve.engine.pronounce`) respell words first; ``language`` (ISO 639-1) says
        how ``options.normalize`` reads numbers among Latin-script words (default: English).
        A speech ``recognizer`` (:class:`~f5serve.engine.asr.LazyRecognizer`, with the extra
        ``f5serve[asr]``) transcribes a clip given without ``ref_text`` and runs
        ``options.quality_check`` and ``options.word_timestamps``, which need one.
        """
        opts = resolve(options, overrides)
        lexicon = to_lexicon(pronunciations)
        request = self.prepare_request(
            text, ref_audio, ref_text, opts, progress, language, lexicon, recognizer
        )
        waves = self.run_items(request.ref, request.items, request.timings)
        if opts.quality_check:
            waves = self.check_chunks(request, waves)
        for i, wave in enumerate(waves):
            request.listen(i, wave)
        joined = cross_fade_join(waves, opts.cross_fade, SAMPLE_RATE)
        return request.result(joined, [len(w) for w in waves])

    def check_chunks(self, request: PreparedRequest, waves: list[np.ndarray]) -> list[np.ndarray]:
        """The quality check of a whole request: each chunk's audio transcribed and, while it
        reads badly, sampled again with the next seed (the chunks that need another try are
        batched together); the audio kept of each chunk (:func:`~f5serve.engine.asr.best`),
        the tries recorded in ``request.attempts``."""
        tries = [[request.judge(i, wave, request.seed + i)] for i, wave in enumerate(waves)]
        kept = [[wave] for wave in waves]
        while again := [
            (i, seed)
            for i in range(len(waves))
            if (seed := asr.next_seed([a for a, _ in tries[i]], request.options)) is not None
        ]:
            items = [
                self.make_item(request.ref, request.chunks[i], seed, request.options)
                for i, seed in again
            ]
            new = self.run_items(request.ref, items, request.timings)
            for (i, seed), wave in zip(again, new, strict=True):
                tries[i].append(request.judge(i, wave, seed))
                kept[i].append(wave)
        return [k[request.keep(i, t)] for i, (k, t) in enumerate(zip(kept, tries, strict=True))]

    def prepare_request(
        self,
        gen_text: str,
        ref_audio: AudioSource | Reference,
        ref_text: str,
        options: SynthesisOptions,
        progress: ProgressCallback | None = None,
        language: str | None = None,
        lexicon: Lexicon | None = None,
        recognizer: Recognizer | None = None,
    ) -> PreparedRequest:
        """Set a request up: validate it, put its words right (:func:`prepare_text`), prepare
        the reference (unless given prepared; ``recognizer`` transcribes a clip without
        ``ref_text``), plan the chunks, pick the seed and make one :class:`FlowItem` per chunk,
        each reporting the request's overall progress. ``options.quality_check`` and
        ``options.word_timestamps`` need the ``recognizer``."""
        started = time.perf_counter()
        check_request(gen_text, options)
        if (needs := asr.transcribing(options)) is not None and recognizer is None:
            raise AsrUnavailable(
                f"{needs} transcribes the chunks: give a speech recognizer "
                f"(recognizer=LazyRecognizer(), {asr.INSTALL_HINT})"
            )
        original, mapped = gen_text, prepare_text(gen_text, options, language, lexicon)
        gen_text = mapped.text
        ref = (
            ref_audio
            if isinstance(ref_audio, Reference)
            else self.prepare_reference(ref_audio, ref_text, options, recognizer, language)
        )
        chunks = self.plan_chunks(gen_text, ref, options.speed, options.first_chunk_seconds)
        seed = options.seed if options.seed is not None else random.randrange(2**31)
        reporters = chunk_reporters(progress, len(chunks), options.nfe_steps)
        items = [
            self.make_item(ref, chunk, seed + i, options, reporters[i])
            for i, chunk in enumerate(chunks)
        ]
        timings = Timings(reference=time.perf_counter() - started)
        words = WordMap(original, mapped, chunks, language) if options.word_timestamps else None
        return PreparedRequest(
            ref, chunks, seed, items, options, timings, started, language, recognizer, words=words
        )

    def make_item(
        self,
        ref: Reference,
        chunk: str,
        seed: int,
        opts: SynthesisOptions,
        on_step: Callable[[int], None] | None = None,
    ) -> FlowItem:
        """Everything one chunk needs to be sampled: conditioning, noise, duration and grid.

        The model reads the reference text and the chunk in its :class:`~text.TextForm`."""
        ref_text, chunk = self.text_form.apply(ref.text), self.text_form.apply(chunk)
        ids = text.text_to_ids(ref_text + chunk, self.vocab)
        if opts.fix_duration is not None:
            frames = sampler.frames_for_seconds(opts.fix_duration, SAMPLE_RATE, HOP_LENGTH)
        else:
            frames = sampler.estimate_frames(ref.frames, ref_text, chunk, opts.speed)
        frames = sampler.clamp_frames(frames, len(ids), ref.mel.shape[0], MAX_FRAMES)
        cond_frames = min(ref.mel.shape[0], frames)
        cond = torch.zeros(frames, ref.mel.shape[1], device=self.device, dtype=self.dtype)
        cond[:cond_frames] = ref.mel[:cond_frames].to(self.dtype)
        noise = sampler.initial_noise(frames, seed, ref.mel.shape[1])
        return FlowItem(
            cond=cond,
            cond_frames=cond_frames,
            text_ids=torch.tensor(ids, dtype=torch.long, device=self.device),
            y=noise.to(self.device, self.dtype),
            grid=sampler.time_grid(opts.nfe_steps, opts.sway_sampling_coef).to(
                self.device, self.dtype
            ),
            cfg_strength=opts.cfg_strength,
            on_step=on_step,
        )

    def run_items(
        self, ref: Reference, items: list[FlowItem], timings: Timings | None = None
    ) -> list[np.ndarray]:
        """Sample and vocode ``items`` (chunks of one reference); waveforms in input order."""
        timings = timings if timings is not None else Timings()
        mels = self.sample_items(items, timings)
        started = time.perf_counter()
        waves = self.vocode_items([(ref, mel) for mel in mels])
        timings.vocoder += time.perf_counter() - started
        return waves

    def sample_items(
        self, items: list[FlowItem], timings: Timings | None = None
    ) -> list[torch.Tensor]:
        """Run the flow steps of ``items`` in batches under the frame budget; the sampled mels
        (reference part included) in input order."""
        batcher = self.new_batcher()
        pending = list(items)
        mels: dict[int, torch.Tensor] = {}
        while pending or batcher.items:
            started = time.perf_counter()
            while pending and (
                not batcher.items or batcher.padded_frames(pending[0]) <= self.max_batch_frames
            ):
                batcher.add(pending.pop(0))
            for item in batcher.step():
                mels[id(item)] = item.result()
            if timings is not None:
                timings.sampling += time.perf_counter() - started
        return [mels[id(item)] for item in items]

    def vocode_items(self, items: list[tuple[Reference, torch.Tensor]]) -> list[np.ndarray]:
        """Vocode the generated part of sampled mels (one backbone batch) and restore each
        reference's loudness."""
        waves = self.vocoder.decode_batch([mel[ref.frames :].float() for ref, mel in items])
        return [
            audio_io.restore_loudness(
                wave.cpu().numpy().astype(np.float32), ref.rms, ref.target_rms
            )
            for (ref, _), wave in zip(items, waves, strict=True)
        ]


def default_batch_frames(model: DiT, device: torch.device, dtype: torch.dtype) -> int:
    """The frame budget of ``device`` when none is set (on CUDA: from the free memory)."""
    if device.type != "cuda":
        return DEFAULT_BATCH_FRAMES.get(device.type, 16384)
    free, _ = torch.cuda.mem_get_info(device)
    per_frame = CUDA_BYTES_PER_FRAME * model.cfg.dim / 1024 * dtype.itemsize / 2
    fits = int(free * CUDA_MEMORY_SHARE / per_frame)
    return min(max(fits, DEFAULT_BATCH_FRAMES["cuda"]), MAX_CUDA_BATCH_FRAMES)


def check_request(gen_text: str, options: SynthesisOptions) -> None:
    """Refuse options out of range and text that cannot be spoken (:class:`InvalidInput`)."""
    options.validate()
    text.validate_gen_text(gen_text)


def prepare_text(
    gen_text: str, options: SynthesisOptions, language: str | None, lexicon: Lexicon | None
) -> MappedText:
    """The text as it is chunked, with its map to ``gen_text``: ``lexicon`` applied, then
    normalised (``options.normalize``, numbers among Latin-script words read in ``language``)."""
    text = MappedText.of(gen_text)
    if lexicon:
        text = lexicon.apply_mapped(text)
    return normalize_mapped(text, language) if options.normalize else text


def to_lexicon(pronunciations: Mapping[str, str] | Lexicon | None) -> Lexicon:
    """A :class:`Lexicon` from what a caller of :meth:`Engine.synthesize` gave."""
    if isinstance(pronunciations, Lexicon):
        return pronunciations
    return Lexicon.parse(pronunciations)


def chunk_reporters(
    progress: ProgressCallback | None, chunks: int, steps: int
) -> list[Callable[[int], None] | None]:
    """Per-chunk step callbacks that report a request's overall :class:`Progress`."""
    if progress is None:
        return [None] * chunks
    done = [0]

    def reporter(chunk: int) -> Callable[[int], None]:
        def report(step: int) -> None:
            done[0] += 1
            progress(Progress(chunk=chunk, chunks=chunks, step=step, steps=steps, done=done[0]))

        return report

    return [reporter(i) for i in range(chunks)]
