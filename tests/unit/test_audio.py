"""Audio in and out: decoding, resampling, loudness, validation, reference clean-up, encoding."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
import soundfile as sf

from audio_match import assert_same_audio
from f5serve.engine import silence
from f5serve.engine.audio import (
    FORMATS,
    SAMPLE_RATE,
    clean_reference,
    encode_audio,
    format_from_path,
    load_audio,
    normalize_loudness,
    output_format,
    prepare_reference,
    resample,
    restore_loudness,
    rms,
    to_mono,
    validate_reference,
)
from f5serve.engine.audio_codecs import open_stream
from f5serve.errors import InvalidAudio, InvalidInput, NotFound, UnsupportedMediaType

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _load_cases_module() -> ModuleType:
    """``reference_cleanup_cases.py`` next to this file, whatever pytest's import mode."""
    path = Path(__file__).with_name("reference_cleanup_cases.py")
    spec = importlib.util.spec_from_file_location("reference_cleanup_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cases = _load_cases_module()
RECORD: Path = _cases.RECORD
build_cases = _cases.build_cases
digest = _cases.digest
EN_WAV = FIXTURES / "basic_ref_en.wav"
ZH_WAV = FIXTURES / "basic_ref_zh.wav"
SPEECH_44K = FIXTURES / "speech_44k.flac"
PAD_24K = 1198  # the reference's "50 ms" of silence at 24 kHz (pydub/audioop arithmetic)


@pytest.fixture(scope="module")
def en() -> np.ndarray:
    audio, sr = load_audio(EN_WAV)
    assert sr == SAMPLE_RATE
    return audio


@pytest.fixture(scope="module")
def zh() -> np.ndarray:
    audio, sr = load_audio(ZH_WAV)
    assert sr == SAMPLE_RATE
    return audio


def _aligned_similarity(original: np.ndarray, decoded: np.ndarray, max_lag: int = 3000) -> float:
    """Correlation of ``decoded`` with ``original`` at the best lag (codecs add delay)."""
    n = min(len(original), len(decoded)) - 2 * max_lag
    ref = original[max_lag : max_lag + n].astype(np.float64)
    size = 1 << (n + len(decoded)).bit_length()
    xcorr = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.arange(-max_lag, max_lag + 1)
    best = int(lags[np.argmax(xcorr[max_lag + lags])])
    seg = decoded[max_lag + best : max_lag + best + n].astype(np.float64)
    return float(np.corrcoef(ref, seg)[0, 1])


def _silent(seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(int(seconds * sr), dtype=np.float32)


# --------------------------------------------------------------------------- decoding


def test_load_wav_fixture_is_float32_mono(en: np.ndarray) -> None:
    expected, sr = sf.read(EN_WAV, dtype="float32")
    assert en.dtype == np.float32 and en.ndim == 1
    np.testing.assert_array_equal(en, expected)
    assert load_audio(str(EN_WAV))[1] == sr == 24000


def test_load_44k_flac_keeps_its_rate() -> None:
    audio, sr = load_audio(SPEECH_44K)
    assert sr == 44100
    assert len(audio) == 4 * 44100
    assert rms(audio) > 0.01


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "m4a", "aac"])
def test_decode_encoded_formats(fmt: str, en: np.ndarray, tmp_path: Path) -> None:
    data = encode_audio(en, SAMPLE_RATE, fmt)
    # Content decides, not the extension: every file is named .wav.
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    for source in (path, data):
        audio, sr = load_audio(source)
        assert sr in (SAMPLE_RATE, 48000)
        audio = resample(audio, sr, SAMPLE_RATE)
        assert abs(len(audio) - len(en)) <= 0.06 * SAMPLE_RATE  # AAC priming/padding ≈ 45 ms
        assert rms(audio) == pytest.approx(rms(en), rel=0.1)
        assert _aligned_similarity(en, audio) > 0.95


def test_decode_ogg_vorbis(en: np.ndarray) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, en, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    audio, sr = load_audio(buffer.getvalue())
    assert sr == SAMPLE_RATE
    assert abs(len(audio) - len(en)) < 0.05 * SAMPLE_RATE
    assert _aligned_similarity(en, audio) > 0.95


def test_decode_webm_opus_through_pyav(en: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    with av.open(str(path), mode="w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            resample(en, SAMPLE_RATE, 48000)[np.newaxis, :], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    audio, sr = load_audio(path)
    assert sr == 48000
    audio = resample(audio, sr, SAMPLE_RATE)
    assert abs(len(audio) - len(en)) < 0.05 * SAMPLE_RATE
    assert _aligned_similarity(en, audio) > 0.9


def test_stereo_file_is_averaged_to_mono(en: np.ndarray, tmp_path: Path) -> None:
    stereo = np.stack([en, 0.5 * en], axis=1)  # soundfile layout [samples, channels]
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, SAMPLE_RATE, subtype="PCM_24")
    audio, sr = load_audio(path)
    assert sr == SAMPLE_RATE and audio.ndim == 1
    np.testing.assert_allclose(audio, 0.75 * en, atol=1e-6)


def test_load_without_downmix_keeps_channels(en: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([en, -en], axis=1), SAMPLE_RATE, subtype="FLOAT")
    channels, sr = load_audio(path, mono=False)
    assert channels.shape == (2, len(en)) and sr == SAMPLE_RATE
    np.testing.assert_array_equal(channels[1], -en)
    assert load_audio(EN_WAV, mono=False)[0].shape == (1, len(en))
    assert load_audio((en, SAMPLE_RATE), mono=False)[0].shape == (1, len(en))


def test_to_mono() -> None:
    mono = np.array([0.1, -0.2], dtype=np.float64)
    assert to_mono(mono).dtype == np.float32
    np.testing.assert_allclose(to_mono(np.array([[0.2, 0.4], [0.0, -0.4]])), [0.1, 0.0])
    with pytest.raises(ValueError):
        to_mono(np.zeros((1, 2, 3)))


def test_load_in_memory_arrays() -> None:
    ints = np.array([0, 16384, -32768], dtype=np.int16)
    audio, sr = load_audio((ints, 16000))
    assert sr == 16000
    np.testing.assert_allclose(audio, [0.0, 0.5, -1.0])
    channels_first = np.array([[0.2] * 10, [0.4] * 10], dtype=np.float64)
    np.testing.assert_allclose(load_audio((channels_first, 8000))[0], [0.3] * 10, rtol=1e-6)
    np.testing.assert_allclose(load_audio((channels_first.T, 8000))[0], [0.3] * 10, rtol=1e-6)
    unsigned = np.array([128, 255, 0], dtype=np.uint8)
    np.testing.assert_allclose(load_audio((unsigned, 8000))[0], [0.0, 127 / 128, -1.0])
    np.testing.assert_allclose(load_audio((np.array([2**30], dtype=np.int32), 8000))[0], [0.5])


@pytest.mark.parametrize(
    "array, sr",
    [
        (np.zeros(10, dtype=np.complex64), 24000),
        (np.array(["a", "b"]), 24000),
        (np.zeros((2, 3, 4), dtype=np.float32), 24000),
        (np.zeros(0, dtype=np.float32), 24000),
        (np.zeros(10, dtype=np.float32), 0),
        (np.zeros(10, dtype=np.float32), 24000.0),
        ([0.0, 0.1], 24000),
    ],
)
def test_bad_in_memory_arrays(array: np.ndarray, sr: int) -> None:
    with pytest.raises(InvalidAudio):
        load_audio((array, sr))


@pytest.mark.parametrize("content", [b"hello", b"\x89PNG\r\n\x1a\n" + bytes(64), b'{"a": 1}'])
def test_not_audio_is_unsupported_media_type(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "voice.wav"
    path.write_bytes(content)
    with pytest.raises(UnsupportedMediaType, match="not an audio file we can decode"):
        load_audio(path)
    with pytest.raises(UnsupportedMediaType):
        load_audio(content)


def test_png_image_is_unsupported_media_type(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    with av.open(str(path), mode="w", format="image2", options={"update": "1"}) as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), dtype=np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(UnsupportedMediaType):
        load_audio(path)


def test_truncated_wav_decodes_its_valid_part(en: np.ndarray) -> None:
    data = encode_audio(en, SAMPLE_RATE, "wav")
    audio, sr = load_audio(data[: 44 + 2 * 10000])  # header + 10 000 samples of a longer file
    assert sr == SAMPLE_RATE
    assert len(audio) == 10000
    np.testing.assert_allclose(audio, en[:10000], atol=1.0 / 32767)


@pytest.mark.parametrize("fmt, keep", [("wav", 44), ("flac", 100), ("mp3", 150), ("m4a", 2000)])
def test_corrupt_audio_with_no_samples_is_invalid_audio(
    fmt: str, keep: int, en: np.ndarray
) -> None:
    data = encode_audio(en, SAMPLE_RATE, fmt)[:keep]
    with pytest.raises(InvalidAudio) as excinfo:
        load_audio(data)
    assert not isinstance(excinfo.value, UnsupportedMediaType)


def test_empty_file_is_invalid_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InvalidAudio, match="empty"):
        load_audio(path)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "voice.wav"
    with pytest.raises(NotFound, match=r"voice\.wav") as excinfo:
        load_audio(path)
    assert excinfo.value.details["path"] == str(path)
    with pytest.raises(InvalidAudio, match="not a file"):
        load_audio(tmp_path)


# --------------------------------------------------------------------------- resampling, loudness


def test_resample_44k_to_24k() -> None:
    audio, sr = load_audio(SPEECH_44K)
    out = resample(audio, sr)
    assert out.dtype == np.float32
    assert len(out) == math.ceil(len(audio) * SAMPLE_RATE / sr) == 96000
    assert rms(out) == pytest.approx(rms(audio), rel=0.02)
    odd = resample(audio[:44101], sr)  # torchaudio's length: ceil(n · to / from)
    assert len(odd) == math.ceil(44101 * 24000 / 44100)


def test_resample_identity_and_round_trip(en: np.ndarray) -> None:
    assert resample(en, SAMPLE_RATE, SAMPLE_RATE) is en
    up = resample(en, SAMPLE_RATE, 48000)
    assert len(up) == 2 * len(en)
    back = resample(up, 48000, SAMPLE_RATE)
    assert len(back) == len(en)
    assert _aligned_similarity(en, back, max_lag=2) > 0.999
    stereo = resample(np.stack([en, en]), SAMPLE_RATE, 16000)
    assert stereo.shape == (2, math.ceil(len(en) * 2 / 3))
    assert resample(np.zeros(0, dtype=np.float32), 44100).shape == (0,)
    with pytest.raises(ValueError):
        resample(en, 0)


def test_rms() -> None:
    assert rms(np.zeros(0)) == 0.0
    assert rms(np.full(100, -0.5, dtype=np.float32)) == pytest.approx(0.5)


def test_normalize_and_restore_loudness_round_trip(en: np.ndarray) -> None:
    quiet = (en * 0.2).astype(np.float32)
    scaled, original = normalize_loudness(quiet)
    assert original == pytest.approx(rms(quiet))
    assert original < 0.1
    assert rms(scaled) == pytest.approx(0.1, rel=1e-5)
    restored = restore_loudness(scaled, original)
    np.testing.assert_allclose(restored, quiet, atol=1e-6)


def test_loud_reference_is_left_alone(en: np.ndarray) -> None:
    assert rms(en) > 0.1
    same, original = normalize_loudness(en)
    np.testing.assert_array_equal(same, en)
    np.testing.assert_array_equal(restore_loudness(same, original), en)
    silent, level = normalize_loudness(np.zeros(10, dtype=np.float32))
    assert level == 0.0 and not silent.any()


def test_loudness_is_measured_before_resampling() -> None:
    audio, sr = load_audio(SPEECH_44K)
    prepared = prepare_reference(SPEECH_44K)
    assert prepared.source_sample_rate == sr
    cleaned = clean_reference(audio, sr)
    assert prepared.original_rms == pytest.approx(rms(cleaned), rel=1e-9)
    assert len(prepared.audio) == math.ceil(len(cleaned) * SAMPLE_RATE / sr)
    assert rms(prepared.audio) == pytest.approx(0.1, rel=0.02)


# --------------------------------------------------------------------------- validation


def test_validate_reference_accepts_speech(en: np.ndarray) -> None:
    validate_reference(en, SAMPLE_RATE)


def test_validate_reference_too_short(en: np.ndarray) -> None:
    with pytest.raises(InvalidAudio, match=r"too short: 0\.20 s \(minimum 0\.3 s\)"):
        validate_reference(en[: int(0.2 * SAMPLE_RATE)], SAMPLE_RATE)


@pytest.mark.parametrize("level", [0.0, 10 ** (-70 / 20)])
def test_validate_reference_silent(level: float) -> None:
    audio = np.full(SAMPLE_RATE, level, dtype=np.float32)
    audio[::2] *= -1
    with pytest.raises(InvalidAudio, match="silent"):
        validate_reference(audio, SAMPLE_RATE)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_reference_non_finite(bad: float, en: np.ndarray) -> None:
    audio = en.copy()
    audio[1000] = bad
    with pytest.raises(InvalidAudio, match="NaN or infinite"):
        validate_reference(audio, SAMPLE_RATE)


# --------------------------------------------------------------------------- clean-up


def test_clean_reference_cuts_at_a_long_gap(en: np.ndarray, zh: np.ndarray) -> None:
    head = np.concatenate([en, zh[: int(2.67 * SAMPLE_RATE)]])  # 8 s of speech
    audio = np.concatenate([head, _silent(1.5), zh, en])
    assert len(audio) / SAMPLE_RATE > 20
    out = clean_reference(audio, SAMPLE_RATE)
    assert len(out) <= 12 * SAMPLE_RATE + PAD_24K
    assert not out[-PAD_24K:].any()
    start = silence.detect_leading_silence(audio, SAMPLE_RATE, -42.0) * SAMPLE_RATE // 1000
    kept = out[:-PAD_24K]
    np.testing.assert_array_equal(kept, audio[start : start + len(kept)])
    end_seconds = (start + len(kept)) / SAMPLE_RATE
    assert 7.5 < end_seconds <= len(head) / SAMPLE_RATE  # the last words before the gap


def test_clean_reference_hard_cuts_without_silences(en: np.ndarray, zh: np.ndarray) -> None:
    speech = np.concatenate([en, zh, en])
    floor = np.sin(np.arange(len(speech)) * 0.37).astype(np.float32) * 0.025  # ≈ -35 dBFS
    out = clean_reference(speech + floor, SAMPLE_RATE)
    assert len(out) == 12 * SAMPLE_RATE + PAD_24K
    np.testing.assert_array_equal(out[: 12 * SAMPLE_RATE], (speech + floor)[: 12 * SAMPLE_RATE])


def _chunk_dbfs(audio: np.ndarray, ms: int = 10) -> np.ndarray:
    n = ms * SAMPLE_RATE // 1000
    chunks = audio[: len(audio) // n * n].reshape(-1, n).astype(np.float64)
    return 20 * np.log10(np.sqrt(np.mean(chunks**2, axis=1)) + 1e-12)


def test_clean_reference_trims_edges_and_appends_silence(en: np.ndarray) -> None:
    audio = np.concatenate([_silent(0.5), en, _silent(0.7)])
    out = clean_reference(audio, SAMPLE_RATE)
    assert not out[-PAD_24K:].any()
    kept = out[:-PAD_24K]
    start = silence.detect_leading_silence(audio, SAMPLE_RATE, -42.0) * SAMPLE_RATE // 1000
    assert start >= int(0.5 * SAMPLE_RATE)
    np.testing.assert_array_equal(kept, audio[start : start + len(kept)])
    assert start + len(kept) <= int(0.5 * SAMPLE_RATE) + len(en)
    assert _chunk_dbfs(kept[:240])[0] >= -42.0  # first 10 ms chunk is above the threshold
    assert _chunk_dbfs(kept[-240:])[0] >= -42.0  # and so is the last one


def test_clean_reference_shortens_long_pauses_even_in_short_clips(en: np.ndarray) -> None:
    audio = np.concatenate([en, _silent(3.0), en[: 3 * SAMPLE_RATE]])  # 11.3 s: no 12 s cut
    out = clean_reference(audio, SAMPLE_RATE)
    # The silent range (from the quiet end of the first clip to the 3 s pause's end) keeps only
    # 1000 ms on each side: about 1.8 s disappear, plus a few tens of ms of edges.
    removed = (len(audio) - (len(out) - PAD_24K)) / SAMPLE_RATE
    assert 1.75 <= removed <= 2.0


def test_clean_reference_rejects_silence() -> None:
    with pytest.raises(InvalidAudio, match="no speech"):
        clean_reference(np.full(SAMPLE_RATE, 1e-4, dtype=np.float32), SAMPLE_RATE)


def test_clean_reference_at_44k_appends_reference_pad() -> None:
    audio, sr = load_audio(SPEECH_44K)
    out = clean_reference(audio, sr)
    assert silence.reference_silence_samples(sr) == 2201
    assert not out[-2201:].any()
    assert len(out) < len(audio)


@pytest.mark.parametrize("name", sorted(json.loads(RECORD.read_text())))
def test_clean_reference_matches_recorded_reference(name: str) -> None:
    """Sample-exact agreement with F5-TTS's pydub clean-up (recorded by reference_cleanup_cases)."""
    expected = json.loads(RECORD.read_text())[name]
    samples, sr = build_cases()[name]
    assert (len(samples), sr) == (expected["input_samples"], expected["sample_rate"])
    out = clean_reference(samples.T.astype(np.float32) / 32768, sr)  # [channels, n] for stereo
    out16 = np.round(out.T.astype(np.float64) * 32768).astype(np.int16)
    assert len(out16) == expected["output_samples"]
    assert digest(out16) == expected["output_sha256"]


# --------------------------------------------------------------------------- pydub primitives


def _tone(seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_silence_primitives_follow_pydub() -> None:
    audio = np.concatenate([_tone(1.0), _silent(2.0), _tone(1.0)])
    assert silence.detect_silence(audio, SAMPLE_RATE, 1000, -50.0, 10) == [(1000, 3000)]
    assert silence.detect_nonsilent(audio, SAMPLE_RATE, 1000, -50.0, 10) == [
        (0, 1000),
        (3000, 4000),
    ]
    assert silence.split_on_silence(audio, SAMPLE_RATE, 1000, -50.0, 300, 10) == [
        (0, 1300),
        (2700, 4000),
    ]
    # Overlapping kept silence meets in the middle.
    assert silence.split_on_silence(audio, SAMPLE_RATE, 1000, -50.0, 1500, 10) == [
        (0, 2000),
        (2000, 4000),
    ]
    assert silence.detect_nonsilent(_silent(2.0), SAMPLE_RATE, 1000, -50.0) == []
    assert silence.detect_silence(_silent(0.5), SAMPLE_RATE, 1000, -50.0) == []
    lead = np.concatenate([_silent(0.25), _tone(0.5)])
    assert silence.detect_leading_silence(lead, SAMPLE_RATE, -42.0, 10) == 250
    assert silence.detect_leading_silence(_silent(0.333), SAMPLE_RATE, -42.0, 10) == 333


def test_pydub_millisecond_arithmetic() -> None:
    assert silence.length_ms(127987, 24000) == 5333
    assert silence.ms_to_samples(10, 44100) == 441
    assert silence.ms_to_samples(1, 22050) == 22
    padded = silence.slice_ms(np.ones(127987, dtype=np.float32), 24000, 5000, 6000)
    # [5000, 6000) is clamped to the 5333 ms length, and the rounded-up last ms is zero-padded.
    assert len(padded) == 333 * 24 and not padded[-5:].any() and padded[:-5].all()
    assert [silence.reference_silence_samples(r) for r in (11025, 24000, 44100)] == [
        551,
        1198,
        2201,
    ]


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus", "ogg", "aac", "m4a"])
def test_encode_audio_round_trip(fmt: str, en: np.ndarray) -> None:
    data = encode_audio(en, SAMPLE_RATE, fmt)
    audio, sr = load_audio(data)
    assert sr == SAMPLE_RATE
    # Exact lengths where the container records them; AAC pads to 1024-sample frames (M4A at the
    # end only, ADTS also keeps the 1024-sample priming).
    tolerance = {"m4a": 1024, "aac": 3 * 1024}.get(fmt, 0)
    assert abs(len(audio) - len(en)) <= tolerance
    assert rms(audio) == pytest.approx(rms(en), rel=0.1)
    assert _aligned_similarity(en, audio) > 0.95


def test_encode_containers_and_pcm(en: np.ndarray) -> None:
    assert encode_audio(en, SAMPLE_RATE, "wav")[:4] == b"RIFF"
    assert sf.info(io.BytesIO(encode_audio(en, SAMPLE_RATE, "wav"))).subtype == "PCM_16"
    assert encode_audio(en, SAMPLE_RATE, "flac")[:4] == b"fLaC"
    ogg = encode_audio(en, SAMPLE_RATE, "opus")
    assert ogg[:4] == b"OggS" and b"OpusHead" in ogg[:200]
    aac = encode_audio(en, SAMPLE_RATE, "aac")
    assert aac[0] == 0xFF and aac[1] & 0xF0 == 0xF0  # ADTS sync word
    assert encode_audio(en, SAMPLE_RATE, "m4a")[4:8] == b"ftyp"
    pcm = encode_audio(en, SAMPLE_RATE, "PCM")
    assert len(pcm) == 2 * len(en)
    np.testing.assert_allclose(np.frombuffer(pcm, dtype="<i2") / 32767, en, atol=1 / 32767)


def test_encode_clips_and_cleans_samples() -> None:
    audio = np.array([2.0, -2.0, 0.5, np.nan], dtype=np.float32)
    pcm = np.frombuffer(encode_audio(audio, SAMPLE_RATE, "pcm"), dtype="<i2")
    assert pcm.tolist() == [32767, -32767, 16384, 0]
    wav, _ = sf.read(io.BytesIO(encode_audio(audio, SAMPLE_RATE, "wav")), dtype="int16")
    assert wav.tolist() == [32767, -32767, 16384, 0]


def test_encode_unsupported_rate_resamples_to_48k(en: np.ndarray) -> None:
    at_44k = resample(en, SAMPLE_RATE, 44100)
    audio, sr = load_audio(encode_audio(at_44k, 44100, "opus"))
    assert sr == 48000
    assert abs(len(audio) / sr - len(en) / SAMPLE_RATE) < 0.01


def test_encode_empty_and_bad_arguments() -> None:
    assert encode_audio(np.zeros(0, dtype=np.float32), SAMPLE_RATE, "pcm") == b""
    assert encode_audio(np.zeros(0, dtype=np.float32), SAMPLE_RATE, "mp3") is not None
    with pytest.raises(InvalidInput, match=r"unknown audio format 'wma'.*wav, flac, mp3"):
        encode_audio(np.zeros(10, dtype=np.float32), SAMPLE_RATE, "wma")
    with pytest.raises(ValueError):
        encode_audio(np.zeros((2, 10), dtype=np.float32), SAMPLE_RATE, "wav")


def test_format_from_path() -> None:
    assert format_from_path("out/speech.WAV") == "wav"
    assert format_from_path(Path("a.mp3")) == "mp3"
    assert format_from_path("a.opus") == "opus"
    assert format_from_path("a.ogg") == "ogg"
    assert format_from_path("a.aac") == "aac"
    assert format_from_path("a.m4a") == "m4a"
    assert format_from_path("a.pcm") == "pcm"
    assert format_from_path("a.flac") == "flac"
    with pytest.raises(InvalidInput, match=r"\.wav, .*\.mp3") as excinfo:
        format_from_path("speech.wma")
    assert ".flac" in excinfo.value.details["supported_extensions"]
    with pytest.raises(InvalidInput, match="no extension"):
        format_from_path("speech")


def test_one_table_names_each_format_with_its_content_type_and_extension() -> None:
    assert {name: f.content_type for name, f in FORMATS.items()} == {
        "wav": "audio/wav",
        "flac": "audio/flac",
        "mp3": "audio/mpeg",
        "opus": "audio/ogg",
        "ogg": "audio/ogg",
        "aac": "audio/aac",
        "m4a": "audio/mp4",
        "pcm": "audio/pcm",
    }
    assert all(f.name == name for name, f in FORMATS.items())
    assert all(format_from_path(f.file_name("speech")) == name for name, f in FORMATS.items())
    assert format_from_path("a.wave") == "wav" and format_from_path("a.raw") == "pcm"
    streamable = [name for name, f in FORMATS.items() if f.streamable]
    assert streamable == ["wav", "mp3", "opus", "ogg", "aac", "pcm"]
    assert output_format("MP3") is FORMATS["mp3"]
    with pytest.raises(InvalidInput, match="unknown audio format 'wma'"):
        output_format("wma")


def test_a_streamable_format_concatenates_pieces_into_the_whole(en: np.ndarray) -> None:
    half = len(en) // 2
    pieces = [
        encode_audio(en[:half], SAMPLE_RATE, "pcm"),
        encode_audio(en[half:], SAMPLE_RATE, "pcm"),
    ]
    assert b"".join(pieces) == encode_audio(en, SAMPLE_RATE, "pcm")


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "ogg", "aac", "pcm"])
def test_a_stream_in_pieces_decodes_to_the_whole_file(en: np.ndarray, fmt: str) -> None:
    encoder = open_stream(fmt, SAMPLE_RATE)
    pieces = [encoder.write(piece) for piece in np.array_split(en, 4)]
    pieces.append(encoder.close())
    assert all(pieces[:3]), "each piece of a lossy stream hands over bytes at once"
    streamed, whole = b"".join(pieces), encode_audio(en, SAMPLE_RATE, fmt)
    if fmt == "pcm":
        assert streamed == whole
        return
    offset = assert_same_audio(streamed, whole, fmt)
    assert offset == (1105 if fmt == "mp3" else 0)  # a streamed MP3 keeps its priming


def test_a_streamed_wav_has_an_unknown_length_header(en: np.ndarray) -> None:
    encoder = open_stream("wav", SAMPLE_RATE)
    first = encoder.write(en[:100])
    assert first[:4] == b"RIFF" and first[4:8] == b"\xff\xff\xff\xff"
    assert first[40:44] == b"\xff\xff\xff\xff" and len(first) == 44 + 200
    assert encoder.close() == b""
    assert open_stream("wav", SAMPLE_RATE).close()[:4] == b"RIFF"  # no audio: a valid empty file


def test_formats_that_need_the_whole_audio_do_not_stream() -> None:
    for fmt in ("flac", "m4a"):
        with pytest.raises(InvalidInput, match=f"'{fmt}' cannot be streamed"):
            open_stream(fmt, SAMPLE_RATE)
