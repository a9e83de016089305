"""The synthesis pipeline: reference preparation, chunking, per-chunk sampling, vocoding, joining.

:class:`Engine` is the public entry point (``from f5serve import Engine``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from f5serve.engine import audio as audio_io
from f5serve.engine import compile as compiling
from f5serve.engine import sampler, text
from f5serve.engine.batching import FlowBatcher, FlowItem
from f5serve.engine.checkpoint import dit_weights, load_into, read_state_dict, vocab_size_of
from f5serve.engine.config import DiTConfig, resolve_arch
from f5serve.engine.devices import resolve_device
from f5serve.engine.dit import DiT
from f5serve.engine.mel import HOP_LENGTH, SAMPLE_RATE, MelSpectrogram
from f5serve.engine.vocoder import Vocos
from f5serve.errors import CheckpointMismatch, InvalidInput

MAX_FRAMES = 4096  # the reference's cap on one chunk's total frames (reference + generated)
# Rows × padded frames one forward may take, by device type. On a CPU a forward's cost grows
# linearly with its rows (matrix products are already efficient for one item), so batching only
# adds padding: measured 0.53× the throughput of one-at-a-time at 8 mixed requests on 2 cores
# (docs/performance.md). There, the default admits one chunk at a time.
DEFAULT_BATCH_FRAMES = {"cuda": 65536, "mps": 16384, "cpu": 1}

AudioSource = str | Path | bytes | tuple[np.ndarray, int]


@dataclass(frozen=True)
class SynthesisOptions:
    """How to synthesise; the defaults are the reference's."""

    nfe_steps: int = 32  # flow steps
    cfg_strength: float = 2.0  # classifier-free guidance weight; 0 = one conditional pass
    sway_sampling_coef: float | None = -1.0  # sway of the time grid; None = no sway
    speed: float = 1.0  # speaking rate (scales the estimated duration)
    seed: int | None = None  # chunk i uses seed + i; None = a random seed (reported back)
    cross_fade: float = 0.15  # seconds of linear cross-fade between chunks
    fix_duration: float | None = None  # total seconds (reference + output) of every chunk
    preprocess_ref: bool = True  # clip the reference to ≤ 12 s and trim its edge silence

    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the first bad option."""
        checks = [
            (1 <= self.nfe_steps <= 128, "nfe_steps must be between 1 and 128"),
            (0 <= self.cfg_strength <= 20, "cfg_strength must be between 0 and 20"),
            (0.25 <= self.speed <= 4.0, "speed must be between 0.25 and 4.0"),
            (0 <= self.cross_fade <= 2.0, "cross_fade must be between 0 and 2 seconds"),
            (self.seed is None or 0 <= self.seed < 2**63, "seed must be a non-negative integer"),
            (
                self.sway_sampling_coef is None or -2.0 <= self.sway_sampling_coef <= 2.0,
                "sway_sampling_coef must be between -2 and 2",
            ),
            (
                self.fix_duration is None or 0 < self.fix_duration <= 60,
                "fix_duration must be between 0 and 60 seconds",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInput(message)


@dataclass(frozen=True)
class Reference:
    """A prepared voice prompt: what every chunk of a request conditions on."""

    mel: torch.Tensor  # [frames, 100] log-mel of the loudness-normalised 24 kHz audio
    samples: int  # length of that audio at 24 kHz
    transcript: str  # transcript ending with ". " or "。" (text.normalize_ref_text)
    text: str  # what the model reads before the chunk (text.prepare_ref_text)
    seconds: float  # duration used for the chunk budget
    rms: float  # loudness before normalisation (the output is scaled back to it)

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


@dataclass
class SynthesisResult:
    """The output of :meth:`Engine.synthesize`."""

    audio: np.ndarray  # float32, mono
    sample_rate: int
    chunks: list[str]  # the text of each chunk, in order
    seed: int  # seed of chunk 0 (chunk i used seed + i)
    timings: Timings = field(default_factory=Timings)

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


class CrossFader:
    """Joins chunks with a linear cross-fade, one chunk at a time (for streaming).

    :meth:`push` returns the audio that is final; the last ``seconds`` are held back to blend
    with the next chunk, and :meth:`finish` returns them. The overlap is shortened to fit short
    chunks, as in the reference.
    """

    def __init__(self, seconds: float, sample_rate: int) -> None:
        self.overlap = int(seconds * sample_rate)
        self.tail: np.ndarray | None = None

    def push(self, wave: np.ndarray) -> np.ndarray:
        """Add the next chunk; return the audio that can be played now."""
        current = wave
        if self.tail is not None:
            n = min(self.overlap, len(self.tail), len(wave))
            if n <= 0:
                current = np.concatenate([self.tail, wave])
            else:
                blended = self.tail[-n:] * np.linspace(1, 0, n) + wave[:n] * np.linspace(0, 1, n)
                current = np.concatenate([self.tail[:-n], blended, wave[n:]])
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
    ) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.vocab = vocab
        self.vocoder = vocoder.to(device).eval()  # always float32: small, and sensitive
        self.mel = MelSpectrogram().to(device)
        self.device = device
        self.dtype = dtype
        # Memory bound of one batch: rows × padded frames (None: the device's default).
        self.max_batch_frames = max_batch_frames or DEFAULT_BATCH_FRAMES.get(device.type, 16384)
        self.compile_mode = "off"  # how the DiT runs: off (eager), on or max (see compile)

    @classmethod
    def from_files(
        cls,
        checkpoint: str | Path,
        vocab: str | Path,
        arch: str | Mapping[str, Any] | DiTConfig,
        vocoder: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> Engine:
        """Load a checkpoint (.safetensors, .pt or a state dict), its vocab and a Vocos folder."""
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
        return cls(model, words, Vocos.from_dir(vocoder), dev, dt)

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
        return compiling.warm_up(self.model, self.device, self.dtype)

    def prepare_reference(
        self, ref_audio: AudioSource, ref_text: str, preprocess: bool = True
    ) -> Reference:
        """Decode, clean up (optionally), normalise loudness and compute the mel of a prompt."""
        prepared = audio_io.prepare_reference(
            ref_audio, clean=preprocess, target_rms=audio_io.TARGET_RMS
        )
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
        )

    def plan_chunks(self, gen_text: str, ref: Reference, speed: float) -> list[str]:
        """Split ``gen_text`` into chunks that fit the reference's speaking-rate budget."""
        budget = text.max_chunk_bytes(ref.transcript, ref.seconds, speed)
        chunks = text.chunk_text(gen_text, budget)
        if not chunks:
            raise InvalidInput("text has nothing to synthesise")
        return chunks

    def synthesize(
        self,
        text_in: str,
        ref_audio: AudioSource,
        ref_text: str,
        *,
        progress: ProgressCallback | None = None,
        **options: Any,
    ) -> SynthesisResult:
        """Speak ``text_in`` in the voice of ``ref_audio`` (whose transcript is ``ref_text``).

        ``options`` are the fields of :class:`SynthesisOptions`. The chunks of the text are
        sampled together in one batch (bounded by ``max_batch_frames``).
        """
        started = time.perf_counter()
        opts = SynthesisOptions(**options)
        opts.validate()
        text.validate_gen_text(text_in)
        ref = self.prepare_reference(ref_audio, ref_text, opts.preprocess_ref)
        chunks = self.plan_chunks(text_in, ref, opts.speed)
        seed = opts.seed if opts.seed is not None else random.randrange(2**31)
        timings = Timings(reference=time.perf_counter() - started)
        reporters = chunk_reporters(progress, len(chunks), opts.nfe_steps)
        items = [
            self.make_item(ref, chunk, seed + i, opts, reporters[i])
            for i, chunk in enumerate(chunks)
        ]
        waves = self.run_items(ref, items, timings)
        result = SynthesisResult(
            audio=cross_fade_join(waves, opts.cross_fade, SAMPLE_RATE),
            sample_rate=SAMPLE_RATE,
            chunks=chunks,
            seed=seed,
            timings=timings,
        )
        timings.total = time.perf_counter() - started
        return result

    def make_item(
        self,
        ref: Reference,
        chunk: str,
        seed: int,
        opts: SynthesisOptions,
        on_step: Callable[[int], None] | None = None,
    ) -> FlowItem:
        """Everything one chunk needs to be sampled: conditioning, noise, duration and grid."""
        ids = text.text_to_ids(ref.text + chunk, self.vocab)
        if opts.fix_duration is not None:
            frames = sampler.frames_for_seconds(opts.fix_duration, SAMPLE_RATE, HOP_LENGTH)
        else:
            frames = sampler.estimate_frames(ref.frames, ref.text, chunk, opts.speed)
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
        batcher = FlowBatcher(self.model)
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
                wave.cpu().numpy().astype(np.float32), ref.rms, audio_io.TARGET_RMS
            )
            for (ref, _), wave in zip(items, waves, strict=True)
        ]


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
