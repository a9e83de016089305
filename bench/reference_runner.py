#!/usr/bin/env python3
"""Benchmark runner for the *reference* F5-TTS implementation (the `f5-tts` PyPI package).

BENCHMARKS ONLY. Run it with the reference virtualenv's interpreter, never with the project's:

    .venv-ref/bin/python bench/reference_runner.py [MODE] SPEC

(create that venv with `bench/setup_reference.sh`). Nothing in `src/f5serve` may import this file
or the `f5_tts` package; the reference is a yardstick, not a dependency.

SPEC is a JSON object given inline, as a path to a `.json` file, or on stdin (SPEC omitted or "-").
MODE is one of the names below; it may also be given as the spec's "mode" key (default "bench").
Every mode prints exactly one JSON line on stdout; the reference's own chatter goes to stderr.

Quick start (from the repository root; bench/results/ is git-ignored)
----------------------------------------------------------------------
    bash bench/setup_reference.sh
    R=.venv-ref/bin/python A=bench/results/assets
    $R bench/reference_runner.py make_checkpoint '{"out": "'$A'/f5tts_v1_small_random.safetensors",
        "arch": {"dim": 768, "depth": 18, "heads": 12, "ff_mult": 2, "text_dim": 512,
                 "conv_layers": 4},
        "vocab": "tests/fixtures/golden/vocab.txt", "seed": 0}'
    $R bench/reference_runner.py make_vocos '{"out_dir": "'$A'/vocos_full_random", "seed": 0}'
    $R bench/reference_runner.py clip_wav '{"src": "tests/fixtures/basic_ref_en.wav",
        "dst": "'$A'/ref_3s_en.wav", "start_s": 0.0, "end_s": 3.5}'
    $R bench/reference_runner.py bench/reference_small.example.json > bench/results/ref_small.json
The three assets are byte-for-byte reproducible from their seeds. The 0-3.5 s cut of
basic_ref_en.wav says "Some call me nature, others"; the reference's silence trimming makes it
3.42 s, and the 30-byte gen_text of the example spec then gives 320 generated frames (3.41 s).

Modes
-----
bench (default)
    {"checkpoint": ".safetensors with ema_model.* keys (or a reference .pt)",
     "vocab": "vocab.txt",
     "arch": {"dim", "depth", "heads", "ff_mult", "text_dim", "conv_layers",
              "text_mask_padding"?, "pe_attn_head"?, ...any other f5_tts DiT kwarg},
     "vocoder_dir": "dir with config.yaml + pytorch_model.bin",
     "ref_audio": "wav", "ref_text": "non-empty transcript", "gen_text": "text to speak",
     "nfe_steps": [8, 16], "repeats": 3, "warmup": 1, "seed": 0, "threads": 2,
     optional: "cfg_strength" 2.0, "sway_sampling_coef" -1.0, "speed" 1.0,
               "cross_fade_duration" 0.15, "target_rms" 0.1, "fix_duration" null,
               "preprocess_ref" true (run preprocess_ref_audio_text first, as f5_tts.api does),
               "save_wav_dir" null (write the last output of each step count as a float wav)}
    Loads the model with f5_tts.infer.utils_infer.load_model (-> load_checkpoint) and the vocoder
    with load_vocoder(is_local=True), on CPU in float32, then times infer_process(...) end to end
    (text chunking, mel of the reference, sampling, vocoder, loudness restore, cross-fade).

many
    The bench spec without ref_audio/ref_text/gen_text/repeats, plus
    {"requests": [{"ref_audio", "ref_text", "gen_text", "seed"}, ...], "device": "cpu" | "cuda",
     "lean": false}
    Loads once, warms up on the first request, then runs each request once through
    preprocess_ref_audio_text + infer_process at nfe_steps[0] and reports each one's seconds
    (the clean-up of the reference excluded, as in bench) and audio seconds. On "cuda" the model
    keeps the dtype the reference picks for the GPU (float16) and the vocoder float32. "lean":
    true is for a GPU image where only the reference's inference dependencies were installed
    (see _lean_imports).

make_checkpoint
    {"out": "model.safetensors", "arch": {...}, "vocab": "vocab.txt" | "text_num_embeds": 2545,
     "seed": 0, "keep_zero_init": false, "also_pt": false}
    Builds f5_tts.model.CFM(DiT(...)) exactly as load_model does, after torch.manual_seed(seed),
    and saves the state dict with the `ema_model.` prefix (official safetensors layout). The
    reference zero-initialises the AdaLN-Zero linears and the output layers (a freshly built model
    predicts zero velocity); unless keep_zero_init is true those modules are re-initialised with
    PyTorch's default nn.Linear init (same seeded generator) so that outputs are non-trivial.
    also_pt additionally writes a `.pt` ({"ema_model_state_dict": ..., "initted", "step"}).

make_vocos
    {"out_dir": "dir", "config": "vocos config.yaml (default: the full charactr/vocos-mel-24khz
     config at tests/fixtures/golden/keys/vocos_mel_24khz_config.yaml)", "seed": 0}
    Builds vocos.Vocos.from_hparams(config) after torch.manual_seed(seed) and writes config.yaml
    + pytorch_model.bin (torch.save of the state dict, official layout incl. the mel buffers).

clip_wav
    {"src": "in.wav", "dst": "out.wav", "start_s": 0.0, "end_s": 3.5}
    Cuts [start_s, end_s) from a wav with soundfile and writes it with the same sample rate and
    subtype (used to make a ~3 s reference clip for the benchmark).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

MODES = ("bench", "many", "make_checkpoint", "make_vocos", "clip_wav")
DEFAULT_VOCOS_CONFIG = str(
    Path(__file__).resolve().parents[1] / "tests/fixtures/golden/keys/vocos_mel_24khz_config.yaml"
)

import reference_env  # noqa: E402,F401  (sets the offline environment)


def _read_spec(argv: list[str]) -> tuple[str, dict[str, Any]]:
    args = list(argv)
    mode = None
    if args and args[0] in MODES:
        mode = args.pop(0)
    if not args or args[0] == "-":
        raw = sys.stdin.read()
    elif args[0].lstrip().startswith("{"):
        raw = args[0]
    else:
        raw = Path(args[0]).read_text(encoding="utf-8")
    spec = json.loads(raw) if raw.strip() else {}
    mode = mode or spec.get("mode", "bench")
    if mode not in MODES:
        raise SystemExit(f"unknown mode {mode!r}; expected one of {MODES}")
    return mode, spec


def _set_threads_env(threads: int | None) -> None:
    """Must run before torch is imported so that OpenMP/MKL pick the count up."""
    if threads:
        for k in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS",
        ):
            os.environ[k] = str(threads)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _log(*a: Any) -> None:
    print(*a, file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("torch", "torchaudio", "f5-tts", "vocos", "numpy", "x-transformers", "torchcodec"):
        try:
            out[dist.replace("-", "_")] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist.replace("-", "_")] = "absent"
    return out


def _vocab_size(vocab: str) -> int:
    # Same rule as f5_tts.model.utils.get_tokenizer(..., "custom"): one token per line.
    with open(vocab, encoding="utf-8") as f:
        return sum(1 for _ in f)


# --------------------------------------------------------------------------------------------
# make_checkpoint / make_vocos / clip_wav
# --------------------------------------------------------------------------------------------


def make_checkpoint(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from f5_tts.infer import utils_infer as ui
    from f5_tts.model import CFM, DiT
    from safetensors.torch import save_file

    arch = dict(spec["arch"])
    text_num_embeds = int(spec.get("text_num_embeds") or _vocab_size(spec["vocab"]))
    arch.pop("text_num_embeds", None)
    arch.pop("mel_dim", None)
    seed = int(spec.get("seed", 0))

    torch.manual_seed(seed)
    transformer = DiT(**arch, text_num_embeds=text_num_embeds, mel_dim=ui.n_mel_channels)
    reinit = []
    if not spec.get("keep_zero_init", False):
        for block in transformer.transformer_blocks:
            block.attn_norm.linear.reset_parameters()
            reinit.append("attn_norm.linear")
        transformer.norm_out.linear.reset_parameters()
        transformer.proj_out.reset_parameters()
        reinit = [*sorted(set(reinit)), "norm_out.linear", "proj_out"]
    model = CFM(
        transformer=transformer,
        mel_spec_kwargs=dict(
            n_fft=ui.n_fft,
            hop_length=ui.hop_length,
            win_length=ui.win_length,
            n_mel_channels=ui.n_mel_channels,
            target_sample_rate=ui.target_sample_rate,
            mel_spec_type=ui.mel_spec_type,
        ),
        odeint_kwargs=dict(method=ui.ode_method),
    )
    state = {
        f"ema_model.{k}": v.detach().contiguous().float() for k, v in model.state_dict().items()
    }
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out))
    result: dict[str, Any] = {
        "mode": "make_checkpoint",
        "out": str(out),
        "keys": len(state),
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": out.stat().st_size,
        "arch": arch,
        "text_num_embeds": text_num_embeds,
        "seed": seed,
        "reinitialised_zero_init_modules": reinit,
    }
    if spec.get("also_pt"):
        pt = out.with_suffix(".pt")
        ema_sd: dict[str, Any] = dict(state)
        ema_sd["initted"] = torch.tensor(True)
        ema_sd["step"] = torch.tensor(0)
        torch.save({"ema_model_state_dict": ema_sd}, str(pt))
        result["pt"] = str(pt)
    return result


def make_vocos(spec: dict[str, Any]) -> dict[str, Any]:
    import shutil

    import torch
    from vocos import Vocos

    config = spec.get("config") or DEFAULT_VOCOS_CONFIG
    seed = int(spec.get("seed", 0))
    out_dir = Path(spec["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    voc = Vocos.from_hparams(config)
    sd = {k: v.detach().contiguous() for k, v in voc.state_dict().items()}
    torch.save(sd, str(out_dir / "pytorch_model.bin"))
    if Path(config).resolve() != (out_dir / "config.yaml").resolve():
        shutil.copyfile(config, out_dir / "config.yaml")
    return {
        "mode": "make_vocos",
        "out_dir": str(out_dir),
        "config": str(config),
        "keys": len(sd),
        "parameters": sum(p.numel() for p in voc.parameters()),
        "seed": seed,
    }


def clip_wav(spec: dict[str, Any]) -> dict[str, Any]:
    import soundfile as sf

    info = sf.info(spec["src"])
    sr = info.samplerate
    start = round(float(spec.get("start_s", 0.0)) * sr)
    end = spec.get("end_s")
    stop = round(float(end) * sr) if end is not None else None
    data, _ = sf.read(spec["src"], start=start, stop=stop, dtype="float64", always_2d=False)
    Path(spec["dst"]).parent.mkdir(parents=True, exist_ok=True)
    sf.write(spec["dst"], data, sr, subtype=info.subtype)
    return {
        "mode": "clip_wav",
        "dst": spec["dst"],
        "sample_rate": sr,
        "samples": int(data.shape[0]),
        "seconds": data.shape[0] / sr,
        "subtype": info.subtype,
    }


def _load_vocoder(ui: Any, spec: dict[str, Any], device: str) -> Any:
    """The Vocos of ``spec["vocoder_dir"]``, loaded by the reference."""
    return ui.load_vocoder("vocos", is_local=True, local_path=spec["vocoder_dir"], device=device)


def _load_model(ui: Any, dit: Any, spec: dict[str, Any], arch: dict[str, Any], device: str) -> Any:
    """The checkpoint of ``spec`` as the reference's CFM(DiT), loaded as load_model does."""
    return ui.load_model(
        dit,
        arch,
        spec["checkpoint"],
        mel_spec_type="vocos",
        vocab_file=spec["vocab"],
        ode_method="euler",
        use_ema=True,
        device=device,
    )


# --------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------


def bench(spec: dict[str, Any]) -> dict[str, Any]:
    threads = int(spec.get("threads") or 0)

    import numpy as np
    import torch
    import torchaudio

    if threads:
        torch.set_num_threads(threads)

    with contextlib.redirect_stdout(sys.stderr):
        from f5_tts.infer import utils_infer as ui
        from f5_tts.model import DiT
        from f5_tts.model.utils import seed_everything

    ref_text = spec.get("ref_text", "")
    if not str(ref_text).strip():
        raise SystemExit(
            "ref_text must be non-empty (an empty one makes the reference run Whisper ASR)"
        )
    gen_text = spec["gen_text"]
    nfe_steps = [int(n) for n in spec.get("nfe_steps", [8, 16])]
    repeats = int(spec.get("repeats", 3))
    warmup = int(spec.get("warmup", 1))
    seed = int(spec.get("seed", 0))
    params = {
        "cfg_strength": float(spec.get("cfg_strength", ui.cfg_strength)),
        "sway_sampling_coef": spec.get("sway_sampling_coef", ui.sway_sampling_coef),
        "speed": float(spec.get("speed", ui.speed)),
        "cross_fade_duration": float(spec.get("cross_fade_duration", ui.cross_fade_duration)),
        "target_rms": float(spec.get("target_rms", ui.target_rms)),
        "fix_duration": spec.get("fix_duration", ui.fix_duration),
    }
    device = "cpu"
    arch = dict(spec["arch"])
    arch.pop("text_num_embeds", None)
    arch.pop("mel_dim", None)

    with contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        vocoder = _load_vocoder(ui, spec, device)
        t1 = time.perf_counter()
        model = _load_model(ui, DiT, spec, arch, device)
        t2 = time.perf_counter()
        model = model.to(torch.float32).eval()
        vocoder = vocoder.to(torch.float32).eval()

        # Reference clean-up of the prompt, as f5_tts.api.F5TTS.infer does before infer_process.
        if spec.get("preprocess_ref", True):
            t3 = time.perf_counter()
            ref_file, ref_text_p = ui.preprocess_ref_audio_text(
                spec["ref_audio"], ref_text, show_info=_log
            )
            preprocess_s = time.perf_counter() - t3
        else:
            ref_file, ref_text_p, preprocess_s = spec["ref_audio"], ref_text, None

        # What infer_process will do with the text (for the report only; it recomputes this).
        ref_wave, ref_sr = torchaudio.load(ref_file)
        ref_seconds = ref_wave.shape[-1] / ref_sr
        max_chars = int(
            len(ref_text_p.encode("utf-8")) / ref_seconds * (22 - ref_seconds) * params["speed"]
        )
        chunks = ui.chunk_text(gen_text, max_chars=max_chars)

    def run_once(nfe: int) -> tuple[float, float, Any, int, int]:
        seed_everything(seed)  # f5_tts.api seeds like this right before inference
        with contextlib.redirect_stdout(sys.stderr):
            c = time.process_time()
            t = time.perf_counter()
            wave, sr, spect = ui.infer_process(
                ref_file,
                ref_text_p,
                gen_text,
                model,
                vocoder,
                mel_spec_type="vocos",
                show_info=lambda *a: None,
                progress=None,
                target_rms=params["target_rms"],
                cross_fade_duration=params["cross_fade_duration"],
                nfe_step=nfe,
                cfg_strength=params["cfg_strength"],
                sway_sampling_coef=params["sway_sampling_coef"],
                speed=params["speed"],
                fix_duration=params["fix_duration"],
                device=device,
            )
            dt = time.perf_counter() - t
            cpu = time.process_time() - c
        frames = int(spect.shape[1]) if spect is not None else 0
        return dt, cpu, wave, int(sr), frames

    results = []
    save_dir = spec.get("save_wav_dir")
    sample_rate = ui.target_sample_rate
    load_before = os.getloadavg()
    for nfe in nfe_steps:
        warm = [round(run_once(nfe)[0], 4) for _ in range(warmup)]
        times, cpus, samples, frames = [], [], [], []
        wave = None
        for _ in range(repeats):
            dt, cpu, wave, sample_rate, fr = run_once(nfe)
            times.append(dt)
            cpus.append(cpu)
            samples.append(len(wave) if wave is not None else 0)
            frames.append(fr)
        audio_s = samples[-1] / sample_rate if samples else 0.0
        entry: dict[str, Any] = {
            "nfe": nfe,
            "warmup_s": warm,
            "times_s": [round(t, 4) for t in times],
            # process CPU seconds (all threads); cpu_s / times_s well below `threads` means the
            # cores were shared with something else and the wall times are not trustworthy
            "cpu_s": [round(c, 4) for c in cpus],
            "samples": samples,
            "gen_mel_frames": frames,
            "audio_seconds": audio_s,
        }
        if times:
            entry["mean_s"] = statistics.fmean(times)
            entry["median_s"] = statistics.median(times)
            entry["min_s"] = min(times)
            entry["rtf_median"] = entry["median_s"] / audio_s if audio_s else None
        if save_dir and wave is not None:
            import soundfile as sf

            Path(save_dir).mkdir(parents=True, exist_ok=True)
            path = Path(save_dir) / f"reference_nfe{nfe}_seed{seed}.wav"
            sf.write(str(path), np.asarray(wave, dtype=np.float32), sample_rate, subtype="FLOAT")
            entry["wav"] = str(path)
        results.append(entry)

    if spec.get("preprocess_ref", True) and ref_file != spec["ref_audio"]:
        with contextlib.suppress(OSError):
            os.unlink(ref_file)  # the reference leaves its processed temp wav behind

    return {
        "mode": "bench",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "impl": "reference",
        "versions": _versions(),
        "device": device,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "checkpoint": spec["checkpoint"],
        "arch": arch,
        "load_s": {"vocoder": round(t1 - t0, 4), "model": round(t2 - t1, 4)},
        "preprocess_ref_s": round(preprocess_s, 4) if preprocess_s is not None else None,
        "ref_audio_seconds": ref_seconds,
        "ref_sample_rate": ref_sr,
        "ref_text_processed": ref_text_p,
        "gen_text": gen_text,
        "max_chars": max_chars,
        "chunks": chunks,
        "params": params,
        "seed": seed,
        "repeats": repeats,
        "warmup": warmup,
        "sample_rate": sample_rate,
        "results": results,
    }


# --------------------------------------------------------------------------------------------
# many
# --------------------------------------------------------------------------------------------


def _lean_imports() -> None:
    """Let f5_tts's inference import where only its inference dependencies are installed.

    Its package ``__init__`` imports the trainer (wandb, datasets, ema_pytorch), its mel module
    imports librosa (used for BigVGAN mels only) and vocos imports encodec (for EnCodec
    features only): none of them runs in ``infer_process`` with a Vocos vocoder, so each missing
    one becomes an empty placeholder. Without torchcodec, torchaudio 2.9+ cannot load files:
    ``torchaudio.load`` then reads with soundfile (same samples, channels first).
    """
    import importlib.machinery
    import importlib.util
    import types

    class _Placeholder(types.ModuleType):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            # a spec, so that find_spec (transformers probes for librosa) answers, not raises
            self.__spec__ = importlib.machinery.ModuleSpec(name, None)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    missing = [
        name
        for name in ("wandb", "datasets", "ema_pytorch", "librosa", "encodec")
        if importlib.util.find_spec(name) is None
    ]
    for name in missing:
        sys.modules[name] = _Placeholder(name)
    if "librosa" in missing:
        sys.modules["librosa.filters"] = _Placeholder("librosa.filters")
    if importlib.util.find_spec("torchcodec") is None:
        import soundfile as sf
        import torch
        import torchaudio

        def load(path: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
            return torch.from_numpy(data.T.copy()), int(sr)

        torchaudio.load = load


def many(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("lean"):
        _lean_imports()
    import tempfile

    import soundfile as sf
    import torch

    with contextlib.redirect_stdout(sys.stderr):
        from f5_tts.infer import utils_infer as ui
        from f5_tts.model import DiT
        from f5_tts.model.utils import seed_everything

    device = spec.get("device", "cpu")
    nfe = int(spec.get("nfe_steps", [16])[0])
    arch = dict(spec["arch"])
    arch.pop("text_num_embeds", None)
    arch.pop("mel_dim", None)
    with contextlib.redirect_stdout(sys.stderr):
        vocoder = _load_vocoder(ui, spec, device)
        model = _load_model(ui, DiT, spec, arch, device).eval()
    dtype = str(next(model.parameters()).dtype)

    def run(request: dict[str, Any]) -> tuple[float, float]:
        # 16-bit PCM, which pydub reads without ffmpeg (none on a bare GPU image)
        wave16, sr16 = sf.read(str(request["ref_audio"]), dtype="float32")
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as pcm:
            sf.write(pcm.name, wave16, sr16, subtype="PCM_16")
        with contextlib.redirect_stdout(sys.stderr):
            ref_file, ref_text = ui.preprocess_ref_audio_text(
                pcm.name, request["ref_text"], show_info=_log
            )
        os.unlink(pcm.name)
        with contextlib.redirect_stdout(sys.stderr):
            seed_everything(int(request.get("seed", 0)))
            if device != "cpu":
                torch.cuda.synchronize()
            started = time.perf_counter()
            wave, sr, _ = ui.infer_process(
                ref_file,
                ref_text,
                request["gen_text"],
                model,
                vocoder,
                mel_spec_type="vocos",
                show_info=lambda *a: None,
                progress=None,
                nfe_step=nfe,
                device=device,
            )
            seconds = time.perf_counter() - started
        # ref_file stays: preprocess_ref_audio_text hands it out again for the same audio
        return seconds, len(wave) / sr

    requests = list(spec["requests"])
    run(requests[0])  # warm-up
    runs = [run(r) for r in requests]
    return {
        "mode": "many",
        "impl": "reference",
        "versions": _versions(),
        "device": device,
        "dtype": dtype,
        "nfe": nfe,
        "request_times_s": [round(t, 4) for t, _ in runs],
        "audio_seconds": [a for _, a in runs],
    }


def main(argv: list[str] | None = None) -> int:
    mode, spec = _read_spec(sys.argv[1:] if argv is None else argv)
    _set_threads_env(int(spec.get("threads") or 0))
    if mode != "bench":
        import torch

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
    with contextlib.redirect_stdout(sys.stderr):
        fn = {
            "bench": bench,
            "many": many,
            "make_checkpoint": make_checkpoint,
            "make_vocos": make_vocos,
            "clip_wav": clip_wav,
        }[mode]
        result = fn(spec)
    _emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
