#!/usr/bin/env python3
"""Ask the *reference* F5-TTS implementation (the `f5-tts` PyPI package) small questions.

FOR CORRECTNESS CHECKS AND BENCHMARKS ONLY. Run with the reference virtualenv's interpreter:

    .venv-ref/bin/python bench/reference_probe.py MODE SPEC

(create that venv with `bench/setup_reference.sh`). Nothing in `src/f5serve` may import this file
or the `f5_tts` package. SPEC is a JSON object given inline, as a path to a `.json` file, or on
stdin (omitted or "-"). Each call prints exactly one JSON line on stdout; the reference's own
prints go to stderr. Nothing here touches the network (HF_HUB_OFFLINE=1 etc.).

Modes
-----
pinyin          {"texts": ["..."], "vocab": "vocab.txt"?}
                -> {"tokens": [[...]], "ids": [[...]]?}
                f5_tts.model.utils.convert_char_to_pinyin(texts); with a vocab, also the ids that
                list_str_to_idx gives (unknown -> 0; unpadded, one list per text).
chunk           {"text": "...", "max_chars": 135}
                or {"text": "...", "ref_audio": "wav", "ref_text": "...", "speed": 1.0}
                -> {"max_chars": n, "chunks": [...]}
                f5_tts.infer.utils_infer.chunk_text; without max_chars it is computed the way
                infer_process does: int(ref_bytes / ref_s * (22 - ref_s) * speed), ref_s from
                torchaudio.load(ref_audio) (so pass the *preprocessed* reference to match).
preprocess_ref  {"audio": "in.wav|flac|...", "ref_text": "non-empty", "out_wav": "out.wav"?}
                -> {"ref_text": returned text, "sample_rate", "samples", "seconds", "rms",
                    "messages": [...], "out_wav"?}
                f5_tts.infer.utils_infer.preprocess_ref_audio_text: pydub clip to <= 12 s at
                silences, trim edges below -42 dBFS, append 50 ms of silence, export a 16-bit wav
                (pydub keeps the source rate and sample width); the text gets ". " appended unless
                it already ends with ". " or "。" ("." gets " "). The processed audio is read back
                with torchaudio.load (as infer_process reads it) and, if out_wav is given, written
                as a 32-bit float wav with soundfile at 24 kHz (resampled with
                torchaudio.transforms.Resample, as infer_batch_process does, only if the source
                rate differs; mono-mixed by mean like infer_batch_process).
mel             {"audio": "wav", "out": "mel.safetensors"|"mel.npy"?, "rms_normalize": false,
                 "target_rms": 0.1, "inline": false}
                -> {"shape": [1, 100, frames], "min", "max", "mean", "out"?, "mel"?}
                The reference's log-mel (f5_tts.model.modules.MelSpec, vocos type) of the audio,
                loaded with torchaudio.load, mono-mixed by mean, resampled to 24 kHz if needed.
                rms_normalize applies infer_batch_process's loudness rule first (scale up to
                target_rms when quieter): with it, this is exactly the model's `cond` mel.
                The .safetensors file holds "mel" [1, 100, frames] and "wave" [1, samples].
timesteps       {"steps": [8, 16], "sway_sampling_coef": -1.0, "use_epss": true}
                -> {"timesteps": {"8": [...], ...}}
                The time grid CFM.sample uses (get_epss_timesteps or linspace, then sway).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

MODES = ("pinyin", "chunk", "preprocess_ref", "mel", "timesteps")

import reference_env  # noqa: E402,F401  (sets the offline environment)


def _read_spec(argv: list[str]) -> tuple[str, dict[str, Any]]:
    args = list(argv)
    if not args or args[0] not in MODES:
        raise SystemExit(
            f"usage: reference_probe.py {{{'|'.join(MODES)}}} [SPEC_JSON | file.json | -]"
        )
    mode = args.pop(0)
    if not args or args[0] == "-":
        raw = sys.stdin.read()
    elif args[0].lstrip().startswith("{"):
        raw = args[0]
    else:
        raw = Path(args[0]).read_text(encoding="utf-8")
    return mode, (json.loads(raw) if raw.strip() else {})


def _load_mono(path: str) -> tuple[Any, int]:
    """torchaudio.load (as infer_process) + mean over channels (as infer_batch_process)."""
    import torch
    import torchaudio

    audio, sr = torchaudio.load(path)
    if audio.shape[0] > 1:
        audio = torch.mean(audio, dim=0, keepdim=True)
    return audio, int(sr)


def _to_24k(audio: Any, sr: int) -> Any:
    import torchaudio
    from f5_tts.infer.utils_infer import target_sample_rate

    if sr != target_sample_rate:
        audio = torchaudio.transforms.Resample(sr, target_sample_rate)(audio)
    return audio


def probe_pinyin(spec: dict[str, Any]) -> dict[str, Any]:
    from f5_tts.model.utils import convert_char_to_pinyin, get_tokenizer, list_str_to_idx

    texts = spec["texts"]
    if isinstance(texts, str):
        texts = [texts]
    tokens = convert_char_to_pinyin(list(texts))
    out: dict[str, Any] = {"mode": "pinyin", "texts": texts, "tokens": tokens}
    if spec.get("vocab"):
        vocab_map, vocab_size = get_tokenizer(spec["vocab"], "custom")
        out["ids"] = [list_str_to_idx([t], vocab_map)[0].tolist() for t in tokens]
        out["vocab_size"] = vocab_size
    return out


def probe_chunk(spec: dict[str, Any]) -> dict[str, Any]:
    from f5_tts.infer.utils_infer import chunk_text

    max_chars = spec.get("max_chars")
    out: dict[str, Any] = {"mode": "chunk"}
    if max_chars is None:
        import torchaudio

        audio, sr = torchaudio.load(spec["ref_audio"])
        ref_s = audio.shape[-1] / sr
        speed = float(spec.get("speed", 1.0))
        max_chars = int(len(spec["ref_text"].encode("utf-8")) / ref_s * (22 - ref_s) * speed)
        out["ref_seconds"] = ref_s
    out["max_chars"] = int(max_chars)
    out["chunks"] = chunk_text(spec["text"], max_chars=int(max_chars))
    return out


def probe_preprocess_ref(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from f5_tts.infer.utils_infer import preprocess_ref_audio_text, target_sample_rate

    ref_text = spec.get("ref_text", "")
    if not str(ref_text).strip():
        raise SystemExit(
            "ref_text must be non-empty (an empty one makes the reference run Whisper ASR)"
        )
    messages: list[str] = []
    path, text = preprocess_ref_audio_text(
        spec["audio"], ref_text, show_info=lambda *a: messages.append(" ".join(map(str, a)))
    )
    try:
        import soundfile as sf

        info = sf.info(path)
        audio, sr = _load_mono(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # the reference leaves its temp wav behind
    out: dict[str, Any] = {
        "mode": "preprocess_ref",
        "ref_text": text,
        "sample_rate": sr,
        "subtype": info.subtype,
        "channels": info.channels,
        "samples": int(audio.shape[-1]),
        "seconds": audio.shape[-1] / sr,
        "rms": float(torch.sqrt(torch.mean(torch.square(audio)))),
        "messages": messages,
    }
    if spec.get("out_wav"):
        wave24 = _to_24k(audio, sr)
        Path(spec["out_wav"]).parent.mkdir(parents=True, exist_ok=True)
        data = np.asarray(wave24.squeeze(0).numpy(), dtype=np.float32)
        sf.write(spec["out_wav"], data, target_sample_rate, subtype="FLOAT")
        out["out_wav"] = spec["out_wav"]
        out["out_samples"] = int(data.shape[0])
        out["resampled"] = sr != target_sample_rate
    return out


def probe_mel(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from f5_tts.infer import utils_infer as ui
    from f5_tts.model.modules import MelSpec

    audio, sr = _load_mono(spec["audio"])
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    target_rms = float(spec.get("target_rms", ui.target_rms))
    scaled = False
    if spec.get("rms_normalize") and rms < target_rms:
        audio = audio * target_rms / rms  # infer_batch_process's rule, before resampling
        scaled = True
    audio = _to_24k(audio, sr)
    mel_spec = MelSpec(
        n_fft=ui.n_fft,
        hop_length=ui.hop_length,
        win_length=ui.win_length,
        n_mel_channels=ui.n_mel_channels,
        target_sample_rate=ui.target_sample_rate,
        mel_spec_type="vocos",
    )
    with torch.inference_mode():
        mel = mel_spec(audio)  # [1, 100, frames]
    out: dict[str, Any] = {
        "mode": "mel",
        "source_sample_rate": sr,
        "wave_samples": int(audio.shape[-1]),
        "input_rms": rms,
        "rms_scaled": scaled,
        "shape": list(mel.shape),
        "min": float(mel.min()),
        "max": float(mel.max()),
        "mean": float(mel.mean()),
    }
    dst = spec.get("out")
    if dst:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        if dst.endswith(".npy"):
            import numpy as np

            np.save(dst, mel.numpy())
        else:
            from safetensors.torch import save_file

            save_file({"mel": mel.contiguous(), "wave": audio.contiguous()}, dst)
        out["out"] = dst
    if spec.get("inline"):
        out["mel"] = mel.tolist()
    return out


def probe_timesteps(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from f5_tts.model.utils import get_epss_timesteps

    sway = spec.get("sway_sampling_coef", -1.0)
    use_epss = spec.get("use_epss", True)
    grids = {}
    for n in spec.get("steps", [8, 16, 32]):
        n = int(n)
        if use_epss:
            t = get_epss_timesteps(n, device="cpu", dtype=torch.float32)
        else:
            t = torch.linspace(0, 1, n + 1, dtype=torch.float32)
        if sway is not None:
            t = t + sway * (torch.cos(torch.pi / 2 * t) - 1 + t)
        grids[str(n)] = t.tolist()
    return {
        "mode": "timesteps",
        "sway_sampling_coef": sway,
        "use_epss": use_epss,
        "timesteps": grids,
    }


def main(argv: list[str] | None = None) -> int:
    mode, spec = _read_spec(sys.argv[1:] if argv is None else argv)
    threads = int(spec.get("threads") or 1)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, str(threads))
    fn = {
        "pinyin": probe_pinyin,
        "chunk": probe_chunk,
        "preprocess_ref": probe_preprocess_ref,
        "mel": probe_mel,
        "timesteps": probe_timesteps,
    }[mode]
    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(threads)
        result = fn(spec)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
