"""Engine behaviour beyond the golden cases: options, chunking, seeds, progress and errors."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from f5serve import Engine, Progress, SynthesisOptions
from f5serve.engine.text import TextForm, speech_bytes
from f5serve.errors import (
    CheckpointMismatch,
    DeviceError,
    InvalidAudio,
    InvalidInput,
    InvalidText,
    NotFound,
    UnknownPreset,
    UnsupportedMediaType,
)

REF_TEXT = "Some call me nature, others call me mother nature."


@pytest.fixture(scope="module")
def engine(tiny_model_files: dict[str, Any]) -> Engine:
    return Engine.from_files(**tiny_model_files, device="cpu")


@pytest.fixture(scope="module")
def ref_wav(fixtures_dir: Path) -> Path:
    return fixtures_dir / "basic_ref_en.wav"


def fast(**kw: Any) -> dict[str, Any]:
    return {"nfe_steps": 4, "seed": 7, **kw}


def test_same_seed_gives_same_audio_and_other_seed_differs(engine: Engine, ref_wav: Path) -> None:
    a = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, **fast())
    b = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, **fast())
    c = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, **fast(seed=8))
    assert np.array_equal(a.audio, b.audio)
    assert not np.allclose(a.audio, c.audio)
    assert a.seed == 7


def test_keywords_an_options_object_and_overrides_are_the_same_request(
    engine: Engine, ref_wav: Path
) -> None:
    by_keyword = engine.synthesize(
        text="Hello there, my friend.",
        ref_audio=ref_wav,
        ref_text=REF_TEXT,
        options=SynthesisOptions(nfe_steps=4, seed=3),
    )
    overridden = engine.synthesize(
        "Hello there, my friend.", ref_wav, REF_TEXT, options=SynthesisOptions(**fast()), seed=3
    )
    assert np.array_equal(by_keyword.audio, overridden.audio)
    assert overridden.seed == 3


def test_a_prepared_reference_gives_the_same_audio(engine: Engine, ref_wav: Path) -> None:
    ref = engine.prepare_reference(ref_wav, REF_TEXT)
    prepared = engine.synthesize("Hello there, my friend.", ref, **fast())
    direct = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, **fast())
    assert np.array_equal(prepared.audio, direct.audio)


def test_target_rms_sets_the_loudness_a_quiet_reference_is_raised_to(
    engine: Engine, ref_wav: Path
) -> None:
    wave, sr = sf.read(str(ref_wav), dtype="float32")
    quiet = (wave * 0.2, sr)  # RMS ≈ 0.026: raised to the target, the output scaled back
    say = "Hello there, my friend."
    ref = engine.prepare_reference(quiet, REF_TEXT, SynthesisOptions(target_rms=0.2))
    assert ref.target_rms == 0.2
    default = engine.synthesize(say, quiet, REF_TEXT, **fast())
    louder = engine.synthesize(say, quiet, REF_TEXT, **fast(target_rms=0.2))
    assert np.array_equal(louder.audio, engine.synthesize(say, ref, **fast()).audio)
    assert not np.allclose(default.audio, louder.audio)
    # a reference louder than both targets is used as it is: the same audio
    low = [engine.synthesize(say, ref_wav, REF_TEXT, **fast(target_rms=t)) for t in (1e-4, 2e-4)]
    assert np.array_equal(low[0].audio, low[1].audio)
    with pytest.raises(InvalidInput, match="target_rms"):
        engine.synthesize(say, ref_wav, REF_TEXT, **fast(target_rms=0.0))


def test_random_seed_is_reported_and_reproduces(engine: Engine, ref_wav: Path) -> None:
    first = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, nfe_steps=4)
    again = engine.synthesize("Hello there, my friend.", ref_wav, REF_TEXT, **fast(seed=first.seed))
    assert np.array_equal(first.audio, again.audio)


def test_long_text_is_chunked_and_cross_faded(engine: Engine, ref_wav: Path) -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    result = engine.synthesize(sentence * 4, ref_wav, REF_TEXT, **fast())
    assert len(result.chunks) >= 2
    joined = " ".join(result.chunks)
    assert joined.split() == (sentence * 4).split()
    singles = [
        engine.synthesize(c, ref_wav, REF_TEXT, **fast(seed=7 + i))
        for i, c in enumerate(result.chunks)
    ]
    overlap = int(0.15 * 24000)
    expected = sum(len(s.audio) for s in singles) - overlap * (len(singles) - 1)
    assert len(result.audio) == expected
    # The first chunk's audio, up to the first cross-fade, is chunk 0 alone (seed + 0).
    head = len(singles[0].audio) - overlap
    assert np.allclose(result.audio[:head], singles[0].audio[:head], atol=1e-6)


def test_first_chunk_seconds_shortens_the_first_chunk_only(engine: Engine, ref_wav: Path) -> None:
    sentence = "The quick brown fox jumps over the lazy dog, near the quiet river bank. "
    text = sentence * 4
    usual = engine.synthesize(text, ref_wav, REF_TEXT, **fast())
    short = engine.synthesize(text, ref_wav, REF_TEXT, **fast(first_chunk_seconds=5.0))
    ref = engine.prepare_reference(ref_wav, REF_TEXT)
    # 5 s at the reference's rate (~10 bytes/s here) hold the first clause, not the second
    first_bytes = speech_bytes(ref.transcript, ref.seconds, 5.0)
    clause = "The quick brown fox jumps over the lazy dog,"
    assert len(clause) <= first_bytes < len(sentence.strip())
    assert short.chunks[0] == clause
    # the rest is chunked as the whole text is without the option
    rest = text.removeprefix(short.chunks[0]).strip()
    assert short.chunks[1:] == engine.plan_chunks(rest, ref, 1.0)
    assert len(usual.chunks) < len(short.chunks)
    assert short.segments[0].end < usual.segments[0].end
    # chunk 0 is sampled from its own text alone (seed + 0), as every chunk is
    alone = engine.synthesize(short.chunks[0], ref_wav, REF_TEXT, **fast())
    head = len(alone.audio) - int(0.15 * 24000)
    assert np.allclose(short.audio[:head], alone.audio[:head], atol=1e-6)


def test_speed_and_fixed_duration_change_length(engine: Engine, ref_wav: Path) -> None:
    text = "A sentence long enough to measure the speaking rate."
    normal = engine.synthesize(text, ref_wav, REF_TEXT, **fast())
    slow = engine.synthesize(text, ref_wav, REF_TEXT, **fast(speed=0.5))
    fixed = engine.synthesize(
        text, ref_wav, REF_TEXT, **fast(fix_duration=8.0, preprocess_ref=False)
    )
    assert len(slow.audio) > 1.8 * len(normal.audio)
    ref_seconds = sf.info(str(ref_wav)).duration
    assert fixed.duration == pytest.approx(8.0 - ref_seconds, abs=0.02)


def test_progress_reports_every_step_of_every_chunk(engine: Engine, ref_wav: Path) -> None:
    seen: list[Progress] = []
    sentence = "The quick brown fox jumps over the lazy dog near the quiet river bank. "
    result = engine.synthesize(sentence * 3, ref_wav, REF_TEXT, progress=seen.append, **fast())
    assert len(result.chunks) >= 2
    assert len(seen) == 4 * len(result.chunks)
    assert [p.done for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].fraction == 1.0
    for chunk in range(len(result.chunks)):
        assert [p.step for p in seen if p.chunk == chunk] == [1, 2, 3, 4]


def test_reference_can_be_an_array_at_any_rate(engine: Engine, ref_wav: Path) -> None:
    wave, sr = sf.read(str(ref_wav), dtype="float32")
    from_file = engine.synthesize("Hello there.", ref_wav, REF_TEXT, **fast())
    from_array = engine.synthesize("Hello there.", (wave, sr), REF_TEXT, **fast())
    assert np.array_equal(from_file.audio, from_array.audio)
    stereo_44k = np.stack([wave, wave], axis=1)
    import soxr

    stereo_44k = soxr.resample(stereo_44k, sr, 44100)
    other = engine.synthesize("Hello there.", (stereo_44k, 44100), REF_TEXT, **fast())
    assert abs(len(other.audio) - len(from_file.audio)) <= 2 * 256
    assert np.isfinite(other.audio).all()


@pytest.mark.parametrize(
    "text",
    ["", "   ", "?!...", "—— ，。"],
)
def test_text_without_words_is_rejected(engine: Engine, ref_wav: Path, text: str) -> None:
    with pytest.raises(InvalidText, match="letter or digit"):
        engine.synthesize(text, ref_wav, REF_TEXT, **fast())


def test_empty_reference_text_is_rejected(engine: Engine, ref_wav: Path) -> None:
    with pytest.raises(InvalidText, match="reference text is empty"):
        engine.synthesize("Hello.", ref_wav, "  ", **fast())


def test_silent_short_corrupt_and_non_audio_references(
    engine: Engine, tmp_path: Path, ref_wav: Path
) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(48000, dtype=np.float32), 24000)
    short = tmp_path / "short.wav"
    wave, sr = sf.read(str(ref_wav), dtype="float32")
    sf.write(short, wave[sr : sr + int(0.2 * sr)], sr)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(ref_wav.read_bytes()[:60])
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio at all\n" * 20)
    with pytest.raises(InvalidAudio, match="silent"):
        engine.synthesize("Hello.", silent, REF_TEXT, **fast(preprocess_ref=False))
    with pytest.raises(InvalidAudio, match="too short"):
        engine.synthesize("Hello.", short, REF_TEXT, **fast(preprocess_ref=False))
    with pytest.raises(InvalidAudio):
        engine.synthesize("Hello.", corrupt, REF_TEXT, **fast())
    with pytest.raises(UnsupportedMediaType):
        engine.synthesize("Hello.", not_audio, REF_TEXT, **fast())
    with pytest.raises(NotFound, match=r"missing\.wav"):
        engine.synthesize("Hello.", tmp_path / "missing.wav", REF_TEXT, **fast())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("nfe_steps", 0),
        ("speed", 0.0),
        ("speed", 10.0),
        ("cfg_strength", -1.0),
        ("cross_fade", -0.1),
        ("seed", -3),
        ("fix_duration", 0.0),
    ],
)
def test_bad_options_name_the_option(
    engine: Engine, ref_wav: Path, option: str, value: float
) -> None:
    with pytest.raises(InvalidInput, match=option):
        engine.synthesize("Hello.", ref_wav, REF_TEXT, **{**fast(), option: value})


def test_vocab_that_does_not_fit_the_checkpoint(
    tiny_model_files: dict[str, Any], tmp_path: Path
) -> None:
    lines = Path(tiny_model_files["vocab"]).read_text().splitlines(keepends=True)
    small = tmp_path / "vocab.txt"
    small.write_text("".join(lines[:100]))
    with pytest.raises(CheckpointMismatch, match=r"100 tokens.*2545"):
        Engine.from_files(**{**tiny_model_files, "vocab": small})


def test_checkpoint_for_another_arch_names_keys_and_shapes(
    tiny_model_files: dict[str, Any],
) -> None:
    arch = {**tiny_model_files["arch"], "dim": 128, "depth": 3}
    with pytest.raises(CheckpointMismatch) as info:
        Engine.from_files(**{**tiny_model_files, "arch": arch})
    message = str(info.value)
    assert "missing keys: transformer_blocks.2" in message
    assert "shape mismatches: " in message and "(+27 more)" in message
    wrong = info.value.details["shape_mismatches"]
    assert "proj_out.weight: checkpoint (100, 64) vs model (100, 128)" in wrong


def test_missing_files_and_unknown_preset(tiny_model_files: dict[str, Any], tmp_path: Path) -> None:
    for key in ("checkpoint", "vocab", "vocoder"):
        with pytest.raises(NotFound, match="nothing-here"):
            Engine.from_files(**{**tiny_model_files, key: tmp_path / "nothing-here"})
    with pytest.raises(UnknownPreset, match="F5TTS_v1_Base"):
        Engine.from_files(**{**tiny_model_files, "arch": "F5TTS_v7"})


def test_vocoder_folder_without_weights(tiny_model_files: dict[str, Any], tmp_path: Path) -> None:
    shutil.copy(Path(tiny_model_files["vocoder"]) / "config.yaml", tmp_path)
    with pytest.raises(NotFound, match=r"pytorch_model\.bin"):
        Engine.from_files(**{**tiny_model_files, "vocoder": tmp_path})


def test_half_precision_is_refused_on_cpu(tiny_model_files: dict[str, Any]) -> None:
    with pytest.raises(DeviceError, match="only supported on GPU"):
        Engine.from_files(**tiny_model_files, device="cpu", dtype="float16")
    with pytest.raises(DeviceError):
        Engine.from_files(**tiny_model_files, device="tpu")


def test_pt_checkpoint_loads_like_safetensors(
    tiny_model_files: dict[str, Any], golden_dir: Path, ref_wav: Path
) -> None:
    a = Engine.from_files(**tiny_model_files, device="cpu")
    b = Engine.from_files(**{**tiny_model_files, "checkpoint": golden_dir / "dit_v1.pt"})
    ra = a.synthesize("Hello there.", ref_wav, REF_TEXT, **fast())
    rb = b.synthesize("Hello there.", ref_wav, REF_TEXT, **fast())
    assert np.array_equal(ra.audio, rb.audio)


def test_a_model_trained_on_lower_case_nfc_text_reads_text_in_that_form(
    engine: Engine, tiny_model_files: dict[str, Any], ref_wav: Path
) -> None:
    vietnamese = Engine.from_files(
        **tiny_model_files, device="cpu", text_form=TextForm("NFC", lowercase=True)
    )
    typed = unicodedata.normalize("NFD", "Xin Chào Việt Nam.")  # capitals, combining marks
    opts = SynthesisOptions(nfe_steps=2, seed=3)
    got = vietnamese.prepare_request(typed, ref_wav, REF_TEXT, opts)
    want = engine.prepare_request("xin chào việt nam.", ref_wav, REF_TEXT.lower(), opts)
    assert got.chunks == [typed]  # what the result reports is the text as it was given
    assert len(got.items) == len(want.items) == 1
    assert torch.equal(got.items[0].text_ids, want.items[0].text_ids)
    assert got.items[0].y.shape == want.items[0].y.shape  # the same duration estimate
    as_given = engine.prepare_request(typed, ref_wav, REF_TEXT, opts)
    assert not torch.equal(as_given.items[0].text_ids, want.items[0].text_ids)
